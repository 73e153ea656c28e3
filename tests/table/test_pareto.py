"""Pareto fronts and constrained queries against brute force over whole shipped tables."""

from __future__ import annotations

import numpy as np
import pytest

from nb360.table.benchmark import Benchmark
from nb360.table.manifest import DEFAULT_TABLE, TASK_TABLES
from nb360.table.pareto import OBJECTIVES, classes, parse_constraint


def brute_force_front(values: np.ndarray) -> np.ndarray:
    """Rows no other row is at least as good as on every objective and better on one; of rows with
    identical values, the first."""
    le = (values[:, None, :] <= values[None, :, :]).all(axis=2)  # le[i, j]: i at least as good as j everywhere
    lt = (values[:, None, :] < values[None, :, :]).any(axis=2)
    dominated = (le & lt).any(axis=0)
    same = (values[:, None, :] == values[None, :, :]).all(axis=2)
    earlier_twin = np.triu(same, k=1).any(axis=0)
    return ~dominated & ~earlier_twin


@pytest.mark.parametrize("table", TASK_TABLES)
@pytest.mark.parametrize("objectives", [("test_metric", "flops"), ("val_metric", "params"),
                                        ("test_metric", "flops", "train_seconds")])
def test_the_front_is_the_brute_force_one(table, objectives):
    bench = Benchmark.load(table)
    df = classes(bench)
    values = df[list(objectives)].to_numpy(dtype=float)
    scored = np.isfinite(values).all(axis=1)
    expected = set(df.index[scored][brute_force_front(values[scored])])
    front = bench.pareto(objectives)
    assert set(front.index) == expected and len(expected) >= 2
    assert list(front[objectives[0]]) == sorted(front[objectives[0]])
    assert (front["iso_members"] >= 1).all() and front["iso_class"].is_unique


def test_constrained_best_and_front_stay_within_the_constraint():
    bench = Benchmark.load(DEFAULT_TABLE)
    df = bench.df
    bound = float(np.nanquantile(df["flops"], 0.2))
    arch, value = bench.best("test_metric", {"flops": bound})
    within = df[df["flops"] <= bound]
    assert value == pytest.approx(within["test_metric"].min()) and df.loc[arch.index, "flops"] <= bound
    assert value >= bench.best("test_metric")[1]
    front = bench.pareto(("test_metric", "flops"), {"flops": bound, "params": 1e9})
    assert (front["flops"] <= bound).all() and front.index.isin(bench.pareto(("test_metric", "flops")).index).all()
    with pytest.raises(ValueError, match="among the cells within"):
        bench.best("test_metric", {"flops": 0.0})


def test_bad_objectives_and_constraints_say_what_is_expected():
    bench = Benchmark.load(DEFAULT_TABLE)
    for bad in (("test_metric",), ("test_metric", "accuracy"), ("flops", "flops"), tuple(OBJECTIVES[:4])):
        with pytest.raises(ValueError, match="two or three different ones"):
            bench.pareto(bad)
    assert parse_constraint(" flops <= 2e7 ") == ("flops", 2e7)
    for bad in ("flops<2e7", "flop<=1", "flops<=lots"):
        with pytest.raises(ValueError, match="constraint"):
            parse_constraint(bad)


def test_the_query_command_lists_the_front_and_constrains_top(cli):
    front = cli("query", DEFAULT_TABLE, "--pareto", "flops")
    assert front.returncode == 0 and "the Pareto front of test_metric, flops" in front.stdout
    rows = front.stdout.splitlines()[3:]
    assert len(rows) == len(Benchmark.load(DEFAULT_TABLE).pareto(("test_metric", "flops")))
    top = cli("query", DEFAULT_TABLE, "--top", "5", "--constraint", "flops<=1.5e6")
    flops = [float(line.split()[-2]) for line in top.stdout.splitlines()[3:]]
    assert top.returncode == 0 and len(flops) == 5 and max(flops) <= 1.5e6
    bad = cli("query", DEFAULT_TABLE, "--pareto", "flops", "--constraint", "flops<1")
    assert bad.returncode == 2 and "expected COLUMN<=NUMBER" in bad.stderr
