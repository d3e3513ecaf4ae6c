"""bborzan.datasets: Human Numbers rebuilt where fastai's `untar_data` finds it (in a fresh process with
`FASTAI_HOME` pointed at a temporary folder and the network switched off), and Nietzsche's download-check-cache code
run against a local HTTP server on 127.0.0.1 serving fake files. Nothing here reaches any other host."""
import sys, threading, textwrap, warnings
from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler
from pathlib import Path
import pytest
from conftest import run
warnings.filterwarnings('ignore', message='`torch.jit.script` is deprecated')
from bborzan.datasets import (human_numbers, human_numbers_tokens, human_numbers_file_text, number_words, nietzsche,
                              offline_text, char_text, DatasetNotFound, DatasetCorrupt, DatasetError)

NO_NETWORK = '''
import socket
def no_network(*a, **k): raise OSError('this test may not use the network')
socket.socket.connect = no_network
socket.create_connection = no_network
import warnings; warnings.filterwarnings('ignore')
'''

def run_py(code, **env):
    res = run([sys.executable, '-c', NO_NETWORK + textwrap.dedent(code)], **env)
    assert res.returncode == 0, res.stderr[-3000:]
    return res.stdout.strip().splitlines()

def test_untar_data_finds_rebuilt_human_numbers(tmp_path):
    out = run_py('''
        from bborzan.datasets import human_numbers
        from fastai.data.external import untar_data, URLs
        p = human_numbers()
        print(p); print(untar_data(URLs.HUMAN_NUMBERS))
        ''', FASTAI_HOME=str(tmp_path))
    folder = tmp_path/'data'/'human_numbers'
    assert out[-2:] == [str(folder), str(folder)]
    assert sorted(p.name for p in folder.iterdir()) == ['train.txt', 'valid.txt']
    lines = (folder/'train.txt').read_text().splitlines(True) + (folder/'valid.txt').read_text().splitlines(True)
    assert len(lines) == 9998 and lines[0] == 'one \n' and lines[-1] == 'nine thousand nine hundred ninety nine \n'
    toks = ' . '.join(l.strip() for l in lines).split(' ')
    assert len(toks) == 63_095 and len(set(toks)) == 30
    # a second process finds the copy and leaves it alone
    mtimes = [p.stat().st_mtime_ns for p in sorted(folder.iterdir())]
    run_py('from bborzan.datasets import human_numbers; human_numbers()', FASTAI_HOME=str(tmp_path))
    assert [p.stat().st_mtime_ns for p in sorted(folder.iterdir())] == mtimes

def test_respects_fastai_config(tmp_path):
    "A data folder configured in FASTAI_HOME's config.ini is where the files go."
    (tmp_path/'home').mkdir()
    (tmp_path/'home'/'config.ini').write_text(f"[DEFAULT]\ndata = {tmp_path/'elsewhere'}\narchive = archive\n"
                                                "storage = tmp\nmodel = models\n")
    out = run_py('from bborzan.datasets import human_numbers; print(human_numbers())', FASTAI_HOME=str(tmp_path/'home'))
    assert out[-1] == str(tmp_path/'elsewhere'/'human_numbers')

def test_wrong_copy_is_an_error(tmp_path):
    (tmp_path/'valid.txt').write_text(human_numbers_file_text('valid.txt').replace('eight thousand one \n', 'eight thousand and one \n'))
    with pytest.raises(DatasetCorrupt, match="line 1 is 'eight thousand and one"): human_numbers(tmp_path)
    assert not (tmp_path/'train.txt').exists()

def test_tokens(tmp_path):
    toks = human_numbers_tokens(tmp_path)
    assert len(toks) == 63_095 and len(set(toks)) == 30 and toks[:3] == ['one', '.', 'two']

@pytest.mark.parametrize('n,words', [(1, 'one'), (15, 'fifteen'), (40, 'forty'), (99, 'ninety nine'), (101, 'one hundred one'),
    (512, 'five hundred twelve'), (1000, 'one thousand'), (8001, 'eight thousand one'), (9090, 'nine thousand ninety'),
    (9999, 'nine thousand nine hundred ninety nine'), (999_999, 'nine hundred ninety nine thousand nine hundred ninety nine')])
def test_number_words(n, words): assert number_words(n) == words

# ---- Nietzsche against a local server -------------------------------------------------------------------------------
FAKE = 'PREFACE\n\n\nSUPPOSING that Truth is a woman--what then? Is there not ground\nfor suspecting that all philosophers, ' \
       'in so far as they have been\ndogmatists, have failed to understand women--\u00e6sthetic\n'
ROUTES = {
    '/nietzsche.txt': (200, FAKE.encode('utf-8'), None),
    '/error.html': (200, b'<html><head><title>Access Denied</title></head><body>AccessDenied</body></html>', None),
    '/truncated.txt': (200, FAKE.encode('utf-8')[:60], None),                # a cut-off file, served completely
    '/short.txt': (200, FAKE.encode('utf-8')[:60], len(FAKE.encode())),      # the transfer itself cut off
    '/latin1.txt': (200, FAKE.encode('latin-1'), None),
    '/missing.txt': (404, b'<html>Not Found</html>', None),
}

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        status, body, length = ROUTES.get(self.path, (404, b'', None))
        self.send_response(status)
        self.send_header('Content-Length', str(length or len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass

@pytest.fixture
def server():
    srv = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f'http://127.0.0.1:{srv.server_address[1]}'
    srv.shutdown(); srv.server_close(); t.join()

def nz(url, cache, **kw): return nietzsche(url=url, cache=cache, n_chars=len(FAKE), timeout=10, **kw)

def test_download_check_cache(server, tmp_path):
    cache = tmp_path/'data'/'nietzsche'/'nietzsche.txt'
    assert nz(f'{server}/nietzsche.txt', cache) == FAKE
    assert cache.read_bytes() == FAKE.encode('utf-8')
    assert [p.name for p in cache.parent.iterdir()] == ['nietzsche.txt']  # no temporary file left
    # from now on the cache is used: even with the server gone
    assert nz('http://127.0.0.1:9/gone.txt', cache) == FAKE

@pytest.mark.parametrize('route,err,msg', [
    ('error.html', DatasetCorrupt, 'an HTML error page?'),
    ('truncated.txt', DatasetCorrupt, 'holds 60 characters'),
    ('short.txt', DatasetError, 'Could not download'),
    ('latin1.txt', DatasetCorrupt, 'is not UTF-8 text'),
    ('missing.txt', DatasetNotFound, 'Could not download.*Not Found'),
])
def test_bad_downloads_are_refused(server, tmp_path, route, err, msg):
    cache = tmp_path/'nietzsche'/'nietzsche.txt'
    with pytest.raises(err, match=msg): nz(f'{server}/{route}', cache)
    assert not cache.exists()
    if cache.parent.exists(): assert not any(cache.parent.iterdir())  # no temporary file either

def test_server_down(tmp_path):
    with pytest.raises(DatasetNotFound) as e: nz('http://127.0.0.1:9/nietzsche.txt', tmp_path/'c'/'nietzsche.txt')
    msg = str(e.value)
    assert 'Could not download' in msg and str(tmp_path/'c'/'nietzsche.txt') in msg and 'offline_text()' in msg
    assert isinstance(e.value, FileNotFoundError)

def test_offline_no_download(tmp_path):
    with pytest.raises(DatasetNotFound, match='not on this machine'): nz('http://127.0.0.1:9/x', tmp_path/'c.txt', download=False)

def test_file_by_path(tmp_path):
    (tmp_path/'mine').mkdir()
    (tmp_path/'mine'/'nietzsche.txt').write_text(FAKE, encoding='utf-8')
    for p in (tmp_path/'mine', tmp_path/'mine'/'nietzsche.txt'):
        assert nz('http://127.0.0.1:9/x', tmp_path/'cache.txt', path=p, download=False) == FAKE
    assert not (tmp_path/'cache.txt').exists()

def test_corrupt_cache_says_delete(tmp_path):
    (tmp_path/'cache.txt').write_text('<html>oops</html>')
    with pytest.raises(DatasetCorrupt, match='Delete .*cache.txt'): nz('http://127.0.0.1:9/x', tmp_path/'cache.txt')

def test_real_defaults():
    "The defaults describe the real file (its length and first words)."
    import inspect
    from bborzan import datasets as d
    sig = inspect.signature(nietzsche).parameters
    assert sig['url'].default == 'https://s3.amazonaws.com/text-datasets/nietzsche.txt'
    assert sig['n_chars'].default == 600_893 and sig['start'].default.startswith('PREFACE\n\n\nSUPPOSING that Truth')

def test_offline_text_and_char_text(tmp_path, capsys):
    t = offline_text()
    assert t == offline_text() and len(t) > 300_000
    text, name = char_text(download=False, cache=tmp_path/'none.txt')
    assert (text, name) == (t, 'pydoc') and 'offline_text()' in capsys.readouterr().out

# ---- bor-bor-zan corpus (with the real bborzan.game) ----------------------------------------------------------------
def test_borzan_corpus_split_vocab_and_batches():
    from bborzan.datasets import borzan_corpus, reference_borzan_dls
    from bborzan.game import generate_games
    from bborzan.data import check_same_batches
    docs = generate_games(3000, seed=7).docs()
    c = borzan_corpus(3000, seed=7)
    assert c.train_docs == docs[:2400] and c.valid_docs == docs[2400:]     # split by games, first 80% for training
    assert '' not in c.vocab and c.vocab.decode_text(c.valid, ' ') + ' ' == ''.join(docs[2400:])
    sd = reference_borzan_dls(docs, bs=32, sl=6)
    assert list(sd.vocab) == c.vocab.itos + ['']                          # the seed's vocab: ours plus a trailing ''
    fd = c.dls(32, 6, device='cpu')
    for i in (0, 1): assert check_same_batches(fd[i], sd[i]) == len(sd[i])

def test_borzan_corpus_players_and_seed():
    from bborzan.datasets import borzan_corpus
    from bborzan.game import uniform_player
    calls = []
    def p2(me, opp): calls.append(len(me)); return uniform_player(me, opp)
    c = borzan_corpus(40, seed=3, player2=p2, valid_pct=0.25)
    assert calls and (len(c.train_docs), len(c.valid_docs)) == (30, 10)
    assert borzan_corpus(40, seed=3).train_docs == borzan_corpus(40, seed=3).train_docs
    assert borzan_corpus(40, seed=3).train_docs != borzan_corpus(40, seed=4).train_docs
