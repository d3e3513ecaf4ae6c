"""bborzan.text beyond the notebook: round trips as properties over random texts (hypothesis). Ids decode back to the
text they came from, at both levels; Windows line ends and a byte-order mark change nothing, wherever the chunks
cut; lines mode splits by whole lines only; two loads racing on one cache agree and leave one entry."""
import tempfile, threading
from pathlib import Path
import torch
from hypothesis import given, settings, strategies as st
from bborzan.text import load_text, iter_text, read_text_file, ids_to_text, items_of, encode_file

CHARS = st.characters(blacklist_categories=('Cs',), blacklist_characters='\r\0\ufeff')   # '\r' and a BOM are normalised away
TEXT = st.text(CHARS, min_size=1, max_size=200)
LINE = st.text(st.characters(blacklist_categories=('Cs',), blacklist_characters='\r\n\0\ufeff'), min_size=1, max_size=12)
FAST = settings(max_examples=40, deadline=None)

def _file(d, name, data:bytes|str) -> Path:
    p = Path(d)/name
    p.write_bytes(data.encode('utf-8') if isinstance(data, str) else data)
    return p

@FAST
@given(TEXT, st.sampled_from([0.1, 0.25, 0.5]))
def test_char_round_trip(t, pct):
    "A text whose validation part holds only training characters (the text twice) decodes back exactly, no unknowns."
    with tempfile.TemporaryDirectory() as d:
        r = load_text(_file(d, 'a.txt', t + t), valid_pct=pct, cache=Path(d)/'cache')
        assert ids_to_text(r.train, r.vocab) + ids_to_text(r.valid, r.vocab) == t + t
        assert r.vocab.decode_text(torch.cat([r.train, r.valid])) == t + t
        assert r.split['unknown_valid'] == 0 and r.train.dtype == torch.uint8
        r2 = load_text(Path(d)/'a.txt', valid_pct=pct, cache=Path(d)/'cache')
        assert r2.split['cache'] == 'hit' and torch.equal(r2.train, r.train) and torch.equal(r2.valid, r.valid)

@FAST
@given(st.lists(st.text(CHARS, min_size=1, max_size=8).filter(lambda w: w.split() == [w]), min_size=1, max_size=30))
def test_word_round_trip(words):
    "Words joined by white space come back as the same words, the vocab most frequent first."
    with tempfile.TemporaryDirectory() as d:
        r = load_text(_file(d, 'w.txt', ' '.join(words * 2)), level='word', cache=False)
        assert r.vocab.decode(torch.cat([r.train, r.valid])) == words * 2
        counts = [(r.vocab.decode(r.train) + ['']).count(w) for w in r.vocab.itos[1:]]
        assert counts == sorted(counts, reverse=True)

@FAST
@given(TEXT, st.integers(1, 9))
def test_crlf_and_bom_change_nothing(t, chunk):
    "A BOM and '\\r\\n' line ends give the text with '\\n', however small the chunks; and the same ids."
    with tempfile.TemporaryDirectory() as d:
        win = _file(d, 'win.txt', '\ufeff' + t.replace('\n', '\r\n'))
        assert ''.join(iter_text(win, chunk_bytes=chunk)) == t == read_text_file(win)
        a, b = (load_text(f, valid_pct=0, cache=False) for f in (win, _file(d, 'unix.txt', t)))
        assert a.vocab.itos == b.vocab.itos and torch.equal(a.train, b.train) and torch.equal(a.valid, b.valid)

@FAST
@given(st.lists(st.one_of(LINE, st.just(''), st.just('  ')), min_size=2, max_size=40), st.sampled_from([0.1, 0.3, 0.5]),
       st.sampled_from(['char', 'word']))
def test_lines_never_cut(lines, pct, level):
    "Lines mode: training holds the first whole items, validation the rest; blank lines are gone."
    kept = [l for l in lines if l.strip()]
    if level == 'word': kept = [' '.join(l.split()) for l in kept]
    with tempfile.TemporaryDirectory() as d:
        try: r = load_text(_file(d, 'n.txt', '\n'.join(lines)), level=level, lines=True, valid_pct=pct, cache=False)
        except ValueError as e:                                    # too few lines to split: said so
            assert 'too short to split' in str(e) or 'has no' in str(e); return
        sp = r.split
        assert items_of(r.train, r.vocab, level) == kept[:sp['items_train']]
        assert sp['items_train'] + sp['items_valid'] == len(kept) == len(items_of(r.train, r.vocab, level)) + len(items_of(r.valid, r.vocab, level))
        end = r.vocab.stoi['\n']
        assert r.train[-1] == end and r.valid[-1] == end           # both parts end with a whole item

@FAST
@given(TEXT, TEXT)
def test_encode_file_counts_unknowns(a, b):
    "Encoding a second text with the first one's vocab: every character outside it is one unknown, never an error."
    with tempfile.TemporaryDirectory() as d:
        r = load_text(_file(d, 'a.txt', a * 10), cache=False)
        ids, n_unk = encode_file(_file(d, 'b.txt', b), r.vocab)
        assert n_unk == sum(c not in r.vocab.stoi for c in b) and len(ids) == len(b)
        assert ids_to_text(ids, r.vocab) == ''.join(c if c in r.vocab.stoi else '<unk>' for c in b)

def test_racing_loads_share_one_entry(tmp_path):
    "Loads of one file racing on one cache all get the same ids and leave one whole entry, no temporary folders."
    f = _file(tmp_path, 'race.txt', 'the quick brown fox jumps over the lazy dog\n' * 2000)
    out = []
    ts = [threading.Thread(target=lambda: out.append(load_text(f, cache=tmp_path/'cache'))) for _ in range(4)]
    for t in ts: t.start()
    for t in ts: t.join()
    assert len(out) == 4 and all(torch.equal(o.train, out[0].train) and o.vocab.itos == out[0].vocab.itos for o in out)
    assert [p.name.startswith('race-') for p in (tmp_path/'cache').iterdir()] == [True]
