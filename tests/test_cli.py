"""The `bborzan` console script, driven through its real entry point in a subprocess at toy sizes: every command,
the reports and files it writes, and every kind of bad input (one line on stderr, status != 0, no traceback, no files)."""
import json, sys
from pathlib import Path
import pytest
import torch
from conftest import run

BBORZAN = Path(sys.executable).parent/'bborzan'
TINY = ['--games', '300', '--epochs', '1', '--hidden', '8', '--bs', '16', '--samples', '30', '--device', 'cpu']

def bborzan(*args, input=None, **env):
    "Run the installed console script; returns the CompletedProcess."
    if not BBORZAN.exists(): pytest.fail(f"no console script at {BBORZAN}: run `pip install -e .` in the repo (it installs `bborzan`)")
    env.setdefault('OMP_NUM_THREADS', '1')   # toy models: one thread is fastest, and the machine is shared
    if input is None: return run([str(BBORZAN), *map(str, args)], timeout=300, **env)
    import subprocess
    from conftest import ROOT, worker_env
    return subprocess.run([str(BBORZAN), *map(str, args)], cwd=ROOT, env=worker_env(**env), input=input,
                          capture_output=True, text=True, timeout=300)

def ok(res):
    assert res.returncode == 0, f"status {res.returncode}\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    assert 'Traceback' not in res.stderr + res.stdout
    return res

def bad(res, *words):
    "A one-line error on stderr that starts `bborzan: error:`, status != 0, no traceback, nothing on stdout."
    assert res.returncode != 0, res.stdout
    assert 'Traceback' not in res.stderr + res.stdout, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('bborzan: error: '), res.stderr
    assert res.stdout == '', res.stdout
    for w in words: assert w in lines[0], (w, lines[0])
    return lines[0]

@pytest.fixture(scope='module')
def borzan_run(tmp_path_factory):
    out = tmp_path_factory.mktemp('runs')/'borzan'
    res = ok(bborzan('train', *TINY, '--out', out))
    return out, res

@pytest.fixture(scope='module')
def hn_run(tmp_path_factory):
    out = tmp_path_factory.mktemp('runs')/'hn'
    res = ok(bborzan('train', '--dataset', 'human-numbers', '--model', 'lm6', '--layers', '1', '--epochs', '1', '--hidden', '8',
                     '--device', 'cpu', '--out', out))
    return out, res

def test_help():
    res = ok(bborzan('--help'))
    for cmd in ('train', 'sample', 'play', 'bench'): assert f'\n  {cmd} ' in res.stdout
    res = ok(bborzan('train', '--help'))
    for opt in ('--dataset', '--model', '--epochs', '--lr', '--hidden', '--layers', '--bs', '--sl', '--device', '--seed', '--out'):
        assert opt in res.stdout, opt
    assert 'path' in ok(bborzan('play', '--help')).stdout

def test_quick_answers():
    "Help and typos are answered without loading torch: the command line imports the heavy library parts only to run."
    res = run([sys.executable, '-c', "import bborzan.cli, sys; print(sorted(m for m in ('torch', 'fastai') if m in sys.modules))"])
    assert res.stdout.strip() == '[]', res.stdout + res.stderr

def test_train_borzan(borzan_run):
    out, res = borzan_run
    assert sorted(p.name for p in out.iterdir()) == ['curves.png', 'metrics.csv', 'model.pth', 'report.json']
    assert not [p for p in out.parent.iterdir() if p.name.startswith('.')], 'a staging folder was left behind'
    rep = json.loads((out/'report.json').read_text())
    for k in ('valid_loss', 'floor_nats', 'gap_nats', 'accuracy', 'best_accuracy', 'illegal_mass', 'legal_fraction',
              'epochs', 'seconds', 'device', 'model', 'dataset'):
        assert k in rep, k
    assert rep['epochs'] == 1 and rep['games'] == 300 and rep['device'] == 'cpu' and rep['sampled_games'] == 30
    assert abs(rep['gap_nats'] - (rep['valid_loss'] - rep['floor_nats'])) < 1e-9
    assert 0 <= rep['legal_fraction'] <= 1 and 0 < rep['best_accuracy'] < 1
    assert 0 <= rep['illegal_mass_from_start'] <= 1 and {'0', '1'} <= set(rep['illegal_mass_by_energy']) <= {'0', '1', '2', '3+'}
    for words in ('validation loss', 'oracle floor', 'gap', 'illegal-move mass', 'on the games each row read from their start',
                  'by energy', 'legal games'): assert words in res.stdout
    assert (out/'curves.png').read_bytes()[:4] == b'\x89PNG'

def test_load_round_trip(borzan_run):
    "The saved model, loaded with the library, scores exactly what the report says on the same validation games."
    from bborzan.checkpoint import load_model
    from bborzan.scoring import evaluate_borzan
    from bborzan.datasets import borzan_corpus
    out, _ = borzan_run
    rep = json.loads((out/'report.json').read_text())
    m, v, cfg = load_model(out/'model.pth', device='cpu')
    assert cfg['name'] == 'lm6' and cfg['kwargs']['n_hidden'] == 8 and cfg['extra']['dataset'] == 'borzan'
    ev = evaluate_borzan(m, borzan_corpus(300, seed=42), v, bs=8, sl=cfg['extra']['sl'])   # as the report reads them: 8 rows, the run's windows
    assert abs(ev.loss - rep['valid_loss']) < 1e-5 and abs(ev.floor - rep['floor_nats']) < 1e-9

def test_sample_games(borzan_run):
    out, _ = borzan_run
    res = ok(bborzan('sample', out, '--n', '5', '--seed', '0', '--device', 'cpu'))
    last = res.stdout.strip().splitlines()[-1]
    assert last.startswith('legal games: ') and last.endswith('%)') and ' of 5 ' in last, last
    assert res.stdout.count('legal  ') + res.stdout.count('ILLEGAL') == 5
    again = ok(bborzan('sample', out, '--n', '5', '--seed', '0', '--device', 'cpu'))
    assert again.stdout == res.stdout, 'the same seed must give the same games'

def test_play(borzan_run):
    out, _ = borzan_run
    moves = 'bazooka\nshoot\n0\n9\nrules\n' + 'zan\n' * 3 + 'shield\n' * 40
    res = ok(bborzan('play', out, '--games', '2', '--device', 'cpu', input=moves))
    assert "'bazooka' is not a move" in res.stdout and "'9' is not a move" in res.stdout
    assert "you can't play shoot with 0 energy" in res.stdout
    assert 'needs 3 energy' in res.stdout                    # the rules were shown
    assert 'you: zan, model: ' in res.stdout
    assert 'final score: you ' in res.stdout.strip().splitlines()[-1]

def test_play_quit_and_eof(borzan_run):
    out, _ = borzan_run
    res = ok(bborzan('play', out, '--device', 'cpu', input='zan\nquit\n'))
    assert 'final score: you 0, the model ' in res.stdout
    res = ok(bborzan('play', out, '--device', 'cpu', input=''))
    assert '(end of input)' in res.stdout and 'final score: you 0, the model 0 (0 games finished)' in res.stdout

def test_train_fixed(tmp_path):
    "New games every epoch is the default; --fixed trains on the same games every epoch, --endless says the default."
    ok(bborzan('train', *TINY, '--fixed', '--quiet', '--out', tmp_path/'fixed'))
    ok(bborzan('train', *TINY, '--quiet', '--out', tmp_path/'plain'))
    assert json.loads((tmp_path/'fixed'/'report.json').read_text())['endless'] is False
    assert json.loads((tmp_path/'plain'/'report.json').read_text())['endless'] is True

def test_train_human_numbers(hn_run):
    out, res = hn_run
    rep = json.loads((out/'report.json').read_text())
    assert rep['dataset'] == 'human-numbers' and 'floor_nats' not in rep and 0 <= rep['accuracy'] <= 1
    assert 'validation loss' in res.stdout and 'oracle floor' not in res.stdout
    res = ok(bborzan('sample', out, '--n', '2', '--length', '10', '--prompt', 'one . two', '--device', 'cpu'))
    assert res.stdout.count('--- ') == 2 and 'one . two' in res.stdout

def test_train_nietzsche_offline(tmp_path):
    out = tmp_path/'nz'
    res = ok(bborzan('train', '--dataset', 'nietzsche', '--offline', '--model', 'char_stateful_gru', '--epochs', '1',
                     '--hidden', '8', '--bs', '256', '--sl', '32', '--device', 'cpu', '--out', out, FASTAI_HOME=str(tmp_path/'fastai')))
    rep = json.loads((out/'report.json').read_text())
    assert rep['source'] == 'pydoc' and rep['model'] == 'char_stateful_gru' and isinstance(rep['sample'], str)

def test_bench():
    res = ok(bborzan('bench', '--kind', 'speed', '--games', '600', '--repeats', '1', '--models', 'lm4', '--shapes', '64x16', '--device', 'cpu', '--quiet'))
    assert "reference pipeline" in res.stdout and 'x faster' in res.stdout
    assert 'tokens/s' in res.stdout and 'lm4   reference' in res.stdout and 'lm4   ours_64x16' in res.stdout
    assert 'time until the validation gap' not in res.stdout

def test_bench_quality():
    # at 600 games nobody gets near 0.002: a loose target shows the mechanics (the real one is `bborzan bench`)
    res = ok(bborzan('bench', '--games', '600', '--target', '0.5', '--device', 'cpu', '--quiet'))
    assert 'time until the validation gap is below 0.5 nats/token' in res.stdout
    assert 'the reference notebook: LMModel4' in res.stdout and 'bborzan: lm4' in res.stdout and 'tokens/s' not in res.stdout
    assert 'bborzan train (its defaults): lm6' in res.stdout
    assert res.stdout.count('faster than the reference') + res.stdout.count('as long as the reference') == 2   # a ratio for each of ours

# ---- bad input ----
TRAIN_BAD = {
    'unknown dataset': (['--dataset', 'mnist'], ['mnist', 'borzan, human-numbers, nietzsche']),
    'unknown model': (['--model', 'lm9'], ["'lm9'", 'lm6']),
    'model not for the dataset': (['--dataset', 'nietzsche', '--model', 'lm6'], ['does not fit the nietzsche dataset']),
    'negative epochs': (['--epochs', '-1'], ['--epochs -1']),
    'zero hidden': (['--hidden', '0'], ['--hidden 0']),
    'epochs not a number': (['--epochs', 'many'], ["invalid int value: 'many'"]),
    'unknown option': (['--colour', 'red'], ['unrecognized arguments']),
    'unknown device': (['--device', 'tpu'], ['tpu']),
    'too few games for the batches': (['--games', '20', '--epochs', '1'], ['use a smaller bs or sl']),
    'endless and fixed': (['--endless', '--fixed'], ['--endless and --fixed: choose one']),
    'fixed for another dataset': (['--dataset', 'human-numbers', '--fixed'], ['--fixed is an option of --dataset borzan only']),
    'nietzsche offline without the file': (['--dataset', 'nietzsche'], ['nietzsche.txt', '--offline']),
}

@pytest.mark.parametrize('case', TRAIN_BAD, ids=list(TRAIN_BAD))
def test_train_bad_input(case, tmp_path):
    args, words = TRAIN_BAD[case]
    out = tmp_path/'out'
    res = bborzan('train', *args, '--out', out, FASTAI_HOME=str(tmp_path/'fastai'))
    bad(res, *words)
    assert not out.exists(), 'a failed run left its output folder'
    assert [p.name for p in tmp_path.iterdir() if p.name != 'fastai'] == [], 'a failed run left files'

def test_bad_model_files(tmp_path, borzan_run, hn_run):
    bad(bborzan('sample', tmp_path/'missing'), 'no model at', 'bborzan train')
    (tmp_path/'corrupt.pth').write_bytes(b'\x00 not a model')
    bad(bborzan('sample', tmp_path/'corrupt.pth'), 'is not a bborzan model file')
    (tmp_path/'half.pth').write_bytes((borzan_run[0]/'model.pth').read_bytes()[:2000])   # a cut-off copy
    bad(bborzan('play', tmp_path/'half.pth'), 'is not a bborzan model file')
    d = torch.load(borzan_run[0]/'model.pth', weights_only=True)
    d['vocab']['itos'] = d['vocab']['itos'][:-1]
    from bborzan.checkpoint import _digest
    d['digest'] = _digest(d['name'], d['kwargs'], d['vocab']['itos'], d['state_dict'])   # deliberately made: past the checksum
    torch.save(d, tmp_path/'vocab.pth')
    bad(bborzan('sample', tmp_path/'vocab.pth'), 'does not fit together', 'vocab')
    bad(bborzan('play', hn_run[0]), 'not of bor-bor-zan', 'bborzan train')

def test_other_bad_input(borzan_run):
    out = borzan_run[0]
    bad(bborzan('fly'), "unknown command 'fly'")
    bad(bborzan('sample', out, '--temperature', '-1'), '--temperature -1')
    bad(bborzan('sample', out, '--n', '0'), '--n 0')
    bad(bborzan('sample', out, '--prompt', 'zan to bazooka'), "'bazooka'")
    bad(bborzan('sample'), 'the following arguments are required: path')
    bad(bborzan('play', out, '--games', '0'), '--games 0')
    bad(bborzan('bench', '--models', 'lm1'), "'lm1' can't be benchmarked")
    bad(bborzan('bench', '--shapes', '64'), 'BSxSL')
    bad(bborzan('bench', '--kind', 'fast'), 'use quality, speed or all')
    bad(bborzan('bench', '--target', '-1'), '--target -1')

# ------------------------------------------------------------------ logs, versions, spellings, resuming

def test_piped_log_is_one_line_per_epoch(tmp_path):
    "Output to a file or a pipe gets one plain line per epoch, not a progress bar's carriage-return frames."
    res = ok(bborzan('train', *TINY[:2], '--epochs', '3', *TINY[4:], '--out', tmp_path/'r'))
    assert '\r' not in res.stdout and '\x1b' not in res.stdout
    epochs = [l for l in res.stdout.splitlines() if l.startswith('epoch ')]
    assert [l.split()[1] for l in epochs] == ['1/3', '2/3', '3/3'], res.stdout
    assert all('train_loss' in l and 'valid_loss' in l for l in epochs)
    assert len(res.stdout) < 4000, len(res.stdout)
    rep = json.loads((tmp_path/'r'/'report.json').read_text())
    for k in ('wd', 'alpha', 'beta', 'samples', 'games', 'seed', 'lr', 'device'): assert k in rep['settings'], k
    assert set(rep['versions']) == {'bborzan', 'commit', 'torch', 'fastai', 'python'} and rep['date'][:2] == '20'
    assert rep['command'].startswith('bborzan train --games 300 --epochs 3')

def test_quiet_keeps_the_report(tmp_path):
    res = ok(bborzan('train', *TINY, '--quiet', '--out', tmp_path/'r'))
    assert 'epoch 1/1' not in res.stdout and 'validation loss' in res.stdout and 'oracle floor' in res.stdout

def test_version_and_module():
    import re
    from bborzan import __version__
    v = ok(bborzan('--version')).stdout
    assert re.match(rf'bborzan {re.escape(__version__)} (\(commit [0-9a-f]{{12}}\+?\) )?\(torch ', v) and 'fastai' in v, v
    from conftest import ROOT
    if (ROOT/'.git').exists(): assert '(commit ' in v, v          # run from a checkout: the commit identifies the code
    assert ok(run([sys.executable, '-m', 'bborzan', '--version'])).stdout == v
    assert ok(run([sys.executable, '-m', 'bborzan.cli', '--version'])).stdout == v
    res = ok(run([sys.executable, '-m', 'bborzan', 'train', '--help']))
    assert '--resume' in res.stdout and '--force' in res.stdout

def test_dash_and_underscore_spellings(borzan_run):
    out, _ = borzan_run
    a = ok(bborzan('sample', out, '--n', '2', '--top-k', '2', '--seed', '1')).stdout
    b = ok(bborzan('sample', out, '--n', '2', '--top_k', '2', '--seed', '1')).stdout
    assert a == b and 'legal games' in a
    bad(bborzan('sample', out, '--top-k', '0'), '--top_k 0')

def test_resume_after_sigterm(tmp_path):
    "A run stopped by SIGTERM after its first epoch keeps that epoch; `--resume` finishes it where it would have ended."
    import signal, subprocess, time
    from conftest import worker_env
    args = ['train', *TINY[:2], '--epochs', '2', *TINY[4:], '--samples', '0', '--quiet']
    log = tmp_path/'stages.log'
    p = subprocess.Popen([str(BBORZAN), *args, '--out', 'stopped'], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=worker_env(BBORZAN_STAGE_LOG=str(log), BBORZAN_PAUSE_AT='epoch 1 saved', BBORZAN_PAUSE_S='120',
                                                   OMP_NUM_THREADS='1'))
    t = time.time()
    while not (log.exists() and 'epoch 1 saved' in log.read_text()):
        assert p.poll() is None and time.time() - t < 250, p.communicate()[1][-2000:]
        time.sleep(0.2)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 143 and 'Traceback' not in err and '--resume' in err, err[-2000:]
    assert not (tmp_path/'stopped').exists() and (tmp_path/'.stopped.resume.pth').exists()
    bad(run([str(BBORZAN), *args[:-3], '--samples', '0', '--epochs', '3', '--quiet', '--out', 'stopped', '--resume'], cwd=tmp_path),
        'other settings', '--epochs 2 (now 3)')
    ok(run([str(BBORZAN), *args, '--out', 'stopped', '--resume'], cwd=tmp_path, OMP_NUM_THREADS='1'))
    ok(run([str(BBORZAN), *args, '--out', 'whole'], cwd=tmp_path, OMP_NUM_THREADS='1'))
    resumed, whole = (json.loads((tmp_path/n/'report.json').read_text()) for n in ('stopped', 'whole'))
    assert resumed['resumed_after_epoch'] == 1 and whole['resumed_after_epoch'] is None
    assert abs(resumed['valid_loss'] - whole['valid_loss']) < 1e-6
    assert not (tmp_path/'.stopped.resume.pth').exists()
    bad(run([str(BBORZAN), *args, '--out', 'whole', '--resume'], cwd=tmp_path), 'no interrupted run')

def test_live_metrics_and_epochs_from_one(tmp_path):
    "metrics.csv has a line per epoch as the run goes; it, report.json and the log all count epochs from 1."
    import csv
    res = ok(bborzan('train', *TINY, '--epochs', '2', '--out', tmp_path/'run'))
    rows = list(csv.DictReader(open(tmp_path/'run'/'metrics.csv')))
    rep = json.loads((tmp_path/'run'/'report.json').read_text())
    assert [r['epoch'] for r in rows] == ['1', '2'] and [h['epoch'] for h in rep['history']] == [1, 2]
    assert abs(float(rows[-1]['valid_loss']) - rep['history'][-1]['valid_loss']) < 1e-5
    assert 'epoch 1/2' in res.stdout and 'epoch 2/2' in res.stdout and 'per-epoch metrics as it trains' in res.stdout
    assert rep['versions']['commit'] is None or len(rep['versions']['commit'].rstrip('+')) == 12

def test_tensorboard(tmp_path):
    pytest.importorskip('tensorboard')
    ok(bborzan('train', *TINY, '--epochs', '2', '--tensorboard', '--out', tmp_path/'run'))
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    ev = EventAccumulator(str(tmp_path/'run'/'tensorboard')); ev.Reload()
    assert {'train/loss', 'valid/loss', 'valid/accuracy'} <= set(ev.Tags()['scalars'])
    assert [e.step for e in ev.Scalars('valid/loss')] == [1, 2]

