import numpy as np
import pandas as pd
import pytest
from scipy import stats

from nb360.hypotheses import pareto
from nb360.hypotheses.common import by_class
from nb360.search.space import op_table
from nb360.spaces.nb201 import NUM_ARCHS, OPS, iso_class_representatives

from .conftest import check_outputs, write_cost_file, write_table


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    """Two tasks with the same random errors and FLOPs (so fronts carry over exactly), and a third
    whose errors are reversed."""
    rng = np.random.default_rng(0)
    error = rng.uniform(0.1, 0.9, NUM_ARCHS)
    flops = rng.integers(10_000, 1_000_000, NUM_ARCHS).astype(float)
    folder = tmp_path_factory.mktemp("pareto")
    return [write_table(folder / f"{task}.h5", e, val=e, params=flops / 10, flops=flops, task=task)
            for task, e in (("a", error), ("b", error), ("reversed", 1 - error))]


def brute_front(cost, error):
    scored = np.flatnonzero(np.isfinite(cost) & np.isfinite(error))
    return {i for i in scored if not np.any((cost[scored] <= cost[i]) & (error[scored] <= error[i])
                                            & ((cost[scored] < cost[i]) | (error[scored] < error[i])))}


def test_fronts_shapes_operations_and_transfer_against_brute_force(tmp_path, tables):
    costs = write_cost_file(tmp_path / "costs.h5", tasks=("darcyflow", "digits", "ecg"))
    report = pareto.run(tmp_path / "out", tables=tables, costs=costs)
    check_outputs(report, ["shape", "operations", "fronts", "transfer", "task_flops"], pngs=3)
    a = tables[0]
    rows = a.class_rows()
    cost, error = by_class(a.df["flops"], rows), by_class(a.final("test_metric"), rows)
    front = brute_front(cost, error)
    found = report.frames["fronts"].query("table == 'a'")
    assert set(found["index"]) == {int(rows[i]) for i in front} and found["flops"].is_monotonic_increasing
    shape = report.frames["shape"].set_index("table").loc["a"]
    best = np.nanargmin(error)
    for tol in pareto.TOLERANCES:  # the cheapest class within the tolerance, over all classes
        within = error <= error[best] * (1 + tol)  # errors > 0 here
        assert shape[f"flops_share_{tol * 100:.0f}pct"] == pytest.approx(cost[within].min() / cost[best])
    assert shape["front_size"] == len(front) and shape["seed_classes"] == 0  # one seed: nothing to compare
    ops = report.frames["operations"].query("table == 'a'").set_index("op")
    edges = op_table()[rows[sorted(front)]].ravel()
    assert ops.loc[OPS[3], "front_share"] == pytest.approx(np.mean(edges == 3))
    assert ops["front_share"].sum() == pytest.approx(1) and ops["all_share"].sum() == pytest.approx(1)
    transfer = report.frames["transfer"].set_index(["front_of", "ranked_on"])
    same, reversed_ = transfer.loc[("a", "b")], transfer.loc[("a", "reversed")]
    assert same["median_percentile"] < 0.2 < 0.8 < reversed_["median_percentile"]
    assert same["front_cells"] == len(front)
    flops = pd.read_csv(report.csv("task_flops")).set_index(["task_a", "task_b"])
    import h5py

    with h5py.File(costs) as f:
        reps = iso_class_representatives()
        expected = stats.spearmanr(f["darcyflow/flops"][()][reps], f["ecg/flops"][()][reps]).statistic
    assert flops.loc[("darcyflow", "ecg"), "spearman"] == pytest.approx(expected)
    assert "error-FLOPs front holds" in report.answer and "Across the cost file's tasks" in report.answer


def test_two_seeds_that_agree_give_the_same_front(tmp_path, tables):
    cost = np.linspace(1.0, 2.0, 50)
    error = 1.0 / cost + np.random.default_rng(1).normal(0, 0.01, 50)
    same = pareto.seed_fronts(cost, np.c_[error, error])
    assert same["seed_jaccard"] == 1.0 and same["seed_hv_regret"] == pytest.approx(0.0)
    worse = error + 0.5 * np.isin(np.arange(50), pareto.front_of(cost, error))  # seed 1 spoils seed 0's front
    other = pareto.seed_fronts(cost, np.c_[error, worse])
    assert other["seed_jaccard"] < 1.0 and other["seed_hv_regret"] > 0.0
    assert np.isnan(pareto.seed_fronts(cost, error[:, None])["seed_jaccard"])
