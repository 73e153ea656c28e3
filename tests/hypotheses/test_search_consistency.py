import numpy as np
import pandas as pd
import pytest
from scipy import stats

from nb360.hypotheses import search_consistency
from nb360.search.runner import run_many

from .conftest import check_outputs

ALGOS = ["rs", "re", "ls"]


def test_identical_tables_rank_the_algorithms_alike(tmp_path, additive, additive_copy):
    report = search_consistency.run(tmp_path, tables=[additive, additive_copy], algos=ALGOS, budget=30, seeds=4)
    check_outputs(report, ["regret", "agreement"])
    regret = pd.read_csv(report.csv("regret"))
    trials = run_many(additive, ALGOS, range(4), queries=30, progress=False)
    final = trials.groupby(["algo", "seed"]).last()["regret"]
    mine = regret[regret["table"] == "additive"].set_index("algo")
    for algo in ALGOS:
        assert mine.loc[algo, "mean_regret"] == pytest.approx(final[algo].mean())
        assert mine.loc[algo, "searches"] == mine.loc[algo, "with_regret"] == 4
    pair = report.frames["agreement"].iloc[0]
    assert (pair["table"], pair["other"], pair["algos"]) == ("additive", "copy", 3)
    assert pair["spearman"] == pytest.approx(1.0) and pair["same_best"] == 1.0 and pair["regret_of_pick"] == 0.0
    assert "the best algorithm is the same" in report.answer


def write_trials(path, means):
    """trials.csv with 5 seeds of 2 queries per algorithm; final regrets mean + (-2..2) / 100."""
    rows = [{"algo": algo, "seed": seed, "trial": trial, "regret": (mean + (seed - 2) / 100) * trial / 2}
            for algo, mean in means.items() for seed in range(5) for trial in (1, 2)]
    path.mkdir()
    shuffled = pd.DataFrame(rows).sample(frac=1.0, random_state=0)  # the rows' order must not matter
    shuffled.to_csv(path / "trials.csv", index=False)
    return path


def test_trials_files_with_reversed_rankings(tmp_path, additive, additive_copy):
    a = write_trials(tmp_path / "a", {"rs": 0.3, "re": 0.2, "ls": 0.1, "bananas": 0.05})
    b = write_trials(tmp_path / "b", {"rs": 0.01, "re": 0.02, "ls": 0.03, "bananas": 0.04})
    report = search_consistency.run(tmp_path / "out", tables=[additive, additive_copy], trials=[a, b / "trials.csv"])
    regret = report.frames["regret"].set_index(["table", "algo"])
    half = stats.t.ppf(0.975, 4) * np.std(np.arange(-2, 3) / 100, ddof=1) / np.sqrt(5)
    assert regret.loc[("additive", "ls"), "mean_regret"] == pytest.approx(0.1)
    assert regret.loc[("additive", "ls"), "ci95"] == pytest.approx(half)
    assert regret.loc[("additive", "bananas"), "rank"] == 1 and regret.loc[("copy", "bananas"), "rank"] == 4
    pair = report.frames["agreement"].iloc[0]
    assert pair["spearman"] == pytest.approx(-1.0) and pair["same_best"] == 0.0
    assert pair["regret_of_pick"] == pytest.approx(0.04 - 0.01)
    assert "read from" in report.summary.read_text()


def test_bad_trials_and_tables_without_validation(tmp_path, additive, nats_darcy):
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"algo": ["rs"], "seed": [0]}).to_csv(bad, index=False)
    with pytest.raises(ValueError, match="missing trial, regret"):
        search_consistency.run(tmp_path, tables=[additive, nats_darcy], trials=[bad, bad])
    with pytest.raises(ValueError, match="one trials file per table"):
        search_consistency.run(tmp_path, tables=[additive, nats_darcy], trials=[bad])
    with pytest.raises(FileNotFoundError, match="no trials file"):
        search_consistency.run(tmp_path, tables=[additive, nats_darcy], trials=[tmp_path, bad])
    with pytest.raises(ValueError, match="no validation scores"):
        search_consistency.run(tmp_path, tables=[additive, nats_darcy], algos=ALGOS, budget=5, seeds=1)


def test_runs_on_an_imported_nats_table(tmp_path, nats_cifar, partial):
    report = search_consistency.run(tmp_path, tables=[nats_cifar, partial], algos=ALGOS, budget=20, seeds=3)
    check_outputs(report, ["regret", "agreement"])
    regret = report.frames["regret"]
    assert (regret["searches"] == 3).all() and (regret["with_regret"] >= 1).all()
    assert report.frames["agreement"]["algos"].iloc[0] == 3
    missing = (regret["searches"] - regret["with_regret"]).sum()  # 4% of the NATS table is scored
    assert (f"{missing} searches met no scored cell" in report.summary.read_text()) == (missing > 0)
