import math

import numpy as np
import pytest

from nb360.search.reinforce import Reinforce
from nb360.spaces.nb201 import NUM_EDGES


def _score(arch):
    """Separable: each edge prefers operation (edge mod 5); 0 is the best score."""
    return float(sum(op != e % 5 for e, op in enumerate(arch.ops)))


def test_policy_concentrates_on_the_best_operations():
    s = Reinforce(rng=0)
    p0 = s.probabilities()
    assert np.allclose(p0, 0.2, atol=1e-3)  # NATS-Bench's near-uniform start
    scores = []
    for _ in range(600):
        arch = s.ask()
        scores.append(_score(arch))
        s.tell(arch, scores[-1])
    p = s.probabilities()
    assert np.allclose(p.sum(axis=1), 1.0)
    best = p[np.arange(NUM_EDGES), np.arange(NUM_EDGES) % 5]
    assert (best > 0.5).all(), best
    assert np.mean(scores[-100:]) < 0.5 * np.mean(scores[:100])


def test_failed_evaluations_change_nothing_and_seed_reproduces():
    s = Reinforce(rng=3)
    logits = s.logits.copy()
    s.tell(s.ask(), math.inf)
    assert np.array_equal(s.logits, logits)
    a, b = Reinforce(rng=3), Reinforce(rng=3)
    for _ in range(20):
        x, y = a.ask(), b.ask()
        assert x == y
        a.tell(x, _score(x))
        b.tell(y, _score(y))
    assert np.array_equal(a.logits, b.logits)
    with pytest.raises(ValueError, match="learning_rate > 0"):
        Reinforce(rng=0, learning_rate=0)


def test_beats_random_search_on_a_smooth_table(final_regrets):
    rs, rl = final_regrets("rs", queries=300), final_regrets("reinforce", queries=300)
    assert rl.mean() < rs.mean(), (rl.mean(), rs.mean())
