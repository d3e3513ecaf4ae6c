"""Faults around what a run may touch, through the real console script and the library: a folder that is not a run is
never replaced (with or without --force), a planted checkpoint is never run, a publish cut short is put back, links are
refused, leftovers are matched by their exact names, checks say what they check, crafted files are bounded before
anything is built, and the library's own checks answer wrong-typed or out-of-range arguments with its own message."""
import os, sys, json, shutil, signal, subprocess, time, pickle, errno
from pathlib import Path
import pytest
from conftest import tool, worker_env
from test_faults import TOY, bborzan, entries, clean_error, _edit, _start

def snapshot(d:Path) -> dict:
    "Every file under `d` (hidden ones too) with its bytes, links as their targets."
    out = {}
    for p in sorted(d.rglob('*')):
        out[str(p.relative_to(d))] = ('->' + os.readlink(p)) if p.is_symlink() else (p.read_bytes() if p.is_file() else 'dir')
    return out

@pytest.fixture(scope='module')
def run_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp('good')
    res = bborzan('train', *TOY, '--out', d/'run', cwd=d)
    assert res.returncode == 0, res.stderr[-3000:]
    return d/'run'

# ------------------------------------------------------------------ a folder that is not a run is never replaced

NOT_RUNS = {   # how to make the folder, which --out to give (relative to the test folder), the cwd
    'a folder of your files': (lambda t, r: (t/'mystuff').mkdir() or (t/'mystuff'/'thesis.txt').write_text('years of work'), 'mystuff', '.'),
    'the parent of earlier runs': (lambda t, r: (t/'runs').mkdir() or shutil.copytree(r, t/'runs'/'old'), 'runs', '.'),
    'a run with a file of yours in it': (lambda t, r: shutil.copytree(r, t/'run') and (t/'run'/'notes.txt').write_text('mine'), 'run', '.'),
    'the folder you are in': (lambda t, r: (t/'w').mkdir() or (t/'w'/'a.txt').write_text('x'), '.', 'w'),
    'the folder above you': (lambda t, r: (t/'w').mkdir() or (t/'w'/'a.txt').write_text('x'), '..', 'w'),
}

@pytest.mark.parametrize('force', [False, True], ids=['plain', 'force'])
@pytest.mark.parametrize('case', NOT_RUNS)
def test_not_a_run_is_never_replaced(run_dir, tmp_path, case, force):
    make, out, cwd = NOT_RUNS[case]
    make(tmp_path, run_dir)
    before = snapshot(tmp_path)
    t = time.perf_counter()
    res = bborzan('train', '--games', '100000', *(['--force'] if force else []), '--out', out, cwd=tmp_path/cwd)
    line = clean_error(res)
    assert 'not a bborzan run' in line or 'the folder you are in' in line, line
    assert snapshot(tmp_path) == before, 'nothing may change'
    assert time.perf_counter() - t < 60, 'refused before 100,000 games are played'

def test_example_from_the_report(tmp_path):
    (tmp_path/'mystuff').mkdir(); (tmp_path/'mystuff'/'thesis.txt').write_text('text')
    res = bborzan('train', '--games', '300', '--epochs', '1', '--bs', '8', '--sl', '16', '--hidden', '16', '--samples', '5',
                  '--out', 'mystuff', cwd=tmp_path)
    clean_error(res, 'not a bborzan run', 'thesis.txt')
    assert (tmp_path/'mystuff'/'thesis.txt').read_text() == 'text' and entries(tmp_path) == ['mystuff']

# ------------------------------------------------------------------ the checkpoint is plain data, checked

def test_planted_checkpoint_never_runs(tmp_path):
    class Planted:
        def __reduce__(self): return (os.system, (f"touch '{tmp_path}/pwned'",))
    (tmp_path/'.run.resume.pth').write_bytes(pickle.dumps({'format': 'bborzan-resume', 'settings': Planted()}))
    res = bborzan('train', *TOY, '--resume', '--out', tmp_path/'run', cwd=tmp_path)
    clean_error(res, 'is damaged or not a bborzan checkpoint')
    assert not (tmp_path/'pwned').exists()

@pytest.fixture(scope='module')
def stopped(tmp_path_factory):
    "The checkpoint of a run stopped after its first epoch of two."
    d = tmp_path_factory.mktemp('stopped')
    p = _start(d, d/'run', 'epoch 1 saved', '--epochs', '2')
    p.send_signal(signal.SIGINT); p.communicate(timeout=300)
    assert (d/'.run.resume.pth').exists()
    return d/'.run.resume.pth'

RESUME_FILES = {   # a damaged or foreign checkpoint, and the words of the error
    'cut': (lambda b: b[:len(b) // 2], 'is damaged or not a bborzan checkpoint'),
    'empty': (lambda b: b'', 'is damaged or not a bborzan checkpoint'),
    'text': (lambda b: b'hello', 'is damaged or not a bborzan checkpoint'),
}

@pytest.mark.parametrize('case', RESUME_FILES)
def test_damaged_checkpoint(stopped, tmp_path, case):
    change, words = RESUME_FILES[case]
    (tmp_path/'.run.resume.pth').write_bytes(change(stopped.read_bytes()))
    clean_error(bborzan('train', *TOY, '--epochs', '2', '--seed', '3', '--resume', '--out', tmp_path/'run', cwd=tmp_path), words)

def test_checkpoint_of_other_settings(stopped, tmp_path):
    shutil.copy(stopped, tmp_path/'.run.resume.pth')
    clean_error(bborzan('train', *TOY, '--epochs', '2', '--seed', '3', '--hidden', '9', '--resume', '--out', tmp_path/'run', cwd=tmp_path),
                'had other settings: --hidden 8 (now 9)')

def test_resume_hint_only_for_this_runs_checkpoint(stopped, tmp_path):
    "A run that fails before finishing an epoch does not point at a checkpoint an earlier run left."
    shutil.copy(stopped, tmp_path/'.run.resume.pth')
    res = bborzan('train', *TOY, '--model', 'lm4', '--lr', '1e10', '--samples', '0', '--out', tmp_path/'run', cwd=tmp_path)   # lm4 diverges at 1e10
    clean_error(res, 'training diverged')
    assert '--resume' not in res.stderr

def test_disk_full_while_checkpointing(tmp_path, monkeypatch):
    "ENOSPC while an epoch's checkpoint is written (injected at fsync): a one-line error, no temp file, nothing published."
    import bborzan.run as R
    def full(fd): raise OSError(errno.ENOSPC, 'No space left on device')
    monkeypatch.setattr(R.os, 'fsync', full)
    with pytest.raises(R.RunError, match='the disk is full'):
        R.train_run(R.run_settings(games=300, epochs=1, hidden=8, bs=16, samples=0), out=tmp_path/'run', quiet=True)
    assert entries(tmp_path) == []

# ------------------------------------------------------------------ publishing where there is no atomic swap

def _start_swapless(tmp_path, out, pause, secs='120'):
    "A run replacing `out` the way systems without an atomic swap publish, paused at stage `pause`."
    return _start(tmp_path, out, pause, secs=secs, BBORZAN_NO_EXCHANGE='1')

def test_killed_between_renames_is_put_back(run_dir, tmp_path):
    out = tmp_path/'run'; shutil.copytree(run_dir, out)
    old = snapshot(out)
    p = _start_swapless(tmp_path, out, 'moved aside')
    p.send_signal(signal.SIGKILL); p.communicate(timeout=60)
    assert not out.exists(), 'killed between the renames: the old run is aside'
    res = bborzan('train', *TOY, '--out', out, cwd=tmp_path)        # the next start puts it back (and then refuses: a run is there)
    clean_error(res, 'already holds a run')
    assert snapshot(out) == old
    assert [n for n in entries(tmp_path) if n.startswith('.run.') and n != '.run.resume.pth'] == []

def test_signal_between_renames_waits(run_dir, tmp_path):
    "Ctrl-C between the two renames is held until both are done: the new run is in place, and the message says so."
    out = tmp_path/'run'; shutil.copytree(run_dir, out)
    p = _start_swapless(tmp_path, out, 'moved aside', secs='3')
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=300)
    assert p.returncode == 130 and 'saved in' in err and 'no run was saved' not in err, err[-2000:]
    assert json.loads((out/'report.json').read_text())['seed'] == 3
    assert entries(tmp_path) == ['run', 'stages.log']

@pytest.mark.parametrize('sig', ['SIGINT', 'SIGTERM'])
def test_signal_just_after_publishing(tmp_path, sig):
    p = _start(tmp_path, tmp_path/'run', 'published')
    p.send_signal(getattr(signal, sig))
    _, err = p.communicate(timeout=300)
    assert p.returncode == {'SIGINT': 130, 'SIGTERM': 143}[sig], err[-2000:]
    assert 'Traceback' not in err and 'no run was saved' not in err and 'saved in' in err.strip().splitlines()[-1], err[-2000:]
    assert entries(tmp_path/'run') == ['curves.png', 'metrics.csv', 'model.pth', 'report.json'] and entries(tmp_path) == ['run', 'stages.log']

# ------------------------------------------------------------------ links are refused, early, everywhere

def test_out_links_refused(run_dir, tmp_path):
    shutil.copytree(run_dir, tmp_path/'real'); (tmp_path/'empty').mkdir()
    (tmp_path/'to_run').symlink_to(tmp_path/'real'); (tmp_path/'to_empty').symlink_to(tmp_path/'empty')
    before = snapshot(tmp_path)
    for link in ('to_run', 'to_empty'):
        for force in ([], ['--force']):
            clean_error(bborzan('train', '--games', '100000', *force, '--out', link, cwd=tmp_path), 'is a symbolic link')
    assert snapshot(tmp_path) == before

def test_lock_link_refused(tmp_path):
    (tmp_path/'.run.lock').symlink_to(tmp_path/'elsewhere')
    clean_error(bborzan('train', *TOY, '--out', 'run', cwd=tmp_path), 'the lock file')
    assert not (tmp_path/'elsewhere').exists() and not (tmp_path/'run').exists()

def test_checkpoint_link_refused(stopped, tmp_path):
    shutil.copy(stopped, tmp_path/'real.pth'); (tmp_path/'.run.resume.pth').symlink_to(tmp_path/'real.pth')
    clean_error(bborzan('train', *TOY, '--epochs', '2', '--seed', '3', '--resume', '--out', 'run', cwd=tmp_path), 'is a symbolic link')

# ------------------------------------------------------------------ leftovers matched by their exact names

def test_sweep_spares_other_folders(tmp_path):
    live = tmp_path/'.v.2024.1.abcdef.part'; live.mkdir()               # runs/v.2024's staging folder, process 1 (alive)
    (live/'model.pth').write_bytes(b'in progress')
    dead = tmp_path/'.v.999999.abcdef.part'; dead.mkdir()                 # runs/v's own, from a killed process
    tmp = tmp_path/'.v.resume.pth.999999.tmp'; tmp.write_bytes(b'half')   # a checkpoint cut short by SIGKILL
    res = bborzan('train', *TOY, '--out', 'v', cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    assert entries(tmp_path) == ['.v.2024.1.abcdef.part', 'v'] and (live/'model.pth').read_bytes() == b'in progress'

# ------------------------------------------------------------------ checks that say what they check

def test_disk_check_says_what_it_asks(tmp_path, monkeypatch):
    import re, shutil as sh
    import bborzan.runfolder as R
    with R.RunFolder(tmp_path/'run') as rf:
        for free in (10**5, 10**6, 3 * 10**6):
            monkeypatch.setattr(R.shutil, 'disk_usage', lambda p, f=free: sh._ntuple_diskusage(10**9, 10**9 - f, f))
            try: rf.check_room(75_000); ok = True
            except R.RunError as e:
                ok = False
                have, want = map(lambda x: float(x.replace(',', '')), re.findall(r'([\d,.]+) MB', str(e)))
                assert want > have, str(e)                                 # refused only when it needs more than there is
            if ok: assert free > 75_000
        monkeypatch.undo()

def test_out_dot_refused_before_work(tmp_path):
    t = time.perf_counter()
    clean_error(bborzan('train', '--games', '100000', '--out', '.', cwd=tmp_path), 'the folder you are in')
    assert time.perf_counter() - t < 60 and entries(tmp_path) == []

# ------------------------------------------------------------------ crafted model files: bounded before anything is built

CRAFTED = {
    'a million layers': (lambda d: d['kwargs'].update(n_layers=10**6), 'larger than any of its', True),
    'a billion layers': (lambda d: d['kwargs'].update(n_layers=10**9), 'larger than any of its', True),
    'relabelled as lm7': (lambda d: d.update(name='lm7'), 'does not match its checksum', False),
    'weights edited': (lambda d: d['state_dict']['h_o.bias'].add_(1), 'does not match its checksum', False),
    'sl a string': (lambda d: d['extra'].update(sl='x'), "its 'sl' setting", True),
    'target unknown': (lambda d: d['extra'].update(target='all'), "its 'target' setting", True),
    'prompt a number': (lambda d: d['extra'].update(prompt=5), "its 'prompt' setting", True),
    'hidden a float': (lambda d: d['kwargs'].update(n_hidden=8.5), "don't build", True),
}

@pytest.mark.parametrize('case', CRAFTED)
def test_crafted_model_file(run_dir, tmp_path, case):
    change, words, sign = CRAFTED[case]
    t = time.perf_counter()
    clean_error(bborzan('sample', _edit(run_dir, tmp_path, change, sign), '--n', '1', cwd=tmp_path), words)
    assert time.perf_counter() - t < 60

# ------------------------------------------------------------------ tracebacks that were

def test_bench_on_tiny_data(tmp_path):
    clean_error(bborzan('bench', '--games', '10', cwd=tmp_path), '--games 10')

@pytest.mark.parametrize('t', ['1e-50', '1e-320', '0'])
def test_sample_below_smallest_normal(run_dir, tmp_path, t):
    res = bborzan('sample', run_dir, '--temperature', t, '--n', '2', '--seed', '0', cwd=tmp_path)
    assert res.returncode == 0 and 'legal games' in res.stdout, res.stderr[-2000:]

def test_fastai_data_folder_read_only(tmp_path):
    "fastai's data folder where nothing can be written (a file in the way; root ignores modes): a one-line error."
    (tmp_path/'home').write_text('not a folder')
    res = bborzan('train', '--dataset', 'human-numbers', '--epochs', '1', '--samples', '0', '--out', 'run', cwd=tmp_path,
                  FASTAI_HOME=str(tmp_path/'home'/'fastai'))
    clean_error(res, "fastai's data folder", 'FASTAI_HOME')
    assert entries(tmp_path) == ['home']

# ------------------------------------------------------------------ the library's own checks

def _lib_cases():
    import torch, numpy as np
    from bborzan.game import generate_games
    from bborzan.models import LMModel6, LMModel4, LSTMCell, GRUCell
    from bborzan.generate import predict_next
    from bborzan.train import fit
    from bborzan.run import run_settings
    from bborzan.probes import probe_energy
    from bborzan.data import Vocab
    v = Vocab(list('abc'))
    x = [(torch.zeros(2, 4, dtype=torch.long), torch.zeros(2, 4, dtype=torch.long))]
    one = ''.join(generate_games(1, seed=0).docs()).split()           # a single game: nothing left to hold out
    return {
        'negative games': (lambda: generate_games(-5), 'whole number of games'),
        'fractional games': (lambda: generate_games(2.5), 'whole number of games'),
        'hidden size 0': (lambda: LMModel6(10, 0, 1), 'at least 1'),
        'layers -1': (lambda: LMModel6(10, 8, -1), 'at least 1'),
        'vocab True': (lambda: LMModel4(True, 8), 'at least 1'),
        'cell input width': (lambda: LSTMCell(4, 3)(torch.zeros(2, 5)), 'of the right width'),
        'cell ids': (lambda: GRUCell(4, 3)(torch.zeros(2, 4, dtype=torch.long)), 'embed token ids first'),
        'cell state batch': (lambda: LSTMCell(4, 3)(torch.zeros(2, 4), (torch.zeros(3, 3),) * 2), 'the state has shape'),
        'cell state dtype': (lambda: GRUCell(4, 3)(torch.zeros(2, 4), torch.zeros(2, 3, dtype=torch.float64)), 'make them match'),
        'cell state parts': (lambda: LSTMCell(4, 3)(torch.zeros(2, 4), torch.zeros(2, 3)), 'two tensors'),
        'predict_next k=-1': (lambda: predict_next(LMModel4(3, 4), 'a b', v, k=-1), 'at least 1 candidate'),
        'predict_next k=0': (lambda: predict_next(LMModel4(3, 4), 'a b', v, k=0), 'at least 1 candidate'),
        'probe on too little': (lambda: probe_energy(np.zeros((len(one), 2)), one), 'trace a longer stream'),
        'probe test_frac 0': (lambda: probe_energy(np.zeros((len(one), 2)), one, test_frac=0), 'test_frac=0'),
        'resume incomplete': (lambda: fit(LMModel4(3, 4), x, epochs=1, quiet=True, resume={'epoch': 0}), "no 'epochs'"),
        'resume negative epoch': (lambda: fit(LMModel4(3, 4), x, epochs=1, quiet=True, resume=dict(epoch=-1, epochs=1, n_batches=1, model={},
                                  opt={}, sched={}, hist=dict(epochs=[], batch_losses=[], lrs=[]), rng=torch.get_rng_state())), 'not a finished epoch'),
        'resume mismatched': (lambda: fit(LMModel4(3, 4), x, epochs=1, quiet=True, resume=dict(epoch=0, epochs=1, n_batches=1, model={'w': torch.zeros(1)},
                              opt={}, sched={}, hist=dict(epochs=[], batch_losses=[], lrs=[]), rng=torch.get_rng_state())), 'does not fit this model'),
        'lr True': (lambda: run_settings(lr=True), '--lr True'),
        'endless 1': (lambda: run_settings(endless='yes'), 'True or False'),
    }

LIB = list(_lib_cases()) if os.environ.get('BBORZAN_NO_LIB') is None else []

@pytest.mark.parametrize('case', LIB)
def test_library_argument(case):
    f, words = _lib_cases()[case]
    with pytest.raises((ValueError, TypeError)) as e: f()
    assert words in str(e.value), str(e.value)
    assert type(e.value).__module__.startswith('bborzan') or type(e.value) in (ValueError, TypeError), type(e.value)

def test_given_nietzsche_path_missing(tmp_path):
    "A path the user gave that is not there is an error, even with a cached copy to fall back on."
    from bborzan.datasets import nietzsche, DatasetNotFound
    (tmp_path/'cache.txt').write_text('PREFACE\n\n\nSUPPOSING that Truth is a woman')
    with pytest.raises(DatasetNotFound, match='is not there'):
        nietzsche(tmp_path/'typo.txt', download=False, cache=tmp_path/'cache.txt', n_chars=None)

def test_relabelled_model_file(run_dir, tmp_path):
    from bborzan.checkpoint import load_model, ModelFileError
    p = _edit(run_dir, tmp_path, lambda d: d.update(name='lm7'), sign=False)
    with pytest.raises(ModelFileError, match='checksum'): load_model(p, device='cpu')
