"""Your own text through the real console script: `bborzan train --text FILE` (by character, by word, one item per line),
`bborzan sample` and `bborzan eval`; bad files refused with one line and exit status 2, nothing left behind; and
data parallelism with `torchrun` on 2 CPU processes (gloo) against one process with the same global batch."""
import json, shutil, subprocess, sys
from pathlib import Path
import pytest
from conftest import tool, worker_env
from test_faults import bborzan, entries, clean_error

PROSE = ("Supposing that truth is a woman, what then? Is there not ground for suspecting that all philosophers, in so far as "
         "they have been dogmatists, have failed to understand women.\n")
TINY = ['--epochs', '1', '--hidden', '16', '--bs', '8', '--sl', '16', '--samples', '2', '--quiet']

@pytest.fixture(scope='module')
def book(tmp_path_factory):
    d = tmp_path_factory.mktemp('book')
    (d/'book.txt').write_text(PROSE * 40, encoding='utf-8')
    (d/'names.txt').write_text('emma\nolivia\nava\nisabella\nsophia\nmia\ncharlotte\namelia\nharper\nevelyn\n' * 30, encoding='utf-8')
    return d

BAD = {   # the file (made by the function), the words of the error
    'missing': (lambda d: None, 'no such file'),
    'a folder': (lambda d: (d/'in').mkdir(), 'is a folder'),
    'empty': (lambda d: (d/'in').write_bytes(b''), 'is empty'),
    'binary': (lambda d: (d/'in').write_bytes(bytes(range(256)) * 20), 'NUL byte'),
    'not UTF-8': (lambda d: (d/'in').write_bytes('café au lait\n'.encode('latin-1') * 50), 'is not UTF-8 text'),
    'too short': (lambda d: (d/'in').write_text('ab', encoding='utf-8'), 'too small for these batches'),
    'too many characters': (lambda d: (d/'in').write_text(''.join(map(chr, range(0x4e00, 0x4e00 + 2000))) * 3, encoding='utf-8'),
                            'use --level word'),
}

@pytest.mark.parametrize('case', BAD)
def test_bad_text(tmp_path, case):
    make, words = BAD[case]
    make(tmp_path)
    before = entries(tmp_path)
    res = bborzan('train', '--text', tmp_path/'in', *TINY, '--out', tmp_path/'run', cwd=tmp_path, BBORZAN_CACHE=str(tmp_path/'cache'))
    clean_error(res, words)
    assert [e for e in entries(tmp_path) if e != 'cache'] == before, 'a refused run leaves nothing behind'
    assert not [e for e in entries(tmp_path/'cache'/'text') if e.startswith('.')], 'nor half an entry in the text cache'

def test_crlf_and_bom_are_handled(tmp_path):
    (tmp_path/'win.txt').write_bytes(b'\xef\xbb\xbf' + PROSE.encode().replace(b'\n', b'\r\n') * 40)
    res = bborzan('train', '--text', 'win.txt', *TINY, '--out', 'run', cwd=tmp_path, BBORZAN_CACHE=str(tmp_path/'cache'))
    assert res.returncode == 0, res.stderr[-2000:]
    rep = json.loads((tmp_path/'run'/'report.json').read_text())
    assert rep['n_vocab'] == len(set(PROSE)) + 1           # no '\r', no byte-order mark: the same characters plus <unk>

def test_char_run_sample_eval(book, tmp_path):
    env = dict(BBORZAN_CACHE=str(tmp_path/'cache'))
    res = bborzan('train', '--text', book/'book.txt', *TINY, '--out', 'run', cwd=tmp_path, **env)
    assert res.returncode == 0, res.stderr[-2000:]
    for line in ('bits per character', 'perplexity', 'last 10%', 'sample (T=0.5)'): assert line in res.stdout, (line, res.stdout)
    rep = json.loads((tmp_path/'run'/'report.json').read_text())
    assert rep['dataset'] == 'text' and rep['settings']['text'] == str(book/'book.txt') and rep['split']['valid'] == 'last 10%'
    assert abs(rep['bits_per_char'] - rep['valid_loss'] / 0.6931471805599453) < 1e-9 and len(rep['samples']) == 2
    res = bborzan('sample', 'run', '--prompt', 'Supposing ', '--n', '1', '--length', '20', '--seed', '0', cwd=tmp_path, **env)
    assert res.returncode == 0 and 'Supposing ' in res.stdout, res.stderr[-2000:]
    (tmp_path/'other.txt').write_text('Zebras quickly vexed 12 jumping wizards.\n' * 20, encoding='utf-8')
    res = bborzan('eval', 'run', '--text', 'other.txt', cwd=tmp_path, **env)
    assert res.returncode == 0, res.stderr[-2000:]
    assert 'unknown to the model' in res.stdout and 'bits per character' in res.stdout, res.stdout
    clean_error(bborzan('eval', 'run', cwd=tmp_path, **env), '--text FILE')

def test_word_level(book, tmp_path):
    res = bborzan('train', '--text', book/'book.txt', '--level', 'word', *TINY, '--bs', '4', '--sl', '8', '--out', 'run', cwd=tmp_path, BBORZAN_CACHE=str(tmp_path/'cache'))
    assert res.returncode == 0, res.stderr[-2000:]
    rep = json.loads((tmp_path/'run'/'report.json').read_text())
    assert rep['model'] == 'lm6' and rep['bits_per_char'] is None and rep['split']['level'] == 'word'

def test_lines_new_items(book, tmp_path):
    env = dict(BBORZAN_CACHE=str(tmp_path/'cache'))
    res = bborzan('train', '--text', book/'names.txt', '--lines', *TINY, '--out', 'run', cwd=tmp_path, **env)
    assert res.returncode == 0, res.stderr[-2000:]
    it = json.loads((tmp_path/'run'/'report.json').read_text())['items']
    assert it['n'] == 20 and 0 <= it['in_train'] <= it['n']
    res = bborzan('sample', 'run', '--n', '5', '--seed', '1', cwd=tmp_path, **env)
    assert res.returncode == 0, res.stderr[-2000:]
    assert 'in the training file' in res.stdout.splitlines()[-1] and '<unk>' not in res.stdout, res.stdout

def _torchrun(*args, cwd, env):
    return subprocess.run([tool('torchrun'), '--standalone', '--nproc_per_node', '2', '-m', 'bborzan', *map(str, args)], cwd=cwd,
                          env=worker_env(OMP_NUM_THREADS='1', **env), capture_output=True, text=True, timeout=600)

def test_two_processes_match_one(book, tmp_path):
    "Data parallelism on 2 CPU processes (gloo): one run folder, the report says 2 processes, the same loss as 1 process with the same global batch."
    env = dict(BBORZAN_CACHE=str(tmp_path/'cache'))
    args = ['train', '--text', book/'book.txt', '--model', 'char_stateful_gru', '--epochs', '2', '--hidden', '16', '--bs', '8', '--sl', '16',
            '--samples', '1', '--quiet']
    one = bborzan(*args, '--out', 'one', cwd=tmp_path, **env)
    assert one.returncode == 0, one.stderr[-2000:]
    two = _torchrun(*args, '--out', 'two', cwd=tmp_path, env=env)
    assert two.returncode == 0, two.stderr[-3000:]
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith('cache')) == ['one', 'two']   # one folder, no leftovers
    r1, r2 = (json.loads((tmp_path/n/'report.json').read_text()) for n in ('one', 'two'))
    assert (r1['processes'], r2['processes']) == (1, 2)
    assert r1['tokens_seen'] == r2['tokens_seen']
    assert abs(r1['valid_loss'] - r2['valid_loss']) < 1e-3, (r1['valid_loss'], r2['valid_loss'])   # the same steps, up to float rounding
    assert '2 processes' in two.stdout

def test_two_processes_other_datasets(tmp_path):
    "torchrun works for bor-bor-zan too (new games every epoch included); a batch that can't be shared is refused in one line."
    two = _torchrun('train', '--games', '300', '--epochs', '1', '--hidden', '8', '--bs', '16', '--samples', '2', '--endless', '--quiet',
                    '--out', 'run', cwd=tmp_path, env={})
    assert two.returncode == 0, two.stderr[-3000:]
    assert json.loads((tmp_path/'run'/'report.json').read_text())['processes'] == 2
    bad = _torchrun('train', '--games', '300', '--epochs', '1', '--hidden', '8', '--bs', '15', '--quiet', '--out', 'bad', cwd=tmp_path, env={})
    assert bad.returncode != 0 and "can't be shared by 2 processes" in bad.stderr, bad.stderr[-2000:]
    assert not (tmp_path/'bad').exists()
