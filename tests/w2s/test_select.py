import numpy as np
import pytest

from nb360.w2s.select import select_sources
from nb360.w2s.synthetic import OVERLAP, SyntheticData, SyntheticProblem, _logistic, source_selection


def two_sources(seed: int = 0, densities=(0.1, 0.9), n: int = 600):
    problem = SyntheticProblem.make(seed=seed)
    rng = np.random.default_rng(seed)
    train = problem.sample(500, 0.5, rng)
    weak = _logistic(train.weak_view, train.y)
    parts = [problem.sample(n, d, rng) for d in densities]
    pool = SyntheticData(np.concatenate([p.x for p in parts]), np.concatenate([p.y for p in parts]),
                         np.concatenate([p.group for p in parts]), problem.d_easy)
    sources = [np.arange(n), np.arange(n, 2 * n)]
    return sources, weak.predict_proba(pool.weak_view), pool


def test_ucb_spends_the_budget_on_the_overlap_richest_source_and_beats_random():
    """Two sources of 10% and 90% overlap, 3 seeds, 20 rounds of 50 points. Measured: UCB spends ~70% of
    its rounds on the rich source (random ~50%) and buys ~0.66 true overlap density (random ~0.50)."""
    result = source_selection((0.1, 0.9), seeds=3, n_per_source=1500, budget=1000, batch_size=50)
    mean = result.groupby("policy")[["richest_share", "true_density", "detected_density"]].mean()
    assert mean.loc["ucb", "richest_share"] > 0.6
    assert mean.loc["ucb", "true_density"] > mean.loc["random", "true_density"] + 0.05
    assert mean.loc["fixed", "richest_share"] == 1.0  # the best fixed source in hindsight is the rich one
    assert mean.loc["fixed", "true_density"] > mean.loc["ucb", "true_density"]
    assert (result["rounds"] == 20).all()


def test_rounds_log_and_chosen_points():
    sources, probs, pool = two_sources()
    chosen, log = select_sources(sources, probs, pool.x, budget=200, policy="ucb", batch_size=40, seed=3)
    assert len(chosen) == 200 and len(set(chosen.tolist())) == 200  # no point bought twice
    assert [r["round"] for r in log] == list(range(5))
    assert [r["source"] for r in log[:2]] == [0, 1]  # every source once before the index decides
    assert log[0]["ucb"] is None and len(log[2]["ucb"]) == 2
    for r in log:
        assert 0 <= r["overlap_fraction"] <= 1 and r["drawn"] == 40
    # the same seed draws the same points
    again, _ = select_sources(sources, probs, pool.x, budget=200, policy="ucb", batch_size=40, seed=3)
    assert np.array_equal(chosen, again)


def test_a_fixed_source_and_an_exhausted_one():
    sources, probs, pool = two_sources(n=100)
    chosen, log = select_sources(sources, probs, pool.x, budget=200, policy="fixed", batch_size=25, fixed_source=1)
    assert {r["source"] for r in log} == {1} and len(chosen) == 100  # the source ran out after 4 rounds
    assert pool.group[chosen].tolist().count(OVERLAP) == 90
    chosen, log = select_sources(sources, probs, pool.x, budget=300, policy="random", batch_size=25)
    assert len(chosen) == 200 and len(log) == 8  # both sources drained, then it stops


@pytest.mark.parametrize("kwargs, message", [
    (dict(policy="greedy"), "unknown policy"),
    (dict(batch_size=2), "batch_size >= 4"),
    (dict(budget=10, batch_size=20), "budget >= batch_size"),
    (dict(fixed_source=5, policy="fixed"), "fixed_source"),
])
def test_bad_arguments(kwargs, message):
    sources, probs, pool = two_sources(n=50)
    args = dict(budget=100, batch_size=20) | kwargs
    with pytest.raises(ValueError, match=message):
        select_sources(sources, probs, pool.x, **args)


def test_bad_sources():
    _, probs, pool = two_sources(n=50)
    with pytest.raises(ValueError, match=r"lie in \[0, 100\)"):
        select_sources([np.arange(50), np.arange(90, 110)], probs, pool.x, budget=40)
    with pytest.raises(ValueError, match="non-empty"):
        select_sources([np.arange(50), np.array([], dtype=int)], probs, pool.x, budget=40)
