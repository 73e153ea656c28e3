import h5py
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from nb360.hypotheses import size
from nb360.hypotheses.common import by_class
from nb360.spaces.nb201 import NUM_ARCHS

from .conftest import additive_scores, check_outputs, write_cost_file, write_table


@pytest.fixture(scope="module")
def sized(tmp_path_factory):
    """Bigger is better, with noise: score = -log(params) + noise; FLOPs = 50 x params."""
    rng = np.random.default_rng(0)
    params = rng.integers(1_000, 100_000, NUM_ARCHS).astype(float)
    score = -np.log(params) + rng.normal(0, 0.5, NUM_ARCHS)
    return write_table(tmp_path_factory.mktemp("size") / "sized.h5", score, val=score, params=params, flops=50 * params,
                       task="sized")


@pytest.fixture(scope="module")
def costs(tmp_path_factory):
    return write_cost_file(tmp_path_factory.mktemp("costs") / "costs.h5")


def is_dominated(i, p, s):
    return bool(np.any((p <= p[i]) & (s <= s[i]) & ((p < p[i]) | (s < s[i]))))


def test_bigger_is_better_pareto_front_and_task_costs(tmp_path, sized, costs):
    report = size.run(tmp_path, tables=[sized], costs=costs)
    check_outputs(report, ["size", "pareto", "task_costs"], pngs=2)
    row = pd.read_csv(report.csv("size")).iloc[0]
    rep = sized.class_rows()
    p, s = by_class(sized.df["params"], rep), by_class(sized.final("test_metric"), rep)
    assert row["n"] == 6466 and row["spearman_params"] == pytest.approx(stats.spearmanr(p, s).statistic)
    assert row["spearman_params"] < -0.5 and row["spearman_flops"] == pytest.approx(row["spearman_params"])
    front = report.frames["pareto"]
    assert set(front["index"]) == {int(rep[i]) for i in range(len(p)) if not is_dominated(i, p, s)}
    assert row["pareto_size"] == len(front) and front["params"].is_monotonic_increasing
    assert front["test_metric"].is_monotonic_decreasing
    spread = report.frames["task_costs"].set_index("task")
    with h5py.File(costs) as f:
        darcy = f["darcyflow/params"][()]
    assert spread.loc["darcyflow", "params_max"] == darcy.max()
    assert spread.loc["darcyflow", "params_median"] == np.median(darcy)
    assert "bigger networks are better" in report.answer and "darcyflow" in report.answer


def test_table_without_costs_falls_back_to_the_cost_file(tmp_path, costs):
    q = additive_scores()
    table = write_table(tmp_path / "t.h5", q, task="digits")
    report = size.run(tmp_path / "out", tables=[table], costs=costs)
    assert report.frames["size"]["costs_from"].iloc[0] == "cost file"
    assert "has no costs of its own" in report.summary.read_text()
    with pytest.raises(ValueError, match="no cost file entry for task 'planted'"):
        size.run(tmp_path / "out", tables=[write_table(tmp_path / "u.h5", q)], costs=costs)


def test_runs_on_imported_nats_tables_without_a_cost_file(tmp_path, nats_cifar, nats_darcy):
    report = size.run(tmp_path, tables=[nats_cifar, nats_darcy], costs=None)
    check_outputs(report, ["size", "pareto"])
    assert "task_costs" not in report.frames and (report.frames["size"]["n"] > 3).all()
