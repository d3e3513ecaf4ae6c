"""bborzan.train beyond the notebook: `evaluate` and `evaluate_borzan` against brute-force per-token computations on
tiny corpora, `lm_positions` for any loader shape (hypothesis), `fit`'s details (clipping, weighting, short runs),
save/load round trips for every registered model and every way a file can be wrong, and the results files."""
import json, math, os
from pathlib import Path
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st, HealthCheck

from fastai.torch_core import set_seed
from bborzan.data import LMLoader, Vocab
from bborzan.datasets import borzan_corpus
from bborzan.models import LMModel3, LMModel4, LMModel6, LMModel7
from bborzan.oracle import next_token_probs, position_kinds, POSITION_KINDS
from bborzan.game import sensible_player
from bborzan.train import evaluate, fit, History, lm_loss, LayoutError, lm_learner
from bborzan.scoring import evaluate_borzan, lm_positions
from bborzan.registry import MODELS, make_model, UnknownModelError
from bborzan.checkpoint import model_config, save_model, load_model, ModelFileError
from bborzan.results import write_results, read_results
from bborzan.bench import bench_train, bench_table

@pytest.fixture(scope='module')
def corpus(): return borzan_corpus(80, seed=3)

# ------------------------------------------------------------------ evaluate_borzan against brute force

def brute_force(model, tokens, vocab, bs, sl, target, player1=None):
    "Per token, the slow way: each row's windows fed one at a time with batch size 1, oracle rows looked up by hand."
    ids = vocab.encode(tokens)
    P = next_token_probs(tokens, vocab.itos, **({} if player1 is None else dict(player1=player1)))
    kinds = position_kinds(tokens)
    nw = len(range(0, len(ids) - sl - 1, sl)); m = nw // bs
    starts = [0] + [i + 1 for i, t in enumerate(tokens) if t == '.']
    game_start = lambda p: max(s for s in starts if s <= p)
    rec = []   # (nll, hit, floor_nll, best, illegal, kind, early)
    model.eval()
    with torch.no_grad():
        for j in range(bs):
            if hasattr(model, 'reset'): model.reset()
            row_start = j * m * sl
            for i in range(m):
                k = j * m + i                                     # grouped: row j reads windows j*m, j*m+1, ...
                x = ids[k*sl:(k+1)*sl][None]
                out = model(x)
                out = out[0] if isinstance(out, tuple) else out
                lp = F.log_softmax(out.double()[0], -1)            # (sl, V) or (V,)
                targets = [(t, k*sl + t + 1) for t in range(sl)] if target == 'seq' else [(None, k*sl + sl)]
                for t, p in targets:
                    row = lp[t] if t is not None else lp
                    y = int(ids[p])
                    q = P[p]
                    rec.append((-row[y].item(), int(row.argmax()) == y, -math.log(q[y]), q.max(),
                                float((row.exp().numpy() * (q == 0)).sum()), kinds[p], game_start(p) < row_start))
    return rec

@pytest.mark.parametrize('target,make', [('seq', lambda V: LMModel6(V, 8, 2)), ('seq', lambda V: LMModel7(V, 8, 2, 0.5)),
                                         ('next', lambda V: LMModel3(V, 8))])
@pytest.mark.parametrize('bs,sl', [(3, 5), (1, 7), (4, 2)])
def test_evaluate_borzan_matches_brute_force(corpus, target, make, bs, sl):
    set_seed(0)
    model = make(len(corpus.vocab))
    tokens = ' '.join(corpus.valid_docs).split()
    model.train()
    ev = evaluate_borzan(model, corpus, corpus.vocab, bs=bs, sl=sl, target=target)
    assert model.training and getattr(model, 'h', None) is None    # mode restored, state reset
    rec = brute_force(model, tokens, corpus.vocab, bs, sl, target)
    a = np.array([r[:5] for r in rec], dtype=float)
    kinds, early = np.array([r[5] for r in rec]), np.array([r[6] for r in rec])
    assert ev.n_tokens == len(rec)
    np.testing.assert_allclose([ev.loss, ev.accuracy, ev.floor, ev.best_accuracy, ev.illegal_mass], a.mean(0), rtol=1e-5, atol=1e-6)
    assert ev.gap == pytest.approx(a[:, 0].mean() - a[:, 2].mean(), abs=1e-5)
    for i, k in enumerate(POSITION_KINDS):
        assert ev.by_position.loc[k, 'count'] == (kinds == i).sum()
        if (kinds == i).any(): assert ev.by_position.loc[k, 'floor'] == pytest.approx(a[kinds == i, 2].mean(), abs=1e-9)
    assert ev.row_starts.loc['row starts', 'count'] == early.sum()
    if early.any(): assert ev.row_starts.loc['row starts', 'loss'] == pytest.approx(a[early, 0].mean(), rel=1e-5)

def test_evaluate_borzan_other_players():
    c = borzan_corpus(60, seed=5, player1=sensible_player)
    set_seed(0); model = LMModel6(len(c.vocab), 8, 1)
    ev = evaluate_borzan(model, c.valid_docs, c.vocab, bs=2, sl=4, player1=sensible_player)
    rec = brute_force(model, ' '.join(c.valid_docs).split(), c.vocab, 2, 4, 'seq', player1=sensible_player)
    assert ev.floor == pytest.approx(np.mean([r[2] for r in rec]), abs=1e-9)
    uniform = evaluate_borzan(model, c.valid_docs, c.vocab, bs=2, sl=4)
    assert uniform.floor != pytest.approx(ev.floor, abs=1e-3)        # the players matter

def test_evaluate_borzan_seed_vocab(corpus):
    "A vocab with a token the games never use (the seed's '') is fine: mass on it counts as illegal."
    v = Vocab(corpus.vocab.itos + [''])
    set_seed(0); model = LMModel6(len(v), 8, 1)
    ev = evaluate_borzan(model, corpus.valid_docs, v, bs=2, sl=4)
    assert 0 < ev.illegal_mass < 1

# ------------------------------------------------------------------ evaluate

def test_evaluate_token_weighted_uneven_batches(corpus):
    "A last partial batch weighs by its tokens, not as much as a full batch."
    dl = LMLoader(corpus.valid, bs=7, sl=5, grouped=False)                 # the last batch is smaller
    assert len({x.shape[0] for x, _ in dl}) == 2
    set_seed(0); model = LMModel4(len(corpus.vocab), 8).double()
    ev = evaluate(model, dl)
    nll, hits, n = 0., 0, 0
    model.eval(); model.reset()                                              # once: the state runs on across batches
    for x, y in dl:
        lp = F.log_softmax(model(x), -1)
        nll -= lp.gather(-1, y[..., None]).sum().item(); hits += (lp.argmax(-1) == y).sum().item(); n += y.numel()
    assert ev.n_tokens == n
    assert ev.loss == pytest.approx(nll / n, rel=1e-6)
    assert ev.accuracy == pytest.approx(hits / n)

@given(n=st.integers(20, 120), bs=st.integers(1, 6), sl=st.integers(1, 6), target=st.sampled_from(['seq', 'next']),
       grouped=st.booleans())
@settings(max_examples=60, deadline=None)
def test_lm_positions_any_shape(n, bs, sl, target, grouped):
    stream = torch.randint(0, 50, (n,))
    try: dl = LMLoader(stream, bs=bs, sl=sl, target=target, grouped=grouped)
    except ValueError: return                                               # too short for this bs and sl
    pos = lm_positions(dl)
    assert len(pos) == len(dl)
    for (x, y), (xi, yi) in zip(dl, pos):
        assert torch.equal(stream[xi], x.cpu()) and torch.equal(stream[yi], y.cpu())
        if target == 'seq': assert torch.equal(yi, xi + 1)
        else: assert torch.equal(yi, xi[:, -1] + 1)

# ------------------------------------------------------------------ fit

def test_fit_clip_is_applied(corpus):
    "With the gradient norm clipped to almost nothing, plain SGD can barely move the weights."
    dls = corpus.dls(4, 8)
    set_seed(0); m = LMModel4(len(corpus.vocab), 8)
    before = [p.detach().clone() for p in m.parameters()]
    fit(m, dls.train, epochs=1, lr=0.1, opt='sgd', wd=0, clip=1e-9, quiet=True)
    moved = max((p.detach() - b).abs().max().item() for p, b in zip(m.parameters(), before))
    assert moved < 1e-6 * len(dls.train)
    set_seed(0); m2 = LMModel4(len(corpus.vocab), 8)
    fit(m2, dls.train, epochs=1, lr=0.1, opt='sgd', wd=0, quiet=True)
    assert max((p.detach() - b).abs().max().item() for p, b in zip(m2.parameters(), before)) > 1e-3

def test_fit_history_and_plot(corpus):
    import matplotlib; matplotlib.use('Agg')
    dls = corpus.dls(4, 8)
    set_seed(0)
    h = fit(LMModel4(len(corpus.vocab), 8), dls.train, dls.valid, epochs=2, lr=3e-3, quiet=True)
    assert isinstance(h, History) and len(h.epochs) == 2 and len(h.batch_losses) == 2 * len(dls.train) == len(h.lrs)
    n = len(dls.train)
    for e, row in enumerate(h.epochs):   # full batches: the token-weighted mean is the plain mean
        assert row['train_loss'] == pytest.approx(np.mean(h.batch_losses[e*n:(e+1)*n]), rel=1e-9)
        assert row['time'] > 0
    assert list(h.table().columns) == ['train_loss', 'valid_loss', 'accuracy', 'time']
    ax = h.plot()
    assert len(ax.lines) == 2
    assert 'History(2 epochs' in repr(h)

def test_fit_without_valid(corpus):
    h = fit(LMModel4(len(corpus.vocab), 8), corpus.dls(4, 8).train, epochs=1, quiet=True)
    assert h.last['valid_loss'] is None and h.last['accuracy'] is None

@pytest.mark.parametrize('kw,msg', [(dict(epochs=0), 'at least 1'), (dict(epochs=1.5), 'at least 1'), (dict(lr=-1), 'must be positive'),
                                    (dict(clip=0), 'clip=0'), (dict(alpha=-1), "can't be negative"), (dict(pct_start=1), 'pct_start=1'),
                                    (dict(opt='adam'), "'adamw' or 'sgd'")])
def test_fit_bad_args(corpus, kw, msg):
    with pytest.raises(ValueError, match=msg.replace('(', r'\(')): fit(LMModel4(len(corpus.vocab), 8), corpus.dls(4, 8).train, quiet=True, **kw)

def test_layout_error_is_value_error():
    with pytest.raises(LayoutError): lm_loss(torch.zeros(2, 5), torch.zeros(2, 3, dtype=torch.long))
    assert issubclass(LayoutError, ValueError)

def test_lm_learner_next_layout(corpus):
    "The fastai helper on the (bs, V) layout: LMModel3 with target='next' batches trains."
    dls = corpus.dls(4, 6, target='next')
    set_seed(0)
    learn = lm_learner(dls, LMModel3(len(corpus.vocab), 8))
    with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(1, 3e-3)
    assert [type(c).__name__ for c in learn.cbs if type(c).__name__ == 'ModelResetter'] == ['ModelResetter']
    assert np.isfinite(learn.recorder.values[-1][1])

def test_bench_train_ours_only():
    res = bench_train(600, models=('lm4',), repeats=1, reference=False, shapes=((4, 6), (8, 16)), log=None)
    assert set(res['runs']) == {('lm4', 'ours_4x6'), ('lm4', 'ours_8x16')}
    table = bench_table(res)
    assert 'ours_8x16' in table and '-' in table

# ------------------------------------------------------------------ save / load


@pytest.mark.parametrize('name', list(MODELS))
def test_save_load_round_trip_every_model(tmp_path, name):
    set_seed(0)
    m = MODELS[name].build(11, 6, 2)
    vocab = Vocab([f't{i}' for i in range(11)])
    f = save_model(tmp_path/'m.pth', m, vocab, extra=dict(note='x', lr=[1e-3, 3e-3], t=torch.ones(2)))
    m2, v2, cfg = load_model(f, device='cpu')
    assert type(m2) is type(m) and not m2.training and v2.itos == vocab.itos
    assert cfg['name'] == name and cfg['kwargs'] == model_config(m)['kwargs'] and cfg['extra']['note'] == 'x'
    assert torch.equal(cfg['extra']['t'], torch.ones(2))
    x = torch.randint(0, 11, (2, 3))
    m.eval()
    for mm in (m, m2):
        if hasattr(mm, 'reset'): mm.reset()
    out, out2 = m(x), m2(x)
    if isinstance(out, tuple): out, out2 = out[0], out2[0]
    assert torch.equal(out, out2)
    torch.load(f, weights_only=True)                        # a safe load can read it

def test_save_load_keeps_tied_weights_and_special_tokens(tmp_path):
    v = Vocab(list('abcab'), pad='\0', unk='?')
    m = LMModel7(len(v), 6, 1, 0.1)
    m2, v2, _ = load_model(save_model(tmp_path/'m.pth', m, v))
    assert m2.h_o.weight is m2.i_h.weight
    assert (v2.itos, v2.pad, v2.unk) == (v.itos, '\0', '?')

def test_save_accepts_seed_list_vocab(tmp_path):
    m = LMModel4(3, 4)
    _, v2, _ = load_model(save_model(tmp_path/'m.pth', m, ['zan', 'to', '']))
    assert v2.itos == ['zan', 'to', '']

def test_save_is_atomic(tmp_path, monkeypatch):
    m = LMModel4(3, 4); v = Vocab(['a', 'b', 'c'])
    f = save_model(tmp_path/'m.pth', m, v)
    good = f.read_bytes()
    def boom(*a, **k): raise OSError('disk full')
    monkeypatch.setattr(os, 'replace', boom)
    with pytest.raises(OSError, match='disk full'): save_model(tmp_path/'m.pth', LMModel4(3, 5), v)
    assert f.read_bytes() == good                               # the old file is untouched ...
    assert sorted(p.name for p in tmp_path.iterdir()) == ['m.pth']   # ... and no temporary file is left

def _saved(tmp_path):
    m = LMModel6(5, 4, 1)
    return save_model(tmp_path/'m.pth', m, Vocab(list('abcde')))

def _edit(tmp_path, f, change, sign=True):
    "`f` changed by `change`; `sign`: its checksum made to match, as a deliberate crafter would, so the later checks are reached."
    from bborzan.checkpoint import _digest
    d = torch.load(f, weights_only=True); change(d)
    if sign and 'digest' in d:
        try: d['digest'] = _digest(d['name'], d['kwargs'], d['vocab']['itos'], d['state_dict'])
        except Exception: pass
    out = tmp_path/'edited.pth'; torch.save(d, out); return out

def test_load_errors(tmp_path):
    f = _saved(tmp_path)
    with pytest.raises(FileNotFoundError, match='no model file'): load_model(tmp_path/'missing.pth')
    (tmp_path/'junk.pth').write_text('hello')
    with pytest.raises(ModelFileError, match='not a bborzan model file, or it is damaged'): load_model(tmp_path/'junk.pth')
    (tmp_path/'cut.pth').write_bytes(f.read_bytes()[:len(f.read_bytes()) // 2])
    with pytest.raises(ModelFileError, match='damaged'): load_model(tmp_path/'cut.pth')
    torch.save({'a': torch.ones(1)}, tmp_path/'other.pth')
    with pytest.raises(ModelFileError, match='not a bborzan model file'): load_model(tmp_path/'other.pth')
    with pytest.raises(ModelFileError, match="unknown model 'gpt'"): load_model(_edit(tmp_path, f, lambda d: d.update(name='gpt')))
    with pytest.raises(ModelFileError, match='checksum'): load_model(_edit(tmp_path, f, lambda d: d.update(name='lm7'), sign=False))
    with pytest.raises(ModelFileError, match='newer bborzan'): load_model(_edit(tmp_path, f, lambda d: d.update(version=99)))
    with pytest.raises(ModelFileError, match="'state_dict' entry is missing"): load_model(_edit(tmp_path, f, lambda d: d.pop('state_dict')))
    with pytest.raises(ModelFileError, match='vocab has 6 tokens but the model was built for 5'):
        load_model(_edit(tmp_path, f, lambda d: d['vocab']['itos'].append('f')))
    with pytest.raises(ModelFileError, match="weights don't fit"):
        load_model(_edit(tmp_path, f, lambda d: d['kwargs'].update(n_hidden=7)))
    # an edited file with a pickled object in it is refused by the safe loader
    d = torch.load(f, weights_only=True); d['extra'] = {'obj': Path('.')}; torch.save(d, tmp_path/'obj.pth')
    with pytest.raises(ModelFileError, match='damaged'): load_model(tmp_path/'obj.pth')

def test_save_errors(tmp_path):
    v = Vocab(list('abcde'))
    with pytest.raises(ValueError, match='made for 5'): save_model(tmp_path/'m.pth', LMModel6(5, 4, 1), list('abcd'))
    with pytest.raises(ValueError, match='repeated tokens'): save_model(tmp_path/'m.pth', LMModel6(5, 4, 1), list('abcdd'))
    with pytest.raises(ValueError, match=r"extra\['p'\] is a PosixPath"): save_model(tmp_path/'m.pth', LMModel6(5, 4, 1), v, extra=dict(p=Path('.')))
    with pytest.raises(ValueError, match=r"extra\['x'\] is a float64"):
        save_model(tmp_path/'m.pth', LMModel6(5, 4, 1), v, extra=dict(x=np.float64(1.)))
    class Mine(LMModel4): pass
    with pytest.raises(UnknownModelError, match='not one of the course'): save_model(tmp_path/'m.pth', Mine(5, 4), v)
    assert not any(tmp_path.iterdir())

# ------------------------------------------------------------------ results

def test_results_round_trip(tmp_path):
    rows = [dict(model='LMModel4', loss=np.float32(0.5), accuracy=torch.tensor(0.68), extra=dict(epochs=np.int64(5)))]
    p = write_results('lesson_a', rows, folder=tmp_path)
    assert p == tmp_path/'lesson_a.json'
    write_results('lesson_b', [dict(model='x')], folder=tmp_path)
    res = read_results(tmp_path)
    assert list(res) == ['lesson_a', 'lesson_b']
    r = res['lesson_a']
    assert r['rows'][0]['loss'] == pytest.approx(0.5) and r['rows'][0]['accuracy'] == pytest.approx(0.68)
    assert r['rows'][0]['extra']['epochs'] == 5
    assert {'date', 'device', 'torch', 'fast', 'bborzan'} <= set(r)
    assert isinstance(r['fast'], bool)

def test_results_errors(tmp_path):
    with pytest.raises(ValueError, match='letters, digits'): write_results('../x', [], folder=tmp_path)
    with pytest.raises(ValueError, match="'model' entry"): write_results('x', [dict(loss=1)], folder=tmp_path)
    with pytest.raises(ValueError, match="can't be written as JSON"): write_results('x', [dict(model='m', f=set())], folder=tmp_path)
    assert not (tmp_path/'x.json').exists()
    (tmp_path/'bad.json').write_text('{not json')
    with pytest.raises(ValueError, match='not valid JSON'): read_results(tmp_path)
