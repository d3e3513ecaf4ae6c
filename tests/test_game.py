"""Property tests for the rules engine (`bborzan.game`) and the oracle (`bborzan.oracle`).

The rules are checked against a literal copy of the seed notebook's `Game`, and the oracle's floor against a
Monte-Carlo estimate that counts moves per state in a separately generated corpus."""
import math, random
from collections import Counter, defaultdict
import numpy as np
import pytest
from hypothesis import given, settings, assume, HealthCheck, strategies as st

from bborzan.game import *
from bborzan.game import REQUIRES, MOVE_NAMES, resolve, kills, affordable
from bborzan.oracle import *

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ---------------------------------------------------------------- the seed's Game, copied literally as the reference
class SeedGame:
    def __init__(self):
        self.winner = 0
        self.e1 = 0 # energy of player 1, etc.
        self.e2 = 0
        self.over = False # the game is still on
        self.requires = [0, 0, 0, 1, 1, 0, 1, 3, 2]
        self.text = [0, "zan", "shield", "shoot", "reflect", "buddha", "steal", "chick", "big-shield"]
        self.record = []
    def act(self, action1, action2):
        if self.determine(action1, action2):
            self.over = True
            self.winner = 1
        elif self.determine(action2, action1):
            self.over = True
            self.winner = 2
        if action1 == 1:
            self.e1 += 1
        elif action1 in [3, 4, 6]:
            self.e1 -= 1
        elif action1 == 7:
            self.e1 -= 3
        elif action1 == 8:
            self.e1 -= 2
        if action2 == 1:
            self.e2 += 1
        elif action2 in [3, 4, 6]:
            self.e2 -= 1
        elif action2 == 7:
            self.e2 -= 3
        elif action2 == 8:
            self.e2 -= 2
        if action1 == 5:
            self.e2 = 0
        if action2 == 5:
            self.e1 = 0
        if action1==6 and action2==6:
            return
        if action1==6 and action2!=5:
            self.e1+=self.e2
            self.e2 = 0
        if action2==6 and action1!=5:
            self.e2+=self.e1
            self.e1 = 0
        self.record.append((self.text[action1], self.text[action2]))
    def determine(self, act1, act2):
        if act1 == 2 and act2 == 5: return True
        if act1 == 3 and (act2 in [1, 5, 6, 8]): return True
        if act1 == 4 and act2 == 3: return True
        if act1 == 5 and act2 == 4: return True
        if act1 == 7 and act2 <= 6: return True
        if act1 == 8 and act2 == 5: return True
        return False

class SeedDataGen(SeedGame):
    def __init__(self):
        super().__init__()
        self.text_record = []
    def act(self):
        actions_available_1 = [i for i in range(1, 9) if self.requires[i]<=self.e1]
        actions_available_2 = [i for i in range(1, 9) if self.requires[i]<=self.e2]
        act_combination = random.choice(actions_available_1), random.choice(actions_available_2)
        super().act(*act_combination)
        text = self.text[act_combination[0]], self.text[act_combination[1]]
        self.text_record.append(text)
        return text

def seed_get_one_rec():
    game = SeedDataGen()
    while not game.over:
        game.act()
    return game.text_record

def seed_replay(record):
    "Energies before each round and the winner after each round, by the seed's rules: [(e1, e2, over, winner)]."
    g, out = SeedGame(), []
    for a, b in record:
        e1, e2 = g.e1, g.e2
        g.act(TEXT.index(a), TEXT.index(b))
        out.append((e1, e2, g.over, g.winner))
    return out

moves = st.integers(1, 8)
energies = st.integers(0, 30)
PLAYERS = [uniform_player, sensible_player]
players = st.sampled_from(PLAYERS)

# ---------------------------------------------------------------- the rules
def test_resolve_matches_seed_exhaustively():
    "Every pair of moves from every pair of energies 0..8 (legal or not): the same energies, end and winner."
    for e1 in range(9):
        for e2 in range(9):
            for a1 in range(1, 9):
                for a2 in range(1, 9):
                    ref = SeedGame(); ref.e1, ref.e2 = e1, e2; ref.act(a1, a2)
                    n1, n2, w = resolve(e1, e2, a1, a2)
                    assert (n1, n2, w > 0, w) == (ref.e1, ref.e2, ref.over, ref.winner), (e1, e2, a1, a2)

@FAST
@given(e1=energies, e2=energies, a1=moves, a2=moves)
def test_game_act_matches_seed(e1, e2, a1, a2):
    assume(REQUIRES[a1] <= e1 and REQUIRES[a2] <= e2)
    ref, ours = SeedGame(), Game()
    ref.e1, ref.e2 = ours.e1, ours.e2 = e1, e2
    ref.act(a1, a2); ours.act(a1, a2)
    assert (ours.e1, ours.e2, ours.over, ours.winner) == (ref.e1, ref.e2, ref.over, ref.winner)
    assert ours.pretty_record() == [(TEXT[a1], TEXT[a2])]
    # the seed's double-steal bug: its early return skips the record; ours keeps every round
    assert len(ref.record) == (0 if a1 == a2 == Move.STEAL else 1)

def test_resolve_vectorised_matches_scalar():
    rng = np.random.default_rng(0)
    e1, e2 = rng.integers(0, 10, (2, 500)); a1, a2 = rng.integers(1, 9, (2, 500))
    n1, n2, w = resolve(e1, e2, a1, a2)
    assert [tuple(map(int, resolve(*x))) for x in zip(e1.tolist(), e2.tolist(), a1.tolist(), a2.tolist())] == \
        list(zip(n1.tolist(), n2.tolist(), w.tolist()))

@FAST
@given(e1=energies, e2=energies, a=st.integers(1, 6))
def test_chick_beats_every_move_up_to_steal(e1, e2, a):
    assert resolve(e1, e2, Move.CHICK, a)[2] == 1
    assert resolve(e1, e2, a, Move.CHICK)[2] == 2
    assert kills(Move.CHICK, a) and not kills(a, Move.CHICK)

@FAST
@given(data=st.data())
def test_random_legal_play(data):
    "Energy never goes negative, and a game ends exactly on the round `determine` calls deadly."
    g = Game()
    for _ in range(60):
        a1 = data.draw(st.sampled_from(g.legal_moves(1)))
        a2 = data.draw(st.sampled_from(g.legal_moves(2)))
        g.act(a1, a2)
        assert g.e1 >= 0 and g.e2 >= 0
        assert g.over == (g.determine(a1, a2) or g.determine(a2, a1))
        assert g.winner == (1 if g.determine(a1, a2) else 2 if g.determine(a2, a1) else 0)
        if g.over: break
    if g.over:
        with pytest.raises(IllegalMoveError, match='the game is over'): g.act('zan', 'zan')

@FAST
@given(e=st.integers(0, 2), a=st.sampled_from([Move.CHICK, Move.BIG_SHIELD, Move.SHOOT, Move.REFLECT, Move.STEAL]),
       p=st.sampled_from([1, 2]))
def test_unaffordable_moves_raise(e, a, p):
    assume(REQUIRES[a] > e)
    g = Game(); g.e1 = g.e2 = e
    with pytest.raises(IllegalMoveError, match=f"player {p} can't play '{a.text}' with {e} energy"):
        g.act(a, 'zan') if p == 1 else g.act('zan', a)
    assert g.record == [] and (g.e1, g.e2) == (e, e)

@pytest.mark.parametrize('bad', [0, 9, -1, 'zen', '', None, 1.5, True])
def test_unknown_moves_raise(bad):
    with pytest.raises(ValueError, match='unknown move'): Game().act(bad, 'zan')

@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_datagen_replays_the_seed(seed):
    "With the same `random` seed our DataGen plays exactly the seed's games."
    random.seed(seed); ref = [seed_get_one_rec() for _ in range(20)]
    random.seed(seed); ours = [get_one_rec() for _ in range(20)]
    assert ours == ref

# ---------------------------------------------------------------- players
@FAST
@given(me=st.lists(st.integers(0, 20), min_size=1, max_size=30), data=st.data(), player=players)
def test_players_are_distributions_over_affordable_moves(me, data, player):
    opp = data.draw(st.lists(st.integers(0, 20), min_size=len(me), max_size=len(me)))
    p = move_probs(player, me, opp)
    assert p.shape == (len(me), 8)
    assert np.allclose(p.sum(1), 1) and (p >= 0).all()
    assert ((p > 0) == affordable(me)).all()

def test_sensible_player_depends_on_both_energies():
    p = sensible_player(np.array([3, 3]), np.array([0, 5]))
    assert not np.allclose(p[0], p[1])

@pytest.mark.parametrize('bad, msg', [
    (lambda me, opp: np.full((len(me), 8), 1 / 8), 'cannot afford'),
    (lambda me, opp: np.ones((len(me), 8)) * affordable(me), 'does not sum to 1'),
    (lambda me, opp: np.ones((len(me), 7)), 'shape'),
    (lambda me, opp: -uniform_player(me, opp), 'negative'),
])
def test_bad_players_are_refused(bad, msg):
    with pytest.raises(PlayerError, match=msg): generate_games(5, player1=bad)
    with pytest.raises(PlayerError, match=msg): get_one_rec(bad)

# ---------------------------------------------------------------- generation
@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**63), p1=players, p2=players)
def test_generated_games_are_legal(seed, p1, p2):
    games = generate_games(150, seed=seed, player1=p1, player2=p2)
    docs = games.docs()
    assert len(docs) == len(games) == 150
    for i, doc in enumerate(docs):
        assert check_transcript(doc) == [], doc
        steps = seed_replay(games[i])                       # the seed's rules, independently of resolve
        assert [s[2] for s in steps] == [False] * (len(steps) - 1) + [True]
        assert steps[-1][3] == games.winners[i]
        assert all(REQUIRES[TEXT.index(a)] <= s[0] and REQUIRES[TEXT.index(b)] <= s[1] for (a, b), s in zip(games[i], steps))

@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**63), player=players)
def test_generate_games_is_reproducible(seed, player):
    a, b = generate_games(200, seed=seed, player1=player), generate_games(200, seed=seed, player1=player)
    assert a.docs() == b.docs() and a.records() == b.records()
    assert generate_games(200, seed=seed + 1, player1=player).docs() != a.docs()

def test_generate_games_is_the_same_on_every_machine():
    "Pinned output: numpy's Generator is the same everywhere, so these games must never change."
    assert generate_games(3, seed=42).docs() == ['buddha to buddha , buddha to shield , end . ',
                                                 'shield to zan , buddha to shoot , end . ',
                                                 'buddha to buddha , zan to buddha , shield to buddha , end . ']

def test_generate_games_matches_seed_loop_in_distribution():
    n = 6000
    random.seed(0)
    ref = [lst_to_doc(seed_get_one_rec()) for _ in range(n)]
    ours = generate_games(n, seed=0).docs()
    rounds = lambda docs: np.array([d.count(',') for d in docs])
    assert abs(rounds(ref).mean() - rounds(ours).mean()) < 0.25
    first = lambda docs: Counter(d.split()[0] for d in docs)
    assert set(first(ours)) == set(first(ref)) == {'zan', 'shield', 'buddha'}
    for m in ('zan', 'shield', 'buddha'): assert abs(first(ours)[m] - first(ref)[m]) / n < 0.04

# ---------------------------------------------------------------- the transcript checker
legal_games = st.builds(lambda seed, p1, p2: generate_games(30, seed=seed, player1=p1, player2=p2),
                        st.integers(0, 2**32), players, players)

def _doc(rec): return lst_to_doc(rec)

@FAST
@given(games=legal_games, data=st.data())
def test_unaffordable_move_is_reported(games, data):
    rec = list(games[data.draw(st.integers(0, len(games) - 1))])
    steps = seed_replay(rec)
    # a round and a player whose energy can't pay for some move
    options = [(k, p, m) for k, s in enumerate(steps) for p in (1, 2) for m in MOVES if REQUIRES[m] > s[p - 1]]
    k, p, m = data.draw(st.sampled_from(options))
    a, b = rec[k]
    rec[k] = (m.text, b) if p == 1 else (a, m.text)
    problems = check_transcript(_doc(rec))
    e = steps[k][p - 1]
    assert f"round {k + 1}: player {p} plays '{m.text}' with {e} energy (needs {REQUIRES[m]})" in problems, problems

@FAST
@given(games=legal_games, data=st.data())
def test_missing_end_is_reported(games, data):
    doc = games.docs()[data.draw(st.integers(0, len(games) - 1))]
    assert check_transcript(doc.replace('end . ', '. ')) == ["missing 'end' before the closing '.'"]
    assert check_transcript(doc.replace('end . ', '')) == ["missing 'end .' at the close of the game"]

@FAST
@given(games=legal_games, data=st.data())
def test_round_after_the_deadly_one_is_reported(games, data):
    i = data.draw(st.integers(0, len(games) - 1))
    rec = games[i]
    extra = data.draw(st.tuples(st.sampled_from(MOVE_NAMES), st.sampled_from(MOVE_NAMES)))
    problems = check_transcript(_doc(rec + [extra]))
    assert any(p.startswith(f'round {len(rec) + 1}: play goes on after round {len(rec)}, which was deadly') for p in problems), problems

@FAST
@given(games=legal_games, data=st.data())
def test_misspelt_move_is_reported(games, data):
    rec = list(games[data.draw(st.integers(0, len(games) - 1))])
    k, p = data.draw(st.integers(0, len(rec) - 1)), data.draw(st.sampled_from([1, 2]))
    word = rec[k][p - 1]
    j = data.draw(st.integers(0, len(word) - 1))
    typo = data.draw(st.sampled_from([word[:j] + word[j + 1:], word[:j] + 'x' + word[j:], word + word[-1]]))
    assume(typo not in MOVE_NAMES and typo and typo not in ('to', 'end'))
    rec[k] = (typo, rec[k][1]) if p == 1 else (rec[k][0], typo)
    problems = check_transcript(_doc(rec))
    assert f"round {k + 1}: player {p}'s move {typo!r} is not a move" in problems, problems

@FAST
@given(text=st.text(max_size=60) | st.lists(st.sampled_from([*WORDS, 'xx', '']), max_size=30).map(' '.join))
def test_checker_never_crashes_on_garbage(text):
    problems = check_transcript(text)
    assert isinstance(problems, list) and all(isinstance(p, str) for p in problems)
    if problems == []:   # whatever it accepts must replay as a legal game under the seed's rules
        toks = text.split()
        rec = [(toks[i], toks[i + 2]) for i in range(0, len(toks) - 2, 4)]
        assert _doc(rec).split() == toks
        steps = seed_replay(rec)
        assert [s[2] for s in steps] == [False] * (len(steps) - 1) + [True]

# ---------------------------------------------------------------- the oracle
@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**32), p1=players, p2=players)
def test_oracle_rows_are_distributions_on_legal_continuations(seed, p1, p2):
    games = generate_games(40, seed=seed, player1=p1, player2=p2)
    tokens = ''.join(games.docs()).split()
    vocab = ['xxpad', *WORDS]
    probs = next_token_probs(tokens, vocab, p1, p2)
    assert probs.shape == (len(tokens), len(vocab))
    assert np.allclose(probs.sum(1), 1) and (probs >= 0).all() and (probs[:, 0] == 0).all()
    col = {w: j for j, w in enumerate(vocab)}
    assert (probs[np.arange(len(tokens)), [col[t] for t in tokens]] > 0).all()   # what happened was possible
    i = 0
    for g in range(len(games)):
        rec = games[g]
        for (a, b), (e1, e2, over, _) in zip(rec, seed_replay(rec)):
            for row, e in ((i, e1), (i + 2, e2)):        # the moves: exactly the affordable ones
                support = {vocab[j] for j in np.flatnonzero(probs[row])}
                assert support == {m.text for m in MOVES if REQUIRES[m] <= e}
            for row in (i + 1, i + 3): assert probs[row, col[tokens[row]]] == 1   # 'to' and ','
            i += 4
        assert probs[i, col['end']] == 1 and probs[i + 1, col['.']] == 1
        i += 2
    assert i == len(tokens)
    kinds = position_kinds(tokens)
    assert [POSITION_KINDS[k] for k in kinds[:4]] == ['move1', 'to', 'move2', ',']

def _echo_key(rec, k):
    "For each round of a record: the opponent's move k rounds back for player 1 and player 2 ('' where none)."
    return [(rec[i - k][1] if i >= k else '', rec[i - k][0] if i >= k else '') for i in range(len(rec))]

def _mc_floor(count_docs, eval_docs, k=None):
    """Cross-entropy on eval_docs of next-move frequencies counted per state in count_docs, states from the seed's rules.
    The state is (player, both energies); with `k`, for echo players of a cautious base, it is (player, own energy capped
    at 4 (the cautious player reads only that, and nothing above 4 changes what it can afford), the opponent's move k rounds back)."""
    counts = defaultdict(Counter)
    def moves_with_state(docs):
        for d in docs:
            toks = d.split()
            rec = [(toks[i], toks[i + 2]) for i in range(0, len(toks) - 2, 4)]
            for (a, b), (e1, e2, _, _), (x1, x2) in zip(rec, seed_replay(rec), _echo_key(rec, k or 0)):
                yield ((1, e1, e2), a) if k is None else ((1, min(e1, 4), x1), a)
                yield ((2, e2, e1), b) if k is None else ((2, min(e2, 4), x2), b)
    for state, m in moves_with_state(count_docs): counts[state][m] += 1
    nll, n_tokens = 0., sum(len(d.split()) for d in eval_docs)
    for state, m in moves_with_state(eval_docs):
        c = counts[state]
        nll -= math.log((c[m] + 0.01) / (sum(c.values()) + 0.08))
    return nll / n_tokens

@pytest.mark.parametrize('player', PLAYERS, ids=['uniform', 'sensible'])
def test_floor_matches_monte_carlo(player):
    eval_docs = generate_games(2000, seed=7, player1=player).docs()
    if player is uniform_player:            # counting corpus from the seed's own generator (Python random)
        random.seed(123); count_docs = [lst_to_doc(seed_get_one_rec()) for _ in range(20_000)]
    else: count_docs = generate_games(20_000, seed=123, player1=player).docs()
    exact = oracle_stats(eval_docs, player).cross_entropy
    assert abs(_mc_floor(count_docs, eval_docs) - exact) < 0.003

def test_floor_of_the_seed_setup():
    "100,000 uniform games give a floor of about 0.566 nats/token and a best accuracy of about 0.685."
    s = oracle_stats(generate_games(100_000, seed=42))
    assert abs(s.cross_entropy - 0.566) < 0.002 and abs(s.accuracy - 0.685) < 0.002
    pop = population_stats()
    assert abs(pop.cross_entropy - s.cross_entropy) < 0.002 and abs(pop.mean_rounds - s.mean_rounds) < 0.05

@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**32), p1=players, p2=players, data=st.data())
def test_broken_stream_names_the_game(seed, p1, p2, data):
    docs = generate_games(10, seed=seed, player1=p1, player2=p2).docs()
    g = data.draw(st.integers(0, 9))
    docs[g] = docs[g].replace('end . ', 'zan to zan , end . ')         # play after the deadly round
    start = sum(len(d.split()) for d in docs[:g])
    with pytest.raises(TranscriptError, match=f'game {g} \\(tokens {start}\\.\\.'):
        next_token_probs(''.join(docs).split(), WORDS, p1, p2)

def test_non_uniform_players_end_to_end():
    games = generate_games(3000, seed=5, player1=sensible_player, player2=uniform_player)
    docs = games.docs()
    assert all(check_transcript(d) == [] for d in docs)
    mixed = oracle_stats(docs, sensible_player, uniform_player)
    assert math.isfinite(mixed.cross_entropy) and 0 < mixed.accuracy < 1
    assert oracle_stats(docs, uniform_player).cross_entropy > mixed.cross_entropy   # the wrong model does worse
    probs = next_token_probs(''.join(docs).split(), WORDS, sensible_player, uniform_player)
    assert np.allclose(probs.sum(1), 1)
    assert abs(population_stats(sensible_player, uniform_player).cross_entropy - mixed.cross_entropy) < 0.01
    random.seed(0)
    recs = [get_one_rec(sensible_player, uniform_player) for _ in range(200)]
    assert all(check_transcript(lst_to_doc(r)) == [] for r in recs)

# ---------------------------------------------------------------- history players (EchoPlayer)
HISTORY_PLAYERS = [EchoPlayer(1, 0.5), EchoPlayer(3, 0.8, uniform_player), EchoPlayer(2, 0.3, sensible_player)]   # p < 1: two players who always echo can loop forever
any_players = st.sampled_from(PLAYERS + [cautious_player] + HISTORY_PLAYERS)

@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**63), p1=any_players, p2=any_players)
def test_games_of_history_players_are_legal(seed, p1, p2):
    games = generate_games(100, seed=seed, player1=p1, player2=p2)
    for i, doc in enumerate(games.docs()):
        assert check_transcript(doc) == [], doc
        assert seed_replay(games[i])[-1][3] == games.winners[i]
    assert games.docs() == generate_games(100, seed=seed, player1=p1, player2=p2).docs()

@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**32), k=st.integers(1, 6), player=st.sampled_from(PLAYERS + [cautious_player]))
def test_echo_with_p0_plays_the_base_games(seed, k, player):
    "p = 0 gives exactly the base's probabilities, so the same seed gives byte-identical games."
    assert generate_games(200, seed=seed, player1=EchoPlayer(k, 0.0, player)).docs() == generate_games(200, seed=seed, player1=player).docs()

def test_echo_p1_always_echoes_when_affordable():
    k = 3
    games = generate_games(500, seed=11, player1=EchoPlayer(k, 1.0, uniform_player), player2=uniform_player)
    n = 0
    for g in range(len(games)):
        rec = games[g]
        for (a, _), (e1, _, _, _), (echo, _) in zip(rec, seed_replay(rec), _echo_key(rec, k)):
            if echo and REQUIRES[TEXT.index(echo)] <= e1: assert a == echo; n += 1
    assert n > 500

def test_datagen_plays_history_players():
    random.seed(5)
    recs = [get_one_rec(EchoPlayer(1, 1.0, uniform_player), cautious_player) for _ in range(100)]
    for rec in recs:
        assert check_transcript(lst_to_doc(rec)) == []
        for (a, _), (e1, _, _, _), (echo, _) in zip(rec, seed_replay(rec), _echo_key(rec, 1)):
            if echo and REQUIRES[TEXT.index(echo)] <= e1: assert a == echo

@pytest.mark.parametrize('bad, msg', [((0,), 'k must be a whole number'), ((-2,), 'k must be a whole number'), ((1.5,), 'k must be a whole number'),
                                      ((2, -0.1), 'p must be a probability'), ((2, 2), 'p must be a probability'), ((2, '0.5'), 'p must be a probability'),
                                      ((2, 0.5, 'zan'), 'base must be a player')])
def test_echo_player_arguments(bad, msg):
    with pytest.raises(ValueError, match=msg): EchoPlayer(*bad)

@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**32), p1=st.sampled_from(HISTORY_PLAYERS), p2=any_players)
def test_oracle_of_history_players_replays_the_history(seed, p1, p2):
    "Every move row equals the player asked directly with the game's own energies and past moves."
    games = generate_games(30, seed=seed, player1=p1, player2=p2)
    tokens = ''.join(games.docs()).split()
    probs = next_token_probs(tokens, WORDS, p1, p2)
    assert np.allclose(probs.sum(1), 1)
    col = {w: j for j, w in enumerate(WORDS)}
    assert (probs[np.arange(len(tokens)), [col[t] for t in tokens]] > 0).all()
    i = 0
    for g in range(len(games)):
        rec = games[g]
        for r, (e1, e2, _, _) in enumerate(seed_replay(rec)):
            past = rec[:r][::-1]
            for row, pl, me, opp, mine, theirs in ((i, p1, e1, e2, [a for a, b in past], [b for a, b in past]),
                                                   (i + 2, p2, e2, e1, [b for a, b in past], [a for a, b in past])):
                H = history_len(pl)
                pad = lambda ms: np.array([[TEXT.index(m) for m in ms[:H]] + [0] * (H - len(ms[:H]))])
                assert np.allclose(probs[row, :8], move_probs(pl, [me], [opp], pad(mine), pad(theirs))[0])
            i += 4
        i += 2
    assert i == len(tokens)

def test_echo_floor_matches_monte_carlo():
    "The oracle's floor equals the cross-entropy of frequencies counted per (energies, echoed move) in another corpus."
    k, player = 2, EchoPlayer(2, 0.5)
    eval_docs = generate_games(1000, seed=7, player1=player).docs()
    count_docs = generate_games(10_000, seed=123, player1=player).docs()
    exact = oracle_stats(eval_docs, player)
    assert abs(_mc_floor(count_docs, eval_docs, k) - exact.cross_entropy) < 0.005
    assert exact.cross_entropy < oracle_stats(eval_docs, cautious_player).cross_entropy < oracle_stats(eval_docs, uniform_player).cross_entropy

def test_population_stats_refuses_history_players():
    with pytest.raises(ValueError, match='use oracle_stats on a large sample'): population_stats(EchoPlayer(3))
    with pytest.raises(ValueError, match='reads the last 3 rounds'): population_stats(uniform_player, EchoPlayer(3))

def test_cautious_games_are_long():
    pop = population_stats(cautious_player)
    assert 15 < pop.mean_rounds < 30
    assert abs(generate_games(5000, seed=0, player1=cautious_player).lengths.mean() - pop.mean_rounds) < 1
