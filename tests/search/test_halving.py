
import numpy as np
import pytest

from nb360.search.halving import Hyperband, SuccessiveHalving
from nb360.search.runner import TabularSimulator, run_search
from nb360.spaces.nb201 import Arch


def test_bracket_plans_follow_hyperband():
    # Li et al. (JMLR 2018), Table 1: R = 81, eta = 3
    hb = Hyperband(rng=0, max_epochs=81)
    assert hb.s_max == 4
    plans = [hb.bracket_plan(s) for s in range(4, -1, -1)]
    assert [n for n, _ in plans] == [81, 34, 15, 8, 5]
    assert [r[0] for _, r in plans] == [1, 3, 9, 27, 81]
    assert SuccessiveHalving(rng=0, max_epochs=12).bracket_plan(2) == (9, [1, 4, 12])  # NATS-Bench's BOHB budgets
    assert SuccessiveHalving(rng=0, max_epochs=1).bracket_plan(0) == (1, [1])
    with pytest.raises(ValueError, match="min_epochs <= max_epochs"):
        SuccessiveHalving(rng=0, max_epochs=3, min_epochs=4)


def test_rungs_promote_the_best_third():
    sh = SuccessiveHalving(rng=0, max_epochs=9)  # 9 archs at 1 epoch, 3 at 3, 1 at 9
    first = [sh.ask_trial() for _ in range(9)]
    assert [t.budget for t in first] == [1] * 9
    scores = {t.arch: float(k) for k, t in enumerate(first)}
    for t in reversed(first):  # any order
        sh.tell(t.arch, scores[t.arch], t.budget)
    second = [sh.ask_trial() for _ in range(3)]
    assert [t.budget for t in second] == [3] * 3 and [t.arch for t in second] == [t.arch for t in first[:3]]
    for t in second:
        sh.tell(t.arch, scores[t.arch], t.budget)
    last = sh.ask_trial()
    assert last == type(last)(first[0].arch, 9)
    sh.tell(last.arch, 0.0, 9)
    assert sh.ask_trial().budget == 1  # a new bracket


def test_asks_never_block_and_unknown_tells_fail():
    sh = SuccessiveHalving(rng=0, max_epochs=9)
    trials = [sh.ask_trial() for _ in range(20)]  # nothing told: brackets 1, 2 and part of 3 open
    assert [t.budget for t in trials] == [1] * 20
    with pytest.raises(ValueError, match="was not asked"):
        sh.tell(Arch.from_index(0) if Arch.from_index(0) not in {t.arch for t in trials} else Arch.from_index(1), 0.1)
    hb = Hyperband(rng=0, max_epochs=9)
    budgets = []
    while len(budgets) < 9 + 3 + 1 + 5 + 3:
        t = hb.ask_trial()
        budgets.append(t.budget)
        hb.tell(t.arch, float(np.random.default_rng(len(budgets)).random()), t.budget)
    # bracket s=2 (9@1, 3@3, 1@9), then s=1 (5@3, 1@9), then s=0 (3@9)
    assert budgets == [1] * 9 + [3] * 3 + [9] + [3] * 5 + [9] + [9] * 2


def test_charges_the_asked_epochs_and_less_time_than_full_training(synthetic):
    sim = TabularSimulator(synthetic)
    sh = run_search(synthetic, "sh", seed=0, queries=130, sim=sim)
    rs = run_search(synthetic, "rs", seed=0, queries=130, sim=sim)
    assert sh.epochs[:8] == [1, 1, 1, 4] * 2  # 4 epochs, eta 3: brackets of 3 archs at 1 epoch, the best at 4
    clock = 0.0
    for i, e, seconds in zip(sh.index, sh.epochs, sh.sim_seconds):
        charged = seconds - clock
        assert any(charged == pytest.approx(synthetic.simulate(i, e, seed=s)[1]) for s in synthetic.seeds)
        clock = seconds
    assert sh.sim_seconds[-1] < 0.6 * rs.sim_seconds[-1]
    hb = run_search(synthetic, "hb", seed=0, queries=130, sim=sim)
    assert sh.sim_seconds[-1] < hb.sim_seconds[-1] < rs.sim_seconds[-1]


def test_with_a_time_budget_halving_beats_random_search(synthetic):
    sim = TabularSimulator(synthetic)
    final = {algo: np.array([run_search(synthetic, algo, s, time_budget=400.0, sim=sim).regret[-1] for s in range(20)])
             for algo in ("rs", "sh")}
    assert not np.isnan(final["sh"]).any()
    assert final["sh"].mean() < final["rs"].mean(), {k: v.mean() for k, v in final.items()}
