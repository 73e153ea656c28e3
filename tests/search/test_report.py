import json

import numpy as np
import pandas as pd
import pytest

from nb360.search.report import best_archs, regret_at, regret_curves, validation_pick_regret, write_outputs
from nb360.search.runner import COLUMNS, run_many


def test_outputs_of_a_real_run(synthetic, tmp_path):
    trials = run_many(synthetic, ["rs", "re"], seeds=[0, 1, 2], queries=30, progress=False)
    paths = write_outputs(trials, tmp_path / "out", title="test")
    read = pd.read_csv(paths["trials"])
    assert list(read.columns) == list(COLUMNS) and len(read) == 180
    assert np.allclose(read["regret"], trials["regret"]) and (read["arch"] == trials["arch"]).all()
    best = json.loads(paths["best"].read_text())
    for algo in ("rs", "re"):
        for seed in (0, 1, 2):
            run = trials[(trials.algo == algo) & (trials.seed == seed)]
            b = best[algo][str(seed)]
            assert b["val"] == run["val"].min() and b["index"] == run.loc[run["val"].idxmin(), "index"]
            assert b["regret"] == pytest.approx(synthetic.regret(b["index"]))
    assert paths["regret"].read_bytes()[:4] == b"\x89PNG" and paths["regret"].stat().st_size > 10_000


@pytest.mark.parametrize("name", ["synthetic", "nats"])
def test_validation_pick_regret_is_the_test_regret_of_the_best_cell_by_validation(name, request):
    bench = request.getfixturevalue(name)
    df = bench.df
    pick = df["val_metric"].idxmin()
    expected = df.loc[pick, "test_metric"] - df["test_metric"].min()
    assert validation_pick_regret(bench) == pytest.approx(expected)
    # on the synthetic table the best cell by validation is the best by test; on the imported one not
    assert (expected > 0) == (name == "nats")


def _frame(rows):
    return pd.DataFrame(rows, columns=["algo", "seed", "trial", "sim_seconds", "regret", "val", "arch", "index",
                                       "epochs", "test"])


def test_regret_curves_step_with_the_clock_and_stop_after_the_longest_search():
    nan = float("nan")
    trials = _frame([("a", 0, 1, 10.0, nan, nan, "", 0, 1, nan), ("a", 0, 2, 20.0, 0.5, 1, "", 0, 1, 1),
                     ("a", 0, 3, 40.0, 0.2, 1, "", 0, 1, 1),
                     ("a", 1, 1, 5.0, 0.3, 1, "", 0, 1, 1), ("a", 1, 2, 30.0, 0.1, 1, "", 0, 1, 1)])
    grid = np.array([0.0, 5.0, 19.0, 20.0, 35.0, 40.0, 50.0])
    curves = regret_curves(trials, "a", "sim_seconds", grid)
    expected = np.array([[nan, nan, nan, 0.5, 0.5, 0.2, nan], [nan, 0.3, 0.3, 0.3, 0.1, 0.1, nan]])
    assert np.array_equal(np.isnan(curves), np.isnan(expected))
    assert np.allclose(curves[~np.isnan(curves)], expected[~np.isnan(expected)])
    by_trial = regret_curves(trials, "a", "trial", np.array([1, 2, 3]))
    assert np.allclose(by_trial[1], [0.3, 0.1, 0.1])  # a shorter search keeps its final incumbent


def test_best_is_none_when_nothing_scored():
    trials = _frame([("a", 0, 1, 0.0, float("nan"), float("nan"), "x", 3, 1, 0.5)])
    assert best_archs(trials) == {"a": {"0": None}}


def test_regret_at_budgets_against_the_baseline():
    from nb360.stats import difference_ci

    rows = []
    for algo, level in (("rs", 0.5), ("re", 0.1)):
        for seed in range(4):
            rows += [(algo, seed, t, float(t), level * (4 - t) + 0.01 * seed, 0, "", 0, 1, 0) for t in (1, 2, 3)]
    rows.append(("ls", 0, 1, 1.0, float("nan"), 0, "", 0, 1, 0))  # met no scored cell; ended after one query
    table = regret_at(_frame(rows), [1, 3])
    at3 = table[table["queries"] == 3].set_index("algo")
    assert list(at3.index[:2]) == ["re", "rs"] and at3.loc["re", "rank"] == 1
    re_regrets = [0.1 + 0.01 * s for s in range(4)]
    rs_regrets = [0.5 + 0.01 * s for s in range(4)]
    assert at3.loc["re", "mean"] == pytest.approx(np.mean(re_regrets)) and at3.loc["re", "n"] == 4
    expected = difference_ci(re_regrets, rs_regrets)
    assert at3.loc["re", "diff_vs_rs"] == pytest.approx(-0.4)
    assert at3.loc["re", "diff_ci95"] == pytest.approx(expected["ci95"]) and at3.loc["re", "p_lower"] < 1e-6
    assert at3.loc["rs", "diff_vs_rs"] == 0 and at3.loc["rs", "p_lower"] == pytest.approx(0.5)
    at1 = table[table["queries"] == 1].set_index("algo")
    assert at1.loc["ls", "n"] == 0 and np.isnan(at1.loc["ls", "mean"]) and at3.loc["ls", "n"] == 0
    assert at1.loc["re", "mean"] == pytest.approx(0.3 + 0.015)
    assert "diff_vs_rs" not in regret_at(_frame(rows), [1], baseline="bananas").columns
