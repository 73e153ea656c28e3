import json
import math

import numpy as np
import pandas as pd
import pytest

from nb360.search import Searcher, Trial, runner
from nb360.search.random import RandomSearch
from nb360.search.runner import TabularSimulator, run, run_many, run_search, search_rngs
from nb360.spaces.nb201 import Arch
from nb360.table.benchmark import Benchmark
from nb360.table.manifest import DEFAULT_TABLE
from synthetic_table import write_table  # tests/search, on the path through conftest.py


class Spy(RandomSearch):
    """Random search that records everything it is told."""

    def __init__(self, rng=0):
        super().__init__(rng)
        self.told = []

    def tell(self, arch, score, budget=None):
        self.told.append((arch.index, score, budget))


def _simulated_values(bench, index, epochs):
    return {bench.simulate(index, epochs, seed=s) for s in bench.seeds}


def test_each_query_is_a_simulated_run_of_one_seed(synthetic):
    trace = run_search(synthetic, "rs", seed=0, queries=300)
    clock = 0.0
    for i, e, val, seconds in zip(trace.index, trace.epochs, trace.val, trace.sim_seconds):
        assert e == synthetic.epochs
        charged = seconds - clock
        assert any(val == pytest.approx(v, abs=1e-6) and charged == pytest.approx(s, abs=1e-4)
                   for v, s in _simulated_values(synthetic, i, e))
        clock = seconds
    # both seeds' runs get drawn
    per_seed = [synthetic.simulate(i, seed=0)[0] for i in trace.index]
    assert 0 < sum(v == pytest.approx(p, abs=1e-7) for v, p in zip(trace.val, per_seed)) < len(per_seed)


def test_the_searcher_is_told_validation_scores_never_test(synthetic):
    spy = Spy(0)
    sim = TabularSimulator(synthetic)
    trace = run(spy, sim, np.random.default_rng(0), queries=500)
    assert [(i, v) for i, v, _ in spy.told] == list(zip(trace.index, trace.val))
    tests = synthetic.at_epoch("test_metric")
    for (i, score, _), test in zip(spy.told, trace.test):
        assert score not in tests[i].tolist() and score != test  # the synthetic table's test differs from val


def test_regret_is_the_incumbents_test_regret(synthetic):
    trace = run_search(synthetic, "re", seed=4, queries=200)
    best_test = np.nanmin(synthetic.final("test_metric"))
    for n in (1, 10, 57, 200):
        incumbent = trace.index[int(np.argmin(trace.val[:n]))]
        assert trace.regret[n - 1] == pytest.approx(synthetic.regret(incumbent), abs=1e-9)
        assert trace.regret[n - 1] == pytest.approx(synthetic.final("test_metric")[incumbent] - best_test)
    for n in range(1, len(trace)):  # the incumbent changes only when a validation score improves
        if trace.regret[n] != trace.regret[n - 1]:
            assert trace.val[n] < min(trace.val[:n])


def test_a_seed_reproduces_a_search(synthetic):
    a, b = (run_search(synthetic, "re", seed=7, queries=150) for _ in range(2))
    assert a == b
    assert run_search(synthetic, "re", seed=8, queries=150).index != a.index
    assert search_rngs(3)[0].random() != search_rngs(3)[1].random()


def test_time_budget_stops_at_the_query_that_crosses_it(synthetic):
    trace = run_search(synthetic, "rs", seed=1, time_budget=500.0)
    assert trace.sim_seconds[-2] < 500.0 <= trace.sim_seconds[-1]
    both = run_search(synthetic, "rs", seed=1, time_budget=500.0, queries=5)
    assert len(both) == 5 and both.index == trace.index[:5]


def test_missing_archs_score_nan_cost_nothing_and_are_told_inf(nats):
    spy = Spy(2)
    trace = run(spy, TabularSimulator(nats), np.random.default_rng(0), queries=3000)
    have_runs = set(np.flatnonzero(np.isfinite(nats.at_epoch("val_metric")).any(axis=1)).tolist())
    first_hit = next(n for n, i in enumerate(trace.index) if i in have_runs)
    assert all(math.isnan(r) for r in trace.regret[:first_hit]) and not math.isnan(trace.regret[first_hit])
    clock = 0.0
    for (i, told, _), val, seconds in zip(spy.told, trace.val, trace.sim_seconds):
        if i in have_runs:
            assert told == val and seconds > clock
            assert val in {v for v, _ in _simulated_values(nats, i, None)}
        else:
            assert math.isnan(val) and told == math.inf and seconds == clock
        clock = seconds
    # an arch that ran seed 777 only always gets that run
    single = [i for i in trace.index if i in have_runs and np.isnan(nats.at_epoch("val_metric")[i, 1])]
    assert single and all(trace.val[trace.index.index(i)] == nats.simulate(i, seed=777)[0] for i in single)


def test_bad_budgets_and_bad_trials(synthetic):
    sim = TabularSimulator(synthetic)
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="give a budget"):
        run(RandomSearch(0), sim, rng)
    with pytest.raises(ValueError, match="budgets must be positive"):
        run(RandomSearch(0), sim, rng, queries=0)

    class TooLong(Searcher):
        def ask_trial(self):
            return Trial(Arch.from_index(0), 99)

    with pytest.raises(ValueError, match="asked for 99 epochs; the table .* has 1..4"):
        run(TooLong(), sim, rng, queries=3)

    class Strings(Searcher):
        def ask(self):
            return "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"

    with pytest.raises(ValueError, match="a searcher asks for nb360 Arch values"):
        run(Strings(), sim, rng, queries=3)


def test_run_many_frame(synthetic):
    trials = run_many(synthetic, ["rs", "ls"], seeds=[0, 1, 2], queries=20, progress=False)
    assert list(trials.columns) == ["algo", "seed", "trial", "arch", "index", "epochs", "val", "test", "sim_seconds",
                                    "regret"]
    assert len(trials) == 120 and trials.groupby(["algo", "seed"]).size().eq(20).all()
    row = trials.iloc[7]
    assert Arch.from_str(row["arch"]).index == row["index"]
    again = run_search(synthetic, "ls", seed=2, queries=20)
    assert trials[(trials.algo == "ls") & (trials.seed == 2)]["index"].tolist() == again.index


def test_run_many_in_worker_processes_gives_the_same_frame(synthetic):
    kwargs = dict(seeds=[0, 1, 2], queries=25, proxy="quality", progress=False)
    algos = ["rs", "bananas", "zc-re"]
    pd.testing.assert_frame_equal(run_many(synthetic, algos, workers=2, **kwargs), run_many(synthetic, algos, **kwargs))
    with pytest.raises(ValueError, match="workers must be >= 1"):
        run_many(synthetic, ["rs"], seeds=[0], queries=5, workers=0)


# ---- partial tables --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def partial(tmp_path_factory):
    """The synthetic landscape with 10,000 of the 15,625 cells never trained."""
    return Benchmark.load(write_table(tmp_path_factory.mktemp("partial") / "partial.h5", missing=10000))


def test_skipping_unscored_cells_spends_every_query_on_a_scored_one(partial):
    failing = run_many(partial, ["rs", "re"], seeds=range(3), queries=60, progress=False)
    skipping = run_many(partial, ["rs", "re"], seeds=range(3), queries=60, progress=False, unscored="skip")
    assert failing["val"].isna().mean() > 0.5  # most asks of a 36%-complete table hit unscored cells
    assert len(skipping) == len(failing) and skipping["val"].notna().all()
    assert np.isfinite(partial.final()[skipping["index"]]).all()


def test_skipping_gives_regularized_evolution_back_its_lead_on_a_partial_table(partial):
    """Told as failures, unscored cells fill RE's population and RE falls behind random search
    (docs/search.md); skipped, RE searches the scored cells and is ahead again."""
    def mean_final_regret(algo, unscored):
        trials = run_many(partial, [algo], seeds=range(30), queries=100, progress=False, unscored=unscored)
        return trials.groupby("seed")["regret"].last().mean()

    assert mean_final_regret("re", "skip") < mean_final_regret("rs", "skip") < mean_final_regret("re", "fail")


def test_skipping_is_refused_where_it_cannot_work(partial, monkeypatch):
    with pytest.raises(ValueError, match="sh waits for every result"):
        run_many(partial, ["rs", "sh"], seeds=[0], queries=10, unscored="skip")
    with pytest.raises(ValueError, match="unscored must be one of fail, skip"):
        run_many(partial, ["rs"], seeds=[0], queries=10, unscored="ignore")
    unscored = Arch.from_index(int(np.flatnonzero(np.isnan(partial.final()))[0]))

    class Stuck(Searcher):
        def ask(self):
            return unscored

    monkeypatch.setattr(runner, "MAX_SKIPS", 50)
    with pytest.raises(ValueError, match="asked 50 cells in a row that .* has no run of"):
        run(Stuck(), TabularSimulator(partial), np.random.default_rng(0), queries=5, unscored="skip")


@pytest.mark.parametrize("unscored", ["fail", "skip"])
def test_a_constrained_search_keeps_and_scores_only_cells_within(unscored):
    """Cells outside the constraint have no run to draw: they cost no time, are never the incumbent,
    and regret is measured against the best cell within (with "skip", they are no query at all)."""
    bench = Benchmark.load(DEFAULT_TABLE)
    flops = bench.df["flops"].to_numpy()
    bound = float(np.nanquantile(flops, 0.3))
    best_within = bench.best("test_metric", {"flops": bound})[1]
    for seed in range(3):
        trace = run_search(bench, "re", seed, queries=80, constraints={"flops": bound}, unscored=unscored)
        inside = flops[trace.index] <= bound
        assert inside.all() if unscored == "skip" else (~inside).any()
        assert np.isnan(np.asarray(trace.val)[~inside]).all()
        assert np.all(np.diff(np.r_[0.0, trace.sim_seconds])[~inside] == 0)  # no time for a cell never trained
        incumbent = int(np.asarray(trace.index)[np.nanargmin(trace.val)])
        assert flops[incumbent] <= bound
        assert trace.regret[-1] == pytest.approx(bench.final("test_metric")[incumbent] - best_within)
    with pytest.raises(ValueError, match="among the cells within"):
        run_search(bench, "rs", 0, queries=5, constraints={"flops": 0.0})


def test_the_search_command_records_constraints_and_refuses_others(cli, tmp_path):
    out = tmp_path / "constrained"
    args = ["search", "--table", DEFAULT_TABLE, "--algo", "rs", "--budget", "20", "--seeds", "2",
            "--out", str(out)]
    first = cli(*args, "--constraint", "flops<=1.5e6")
    assert first.returncode == 0 and "within flops<=1.5e6" in first.stdout, first.stderr
    best = json.loads((out / "best.json").read_text())
    table = Benchmark.load(DEFAULT_TABLE).df
    assert all(table.loc[run["index"], "flops"] <= 1.5e6 for runs in best.values() for run in runs.values())
    other = cli(*args, "--constraint", "flops<=2e6")
    assert other.returncode == 2 and "other settings" in other.stderr and "constraints" in other.stderr
