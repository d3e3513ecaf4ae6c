"""bborzan.data: the fast batches equal the seeds' batches for many sizes (hypothesis), and the fast `DataLoaders`
work with fastai's training machinery (`Learner`, `TextLearner`, `lr_find`, `fit_one_cycle`, `get_preds`)."""
import warnings
import pytest, torch
from torch import nn
import torch.nn.functional as F
from torch.utils.data import DataLoader as TorchDL
from hypothesis import given, settings, strategies as st
warnings.filterwarnings('ignore', message='`torch.jit.script` is deprecated')
from bborzan.data import (Vocab, UnknownTokenError, group_chunks, reference_seqs, reference_lm_dls, LMLoader, lm_dls,
                          split_windows, n_windows, check_same_batches)

def as_lists(seqs): return [tuple(torch.as_tensor(o).tolist() for o in s) for s in seqs]

def literal_torch(nums, bs, sl, target, grouped, drop_last):
    "Seed 004's pipeline: a list of tensor windows, `group_chunks`, a plain PyTorch `DataLoader`."
    seqs = list(reference_seqs(nums, sl, target))
    if grouped: seqs = list(group_chunks(seqs, bs))
    return TorchDL(seqs, batch_size=bs, drop_last=drop_last, shuffle=False)

@settings(max_examples=150, deadline=None)
@given(n=st.integers(2, 400), bs=st.integers(1, 12), sl=st.integers(1, 9), target=st.sampled_from(['seq', 'next']),
       grouped=st.booleans(), drop_last=st.booleans(), seed=st.integers(0, 2**16))
def test_fast_equals_seed(n, bs, sl, target, grouped, drop_last, seed):
    nums = torch.randint(0, 50, (n,), generator=torch.Generator().manual_seed(seed))
    ref = literal_torch(nums, bs, sl, target, grouped, drop_last)
    nw = n_windows(n, sl)
    if (nw // bs if grouped else nw) == 0:
        with pytest.raises(ValueError, match='use a smaller bs or sl'): LMLoader(nums, bs, sl, target=target, grouped=grouped)
        return
    fast = LMLoader(nums, bs, sl, target=target, grouped=grouped, drop_last=drop_last, device='cpu')
    assert len(fast) == len(ref)
    assert check_same_batches(fast, ref) == len(ref)

@settings(max_examples=100, deadline=None)
@given(n=st.integers(2, 300), sl=st.integers(1, 9), pct=st.floats(0, 1))
def test_split_windows(n, sl, pct):
    nums = torch.arange(n)
    seqs = reference_seqs(nums, sl)
    cut = int(len(seqs) * pct)
    t, v = split_windows(nums, sl, pct)
    assert as_lists(reference_seqs(t, sl)) == as_lists(seqs[:cut]) and as_lists(reference_seqs(v, sl)) == as_lists(seqs[cut:])
    assert t.data_ptr() == nums.data_ptr()  # views, no copy

@settings(max_examples=50, deadline=None)
@given(n=st.integers(0, 300), bs=st.integers(1, 20))
def test_group_chunks_rows_continue(n, bs):
    g = group_chunks(list(range(n)), bs)
    m = n // bs
    assert len(g) == m * bs
    for j in range(bs): assert [g[i*bs + j] for i in range(m)] == list(range(j*m, (j+1)*m))

@given(toks=st.lists(st.sampled_from(list('abcdefgh') + ['', ' ', 'xx', '\0']), max_size=50), sort=st.booleans())
def test_vocab_roundtrip(toks, sort):
    v = Vocab(toks, sort=sort, pad='<pad>')
    assert v.decode(v.encode(toks)) == toks
    assert v.itos[0] == '<pad>' and len(v) == len(set(toks)) + 1
    if sort: assert v.itos[1:] == sorted(set(toks))

def test_vocab_errors():
    v = Vocab('abc')
    with pytest.raises(UnknownTokenError, match="'d' is not in the vocab"): v.encode('abd')
    assert isinstance(UnknownTokenError('x'), ValueError)
    assert Vocab('abc', unk='?').encode('abd').tolist() == [1, 2, 0]

def test_reference_lm_dls_fastai_literal():
    "`reference_lm_dls` is the seeds' fastai pipeline: `from_dsets` drops the last partial training batch, keeps the validation one."
    nums = torch.randint(0, 30, (500,), generator=torch.Generator().manual_seed(1))
    sd = reference_lm_dls(nums[:350], nums[350:], bs=9, sl=3, target='next', grouped=False)
    fd = lm_dls(nums[:350], nums[350:], bs=9, sl=3, target='next', grouped=False, device='cpu')
    assert sd.train.drop_last and not sd.valid.drop_last
    assert len(sd.valid.dataset) % 9 != 0  # there is a partial validation batch to keep
    for i in (0, 1): assert check_same_batches(fd[i], sd[i]) == len(sd[i])

class Stateful(nn.Module):
    "A tiny LMModel7-like model: returns (logits, raw, dropped-out) as `TextLearner`'s `RNNRegularizer` expects."
    def __init__(self, vocab_sz=20, nh=8):
        super().__init__()
        self.i_h, self.rnn, self.h_o = nn.Embedding(vocab_sz, nh), nn.LSTM(nh, nh, batch_first=True), nn.Linear(nh, vocab_sz)
        self.drop, self.h, self.n_reset = nn.Dropout(0.1), None, 0
    def forward(self, x):
        if self.h is not None and self.h[0].shape[1] != x.shape[0]: self.h = None
        raw, h = self.rnn(self.i_h(x), self.h)
        self.h = [o.detach() for o in h]
        out = self.drop(raw)
        return self.h_o(out), raw, out
    def reset(self): self.h, self.n_reset = None, self.n_reset + 1

@pytest.fixture
def dls(tmp_path):
    nums = torch.randint(0, 20, (3000,), generator=torch.Generator().manual_seed(0))
    return lm_dls(*split_windows(nums, 6), bs=8, sl=6, device='cpu', path=tmp_path)

def test_text_learner_fit_one_cycle_lr_find_get_preds(dls, tmp_path):
    import fastai.callback.schedule  # patches fit_one_cycle and lr_find onto Learner
    from fastai.text.learner import TextLearner
    from fastai.losses import CrossEntropyLossFlat
    from fastai.metrics import accuracy
    learn = TextLearner(dls, Stateful(), loss_func=CrossEntropyLossFlat(), metrics=accuracy)
    with learn.no_bar(), learn.no_logging():
        learn.fit_one_cycle(2, 1e-2)
        assert len(learn.recorder.values) == 2 and learn.model.n_reset >= 4
        res = learn.lr_find(num_it=20, show_plot=False)
        assert res.valley > 0
        preds, targs = learn.get_preds()
    n_valid = len(dls.valid) * 8
    assert preds.shape == (n_valid, 6, 20) and targs.shape == (n_valid, 6)
    assert torch.equal(targs, torch.cat([y for _, y in dls.valid]))
    assert not any(p.name != 'models' for p in tmp_path.iterdir())  # lr_find cleaned up after itself

def test_new_keeps_stream(dls):
    dl = dls.train.new(drop_last=False)
    assert dl.dataset.data_ptr() == dls.train.dataset.data_ptr() and len(dl) == len(dls.train)
    with pytest.raises(ValueError, match='cannot shuffle'): LMLoader(dls.train.dataset, 4, 8, shuffle=True)
    same = dls.train.new(shuffle=True)          # fastai's show_results asks for a shuffled copy: it gets the text's order
    assert all(torch.equal(a[0], b[0]) for a, b in zip(same, dls.train))

def test_device_argument():
    from bborzan.core import get_device
    dl = LMLoader(torch.arange(100), bs=2, sl=3)
    assert dl.one_batch()[0].device.type == get_device().type
    assert dl.to('cpu').one_batch()[0].device.type == 'cpu'

@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA GPU')
def test_cuda_stream_moved_once():
    dl = LMLoader(torch.arange(1000), bs=4, sl=5, device='cuda')
    assert dl.dataset.is_cuda
    x, y = dl.one_batch()
    assert x.is_cuda and y.is_cuda
    assert check_same_batches(dl, LMLoader(torch.arange(1000), bs=4, sl=5, device='cpu')) == len(dl)
