"""bborzan.generate beyond the notebook: temperature and top-k as properties over random logits (hypothesis),
sampling frequencies, every course model writing with batch size 1, stateful reading equal to re-reading, and
`sample_games` judged on models whose games are known to be legal or illegal."""
import math
import pytest
import torch
from torch import nn
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st

from fastai.torch_core import set_seed
from bborzan.data import Vocab, UnknownTokenError
from bborzan.registry import MODELS
from bborzan.generate import sample_probs, prompt_tokens, generate_ids, predict_next, generate, sample_games, is_char_vocab

def entropy(p): return -(p * p.clamp_min(1e-38).log()).sum(-1)

logits_st = st.lists(st.floats(-8, 8, allow_nan=False), min_size=2, max_size=12).map(torch.tensor)

@given(logits=logits_st, t1=st.floats(0.05, 20), t2=st.floats(0.05, 20))
@settings(max_examples=200, deadline=None)
def test_hotter_is_more_varied(logits, t1, t2):
    lo, hi = sorted((t1, t2))
    assert entropy(sample_probs(logits, lo)) <= entropy(sample_probs(logits, hi)) + 1e-5

@given(logits=logits_st)
@settings(max_examples=200, deadline=None)
def test_cold_is_argmax(logits):
    top = logits.max()
    if (logits >= top - 1e-3).sum() > 1: return                      # a near-tie: no single argmax to approach
    p = sample_probs(logits, 1e-4)
    assert p.argmax() == logits.argmax() and p.max() > 0.999
    assert torch.equal(sample_probs(logits, 0), F.one_hot(logits.argmax(), len(logits)).float())

@given(logits=logits_st, k=st.integers(1, 12), t=st.floats(0.1, 5))
@settings(max_examples=200, deadline=None)
def test_top_k_support(logits, k, t):
    p = sample_probs(logits, t, top_k=k)
    assert p.sum().item() == pytest.approx(1, abs=1e-5)
    kth = logits.topk(min(k, len(logits))).values[-1]
    assert (p[logits < kth] == 0).all()                              # nothing outside the top k (ties at the k-th all kept)
    assert torch.allclose(p[logits >= kth], F.softmax(logits[logits >= kth] / t, -1), atol=1e-6)   # the rest renormalised

@pytest.mark.parametrize('t,k,msg', [(-0.1, None, 'not negative'), (float('nan'), None, 'not negative'), (1., 0, 'at least 1 token'),
                                     (1., 2.5, 'at least 1 token')])
def test_sample_probs_bad_args(t, k, msg):
    with pytest.raises(ValueError, match=msg): sample_probs(torch.zeros(3), t, k)

class Fixed(nn.Module):
    "Always the same next-token logits: a window model."
    def __init__(self, logits): super().__init__(); self.logits = nn.Parameter(torch.as_tensor(logits, dtype=torch.float))
    def forward(self, x): return self.logits.expand(x.shape[0], -1)

def test_sampling_frequencies_follow_temperature():
    logits = torch.tensor([3., 1., 0., -1., -2.])
    v = Vocab(list('abcde'))
    distinct = []
    for t in (0.2, 0.5, 1.0, 2.0, 5.0):
        s = generate(Fixed(logits), 'a', 3000, v, temperature=t, seed=0)[1:]
        freq = torch.tensor([s.count(c) / len(s) for c in 'abcde'])
        assert torch.allclose(freq, sample_probs(logits, t), atol=0.035)
        distinct.append(len(set(s[i:i+2] for i in range(len(s) - 1))))
    assert distinct == sorted(distinct) and distinct[-1] > distinct[0]

def test_prompt_errors_and_char_vocab():
    w = Vocab('zan to buddha'.split())
    with pytest.raises(UnknownTokenError, match="the prompt has 'shoot'"): prompt_tokens('zan shoot', w)
    with pytest.raises(ValueError, match='empty'): prompt_tokens('   ', w)
    assert prompt_tokens('zan  to', w) == (['zan', 'to'], ' ')
    assert is_char_vocab(Vocab('hello', pad='\0')) and not is_char_vocab(w)
    with pytest.raises(ValueError, match='n='): generate(Fixed([1., 2, 3]), 'zan', 1.5, w)
    with pytest.raises(ValueError, match='window=0'): generate(Fixed([1., 2, 3]), 'zan', 2, w, window=0)
    unk = Vocab(['a', 'b'], unk='?')
    assert generate(Fixed([0., 0, 9]), 'a z', 2, unk, temperature=0, sep=' ') == 'a z b b'   # unknown -> '?' with an unk

# ------------------------------------------------------------------ every course model writes

def _make(name, V):
    set_seed(0)
    return MODELS[name].build(V, 8, 2)

@pytest.mark.parametrize('name', list(MODELS))
def test_every_model_generates(name):
    v = Vocab(list('abcdefg'))
    m = _make(name, len(v))
    m.train()
    prompt = 'abc'                                                   # LMModel1 and Char3Model read exactly 3
    out = generate(m, prompt, 10, v, seed=1)
    assert len(out) == 13 and out.startswith(prompt) and set(out) <= set('abcdefg')
    assert generate(m, prompt, 10, v, seed=1) == out                 # repeatable with a seed
    assert m.training and getattr(getattr(m, 'lm', m), 'h', None) is None   # mode restored, state reset (PointerLM: its LSTM's)
    assert getattr(m, 'past_tok', None) is None                      # and PointerLM's remembered tokens
    greedy = generate(m, prompt, 10, v, temperature=0)
    assert generate(m, prompt, 10, v, temperature=1e-7, seed=5) == greedy
    cands = predict_next(m, prompt, v, k=3)
    assert len(cands) == 3 and cands[0][1] >= cands[1][1] >= cands[2][1]
    assert cands[0][0] == greedy[3]                                  # the likeliest next token is what argmax writes
    ids = generate_ids(m, v.encode(list(prompt))[None].expand(4, -1), 6)
    assert ids.shape == (4, 6)

@pytest.mark.parametrize('name', ['lm4', 'lm5', 'lm6', 'lm7', 'pointer', 'char_stateful_rnn', 'char_stateful_rnn2', 'char_stateful_gru',
                                  'char_stateful_lstm'])
def test_stateful_reading_equals_rereading(name):
    "Reading only the new token with the state carried gives the same greedy text as re-reading everything."
    v = Vocab(list('abcdefg'))
    m = _make(name, len(v)).eval()
    got = generate(m, 'abcab', 15, v, temperature=0)
    x = v.encode(list('abcab'))[None]
    with torch.no_grad():
        for _ in range(15):
            m.reset()
            out = m(x); out = out[0] if isinstance(out, tuple) else out
            x = torch.cat([x, out[:, -1].argmax(-1)[:, None]], 1)
    assert got == v.decode_text(x[0])

def test_batched_rows_are_independent():
    "Row r of a batched generation is what the same prompt writes alone (greedy)."
    v = Vocab(list('abcdefg'))
    m = _make('lm6', len(v))
    prompts = ['abc', 'gfe', 'ddd']
    ids = torch.stack([v.encode(list(p)) for p in prompts])
    batch = generate_ids(m, ids, 8, temperature=0)
    for p, row in zip(prompts, batch): assert generate(m, p, 8, v, temperature=0) == p + v.decode_text(row)

# ------------------------------------------------------------------ sample_games

GAME = 'zan to zan to buddha , end . shield shoot chick'.split()
V = Vocab(GAME)

class Bigram(nn.Module):
    "Next token decided by the last one, from a table: a stateful sequence model (or a window model)."
    def __init__(self, table, seq=True):
        super().__init__()
        w = torch.full((len(V), len(V)), -20.)
        for a, b in table.items(): w[V.stoi[a], V.stoi[b]] = 20.
        self.w, self.seq = nn.Parameter(w), seq
    def forward(self, x):
        out = self.w[x]                                              # (bs, L, V)
        return out if self.seq else out[:, -1]
    def reset(self): pass

# 'shield to buddha , end .': legal (shield kills buddha)
LEGAL = {'end': '.', '.': 'shield', 'shield': 'to', 'to': 'buddha', 'buddha': ',', ',': 'end', 'zan': 'to'}
# 'chick to zan , end .': player 1 can't afford a chick
ILLEGAL = {**LEGAL, '.': 'chick', 'chick': 'to', 'to': 'zan', 'zan': ','}
# 'zan to zan , zan to zan , ...': nobody ever dies, the game never ends
ENDLESS = {**LEGAL, '.': 'zan', 'zan': 'to', 'to': 'zan', ',': 'zan'}

@pytest.mark.parametrize('seq', [True, False])
def test_sample_games_judges(seq):
    g = sample_games(Bigram(LEGAL, seq), V, 7, seed=0)
    assert g.legal_fraction == 1 and g.texts == ['shield to buddha , end . '] * 7 and all(g.finished)
    bad = sample_games(Bigram(ILLEGAL, seq), V, 5, seed=0)
    assert bad.legal_fraction == 0 and bad.texts[0] == 'chick to zan , end . '
    assert bad.common_problems(1) == [("round N: player 1 plays 'chick' with 0 energy (needs 3)", 5)]
    cut = sample_games(Bigram(ENDLESS, seq), V, 3, max_len=12, seed=0)
    assert cut.legal_fraction == 0 and not any(cut.finished)
    assert all(len(t.split()) == 12 for t in cut.texts)
    assert ('did not end within 12 tokens', 3) in cut.common_problems(5)
    assert '0.0% legal' in repr(cut)

def test_sample_games_bad_args():
    m = Bigram(LEGAL)
    with pytest.raises(ValueError, match='at least 1 game'): sample_games(m, V, 0)
    with pytest.raises(ValueError, match='max_len=1'): sample_games(m, V, 2, max_len=1)
    with pytest.raises(ValueError, match="has no '.'"): sample_games(m, Vocab(['a', 'b']), 2)
    with pytest.raises(UnknownTokenError, match="the prompt has 'fin'"): sample_games(m, V, 2, prompt='fin .')
