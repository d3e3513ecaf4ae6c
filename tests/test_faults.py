"""Faults and hostile input, through the real console script: every case checks the exit status, that stderr is one
line and no traceback, and the exact state of the output folder afterwards. Signals are sent at each stage of a run
(the run pauses at a named stage when `BBORZAN_PAUSE_AT` says so, and logs the stages it reaches), two runs race for
one folder, and a full disk is made with a small tmpfs where the tests may mount one, and injected otherwise."""
import os, sys, json, shutil, signal, subprocess, time, errno
from pathlib import Path
import pytest
from conftest import ROOT, tool, worker_env

TOY = ['--games', '300', '--epochs', '1', '--hidden', '8', '--bs', '16', '--samples', '5', '--quiet']

def bborzan(*args, cwd, stdin=subprocess.DEVNULL, timeout=600, **env):
    return subprocess.run([tool('bborzan'), *map(str, args)], cwd=cwd, env=worker_env(**env), stdin=stdin,
                          capture_output=True, text=True, timeout=timeout)

def entries(d:Path) -> list:
    "What is in folder `d`, hidden entries too: lock files included, since a run removes its own (one left behind is a leak)."
    return sorted(p.name for p in d.iterdir()) if d.exists() else []

def clean_error(res, *words, rc=2):
    "Exit status `rc`, nothing on stdout but progress, one line on stderr naming `words`, no traceback."
    lines = res.stderr.strip().splitlines()
    assert res.returncode == rc, (res.returncode, res.stderr[-2000:])
    assert 'Traceback' not in res.stderr and len(lines) == 1, res.stderr[-2000:]
    for w in words: assert w in lines[0], (w, lines[0])
    return lines[0]

@pytest.fixture(scope='module')
def run_dir(tmp_path_factory):
    "A finished toy run, to sample from, play against, and replace."
    d = tmp_path_factory.mktemp('good')
    res = bborzan('train', *TOY, '--out', d/'run', cwd=d)
    assert res.returncode == 0, res.stderr[-3000:]
    return d/'run'

# ------------------------------------------------------------------ bad input to `train`: refused before any work

TRAIN_INPUTS = [
    (['--lr', 'inf'], 'positive and finite'), (['--lr', '0'], '--lr 0'), (['--lr', '-1'], '--lr -1'),
    (['--seed', '-1'], 'from 0 to 4294967295'), (['--seed', str(2**70)], 'from 0 to'),
    (['--hidden', '1000000000'], "can't be built"), (['--hidden', '100000'], 'GB of memory'), (['--hidden', '1e9'], "invalid int value: '1e9'"),
    (['--games', '1000000000000'], 'GB of memory for the games'), (['--games', '1e12'], "invalid int value"),
    (['--games', '5'], '--games 5: use a whole number, at least 10'),
    (['--epochs', '0'], '--epochs 0'), (['--bs', '0'], '--bs 0'), (['--sl', '-3'], '--sl -3'), (['--samples', '-1'], '--samples -1'),
    (['--dataset', 'mnist'], 'unknown dataset'), (['--model', 'lm9'], 'unknown model'), (['--model', 'char_rnn'], 'does not fit'),
    (['--model', 'lm1', '--sl', '8'], 'reads exactly 3 tokens'), (['--text', 'x.txt'], 'no such file: check the path of your text file'),
    (['--dataset', 'human-numbers', '--text', 'x.txt'], '--text is not an option of --dataset human-numbers'),
    (['--dataset', 'nietzsche', '--text', 'typo.txt'], 'is not there (no such file)'),
    (['--dataset', 'nietzsche', '--text', '.'], 'a folder without nietzsche.txt'),
    (['--device', 'cuda:7'], "device 'cuda:7'"), (['--device', 'tpu'], 'device'), (['--frobnicate'], 'unrecognized arguments'),
]

@pytest.mark.parametrize('args,words', TRAIN_INPUTS, ids=[' '.join(a) for a, _ in TRAIN_INPUTS])
def test_train_input(tmp_path, args, words):
    res = bborzan('train', *args, '--out', tmp_path/'run', cwd=tmp_path)
    if args == ['--device', 'cuda:7'] and res.returncode == 0: pytest.skip('a machine with 8 GPUs')
    clean_error(res, words)
    assert entries(tmp_path) == [], 'a refused run must leave nothing behind'

OUT_CASES = {   # what is at --out (made by the function), the words of the error
    'a file': (lambda t: (t/'run').write_text('x'), 'is a file: give a folder'),
    'a parent that is a file': (lambda t: (t/'p').write_text('x') and None, 'is a file, not a folder'),
    'a dangling symlink': (lambda t: (t/'run').symlink_to(t/'nowhere'), 'is a symbolic link'),
    'a name too long': (lambda t: None, 'the name is too long'),
}

@pytest.mark.parametrize('case', OUT_CASES)
def test_train_out_checked_first(tmp_path, case):
    make, words = OUT_CASES[case]
    make(tmp_path)
    out = {'a parent that is a file': tmp_path/'p'/'run', 'a name too long': tmp_path/('x' * 300)}.get(case, tmp_path/'run')
    before = entries(tmp_path)
    t = time.perf_counter()
    res = bborzan('train', '--games', '100000', '--out', out, cwd=tmp_path)   # refused before 100,000 games are played
    clean_error(res, words)
    assert entries(tmp_path) == before and time.perf_counter() - t < 60

def test_existing_run_refused_then_replaced(run_dir, tmp_path):
    out = tmp_path/'run'; shutil.copytree(run_dir, out)
    old = (out/'report.json').read_text()
    clean_error(bborzan('train', *TOY, '--out', out, cwd=tmp_path), 'already holds a run: add --force')
    assert (out/'report.json').read_text() == old
    res = bborzan('train', *TOY, '--seed', '1', '--force', '--out', out, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    assert json.loads((out/'report.json').read_text())['seed'] == 1 and entries(tmp_path) == ['run']
    assert oct(out.stat().st_mode & 0o777) == oct(0o777 & ~_umask())

def _umask():
    m = os.umask(0); os.umask(m); return m

def test_divergence_keeps_nothing(tmp_path):
    # lm4 (weight decay 0.01): at lr 1e10 its loss becomes NaN; borzan's own LSTM, without weight decay and with its
    # saturating gates, only reaches a huge but finite loss, which is not a divergence
    res = bborzan('train', *TOY, '--model', 'lm4', '--lr', '1e10', '--samples', '0', '--out', tmp_path/'run', cwd=tmp_path)
    clean_error(res, 'training diverged', 'lower learning rate')
    assert entries(tmp_path) == []

# ------------------------------------------------------------------ bad input to `sample` and `play`

def _edit(run_dir, tmp_path, change, sign=True):
    "A model file changed by `change`; `sign`: with its checksum made to match, as a deliberate crafter would."
    import torch
    import bborzan.checkpoint as ck
    d = torch.load(run_dir/'model.pth', weights_only=True); change(d)
    _digest = getattr(ck, '_digest', None)
    if sign and _digest and isinstance(d, dict) and 'digest' in d:
        try: d['digest'] = _digest(d['name'], d['kwargs'], d['vocab']['itos'], d['state_dict'])
        except Exception: pass                     # parts too broken to sign: the file's own checks say so
    torch.save(d, tmp_path/'m.pth'); return tmp_path/'m.pth'

SAMPLE_INPUTS = [
    (['--temperature', 'inf', '--top_k', '3'], 'finite value'), (['--temperature', '-1'], '--temperature -1'),
    (['--temperature', 'nan'], '--temperature nan'), (['--top_k', '0'], '--top_k 0'), (['--n', '0'], '--n 0'),
    (['--length', '1'], '--length 1'), (['--prompt', ''], 'the prompt is empty'), (['--prompt', '   '], 'the prompt is empty'),
    (['--prompt', 'zan to bazooka'], "'bazooka'"), (['--device', 'cuda:7'], "device 'cuda:7'"),
]

@pytest.mark.parametrize('args,words', SAMPLE_INPUTS, ids=[' '.join(a) or 'empty' for a, _ in SAMPLE_INPUTS])
def test_sample_input(run_dir, tmp_path, args, words):
    res = bborzan('sample', run_dir, *args, cwd=tmp_path)
    if args == ['--device', 'cuda:7'] and res.returncode == 0: pytest.skip('a machine with 8 GPUs')
    clean_error(res, words)

def test_sample_tiny_temperature_is_argmax(run_dir, tmp_path):
    res = bborzan('sample', run_dir, '--temperature', '1e-45', '--n', '2', '--seed', '0', cwd=tmp_path)
    assert res.returncode == 0 and 'legal games' in res.stdout, res.stderr[-2000:]

MODEL_FILES = {   # a damaged or crafted model file, and the words of the error
    'missing': (lambda r, t: t/'nope.pth', 'no model at'),
    'empty': (lambda r, t: (t/'m.pth').write_bytes(b'') and None or t/'m.pth', 'is empty (0 bytes)'),
    'text': (lambda r, t: (t/'m.pth').write_text('hello') and None or t/'m.pth', 'not a bborzan model file'),
    'cut': (lambda r, t: (t/'m.pth').write_bytes((r/'model.pth').read_bytes()[:3000]) and None or t/'m.pth', 'not a bborzan model file'),
    'nan weights': (lambda r, t: _edit(r, t, lambda d: d['state_dict']['h_o.weight'].fill_(float('nan'))), 'NaN or infinite'),
    'huge sizes': (lambda r, t: _edit(r, t, lambda d: d['kwargs'].update(n_hidden=10**12)), 'larger than any of its'),
    'str size': (lambda r, t: _edit(r, t, lambda d: d['kwargs'].update(n_hidden='8')), "don't build a lm6"),
    'list kwargs': (lambda r, t: _edit(r, t, lambda d: d.update(kwargs=[8, 1])), 'not a dict of names'),
    'list vocab': (lambda r, t: _edit(r, t, lambda d: d.update(vocab=['zan'])), 'vocab is not a list of tokens'),
    'short vocab': (lambda r, t: _edit(r, t, lambda d: d['vocab']['itos'].pop()), 'does not fit together'),
    'no weights': (lambda r, t: _edit(r, t, lambda d: d.pop('state_dict')), "'state_dict' entry is missing"),
    'unknown model': (lambda r, t: _edit(r, t, lambda d: d.update(name='gpt5')), "unknown model 'gpt5'"),
    'bare state_dict': (lambda r, t: _edit(r, t, lambda d: [d.clear(), d.update(w=1)]), 'a bare state_dict?'),
}

@pytest.mark.parametrize('case', MODEL_FILES)
def test_model_file(run_dir, tmp_path, case):
    make, words = MODEL_FILES[case]
    res = bborzan('sample', make(run_dir, tmp_path), '--n', '1', cwd=tmp_path)
    line = clean_error(res, words)
    assert not line.endswith(')') or line.count('(') == line.count(')'), line   # whole sentences, nothing cut mid-word

def test_sample_into_closed_pipe(run_dir, tmp_path):
    "`bborzan sample | head -1` ends quietly when head leaves."
    res = subprocess.run(f"'{tool('bborzan')}' sample '{run_dir}' --n 300 --length 60 2>'{tmp_path}/err' | head -1",
                         shell=True, cwd=tmp_path, env=worker_env(), capture_output=True, text=True, timeout=600)
    assert len(res.stdout.splitlines()) == 1 and (tmp_path/'err').read_text() == ''

def test_play_with_stdin_closed(run_dir, tmp_path):
    res = subprocess.run(f"'{tool('bborzan')}' play '{run_dir}' --games 1 <&-", shell=True, cwd=tmp_path, env=worker_env(),
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0 and '(end of input)' in res.stdout and 'Traceback' not in res.stderr, res.stderr[-2000:]

def test_library_inputs():
    import torch
    from bborzan.oracle import oracle_stats
    from bborzan.models import LMModel4
    from bborzan.generate import sample_probs
    with pytest.raises(ValueError, match='no games to score'): oracle_stats([])
    with pytest.raises(ValueError, match='encode the text with the vocab'): LMModel4(5, 4)(torch.tensor([[1, 2, 9]]))
    with pytest.raises(ValueError, match='top_k=True'): sample_probs(torch.zeros(4), top_k=True)

# ------------------------------------------------------------------ signals at each stage of a run

STAGES = ('training', 'sampling', 'saving', 'publishing')
SIGNALS = {'SIGINT': (signal.SIGINT, 130), 'SIGTERM': (signal.SIGTERM, 143), 'SIGKILL': (signal.SIGKILL, -9)}

def _start(tmp_path, out, pause, *extra, secs='120', **env):
    "A toy run into `out` (replacing what is there), paused at stage `pause` (a whole line of the stage log); `env` for the run."
    log = tmp_path/'stages.log'
    p = subprocess.Popen([tool('bborzan'), 'train', *TOY, '--force', '--seed', '3', '--out', str(out), *extra], cwd=tmp_path,
                         env=worker_env(BBORZAN_STAGE_LOG=str(log), BBORZAN_PAUSE_AT=pause, BBORZAN_PAUSE_S=secs, **env),
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    t = time.time()
    while not (log.exists() and pause in log.read_text().split('\n')):
        assert p.poll() is None, p.communicate()[1][-3000:]
        assert time.time() - t < 500, 'the run never reached its stage'
        time.sleep(0.1)
    return p

@pytest.mark.parametrize('stage', STAGES)
@pytest.mark.parametrize('sig', SIGNALS)
def test_signal_leaves_old_run(run_dir, tmp_path, stage, sig):
    "A run replacing an earlier one and stopped by a signal at any stage leaves the earlier run whole, and no staging folder."
    out = tmp_path/'run'; shutil.copytree(run_dir, out)
    old = {p.name: p.read_bytes() for p in out.iterdir()}
    p = _start(tmp_path, out, stage)
    num, rc = SIGNALS[sig]
    p.send_signal(num)
    _, err = p.communicate(timeout=300)
    assert p.returncode == rc, (p.returncode, err[-2000:])
    if sig != 'SIGKILL':
        assert 'Traceback' not in err and err.strip().splitlines()[-1].startswith('bborzan: '), err[-2000:]
    assert {p.name: p.read_bytes() for p in out.iterdir()} == old
    leftovers = [n for n in entries(tmp_path) if n.endswith('.part')]
    if sig == 'SIGKILL':                                   # nothing can clean up after SIGKILL; the next run of that folder does
        from bborzan.run import RunFolder
        with RunFolder(out, force=True): pass
    else: assert leftovers == [], leftovers
    kept = ['.run.resume.pth'] if stage != 'training' else []   # once an epoch is done it is kept, for --resume
    assert entries(tmp_path) == kept + ['run', 'stages.log']
    if stage != 'training' and sig != 'SIGKILL': assert '--resume' in err, err[-2000:]

def test_two_runs_race(tmp_path):
    "While one run holds a folder, a second one into it is refused at once; the first finishes and publishes."
    out = tmp_path/'run'
    p = _start(tmp_path, out, 'training')
    clean_error(bborzan('train', *TOY, '--out', out, cwd=tmp_path), 'another bborzan run is writing')
    p.send_signal(signal.SIGINT); p.communicate(timeout=300)      # (paused: stop it rather than wait out the pause)
    res = bborzan('train', *TOY, '--out', out, cwd=tmp_path)       # the folder is free again
    assert res.returncode == 0 and entries(out) == ['curves.png', 'metrics.csv', 'model.pth', 'report.json'], res.stderr[-2000:]

# ------------------------------------------------------------------ a full disk

@pytest.fixture
def small_disk(tmp_path):
    "A 256 kB tmpfs, where this machine lets the tests mount one (root with the right to mount); else skip."
    d = tmp_path/'small'; d.mkdir()
    if shutil.which('mount') is None or subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', str(d)],
                                                        capture_output=True).returncode != 0:
        pytest.skip('cannot mount a tmpfs here (the injected-ENOSPC test covers this)')
    yield d
    subprocess.run(['umount', str(d)], capture_output=True)

def test_full_disk_refused_before_training(small_disk, tmp_path):
    res = bborzan('train', *TOY, '--hidden', '256', '--out', small_disk/'run', cwd=tmp_path)
    clean_error(res, 'MB free')
    assert entries(small_disk) == []

def test_disk_full_while_saving(run_dir, tmp_path, monkeypatch):
    "ENOSPC while the files are written (injected): a one-line error, the old run untouched, no staging folder, the epochs kept."
    import bborzan.checkpoint
    from bborzan.run import run_settings, train_run, RunError
    out = tmp_path/'run'; shutil.copytree(run_dir, out)
    old = {p.name: p.read_bytes() for p in out.iterdir()}
    def full(path, *a, **k):
        Path(path).write_bytes(b'partial')
        raise OSError(errno.ENOSPC, 'No space left on device', str(path))
    monkeypatch.setattr(bborzan.checkpoint, 'save_model', full)
    with pytest.raises(RunError, match='the disk is full'):
        train_run(run_settings(games=300, epochs=1, hidden=8, bs=16, samples=0), out=out, quiet=True, force=True)
    # the finished epoch stays beside the run, for `--resume` once there is room (stderr says so)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == old and entries(tmp_path) == ['.run.resume.pth', 'run']

@pytest.fixture
def read_only_disk(tmp_path):
    "A read-only tmpfs, where this machine lets the tests mount one; else skip (root ignores file modes, so a mount is needed)."
    d = tmp_path/'ro'; d.mkdir()
    if shutil.which('mount') is None or subprocess.run(['mount', '-t', 'tmpfs', '-o', 'ro,size=64k', 'tmpfs', str(d)],
                                                        capture_output=True).returncode != 0:
        pytest.skip('cannot mount a tmpfs here')
    yield d
    subprocess.run(['umount', str(d)], capture_output=True)

def test_read_only_disk_refused_before_training(read_only_disk, tmp_path):
    t = time.perf_counter()
    res = bborzan('train', '--games', '100000', '--out', read_only_disk/'run', cwd=tmp_path)
    clean_error(res, 'the filesystem is read-only')
    assert entries(read_only_disk) == [] and time.perf_counter() - t < 60
