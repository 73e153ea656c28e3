"""Multi-objective search on the runner: what searchers are told, found fronts, hypervolume regret."""

import json
import math
from itertools import combinations

import numpy as np
import pandas as pd
import pytest

from nb360.search.base import Searcher
from nb360.search.objectives import FoundFront, FrontScorer, check
from nb360.search.report import found_front, found_fronts
from nb360.search.runner import COLUMNS, HV_REGRET, TabularSimulator, run, run_many, run_search
from nb360.search.space import all_archs
from nb360.table.benchmark import Benchmark
from nb360.table.pareto import HV_REFERENCE, hypervolume
from nb360.table.manifest import DEFAULT_TABLE

OBJECTIVES = ["val_metric", "flops"]


@pytest.fixture(scope="module")
def darcy():
    return Benchmark.load(DEFAULT_TABLE)


def test_objectives_are_the_validation_error_then_costs():
    assert check(["val_metric", "params", "flops"]) == ["val_metric", "params", "flops"]
    for bad in (["flops", "val_metric"], ["test_metric", "flops"], ["val_metric"], ["val_metric", "flops", "flops"],
                ["val_metric", "params", "flops", "train_seconds"], ["val_metric", "accuracy"]):
        with pytest.raises(ValueError, match="expected val_metric then one or two different costs"):
            check(bad)


def test_hypervolume_against_a_hand_computed_staircase():
    # two points in the unit square, reference 1.1: the union of two boxes
    points = np.array([[0.2, 0.5], [0.5, 0.2]])
    r = HV_REFERENCE
    expected = (r - 0.2) * (r - 0.5) + (r - 0.5) * (r - 0.2) - (r - 0.5) * (r - 0.5)
    assert hypervolume(points) == pytest.approx(expected)
    assert hypervolume(np.empty((0, 2))) == 0.0


def test_the_true_front_scores_zero_and_nothing_scores_one(darcy):
    sim = TabularSimulator(darcy, objectives=OBJECTIVES)
    scorer = sim.scorer
    assert set(scorer.true_front) == set(darcy.pareto(["test_metric", "flops"]).index)
    assert scorer.regret(scorer.true_front) == pytest.approx(0.0, abs=1e-12)
    assert scorer.regret([]) == 1.0
    # a subset of the front scores worse than the front and no better than a smaller subset
    half = scorer.true_front[::2]
    assert 0 < scorer.regret(half) <= scorer.regret(half[:1]) < 1


def test_the_found_front_kept_during_a_search_is_the_brute_force_one(darcy):
    """`FoundFront`, updated query by query, against `report.found_front` and an O(n^2) check."""
    sim = TabularSimulator(darcy, objectives=OBJECTIVES)
    rng = np.random.default_rng(0)
    front = FoundFront(sim.scorer)
    observed = []
    for index in rng.integers(0, len(all_archs()), 300).tolist():
        point = sim.scorer.observed(index, float(darcy.final("val_metric")[index]), 0.0)
        observed.append((point, index))
        front.add(index, point)
    finite = [(p, i) for p, i in observed if np.isfinite(p).all()]
    brute = {i for p, i in finite
             if not any(all(a <= b for a, b in zip(q, p)) and q != p for q, _ in finite)}
    assert {i for _, i in front.members} == brute
    assert front.regret == pytest.approx(sim.scorer.regret(sorted(brute)))


def test_a_multi_objective_search_tells_error_and_costs_and_records_its_front(darcy):
    told = []

    class Recorder(Searcher):
        multi_objective = True

        def ask(self):
            return all_archs()[int(self.rng.integers(15625))]

        def tell(self, arch, score, budget=None):
            told.append(score)

    objectives = ["val_metric", "params", "train_seconds"]
    sim = TabularSimulator(darcy, objectives=objectives)
    trace = run(Recorder(0), sim, np.random.default_rng(1), queries=50)
    params = darcy.df["params"].to_numpy()
    for score, index, val, cost, clock in zip(told, trace.index, trace.val, trace.costs,
                                               np.diff(np.r_[0.0, trace.sim_seconds])):
        assert len(score) == 3 and score[1] == params[index] == cost[0]
        assert score[0] == val or (math.isinf(score[0]) and math.isnan(val))
        assert score[2] == pytest.approx(clock)  # the drawn run's training time, as charged to the clock
    frame = run_many(darcy, [Recorder], [0, 1], queries=40, progress=False, objectives=objectives)
    assert list(frame.columns) == [*COLUMNS, "params", "train_seconds", HV_REGRET]
    for _, rows in frame.groupby("seed"):
        found = found_front(rows, objectives)
        reported = sim.scorer.regret(found["index"].tolist())
        assert rows[HV_REGRET].iloc[-1] == pytest.approx(reported)


def test_single_objective_searchers_are_refused_and_same_seed_same_front(darcy):
    with pytest.raises(ValueError, match="re minimises one score.*mo-re"):
        run_many(darcy, ["re"], [0], queries=5, progress=False, objectives=OBJECTIVES)
    for algo in ("mo-re", "rs"):
        a = run_search(darcy, algo, 3, queries=60, objectives=OBJECTIVES)
        b = run_search(darcy, algo, 3, queries=60, objectives=OBJECTIVES)
        assert a.index == b.index and a.hv_regret == b.hv_regret


def test_a_constrained_multi_objective_search_finds_fronts_within(darcy):
    bound = float(np.nanquantile(darcy.df["flops"], 0.5))
    frame = run_many(darcy, ["mo-re"], range(3), queries=80, progress=False, objectives=OBJECTIVES,
                     constraints={"flops": bound})
    for runs in found_fronts(frame)["mo-re"].values():
        assert runs["front"] and all(cell["flops"] <= bound for cell in runs["front"])
    sim = TabularSimulator(darcy, {"flops": bound}, OBJECTIVES)
    assert (darcy.df.loc[sim.scorer.true_front, "flops"] <= bound).all()


def test_a_table_without_the_cost_is_refused(darcy):
    with pytest.raises(ValueError, match="no latency_ms column with values"):
        FrontScorer(darcy, ["val_metric", "latency_ms"], np.ones(15625, dtype=bool))


def test_the_search_command_runs_a_multi_objective_search(cli, tmp_path):
    out = tmp_path / "mo"
    args = ["search", "--table", DEFAULT_TABLE, "--algo", "rs,mo-re", "--budget", "30", "--seeds", "2",
            "--out", str(out)]
    result = cli(*args, "--objectives", "val_metric,flops")
    assert result.returncode == 0 and "hypervolume regret" in result.stdout, result.stderr
    trials = pd.read_csv(out / "trials.csv")
    assert list(trials.columns) == [*COLUMNS, "flops", HV_REGRET] and len(trials) == 2 * 2 * 30
    best = json.loads((out / "best.json").read_text())
    fronts = [run["front"] for runs in best.values() for run in runs.values()]
    for front in fronts:  # a front: no member beats another on both objectives
        for a, b in combinations(front, 2):
            assert not (a["val"] <= b["val"] and a["flops"] <= b["flops"])
            assert not (b["val"] <= a["val"] and b["flops"] <= a["flops"])
    assert (out / "regret.png").stat().st_size > 0
    resumed = cli(*args, "--objectives", "val_metric,flops")
    assert resumed.returncode == 0 and "4 of the 4 searches asked are there already" in resumed.stdout
    other = cli(*args, "--objectives", "val_metric,params")
    assert other.returncode == 2 and "objectives" in other.stderr
    bad = cli(*args[:-1], str(tmp_path / "bad"), "--objectives", "flops")
    assert bad.returncode == 2 and "expected val_metric then one or two" in bad.stderr
    single = cli(*args[:-1], str(tmp_path / "single"), "--algo", "re", "--objectives", "val_metric,flops")
    assert single.returncode == 2 and "minimises one score" in single.stderr
