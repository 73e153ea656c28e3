import json

import numpy as np
import pandas as pd
import pytest

from nb360.search.report import best_archs, regret_curves, write_outputs
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
