import json
import re
import sys

import numpy as np
import pytest

from nb360.cli import main
from nb360.table.manifest import DEFAULT_TABLE


def test_help_lists_commands(cli):
    result = cli("--help")
    assert result.returncode == 0
    for command in ("tasks", "data", "train", "demo"):
        assert command in result.stdout


@pytest.mark.parametrize(
    "args, expected",
    [
        (["train", "--arch", "|bogus~0|+|none~0|none~1|+|none~0|none~1|none~2|"], "unknown operation 'bogus'"),
        (["train", "--arch", "99999"], "out of range"),
        (["train", "--arch", "0", "--task", "nosuchtask"], "unknown task 'nosuchtask'"),
        (["train", "--arch", "0", "--epochs", "-3"], "argument --epochs: expected an integer >= 1, got -3"),
        (["data", "generate", "darcyflow", "--n", "0"], "argument --n: expected an integer >= 1, got 0"),
        (["data", "generate", "darcyflow", "--resolution", "abc"], "expected an integer, got 'abc'"),
        (["data", "generate", "cifar100"], "invalid choice: 'cifar100' (choose from 'darcyflow', 'burgers')"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_input_is_one_line_exit_2(cli, args, expected, tmp_path):
    result = cli(*args, "--data-root", str(tmp_path)) if args[0] == "train" else cli(*args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert expected in lines[0] and "error" in lines[0]


def test_missing_data_names_the_file(cli, tmp_path):
    result = cli("train", "--arch", "0", "--data-root", str(tmp_path))
    assert result.returncode == 2
    assert "piececonst" in result.stderr and str(tmp_path) in result.stderr


def test_generate_burgers_then_train(cli, tmp_path):
    data = tmp_path / "data"
    generate = ["data", "generate", "burgers", "--n", "16", "--resolution", "32", "--solver-resolution", "256",
                "--data-root", str(data)]
    result = cli(*generate)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in data.iterdir()) == ["burgers_r32_N16.mat", "burgers_r32_N16.mat.json"]
    assert "skipped" in cli(*generate).stdout
    out = tmp_path / "run.json"
    result = cli("train", "--task", "burgers", "--arch", "1", "--resolution", "16", "--epochs", "1", "--C", "2",
                 "--N", "1", "--data-root", str(data), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert out.exists()


def test_generate_then_train_end_to_end(cli, tmp_path):
    data = tmp_path / "data"
    result = cli("data", "generate", "darcyflow", "--n", "12", "--resolution", "9", "--solver-resolution", "17",
                   "--data-root", str(data))
    assert result.returncode == 0, result.stderr
    # the two files as FNO names them, each with the settings it was generated with beside it
    assert sorted(p.name for p in data.iterdir()) == ["piececonst_r9_N12_smooth1.mat", "piececonst_r9_N12_smooth1.mat.json",
                                                      "piececonst_r9_N12_smooth2.mat", "piececonst_r9_N12_smooth2.mat.json"]
    again = cli("data", "generate", "darcyflow", "--n", "12", "--resolution", "9", "--solver-resolution", "17",
                  "--data-root", str(data))
    assert again.returncode == 0 and "skipped" in again.stdout

    out = tmp_path / "run.json"
    result = cli("train", "--task", "darcyflow", "--arch", "1", "--resolution", "9", "--epochs", "2", "--C", "2",
                   "--N", "1", "--batch-size", "4", "--data-root", str(data), "--out", str(out))
    assert result.returncode == 0, result.stderr
    saved = json.loads(out.read_text())
    assert saved["config"]["index"] == 1 and saved["config"]["metric"] == "relative_l2"
    assert [r["epoch"] for r in saved["records"]] == [1, 2]
    assert all(0 < r["val_metric"] < 10 for r in saved["records"])
    assert out.with_suffix(".csv").read_text().startswith("epoch,")
    printed = [line.split() for line in result.stdout.splitlines() if line.split()[:1] in (["1"], ["2"])]
    assert [float(p[3]) for p in printed] == pytest.approx([r["val_metric"] for r in saved["records"]], abs=1e-5)

    # a finished run's records are never replaced by a rerun, unless asked
    kept = out.read_bytes()
    rerun = cli("train", "--task", "darcyflow", "--arch", "2", "--resolution", "9", "--epochs", "1", "--C", "2",
                "--N", "1", "--data-root", str(data), "--out", str(out))
    assert rerun.returncode == 2 and "records of a finished run are there" in rerun.stderr and out.read_bytes() == kept
    replaced = cli("train", "--task", "darcyflow", "--arch", "2", "--resolution", "9", "--epochs", "1", "--C", "2",
                   "--N", "1", "--data-root", str(data), "--out", str(out), "--overwrite")
    assert replaced.returncode == 0 and json.loads(out.read_text())["config"]["index"] == 2

    status = cli("tasks", "--data-root", str(data))
    assert status.returncode == 0 and "darcyflow" in status.stdout and "found" in status.stdout


def test_tasks_reports_missing_files(cli, tmp_path):
    result = cli("tasks", "--data-root", str(tmp_path))
    assert result.returncode == 0
    assert "missing: piececonst_r*_N*_smooth1.mat" in result.stdout
    rows = {line.split()[0]: line for line in result.stdout.splitlines()[2:] if line and not line.startswith("*")}
    assert len([name for name in rows if not name.endswith("*")]) == 10  # NAS-Bench-360's ten tasks
    assert "digits*" in rows and "found" in rows["digits*"]  # the extra task, its data inside scikit-learn


def test_demo_writes_table_and_figure(tmp_path):
    from nb360.demo import DEMO_ARCHS, run_demo

    rows = run_demo(tmp_path, epochs=1)
    assert [r["name"] for r in rows] == list(DEMO_ARCHS)
    assert (tmp_path / "demo.png").stat().st_size > 10_000
    lines = (tmp_path / "demo.csv").read_text().splitlines()
    assert len(lines) == 1 + len(DEMO_ARCHS) and lines[0].startswith("name,index,arch,params,mflops")
    # the empty cell learns nothing but the mean; any real cell beats it
    by_name = {r["name"]: r for r in rows}
    assert by_name["nb201-best"]["val_rel_l2"] < by_name["empty"]["val_rel_l2"]


def small_table(path):
    from nb360.table.schema import TableWriter, create

    create(path, task="darcyflow", metric="relative_l2", seeds=[0], epochs=2, protocol={"C": 2}, provenance={"command": "test"})
    with TableWriter(path) as w:
        for i in range(30):
            w.write_run(i, 0, [{"train_loss": 1.0, "train_metric": 1.0, "val_metric": 3 - i / 10,
                                "test_metric": 2 + i / 8, "train_seconds": 2.0 * (e + 1)} for e in range(2)])
        w.write_failure(40, 0, "RuntimeError: boom")
        w.set_proxy("snip", np.where(np.arange(15625) < 12, 1.0, np.nan))
    return path


def test_query_and_table_info(cli, tmp_path):
    table = small_table(tmp_path / "t.h5")
    result = cli("query", str(table), "7")
    assert result.returncode == 0, result.stderr
    fields = dict(line.split(None, 1) for line in result.stdout.splitlines())
    assert fields["index"] == "7" and float(fields["val_metric"]) == pytest.approx(2.3)
    assert float(fields["train_seconds"]) == 4.0

    top = cli("query", str(table), "--top", "3", "--by", "val_metric")
    rows = [line.split()[0] for line in top.stdout.splitlines()[3:]]
    assert top.returncode == 0 and rows == ["29", "28", "27"]

    info = cli("table", "info", str(table))
    assert info.returncode == 0
    assert "30/15625 done, 1 failed" in info.stdout and "arch 40 seed 0: RuntimeError: boom" in info.stdout
    assert "runs per seed     seed 0: 30/15625" in info.stdout
    assert "proxies           snip 12/15625" in info.stdout
    assert "build jobs        none logged" in info.stdout
    assert "seed agreement    not measurable: fewer than two seeds" in info.stdout  # a one-seed table
    assert re.search(r"seeds per class   \d+ iso classes scored: \d+ with 1 seed\n", info.stdout), info.stdout

    for args, expected in [(("query", str(table)), "--top K"), (("query", "nosuch", "1"), "unknown table 'nosuch'"),
                           (("query", str(table), "1", "--epoch", "3"), "epoch must be in 1..2"),
                           (("query", str(table), "--top", "2", "--by", "accuracy"), "not a column")]:
        bad = cli(*args)
        assert bad.returncode == 2 and expected in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


def test_precompute_stopped_by_sigterm_keeps_its_runs_and_resumes(cli, tmp_path, stop_after):
    """A scheduler's SIGTERM ends a build like Ctrl-C, cancelling the runs in flight, in one line:
    finished runs stay, the same command resumes."""

    data, out = tmp_path / "data", tmp_path / "t.h5"
    assert cli("data", "generate", "darcyflow", "--n", "12", "--resolution", "9", "--solver-resolution", "17",
                 "--data-root", str(data)).returncode == 0
    command = ["precompute", "--task", "darcyflow", "--epochs", "2", "--seeds", "1", "--classes", "20", "--C", "2",
               "--N", "1", "--resolution", "9", "--num-cpus", "1", "--data-root", str(data), "--out", str(out)]
    # the runs: enough that the build cannot finish before the signal
    build, stderr = stop_after([sys.executable, "-m", "nb360.cli", *command], total=20)
    assert build.returncode == 2, stderr[-2000:]
    assert stderr.strip().splitlines()[-1].startswith("nb360 precompute: interrupted; every finished run is kept in ")

    resumed = cli(*command)
    assert resumed.returncode == 0, resumed.stderr
    summary = dict(item.split("=", 1) for item in resumed.stdout.strip().splitlines()[-1].split(", "))
    assert int(summary["skipped"]) >= 2 and int(summary["skipped"]) + int(summary["done"]) == 20
    assert int(summary["failed"]) == 0

    # table info gives the build log: the stopped job and the resumed one, 20 runs between them
    info = cli("table", "info", str(out))
    jobs = next(line for line in info.stdout.splitlines() if line.startswith("build jobs"))
    assert " 2 (" in jobs and ": 20 runs in " in jobs and "Ray 1 node, 1 CPU, 0 GPUs" in jobs, jobs


def test_search_writes_trials_regret_plot_and_best_archs(cli, tmp_path):
    import numpy as np

    from nb360.table.schema import TableWriter, create

    table = create(tmp_path / "all.h5", task="darcyflow", metric="relative_l2", seeds=[0, 1], epochs=3,
                   protocol={"C": 2}, provenance={"command": "test"})
    error = np.random.default_rng(0).uniform(0.1, 0.5, 15625)
    with TableWriter(table) as w:
        w.write_runs((i, s, [{"train_loss": 1.0, "train_metric": 1.0, "val_metric": error[i] + 0.1 / (e + 1) + s / 1000,
                              "test_metric": error[i] + 0.01, "train_seconds": 10.0 * (e + 1)} for e in range(3)])
                     for i in range(15625) for s in (0, 1))
    out = tmp_path / "out"
    result = cli("search", "--algo", "rs,re,sh", "--table", str(table), "--budget", "40", "--seeds", "3",
                   "--out", str(out))
    assert result.returncode == 0, result.stderr
    lines = (out / "trials.csv").read_text().splitlines()
    assert lines[0] == "algo,seed,trial,arch,index,epochs,val,test,sim_seconds,regret"
    assert len(lines) == 1 + 3 * 3 * 40
    assert (out / "regret.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    best = json.loads((out / "best.json").read_text())
    assert sorted(best) == ["re", "rs", "sh"] and all(sorted(best[a]) == ["0", "1", "2"] for a in best)
    b = best["re"]["1"]
    assert b["test"] == pytest.approx(error[b["index"]] + 0.01, abs=1e-6)
    assert b["regret"] == pytest.approx(b["test"] - (error.min() + 0.01), abs=1e-6)
    for algo in ("rs", "re", "sh"):
        assert f"\n{algo} " in result.stdout

    timed = cli("search", "--algo", "rs", "--table", str(table), "--time-budget", "95", "--seeds", "2",
                  "--workers", "2", "--out", str(tmp_path / "timed"))
    assert timed.returncode == 0, timed.stderr
    rows = (tmp_path / "timed" / "trials.csv").read_text().splitlines()[1:]
    assert len(rows) == 2 * 4  # 30 simulated s per full run: the 4th query crosses 95 s

    for args, expected in [(("--algo", "rs,nope"), "expected distinct algorithms among rs, re"),
                           (("--algo", "zc-re", "--table", str(table)), "no proxy 'synflow'"),
                           (("--table", "nosuch"), "unknown table 'nosuch'")]:
        bad = cli("search", *args, "--out", str(tmp_path / "bad"))
        assert bad.returncode == 2 and expected in bad.stderr and len(bad.stderr.strip().splitlines()) == 1, bad.stderr


@pytest.mark.parametrize("task", ["cifar100", "spherical", "ninapro", "satellite", "ecg"])
def test_fake_data_then_train(task, tmp_path, capsys):
    data, out = tmp_path / "data", tmp_path / "run.json"
    assert main(["data", "fake", task, "--data-root", str(data), "--n", "20"]) == 0
    assert main(["train", "--task", task, "--data-root", str(data), "--epochs", "1", "--C", "4", "--N", "1",
                 "--arch", "1", "--out", str(out)]) == 0
    run = json.loads(out.read_text())
    assert run["config"]["task"] == task and run["config"]["model"] == "nb201"
    record = run["records"][0]
    assert all(0 <= record[k] <= 1 for k in ("train_metric", "val_metric", "test_metric"))
    # the same files cannot be overwritten by accident
    assert main(["data", "fake", task, "--data-root", str(data)]) == 2
    assert "already there" in capsys.readouterr().err


def test_train_the_wrn_baseline(cli, tmp_path):
    data, out = tmp_path / "data", tmp_path / "wrn.json"
    assert main(["data", "fake", "satellite", "--data-root", str(data)]) == 0
    assert main(["train", "--task", "satellite", "--data-root", str(data), "--epochs", "1", "--model", "wrn",
                 "--out", str(out)]) == 0
    run = json.loads(out.read_text())
    assert run["config"]["model"] == "wrn" and run["config"]["arch"] is None
    assert 0 <= run["records"][0]["val_metric"] <= 1
    both = cli("train", "--arch", "1", "--model", "wrn")
    assert both.returncode == 2 and "not allowed with argument" in both.stderr


def test_fake_all_writes_every_task_and_tasks_finds_them(tmp_path, capsys):
    assert main(["data", "fake", "all", "--data-root", str(tmp_path)]) == 0
    capsys.readouterr()
    assert main(["tasks", "--data-root", str(tmp_path)]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[2:] if not line.startswith("*")]
    ten = [row for row in rows if not row[0].endswith("*")]  # the extra tasks: not NAS-Bench-360's, `fake all` skips them
    assert len(ten) == 10 and all(row[-1] == "found" for row in ten), rows


def test_tasks_baselines_prints_the_paper_numbers(capsys):
    assert main(["tasks", "--baselines"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = lines[1].split()
    rows = {line.split()[0]: line.split() for line in lines[2:]}
    assert header[:4] == ["task", "metric", "wrn", "densenas_random"] and "darts_gaea" in header
    assert rows["cifar100"][header.index("wrn")] == "0.2335±0.0005"
    assert rows["ecg"][header.index("darts_gaea")] == "0.34±0.01" and rows["ecg"][header.index("amber")] == "0.33±0.02"
    assert rows["ninapro"][header.index("amber")] == "-"


def test_hypotheses_answers_one_question_and_reports_bad_input(cli, tmp_path):
    table = small_table(tmp_path / "t.h5")
    out = tmp_path / "operations"
    result = cli("hypotheses", "operations", "--tables", str(table), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "the additive model explains" in result.stdout and str(out / "summary.md") in result.stdout
    assert (out / "edges.csv").read_text().startswith("table,edge,n,share")
    assert "![operation_effects](operation_effects.png)" in (out / "summary.md").read_text()
    for args, expected in [(("locality", "--costs", "x"), "locality takes no option costs"),
                           (("size", "--doc", "page.md"), "use it with `nb360 hypotheses all`"),
                           (("all", "--tables", str(table)), "give --tables to one question at a time"),
                           (("rank-transfer", "--tables", str(table)), "needs at least 2"),
                           (("ranks",), "invalid choice")]:
        bad = cli("hypotheses", *args, "--out", str(tmp_path / "bad"))
        assert bad.returncode == 2 and expected in bad.stderr and len(bad.stderr.strip().splitlines()) == 1, bad.stderr


def test_table_info_says_how_much_of_the_ranking_is_signal(cli):
    # The shipped table may be complete (every class with all its seeds) or still being built
    # (some classes with fewer): each group of classes gets the Spearman-Brown reliability of its
    # k-seed mean from the one measured agreement.
    info = cli("table", "info", DEFAULT_TABLE)
    lines = {line[:17].strip(): line[18:] for line in info.stdout.splitlines()}
    per_class = re.fullmatch(r"([\d,]+) iso classes scored: (.+)", lines["seeds per class"])
    groups = {int(k): int(n.replace(",", "")) for n, k in re.findall(r"([\d,]+) with (\d+) seeds?", per_class[2])}
    assert int(per_class[1].replace(",", "")) == sum(groups.values()) and max(groups) >= 2, lines["seeds per class"]
    several = sum(n for k, n in groups.items() if k >= 2)
    agreement = re.fullmatch(rf"final test, {several:,} iso classes with two seeds or more: Spearman between two seeds "
                             r"(0\.\d+) \[0\.\d+, 0\.\d+\]; better half (-?0\.\d+) \[(-?0\.\d+), (0\.\d+)\] \([\d,]+ classes\)",
                             lines["seed agreement"])
    r, better = float(agreement[1]), float(agreement[2])
    assert float(agreement[3]) <= better <= float(agreement[4]), lines["seed agreement"]
    reliability = dict(((int(k), int(n.replace(",", ""))), (float(a), float(b))) for k, n, a, b in re.findall(
        r"(\d+) seeds? \(([\d,]+) classes\) (0\.\d+) / (-?0\.\d+)", lines["reliability"].split("goal 0.9 / 0.75: ")[1]))
    assert sorted(reliability) == sorted(groups.items()), lines["reliability"]
    for (k, _), measured in reliability.items():  # one seed: the measured agreement itself
        assert measured == pytest.approx([k * r / (1 + (k - 1) * r), k * better / (1 + (k - 1) * better)], abs=3e-3)
        assert k == 1 or measured[0] > r
