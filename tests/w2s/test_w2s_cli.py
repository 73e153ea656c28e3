"""`nb360 w2s`, `nb360 w2s search`, `nb360 w2s sources`, `nb360 w2s synthetic`: real runs on digits, tiny networks."""

import json

import pytest

from nb360.cli import main

# one-epoch runs of tiny networks: the ceiling may well be no better than the teacher
pytestmark = pytest.mark.filterwarnings("ignore:the ceiling is worse:RuntimeWarning",
                                        "ignore:PGR is undefined:RuntimeWarning")

TINY = ["--task", "digits", "--teacher", "1", "--teacher-C", "2", "--C", "4", "--N", "1", "--epochs", "1",
        "--batch-size", "128"]


@pytest.mark.parametrize("args, expected", [
    (["w2s", "--task", "digits"], "--teacher, --student, --out required"),
    (["w2s", "search", "--task", "digits", "--out", "x"], "--teacher required"),
    (["w2s", *TINY, "--student", "missing/best.json", "--out", "x"], "missing/best.json: no such file"),
    (["w2s", *TINY, "--student", "99999", "--out", "x"], "out of range"),
    (["w2s", "synthetic", "--densities", "0.1,2", "--out", "x"], "expected fractions in [0, 1]"),
    (["w2s", "search", *TINY, "--algo", "zc-re", "--out", "x"], "invalid choice: 'zc-re'"),
    (["w2s", "sources", *TINY, "--block", "3", "--out", "x"], "divide the inputs' 8x8"),
    (["w2s", "sources", *TINY, "--pool-size", "10", "--out", "x"], "the pool has 10 (--pool-size)"),
    (["w2s", "sources", *TINY, "--pretrain-epochs", "1", "--out", "x"], "unrecognized arguments: --pretrain-epochs"),
])
def test_bad_input_is_one_line_exit_2(args, expected, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    try:
        code = main(args)  # errors from the library
    except SystemExit as e:  # errors from argparse
        code = e.code
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0] and "error" in err[0]


def test_w2s_with_a_student_from_best_json(tmp_path, capsys):
    best = tmp_path / "best.json"
    best.write_text(json.dumps({"re": {"0": {"arch": "-", "index": 2, "val": 0.2}, "1": None}}))
    out = tmp_path / "run"
    assert main(["w2s", *TINY, "--student", str(best), "--seeds", "2", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["student"]["index"] == 2 and report["student_from"]["algo"] == "re"
    assert report["seeds"] == [0, 1] and len(report["runs"]) == 2
    assert {"weak", "w2s", "ceiling", "pgr"} <= set(report["summary"])
    assert (out / "report.png").read_bytes()[:4] == b"\x89PNG"
    printed = capsys.readouterr().out
    assert "seed 0: weak" in printed and "seed 1: weak" in printed and "report.json" in printed


def test_w2s_search_compares_found_and_default_students(tmp_path):
    out = tmp_path / "search"
    assert main(["w2s", "search", *TINY, "--algo", "rs", "--budget", "2", "--out", str(out)]) == 0
    summary = json.loads((out / "search.json").read_text())
    assert len(summary["trials"]) == 2 and set(summary["students"]) == {"found", "default"}
    for name in ("found", "default"):
        assert (out / name / "report.json").exists() and "mean" in summary["students"][name]["pgr"]
    assert summary["students"]["found"]["index"] in [t["index"] for t in summary["trials"]]


def test_w2s_synthetic_writes_csv_and_png(tmp_path):
    out = tmp_path / "synthetic"
    assert main(["w2s", "synthetic", "--densities", "0,0.3", "--seeds", "1", "--n", "200", "--points", "100",
                 "--batch-size", "25", "--n-per-source", "200", "--out", str(out)]) == 0
    for name in ("density", "detection", "selection"):
        assert (out / f"{name}.csv").exists() and (out / f"{name}.png").exists()


def test_the_sources_default_densities_are_the_librarys():
    from nb360.cli.w2s import SOURCE_DENSITIES
    from nb360.w2s.sources import DENSITIES

    assert SOURCE_DENSITIES == list(DENSITIES)


def test_w2s_sources_writes_csv_and_png(tmp_path, capsys):
    out = tmp_path / "sources"
    assert main(["w2s", "sources", *TINY, "--densities", "0.2,0.8", "--teacher-size", "60", "--pool-size", "80",
                 "--out", str(out)]) == 0
    rows = (out / "sources.csv").read_text().splitlines()
    assert len(rows) == 3 and "detected_overlap_student" in rows[0]
    assert len((out / "selection.csv").read_text().splitlines()) == 4  # ucb, random, fixed
    assert (out / "sources.png").read_bytes()[:4] == b"\x89PNG"
    assert "seed 0, overlap density 0.8: weak" in capsys.readouterr().out
