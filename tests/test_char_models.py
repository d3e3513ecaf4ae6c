"""The character-level models of `bborzan.char_models`, model x condition: output shapes, a batch-size change,
`double()`, reset, truncated BPTT (state detached), chunked == whole, learning a toy text, bad input; and the
RNNCell loop against `nn.RNN`."""
import pytest, torch
import torch.nn.functional as F
from torch import nn
from hypothesis import given, settings, strategies as st
from bborzan.char_models import *

V, N_FAC, N_HID = 16, 5, 11   # toy sizes: vocab, embedding, hidden

from bborzan.registry import MODELS

def _factory(info):
    return lambda: info.build(V, N_HID, 2, n_fac=N_FAC, **({'p': 0.2} if 'p' in info.defaults else {}))

CHAR = {info.model_class.__name__: info for info in MODELS.values() if info.family == 'char'}   # every character model of the registry
FACTORIES = {name: _factory(info) for name, info in CHAR.items()}
SINGLE = [n for n, info in CHAR.items() if info.predicts == 'next']   # (bs, vocab) out
STATEFUL = [n for n in FACTORIES if 'Stateful' in n]
ALL = list(FACTORIES)

@pytest.fixture(autouse=True, scope='module')
def one_thread():
    "Two pytest-xdist workers share the cores: one torch thread each keeps these tiny models fast."
    n = torch.get_num_threads(); torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)

def make(name, seed=0):
    torch.manual_seed(seed)
    return FACTORIES[name]()

def sl_for(name, sl=6): return CHAR[name].window or sl

def out_shape(name, bs, sl): return (bs, V) if name in SINGLE else (bs, sl, V)

def batch(name, bs, sl=6, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, V, (bs, sl_for(name, sl)), generator=g)

def state(m): return m.h if isinstance(m.h, tuple) else (m.h,)

@pytest.mark.parametrize('name', ALL)
def test_output_shape(name):
    x = batch(name, 4)
    assert make(name)(x).shape == out_shape(name, 4, x.size(1))

@pytest.mark.parametrize('name', ALL)
def test_batch_of_5_after_64(name):
    m = make(name).eval()
    x = batch(name, 64)
    m(x)
    out = m(x[:5])
    assert out.shape == out_shape(name, 5, x.size(1))
    fresh = make(name).eval()
    torch.testing.assert_close(out, fresh(x[:5]))    # a new batch size starts from zeros
    if name in STATEFUL: assert all(o.size(1) == 5 for o in state(m))

@pytest.mark.parametrize('name,carried', [(n, False) for n in ALL] + [(n, True) for n in STATEFUL])
def test_double(name, carried):
    m = make(name)
    x = batch(name, 3)
    if carried: m(x)                                   # state made in float32, then carried into float64
    out = m.double()(x)                                # else the first state is made by the float64 model
    assert out.dtype == torch.float64
    if name in STATEFUL: assert all(o.dtype == torch.float64 for o in state(m))

@pytest.mark.parametrize('name', ALL)
@pytest.mark.parametrize('bad', ['float', 'unbatched', 'list'])
def test_bad_input_says_what_to_do(name, bad):
    x = batch(name, 3)
    arg = {'float': x.float(), 'unbatched': x[0], 'list': list(x.T)}[bad]
    hint = {'float': 'numericalize', 'unbatched': r'x\[None\]', 'list': r'torch.stack\(cs, dim=1\)'}[bad]
    with pytest.raises(ValueError, match=hint): make(name)(arg)

def test_char3_needs_three():
    with pytest.raises(ValueError, match='reads exactly 3 tokens'): make('Char3Model')(torch.zeros(2, 4, dtype=torch.long))

@pytest.mark.parametrize('name', STATEFUL)
def test_reset(name):
    m = make(name).eval()
    assert m.h is None
    m.reset()                                          # before the first batch
    x0, x1 = batch(name, 4, seed=1), batch(name, 4, seed=2)
    first = m(x1)
    m.reset(); m(x0)
    carried = m(x1)
    assert not torch.allclose(carried, first)          # the state from x0 changes x1's outputs...
    m.reset()
    torch.testing.assert_close(m(x1), first)           # ...until reset forgets it

@pytest.mark.parametrize('name', STATEFUL)
def test_state_detached_between_batches(name):
    m = make(name)
    for seed in (1, 2, 3):
        out = m(batch(name, 4, seed=seed))
        out.sum().backward()                           # fails on the 2nd batch if the state kept its graph
        assert all(not o.requires_grad for o in state(m))

@pytest.mark.parametrize('name', STATEFUL)
def test_pieces_equal_whole(name):
    m = make(name).eval()
    x = batch(name, 3, sl=15)
    whole = m(x)
    m.reset()
    pieces = torch.cat([m(x[:, i:i+4]) for i in range(0, 15, 4)], dim=1)
    torch.testing.assert_close(pieces, whole)

TEXT = 'the cat sat on the mat. a dog ran. ' * 4

def toy_batches(name):
    chars = sorted(set(TEXT)); assert len(chars) <= V
    idx = torch.tensor([chars.index(c) for c in TEXT])
    if name in SINGLE:
        k = sl_for(name, 6)
        return [(idx.unfold(0, k, 1)[:-1], idx[k:])]
    if name in STATEFUL:                               # 4 rows read side by side, 8 characters at a time
        n = (len(idx) - 1) // 4
        rows, targs = idx[:n*4].view(4, n), idx[1:n*4+1].view(4, n)
        return [(rows[:, i:i+8], targs[:, i:i+8]) for i in range(0, n, 8)]
    n = (len(idx) - 1) // 8
    return [(idx[:n*8].view(n, 8), idx[1:n*8+1].view(n, 8))]

@pytest.mark.parametrize('name', ALL)
def test_learns_a_toy_text(name, seed=0):
    m, batches = make(name, seed), toy_batches(name)
    opt = torch.optim.Adam(m.parameters(), 3e-2 if name == 'CharSeqStatefulLSTM' else 1e-2)   # the gated 2-layer LSTM starts slower
    losses = []
    for i in range(60):
        if i % len(batches) == 0 and name in STATEFUL: m.reset()
        x, y = batches[i % len(batches)]
        out = m(x)
        loss = F.cross_entropy(out.reshape(-1, V), y.reshape(-1))
        opt.zero_grad(); loss.backward(); opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 2, (losses[0], losses[-1])

def copy_rnn_to_cell(rnn, cell):
    cell.load_state_dict({k.replace('_l0', ''): v for k, v in rnn.state_dict().items()})

@settings(max_examples=15, deadline=None)
@given(bs=st.integers(1, 6), sls=st.lists(st.integers(1, 7), min_size=1, max_size=4), seed=st.integers(0, 10**6))
def test_rnncell_loop_is_nn_rnn(bs, sls, seed):
    rnn, cell = make('CharSeqStatefulRnn', seed), make('CharSeqStatefulRnn2', seed + 1)
    copy_rnn_to_cell(rnn, cell)
    g = torch.Generator().manual_seed(seed)
    for sl in sls:                                     # batches of varying length, state carried across them
        x = torch.randint(0, V, (bs, sl), generator=g)
        torch.testing.assert_close(cell(x), rnn(x))
        torch.testing.assert_close(cell.h, rnn.h)

def test_rnncell_loop_differs_without_copy():
    x = batch('CharSeqStatefulRnn', 3)
    assert not torch.allclose(make('CharSeqStatefulRnn', 0)(x), make('CharSeqStatefulRnn2', 1)(x))

@settings(max_examples=20, deadline=None)
@given(name=st.sampled_from([n for n in ALL if n != 'Char3Model']), bs=st.integers(1, 5), sl=st.integers(1, 9))
def test_any_batch_and_length(name, bs, sl):
    x = torch.zeros(bs, sl, dtype=torch.long)
    assert make(name)(x).shape == out_shape(name, bs, sl)

@pytest.mark.parametrize('name', ['CharSeqRnn', 'CharSeqStatefulRnn', 'CharSeqStatefulRnn2', 'CharRnn'])
def test_identity_init(name):
    m = identity_init_(make(name), gain=0.5)
    w = m.rnn.weight_hh if isinstance(m.rnn, nn.RNNCell) else m.rnn.weight_hh_l0
    assert torch.equal(w.detach(), torch.eye(N_HID) / 2)
    assert torch.equal(identity_init_(nn.RNN(3, 4, num_layers=3)).weight_hh_l2.detach(), torch.eye(4))

@pytest.mark.parametrize('name', ['CharSeqStatefulGRU', 'CharSeqStatefulLSTM', 'CharLoopModel'])
def test_identity_init_refuses_gated_and_rnnless(name):
    with pytest.raises(ValueError, match='plain RNN'): identity_init_(make(name))

def test_lstm_defaults_and_dropout():
    m = CharSeqStatefulLSTM(V, N_FAC)
    assert (m.nl, m.n_hidden, m.rnn.num_layers, m.rnn.dropout) == (2, 512, 2, 0.5)
    assert CharSeqStatefulLSTM(V, N_FAC, nl=1, n_hidden=7).rnn.dropout == 0
    assert all(FACTORIES[n]().n_hidden == N_HID for n in ALL)
    assert CharSeqStatefulGRU(V, N_FAC).n_hidden == 256

@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA GPU')
@pytest.mark.parametrize('name', ALL)
def test_state_follows_device(name):
    m = make(name).to('cuda')
    out = m(batch(name, 4).cuda())
    assert out.is_cuda
    if name in STATEFUL: assert all(o.is_cuda for o in state(m))
