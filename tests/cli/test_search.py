"""`nb360 search --backend table` never loses or replaces searches: each is written as it finishes,
a rerun resumes, other settings are refused, an interruption keeps what finished."""

import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "search"))
from synthetic_table import write_table  # noqa: E402


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    return write_table(tmp_path_factory.mktemp("synthetic") / "synthetic.h5")


def searches(out: Path) -> set:
    trials = pd.read_csv(out / "trials.csv")
    return set(zip(trials["algo"], trials["seed"]))


def test_a_rerun_resumes_and_extends(cli, table, tmp_path):
    out = tmp_path / "out"
    first = cli("search", "--table", str(table), "--algo", "rs,re", "--seeds", "2", "--budget", "30", "--out", str(out))
    assert first.returncode == 0, first.stderr
    before = pd.read_csv(out / "trials.csv")
    assert "mean regret ± 95%" in first.stdout and "vs rs" in first.stdout

    more = cli("search", "--table", str(table), "--algo", "rs,re", "--seeds", "3", "--budget", "30", "--out", str(out))
    assert more.returncode == 0, more.stderr
    assert "4 of the 6 searches asked are there already; running the other 2" in more.stdout
    assert searches(out) == {(a, s) for a in ("rs", "re") for s in range(3)}
    after = pd.read_csv(out / "trials.csv")
    pd.testing.assert_frame_equal(after.iloc[: len(before)], before)  # kept as they were

    # the same searches run from scratch elsewhere give the same rows: resuming changes nothing
    fresh = tmp_path / "fresh"
    assert cli("search", "--table", str(table), "--algo", "rs,re", "--seeds", "3", "--budget", "30",
               "--out", str(fresh)).returncode == 0
    key = ["algo", "seed", "trial"]
    pd.testing.assert_frame_equal(after.sort_values(key).reset_index(drop=True),
                                  pd.read_csv(fresh / "trials.csv").sort_values(key).reset_index(drop=True))


def test_other_settings_are_refused_and_nothing_replaced(cli, table, tmp_path):
    out = tmp_path / "out"
    assert cli("search", "--table", str(table), "--algo", "rs", "--seeds", "2", "--budget", "30",
               "--out", str(out)).returncode == 0
    files = {p.name: p.read_bytes() for p in out.iterdir()}
    other = cli("search", "--table", str(table), "--algo", "rs", "--seeds", "2", "--budget", "20", "--out", str(out))
    assert other.returncode == 2 and len(other.stderr.strip().splitlines()) == 1
    assert "queries 30 there, 20 now" in other.stderr and "--overwrite" in other.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == files

    replaced = cli("search", "--table", str(table), "--algo", "rs", "--seeds", "2", "--budget", "20", "--out", str(out),
                   "--overwrite")
    assert replaced.returncode == 0 and len(pd.read_csv(out / "trials.csv")) == 2 * 20


def test_results_of_unknown_settings_are_refused(cli, table, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "trials.csv").write_text("algo,seed\nrs,0\n")
    result = cli("search", "--table", str(table), "--algo", "rs", "--seeds", "1", "--out", str(out))
    assert result.returncode == 2 and "settings were not recorded" in result.stderr
    assert (out / "trials.csv").read_text() == "algo,seed\nrs,0\n"


def test_interrupted_search_keeps_finished_searches_and_resumes(table, tmp_path, stop_after, cli):
    out = tmp_path / "out"
    command = ["search", "--table", str(table), "--algo", "bananas", "--seeds", "12", "--budget", "40", "--out", str(out)]
    run, stderr = stop_after([sys.executable, "-m", "nb360.cli", *command], total=12)
    assert run.returncode == 2
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("nb360 search: interrupted; ") and "rerun the same command to resume" in last
    kept = searches(out)
    assert 2 <= len(kept) < 12 and f"{len(kept)} finished searches are kept" in last

    resumed = cli(*command)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{len(kept)} of the 12 searches asked are there already" in resumed.stdout
    assert searches(out) == {("bananas", s) for s in range(12)}


def test_a_table_without_validation_scores_is_refused(cli, tmp_path):
    from nb360.table.schema import TableWriter, create

    path = create(tmp_path / "t.h5", task="darcyflow", metric="relative_l2", seeds=[0], epochs=1, protocol={},
                  provenance={})
    with TableWriter(path) as w:
        w.write_runs((i, 0, [{"train_loss": 1.0, "train_metric": 1.0, "val_metric": float("nan"),
                              "test_metric": 0.5, "train_seconds": 1.0}]) for i in range(100))
    result = cli("search", "--table", str(path), "--out", str(tmp_path / "out"))
    assert result.returncode == 2 and "no cell has a validation score" in result.stderr
    assert not (tmp_path / "out").exists()
