"""bborzan.models: every language model through the same checks (batch size changes, dtype, reset, detach, output
shapes), and the cells and layers built from scratch against PyTorch's own, forward and backward, on sizes that
hypothesis picks. The fastai check runs each stateful model through a real `Learner` with fastai's RNN callbacks."""
import copy
import pytest
import torch
from torch import nn
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st
from bborzan.models import *

V, NH, SL = 11, 8, 5

from bborzan.registry import MODELS as REGISTRY

def _build(info): return lambda: info.build(V, NH, 2, **({'p': 0.3} if 'p' in info.defaults else {}))

MODELS = {  # name -> (constructor, window length it reads): every word model of the registry, and LMModel6/7 with other RNNs
    **{info.model_class.__name__: (_build(info), info.window or SL) for info in REGISTRY.values()
       if info.family == 'word' and info.name != 'pointer'},   # PointerLM's state (its LSTM's and a memory) is checked in 05_models
    'LMModel6-LoopLSTM': (lambda: LMModel6(V, NH, 2, rnn=LoopRNN(NH, NH, 2)), SL),
    'LMModel6-LoopLSTM1': (lambda: LMModel6(V, NH, 2, rnn=LoopRNN(NH, NH, 2, cell=LSTMCell1)), SL),
    'LMModel6-LoopGRU': (lambda: LMModel6(V, NH, 2, rnn=LoopRNN(NH, NH, 2, cell=GRUCell)), SL),
    'LMModel6-nnGRU': (lambda: LMModel6(V, NH, 2, rnn=nn.GRU(NH, NH, 2, batch_first=True)), SL),
    'LMModel7-LoopGRU': (lambda: LMModel7(V, NH, 2, 0.3, rnn=LoopRNN(NH, NH, 2, cell=GRUCell)), SL),
}
STATEFUL = [n for n in MODELS if n not in ('LMModel1', 'LMModel2')]
TRIPLE = [n for n in MODELS if n.startswith('LMModel7') or n == 'AWDLSTM']   # return (logits, raw, dropped) for AR/TAR
EVERY_TOKEN = [n for n in STATEFUL if n != 'LMModel3']      # output (bs, sl, vocab)

def make(name): return MODELS[name][0]()
def tokens(bs, sl): return torch.randint(0, V, (bs, sl))
def logits(out): return out[0] if isinstance(out, tuple) else out
def out_shape(name, bs, sl): return (bs, sl, V) if name in EVERY_TOKEN else (bs, V)
def states(h): return list(h) if isinstance(h, (tuple, list)) else [h]

@pytest.fixture(autouse=True)
def seeded():
    torch.manual_seed(0)

# ---------------------------------------------------------------- every model

@pytest.mark.parametrize('name', MODELS)
def test_output_shape(name):
    m, sl = make(name), MODELS[name][1]
    out = m(tokens(4, sl))
    assert logits(out).shape == out_shape(name, 4, sl)
    if name in TRIPLE:
        assert isinstance(out, tuple) and len(out) == 3
        assert out[1].shape == out[2].shape == (4, sl, NH)
    else: assert isinstance(out, torch.Tensor)

@pytest.mark.parametrize('name', MODELS)
def test_batch_of_5_after_64(name):
    m, sl = make(name), MODELS[name][1]
    m.eval()                                       # no dropout: outputs are comparable
    fresh = copy.deepcopy(m)
    assert logits(m(tokens(64, sl))).shape == out_shape(name, 64, sl)
    x5 = tokens(5, sl)
    out = logits(m(x5))
    assert out.shape == out_shape(name, 5, sl)
    torch.testing.assert_close(out, logits(fresh(x5)))   # the smaller batch starts from zeros, like a new model
    if name in STATEFUL:
        for s in states(m.h): assert s.shape[-2] == 5
    assert logits(m(tokens(64, sl))).shape == out_shape(name, 64, sl)   # and back to 64
    assert logits(m(tokens(1, sl))).shape == out_shape(name, 1, sl)     # generation reads one sequence

@pytest.mark.parametrize('name', MODELS)
def test_double(name):
    m, sl = make(name), MODELS[name][1]
    m(tokens(4, sl))                               # a float32 state exists now (stateful models)
    m.double()
    out = m(tokens(4, sl))
    assert logits(out).dtype == torch.float64
    if name in STATEFUL:
        for s in states(m.h): assert s.dtype == torch.float64

@pytest.mark.parametrize('name', STATEFUL)
def test_reset(name):
    m, sl = make(name), MODELS[name][1]
    m.eval()
    assert m.h is None
    m.reset()                                      # before the first batch
    assert m.h is None
    fresh = copy.deepcopy(m)
    x1, x2 = tokens(4, sl), tokens(4, sl)
    first = logits(m(x1))
    assert m.h is not None
    assert not torch.allclose(logits(m(x1)), first)   # the state carried over...
    m.reset()
    assert m.h is None                             # ...and reset leaves it as a new model's
    torch.testing.assert_close(logits(m(x2)), logits(fresh(x2)))

@pytest.mark.parametrize('name', STATEFUL)
def test_detached_state(name):
    m, sl = make(name), MODELS[name][1]
    for _ in range(3): logits(m(tokens(4, sl))).sum().backward()   # a second backward must not reach the first batch
    for s in states(m.h): assert not s.requires_grad and s.grad_fn is None

@pytest.mark.parametrize('name', EVERY_TOKEN)
def test_halves_equal_whole(name):
    "Reading a window in two calls gives what one call gives: the carried state is the real state."
    m = make(name).eval()
    x = tokens(3, 8)
    whole = logits(m(x))
    m.reset()
    halves = torch.cat([logits(m(x[:, :3])), logits(m(x[:, 3:]))], dim=1)
    torch.testing.assert_close(halves, whole)

@pytest.mark.parametrize('name', EVERY_TOKEN)
def test_causal(name):
    "The prediction at position i does not depend on tokens after i."
    m = make(name).eval()
    x = tokens(3, 8); x2 = x.clone(); x2[:, 5] = (x2[:, 5] + 1) % V
    a = logits(m(x)); m.reset(); b = logits(m(x2))
    torch.testing.assert_close(a[:, :5], b[:, :5])
    assert not torch.allclose(a[:, 5:], b[:, 5:])

@pytest.mark.parametrize('name', MODELS)
def test_bad_input(name):
    m = make(name)
    with pytest.raises(ValueError, match=r'x\[None\]'): m(torch.randint(0, V, (MODELS[name][1],)))
    with pytest.raises(ValueError, match='integer token ids'): m(torch.rand(2, MODELS[name][1]))

def test_lmmodel1_reads_exactly_3():
    with pytest.raises(ValueError, match='exactly 3 tokens'): LMModel1(V, NH)(tokens(4, 6))
    with pytest.raises(ValueError, match='exactly 3 tokens'): LMModel1(V, NH)(tokens(4, 2))

def test_lmmodel2_is_lmmodel1_as_a_loop():
    m1 = LMModel1(V, NH); m2 = LMModel2(V, NH); m2.load_state_dict(m1.state_dict())
    x = tokens(6, 3)
    torch.testing.assert_close(m2(x), m1(x))

# ---------------------------------------------------------------- LMModel7

def test_weight_tying():
    m = LMModel7(V, NH, 2, 0.5)
    assert m.h_o.weight is m.i_h.weight
    assert sum(p is m.i_h.weight for p in m.parameters()) == 1
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    logits(m(tokens(4, SL))).sum().backward(); opt.step()
    assert m.h_o.weight is m.i_h.weight
    m2 = LMModel7(V, NH, 2, 0.5); m2.load_state_dict(m.state_dict())
    assert m2.h_o.weight is m2.i_h.weight
    torch.testing.assert_close(m2.h_o.weight, m.i_h.weight)

def test_lmmodel7_dropout():
    m = LMModel7(V, NH, 2, 0.5)
    _, raw, dropped = m(tokens(8, SL))
    assert (dropped == 0).float().mean() > 0.3
    kept = dropped != 0
    torch.testing.assert_close(dropped[kept], raw[kept] * 2)
    m.eval(); m.reset()
    _, raw, dropped = m(tokens(8, SL))
    torch.testing.assert_close(dropped, raw)

@pytest.mark.parametrize('cell', [LSTMCell, LSTMCell1])
@pytest.mark.parametrize('train', [False, True])
def test_lm_with_our_lstm_equals_torch(cell, train):
    "LMModel6 and LMModel7 compute the same numbers with our LSTM as with nn.LSTM, batch after batch."
    for ref in (LMModel6(V, NH, 2), LMModel7(V, NH, 2, 0.4)):
        args = (V, NH, 2) if isinstance(ref, LMModel6) else (V, NH, 2, 0.4)
        ours = type(ref)(*args, rnn=LoopRNN(NH, NH, 2, cell=cell))
        ours.load_state_dict({k: v for k, v in ref.state_dict().items() if not k.startswith('rnn.')}, strict=False)
        ours.rnn.load_torch(ref.rnn)
        ref.train(train); ours.train(train)
        for bs in (4, 4, 2):
            x = tokens(bs, SL)
            a, b = states(ref(x)), states(ours(x))
            # in training, LMModel7's dropout masks differ: nn.LSTM's output is a transposed (non-contiguous) view, so
            # the same random numbers land on other elements; compare the LSTM's raw output there
            if train and len(a) == 3: a, b = a[1:2], b[1:2]
            for u, v in zip(a, b): torch.testing.assert_close(v, u, atol=1e-5, rtol=1e-4)
        for u, v in zip(states(ref.h), states(ours.h)): torch.testing.assert_close(v, u, atol=1e-5, rtol=1e-4)

def test_rnn_argument_checked():
    with pytest.raises(ValueError, match='batch_first=True'): LMModel6(V, NH, 2, rnn=nn.LSTM(NH, NH, 2))
    with pytest.raises(ValueError, match='batch_first=True'): LMModel7(V, NH, 2, 0.1, rnn=LoopRNN(NH, NH, 2, batch_first=False))
    with pytest.raises(ValueError, match='num_layers=2'): LMModel7(V, NH, 2, 0.1, rnn=nn.LSTM(NH, NH, 3, batch_first=True))
    with pytest.raises(ValueError, match='input_size=4'): LMModel6(V, NH, 2, rnn=LoopRNN(4, NH, 2))

# ---------------------------------------------------------------- PointerLM

@pytest.mark.parametrize('key', ['emb', 'state'])
@settings(max_examples=25, deadline=None)
@given(mem=st.integers(1, 6), cuts=st.lists(st.integers(1, 9), min_size=1, max_size=4), seed=st.integers(0, 2**16))
def test_pointer_chunks_equal_whole(key, mem, cuts, seed):
    "PointerLM read in any chunks (its LSTM state and `mem` remembered tokens carried) gives what one call gives."
    torch.manual_seed(seed)
    m = PointerLM(V, NH, 2, 0.3, mem=mem, n_key=5, key=key).eval()
    x = tokens(3, 10)
    whole = m(x)[0].detach()
    test_close_ = lambda a, b: torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
    test_close_(whole.exp().sum(-1), torch.ones(3, 10))                      # a distribution at every position
    bounds = sorted(set(c for c in cuts if c < 10))
    m.reset()
    parts = [m(x[:, a:b])[0].detach() for a, b in zip([0] + bounds, bounds + [10])]
    test_close_(torch.cat(parts, 1), whole)
    assert m.past_tok.shape == (3, min(mem, 10))

@settings(max_examples=15, deadline=None)
@given(pos=st.integers(0, 7), seed=st.integers(0, 2**16))
def test_pointer_causal_and_off(pos, seed):
    "Changing token `pos` changes no prediction before it; with the pointer off it is LMModel7's softmax."
    torch.manual_seed(seed)
    m = PointerLM(V, NH, 2, 0.3, mem=4, n_key=5).eval()
    x = tokens(3, 8); x2 = x.clone(); x2[:, pos] = (x2[:, pos] + 1) % V
    a = m(x)[0]; m.reset(); b = m(x2)[0]
    torch.testing.assert_close(a[:, :pos], b[:, :pos])
    assert not torch.allclose(a[:, pos:], b[:, pos:])
    m.use_pointer = False; m.reset()
    off = m(x)[0]; m.lm.reset()
    torch.testing.assert_close(off, F.log_softmax(m.lm(x)[0], -1), atol=1e-5, rtol=1e-4)

# ---------------------------------------------------------------- cells against PyTorch

def torch_layout_grads(cell):
    "Our cell's parameter gradients rearranged as PyTorch's (weight_ih, weight_hh, bias) would hold them."
    if isinstance(cell, LSTMCell1):
        gates = (cell.input_gate, cell.forget_gate, cell.cell_gate, cell.output_gate)   # PyTorch's order
        w = torch.cat([g.weight.grad for g in gates])            # (4*nh, nh + ni): reads [h, input]
        return w[:, cell.nh:], w[:, :cell.nh], torch.cat([g.bias.grad for g in gates])
    return cell.ih.weight.grad, cell.hh.weight.grad, cell.ih.bias.grad

CELLS = [(LSTMCell1, nn.LSTMCell), (LSTMCell, nn.LSTMCell), (GRUCell, nn.GRUCell)]

@pytest.mark.parametrize('ours_cls,ref_cls', CELLS, ids=['LSTMCell1', 'LSTMCell', 'GRUCell'])
@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
@settings(max_examples=15, deadline=None)
@given(ni=st.integers(1, 6), nh=st.integers(1, 6), bs=st.integers(1, 4), seed=st.integers(0, 2**16), zero_state=st.booleans())
def test_cell_equals_torch(ours_cls, ref_cls, dtype, ni, nh, bs, seed, zero_state):
    torch.manual_seed(seed)
    ref = ref_cls(ni, nh).to(dtype)
    ours = ours_cls(ni, nh).to(dtype).load_gates(ref.weight_ih, ref.weight_hh, ref.bias_ih, ref.bias_hh)
    lstm = ref_cls is nn.LSTMCell
    x = torch.randn(bs, ni, dtype=dtype, requires_grad=True)
    h0 = torch.randn(bs, nh, dtype=dtype, requires_grad=True)
    c0 = torch.randn(bs, nh, dtype=dtype, requires_grad=True)
    if zero_state: r, (o, s) = ref(x), ours(x)
    else: r, (o, s) = ref(x, (h0, c0) if lstm else h0), ours(x, (h0, c0) if lstm else h0)
    r, s = states(r), states(s)
    tol = dict(atol=1e-5, rtol=1e-4) if dtype == torch.float32 else dict(atol=1e-10, rtol=1e-8)
    torch.testing.assert_close(o, r[0], **tol)
    for u, v in zip(r, s): torch.testing.assert_close(v, u, **tol)
    w = [torch.randn_like(t) for t in r]                          # an arbitrary function of the outputs
    f_ref, f_ours = (sum((t * wi).sum() for t, wi in zip(outs, w)) for outs in (r, s))
    leaves = [x] if zero_state else ([x, h0, c0] if lstm else [x, h0])
    g_ref = torch.autograd.grad(f_ref, leaves, retain_graph=True)
    g_ours = torch.autograd.grad(f_ours, leaves, retain_graph=True)
    for u, v in zip(g_ref, g_ours): torch.testing.assert_close(v, u, **tol)      # input and incoming state
    f_ref.backward(); f_ours.backward()                                          # now the weights
    ref_g = (ref.weight_ih.grad, ref.weight_hh.grad, ref.bias_ih.grad)
    for u, v in zip(ref_g, torch_layout_grads(ours)): torch.testing.assert_close(v, u, **tol)
    if not isinstance(ours, LSTMCell1): torch.testing.assert_close(ours.hh.bias.grad, ref.bias_hh.grad, **tol)

@pytest.mark.parametrize('cell,ref_cls', [(LSTMCell, nn.LSTM), (LSTMCell1, nn.LSTM), (GRUCell, nn.GRU)], ids=['LSTMCell', 'LSTMCell1', 'GRUCell'])
@pytest.mark.parametrize('num_layers', [1, 3])
@pytest.mark.parametrize('batch_first', [True, False])
@pytest.mark.parametrize('with_hx', [True, False])
def test_loop_rnn_equals_torch(cell, ref_cls, num_layers, batch_first, with_hx):
    ni, nh, bs, sl = 3, 5, 4, 6
    ref = ref_cls(ni, nh, num_layers, batch_first=batch_first).double()
    ours = LoopRNN(ni, nh, num_layers, cell=cell, batch_first=batch_first).double().load_torch(ref)
    x = torch.randn((bs, sl, ni) if batch_first else (sl, bs, ni), dtype=torch.float64, requires_grad=True)
    hx = [torch.randn(num_layers, bs, nh, dtype=torch.float64, requires_grad=True) for _ in range(2 if ref_cls is nn.LSTM else 1)]
    arg = (tuple(hx) if len(hx) == 2 else hx[0]) if with_hx else None
    (o1, s1), (o2, s2) = ref(x, arg), ours(x, arg)
    assert type(s1) is type(s2) and o2.shape == o1.shape
    torch.testing.assert_close(o2, o1)
    for u, v in zip(states(s1), states(s2)): assert v.shape == u.shape; torch.testing.assert_close(v, u)
    leaves = [x, *hx] if with_hx else [x]
    loss = lambda o, s: (o * o.detach().cos()).sum() + sum((t * t.detach().sin()).sum() for t in states(s))
    g1 = torch.autograd.grad(loss(o1, s1), leaves + list(ref.parameters()))
    if cell is LSTMCell1:
        g2 = torch.autograd.grad(loss(o2, s2), leaves + list(ours.parameters()))
        g2 = list(g2[:len(leaves)])   # compare the inputs here; the weights' layout is checked in test_cell_equals_torch
        g1 = g1[:len(leaves)]
    else:
        g2 = torch.autograd.grad(loss(o2, s2), leaves + [p for c in ours.cells for p in (c.ih.weight, c.hh.weight, c.ih.bias, c.hh.bias)])
    assert len(g1) == len(g2)
    for u, v in zip(g1, g2): torch.testing.assert_close(v, u)

def test_load_errors():
    lstm = nn.LSTMCell(3, 4)
    with pytest.raises(ValueError, match='GRU'): GRUCell(3, 4).load_gates(lstm.weight_ih, lstm.weight_hh, lstm.bias_ih, lstm.bias_hh)
    with pytest.raises(ValueError, match=r'w_ih of shape \(16, 5\)'): LSTMCell1(5, 4).load_gates(lstm.weight_ih, lstm.weight_hh, lstm.bias_ih, lstm.bias_hh)
    with pytest.raises(ValueError, match='2-layer'): LoopRNN(3, 4, 2).load_torch(nn.LSTM(3, 4, 1))
    with pytest.raises(ValueError, match='bias=True'): LoopRNN(3, 4, 1).load_torch(nn.LSTM(3, 4, 1, bias=False))

# ---------------------------------------------------------------- dropout

@pytest.mark.parametrize('p', [0.1, 0.5, 0.8])
def test_dropout(p):
    d = Dropout(p)
    x = torch.ones(200, 1000, requires_grad=True)
    y = d(x)
    assert abs((y == 0).float().mean().item() - p) < 0.01
    assert abs(y.mean().item() - 1) < 0.02                        # the mean is preserved
    torch.testing.assert_close(y[y != 0], torch.full_like(y[y != 0], 1 / (1 - p)))
    y.sum().backward()
    torch.testing.assert_close(x.grad, y.detach())               # the gradient goes through the same mask
    d.eval()
    assert d(x) is x                                              # eval: identity
    assert Dropout(0.0)(x) is x

def test_dropout_uses_its_own_p():
    "The seeds' Dropout read a global `p`; two modules with different p must drop different amounts."
    x = torch.ones(100_000)
    assert ((Dropout(0.2)(x) == 0).float().mean() - 0.2).abs() < 0.01
    assert ((Dropout(0.7)(x) == 0).float().mean() - 0.7).abs() < 0.01

@pytest.mark.parametrize('p', [-0.1, 1.0, 1.5])
def test_dropout_bad_p(p):
    with pytest.raises(ValueError, match='0 <= p < 1'): Dropout(p)

# ---------------------------------------------------------------- fastai

@pytest.mark.parametrize('name', ['LMModel3', 'LMModel4', 'LMModel6', 'LMModel7', 'LMModel7-LoopGRU', 'AWDLSTM'])
def test_fastai_learner(name):
    "A real fastai Learner with ModelResetter (and RNNCallback/RNNRegularizer for LMModel7) trains every model."
    from fastai.data.core import DataLoaders
    from fastai.learner import Learner
    from fastai.callback.core import Callback
    from fastai.callback.rnn import ModelResetter, RNNRegularizer, rnn_cbs
    from fastai.losses import CrossEntropyLossFlat
    from fastai.metrics import accuracy
    stream = torch.tensor([1, 2, 3, 0, 1, 2, 4, 0] * 40)
    sl = MODELS[name][1]
    if name == 'LMModel3': seqs = [(stream[i:i+sl], stream[i+sl]) for i in range(0, len(stream) - sl - 1, sl)]
    else: seqs = [(stream[i:i+sl], stream[i+1:i+sl+1]) for i in range(0, len(stream) - sl - 1, sl)]
    # 8 rows a batch, no drop_last: the last batch of each epoch is smaller
    dls = DataLoaders.from_dsets(seqs[:50], seqs[50:], bs=8, shuffle=False, device='cpu')

    class Record(Callback):
        order = RNNRegularizer.order + 1
        def before_fit(self): self.gaps, self.sizes = [], set()
        def after_loss(self):
            if self.training: self.gaps.append((self.learn.loss_grad - self.learn.loss).item())
            self.sizes.add(self.learn.x.shape[0])
    rec = Record()
    is7 = name in TRIPLE
    cbs = (rnn_cbs(alpha=2., beta=1.) if is7 else [ModelResetter()]) + [rec]
    loss = F.cross_entropy if name == 'LMModel3' else CrossEntropyLossFlat()
    learn = Learner(dls, make(name), loss_func=loss, metrics=accuracy, cbs=cbs)
    with learn.no_logging(): learn.fit(2, 1e-2)
    assert len(rec.sizes) > 1                                    # it met a smaller batch, and coped
    assert learn.model.h is None                                 # ModelResetter reset it after fit
    if is7: assert min(rec.gaps) > 0                              # AR/TAR were added from raw and dropped outputs
    else: assert max(abs(g) for g in rec.gaps) == 0
    preds, targs = learn.get_preds()
    assert preds.shape[0] == len(seqs) - 50

# ---------------------------------------------------------------- GPU (skipped where there is none)

@pytest.mark.skipif(not torch.cuda.is_available(), reason='no CUDA GPU')
@pytest.mark.parametrize('name', STATEFUL)
def test_state_follows_device(name):
    m, sl = make(name), MODELS[name][1]
    m(tokens(4, sl))                                             # a CPU state exists
    m.to('cuda')
    out = logits(m(tokens(4, sl).cuda()))
    assert out.is_cuda and all(s.is_cuda for s in states(m.h))
