"""The Ray Tune backend, on real Ray: the searcher wrapper and Tune's own searchers and ASHA over a
table (in-process local Ray, one CPU), and a real-training search on a real two-node cluster
started with `ray start`, one node killed mid-run (slow).

The cluster test runs the `nb360 search --backend ray` command in a subprocess, as a user would,
against a head and a second node started in their own process groups, with their own temporary
folder and ports (another Ray instance on the machine is never touched); everything started is
stopped by process group in teardown, even when the test fails.
"""

import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import ray

import nb360
from nb360.search import Trial
from nb360.search.random import RandomSearch
from nb360.search.ray_tune import (EDGE_KEYS, TUNE_COLUMNS, TUNE_SEARCHERS, NB360Search, TableCurves, arch_to_config,
                                   config_to_arch, make_scheduler, search_space, search_table, tune_searcher,
                                   write_outputs)
from nb360.search.runner import COLUMNS
from nb360.spaces.nb201 import OPS, Arch

REPO = Path(nb360.__file__).resolve().parents[1]
POISON_BUDGET = 99  # epochs no table has: a trial asked for them raises


class Spy(RandomSearch):
    """Random search that keeps every trial it asked and every result it was told; the asks at
    positions in `poison_at` ask for POISON_BUDGET epochs, so that their trials fail."""

    instances: list["Spy"] = []
    poison_at: frozenset[int] = frozenset()

    def __init__(self, rng=0):
        super().__init__(rng)
        self.asked: list[Trial] = []
        self.told: list[tuple[Arch, float, int | None]] = []
        Spy.instances.append(self)

    def ask_trial(self) -> Trial:
        trial = super().ask_trial()
        if len(self.asked) in self.poison_at:
            trial = Trial(trial.arch, POISON_BUDGET)
        self.asked.append(trial)
        return trial

    def tell(self, arch, score, budget=None):
        self.told.append((arch, score, budget))


class PoisonedSpy(Spy):
    poison_at = frozenset({2})


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray instance with one CPU for the table searches of this file."""
    ray.init(num_cpus=1, include_dashboard=False)
    yield
    ray.shutdown()


# ---- the space -----------------------------------------------------------------------------------
def test_the_space_is_six_categorical_edges_and_configs_round_trip():
    space = search_space()
    assert list(space) == list(EDGE_KEYS) == ["edge_1_0", "edge_2_0", "edge_2_1", "edge_3_0", "edge_3_1", "edge_3_2"]
    assert all(list(domain.categories) == list(OPS) for domain in space.values())
    for arch in Arch.all()[::97]:
        assert config_to_arch(arch_to_config(arch)) == arch
        assert config_to_arch({**arch_to_config(arch), "epochs": 3}) == arch  # other keys are ignored
    # the keys name the NB201 string's edges: node 3 reads node 2 through edge_3_2
    config = arch_to_config("|none~0|+|none~0|none~1|+|none~0|none~1|nor_conv_3x3~2|")
    assert config["edge_3_2"] == "nor_conv_3x3" and set(config.values()) == {"none", "nor_conv_3x3"}


def test_bad_configs_and_options_raise_clear_errors():
    config = arch_to_config(0)
    with pytest.raises(ValueError, match="missing edge_3_2"):
        config_to_arch({k: v for k, v in config.items() if k != "edge_3_2"})
    with pytest.raises(ValueError, match=r"unknown NB201 operation.*'conv_7x7'"):
        config_to_arch({**config, "edge_1_0": "conv_7x7"})
    with pytest.raises(ValueError, match="unknown scheduler 'hyperband'"):
        make_scheduler("hyperband", 4)
    with pytest.raises(ValueError, match="mode must be 'min'"):
        NB360Search(RandomSearch(0), 4, mode="max")
    with pytest.raises(ValueError, match="zero-cost proxy"):
        tune_searcher("zc-re", 0, {"max_epochs": 4})
    with pytest.raises(ValueError, match="unknown search algorithm 'nope'"):
        tune_searcher("nope", 0, {})


def test_the_cli_knows_the_tune_searchers():
    from nb360.cli import options

    assert options.TUNE_SEARCHERS == TUNE_SEARCHERS


# ---- searches over a table ----------------------------------------------------------------------
def test_wrapped_searcher_asks_tune_and_is_told_each_trials_last_validation_score(local_ray, synthetic, tmp_path):
    """A wrapped nb360 searcher under ASHA, one trial of it failing on every retry."""
    Spy.instances.clear()
    trials = search_table(synthetic, [PoisonedSpy], seeds=[0], trials=12, scheduler="asha", max_failures=1,
                          storage=tmp_path, progress=False)
    [spy] = Spy.instances
    assert list(trials.columns) == list(COLUMNS) + list(TUNE_COLUMNS)
    assert len(trials) == len(spy.asked) == len(spy.told) == 12
    assert trials["trial"].tolist() == list(range(1, 13)) and trials["trial_id"].is_unique
    assert sorted(trials["index"]) == sorted(t.arch.index for t in spy.asked)

    # the poisoned trial: tried twice (max_failures=1), recorded as failed, told inf
    failed = trials[trials["status"] == "failed"]
    assert len(failed) == 1 and failed["index"].item() == spy.asked[2].arch.index
    assert failed["failures"].item() == 2 and np.isnan(failed["val"].item())
    assert f"a trial asked for {POISON_BUDGET} epochs" in failed["error"].item()
    told = {arch.index: (score, budget) for arch, score, budget in spy.told}
    assert told[spy.asked[2].arch.index] == (math.inf, POISON_BUDGET)

    # the others: the validation score (mean over the table's seeds) after the last epoch they ran,
    # told with the full budget (None) or, when ASHA stopped them, the epochs they trained
    ran = trials[trials["status"] != "failed"]
    assert set(ran["status"]) == {"finished", "stopped"}, "ASHA stops some trials and lets others finish"
    for row in ran.itertuples():
        expected = synthetic.query(row.index, epoch=row.epochs)["val_metric"]
        assert row.val == pytest.approx(expected, rel=1e-6) and told[row.index][0] == row.val
        if row.status == "finished":
            assert row.epochs == synthetic.epochs and told[row.index][1] is None
        else:
            assert row.epochs < synthetic.epochs and told[row.index][1] == row.epochs
        assert row.failures == 0 and row.error == ""

    # the tabular runner's columns: the incumbent's test regret and the training seconds spent
    best_test = np.nanmin(synthetic.final("test_metric"))
    for n in range(1, 13):
        seen = trials.iloc[:n]
        incumbent = seen.loc[seen["val"].idxmin(), "index"]
        assert trials["regret"].iloc[n - 1] == pytest.approx(synthetic.final("test_metric")[incumbent] - best_test)
    charged = [0.0 if row.status == "failed" else synthetic.query(row.index, epoch=row.epochs)["train_seconds"]
               for row in trials.itertuples()]
    assert trials["sim_seconds"].to_numpy() == pytest.approx(np.cumsum(charged), rel=1e-6)


def test_optuna_with_asha_through_the_cli(local_ray, synthetic, synthetic_path, tmp_path, capsys):
    """`nb360 search --backend ray --table T`: Tune's Optuna searcher over the Tune space, ASHA
    stopping trials early, the connected local Ray reused, the tabular runner's outputs written."""
    import pandas as pd

    from nb360.cli import main

    out = tmp_path / "out"
    code = main(["search", "--backend", "ray", "--table", str(synthetic_path), "--algo", "optuna", "--budget", "16",
                 "--scheduler", "asha", "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0
    assert "16 trials on Ray Tune" in printed and "s per trial" in printed and "\noptuna " in printed
    assert sorted(p.name for p in out.iterdir()) == ["best.json", "regret.png", "trials.csv", "tune"]
    assert (out / "trials.csv").read_text().splitlines()[0] == ",".join(COLUMNS + TUNE_COLUMNS)
    trials = pd.read_csv(out / "trials.csv")
    assert len(trials) == 16 and set(trials["algo"]) == {"optuna"} and set(trials["seed"]) == {0}
    assert (trials["status"] != "failed").all() and trials["index"].nunique() > 8
    stopped = trials[trials["status"] == "stopped"]
    assert len(stopped) > 0 and (stopped["epochs"] < synthetic.epochs).all()
    assert (trials.loc[trials["status"] == "finished", "epochs"] == synthetic.epochs).all()
    for row in trials.itertuples():
        assert row.val == pytest.approx(synthetic.query(row.index, epoch=row.epochs)["val_metric"], rel=1e-6)
        assert row.test == pytest.approx(synthetic.query(row.index)["test_metric"], rel=1e-6)
    best = json.loads((out / "best.json").read_text(), parse_constant=lambda c: pytest.fail(f"{c} in best.json"))
    assert best["optuna"]["0"]["val"] == pytest.approx(trials["val"].min())
    assert best["optuna"]["0"]["regret"] == pytest.approx(trials["regret"].iloc[-1])


@pytest.mark.parametrize("args, expected", [
    (["--algo", "optuna"], "Ray Tune's own searchers run with --backend ray"),
    (["--task", "darcyflow"], "add --backend ray"),
    (["--backend", "ray", "--time-budget", "60"], "with --backend ray give --budget"),
    (["--backend", "ray", "--workers", "2"], "--workers is the table backend's"),
    (["--backend", "ray", "--unscored", "skip"], "--unscored is the table backend's"),
    (["--backend", "ray", "--algo", "bogus"], "expected distinct algorithms among rs, re"),
    (["--backend", "ray", "--scheduler", "pbt"], "invalid choice: 'pbt'"),
])
def test_bad_ray_backend_input_is_one_line_exit_2(args, expected, tmp_path, capsys):
    from nb360.cli import main

    try:
        code = main(["search", *args, "--out", str(tmp_path)])
    except SystemExit as e:  # argparse's own errors
        code = e.code
    err = capsys.readouterr().err
    assert code == 2 and expected in err and len(err.strip().splitlines()) == 1, err


def test_table_curves_are_the_mean_over_seeds(synthetic):
    curves = TableCurves.from_benchmark(synthetic)
    assert curves.val.shape == curves.test.shape == curves.seconds.shape == (15625, synthetic.epochs)
    for index in (0, 1234, 15624):
        for epoch in (1, synthetic.epochs):
            q = synthetic.query(index, epoch=epoch)
            assert curves.val[index, epoch - 1] == pytest.approx(q["val_metric"], rel=1e-6)
            assert curves.seconds[index, epoch - 1] == pytest.approx(q["train_seconds"], rel=1e-6)


def test_without_a_table_regret_is_unknown_and_best_json_says_null(tmp_path):
    import pandas as pd

    row = {"algo": "re", "seed": 0, "trial": 1, "arch": str(Arch.from_index(5)), "index": 5, "epochs": 2, "val": 0.3,
           "test": 0.31, "sim_seconds": 1.5, "regret": float("nan"), "status": "finished", "failures": 0,
           "wall_seconds": 4.0, "trial_id": "a", "error": ""}
    paths = write_outputs(pd.DataFrame([row]), tmp_path)
    assert sorted(paths) == ["best", "trials"] and not (tmp_path / "regret.png").exists()
    best = json.loads(paths["best"].read_text(), parse_constant=lambda c: pytest.fail(f"{c} in best.json"))
    assert best == {"re": {"0": {"arch": row["arch"], "index": 5, "trial": 1, "epochs": 2, "val": 0.3, "test": 0.31,
                                 "regret": None}}}


# ---- real training on a real two-node cluster ------------------------------------------------
def _free_ports(n: int) -> list[int]:
    """`n` distinct free ports. All sockets stay bound until every port is chosen: picking them one
    at a time lets the system hand out the same port twice, and Ray refuses two components on one port."""
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _children(pid: int) -> list[int]:
    """Processes whose parent is `pid` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        kids = _children(todo.pop())
        out += kids
        todo += kids
    return out


def _title(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class Node:
    """One `ray start --block` process in its own session: it and the Ray processes it starts share
    its process group; trial workers (own process groups) are children of its raylet."""

    def __init__(self, args: list[str], env: dict, log: Path):
        self.log = log
        self.proc = subprocess.Popen([str(Path(sys.executable).with_name("ray")), "start", "--block", *args],
                                     env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)

    def wait_started(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while "Ray runtime started" not in self.log.read_text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"ray start did not come up:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.5)

    def trial_workers(self) -> list[int]:
        """Tune trial actors running on this node (their process title is ray::ImplicitFunc...)."""
        return [pid for pid in _descendants(self.proc.pid) if _title(pid).startswith("ray::ImplicitFunc")]

    def kill(self) -> None:
        """The machine dies: every process of the node at once."""
        pids = _descendants(self.proc.pid)
        _signal_group(self.proc.pid, signal.SIGKILL)
        for pid in pids:
            _signal(pid, signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> None:
        """Stop this node only (never `ray stop`, which stops every Ray instance on the machine)."""
        pids = _descendants(self.proc.pid)
        _signal_group(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            _signal_group(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)
        time.sleep(1)
        for pid in pids:  # workers in their own process groups outliving their raylet
            if _alive(pid):
                _signal(pid, signal.SIGKILL)


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


NODE_PORT_FLAGS = ("--node-manager-port", "--object-manager-port", "--dashboard-agent-listen-port",
                   "--dashboard-agent-grpc-port", "--runtime-env-agent-port", "--metrics-export-port")


@pytest.fixture
def two_node_cluster(tmp_path_factory):
    """A head and a second node, one CPU each, on this machine; yields (address, env, second node)."""
    folder = tmp_path_factory.mktemp("cluster")
    # the head's port and every port either node would otherwise take at a fixed default, all distinct
    port, *free = _free_ports(1 + 2 * len(NODE_PORT_FLAGS))
    node_ports = [[arg for flag, p in zip(NODE_PORT_FLAGS, free[i::2]) for arg in (flag, str(p))] for i in (0, 1)]
    # token authentication off for this throw-away local cluster (Ray >= 2.5x enables it by default
    # when ~/.ray/auth_token exists); the driver gets the same setting through `env`
    env = {**os.environ, "PYTHONPATH": str(REPO), "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    common = ["--num-cpus", "1", "--object-store-memory", str(100 * 2**20), "--node-ip-address", "127.0.0.1",
              "--disable-usage-stats"]
    nodes = [Node(["--head", "--port", str(port), "--temp-dir", str(folder / "ray"), "--include-dashboard", "false",
                   *common, *node_ports[0]], env, folder / "head.log")]
    try:
        nodes[0].wait_started()
        nodes.append(Node(["--address", f"127.0.0.1:{port}", *common, *node_ports[1]], env, folder / "node.log"))
        nodes[1].wait_started()
        yield f"127.0.0.1:{port}", env, nodes[1]
    finally:
        for node in reversed(nodes):
            node.stop()


@pytest.mark.slow
def test_search_survives_a_node_killed_mid_run(two_node_cluster, tmp_path):
    """`nb360 search --backend ray --task darcyflow` on a two-node cluster; the second node is killed
    while it trains a trial. The search completes, the lost trial is retried on the head, every
    trial is accounted for and the outputs are written."""
    from nb360.data import darcy

    address, env, second = two_node_cluster
    data = tmp_path / "data"
    darcy.generate(data, n=40, resolution=15, solver_resolution=29, progress=False)
    out = tmp_path / "out"
    trials = 6
    command = [sys.executable, "-m", "nb360.cli", "search", "--backend", "ray", "--task", "darcyflow", "--algo", "re",
               "--budget", str(trials), "--scheduler", "asha", "--epochs", "3", "--C", "4", "--N", "1",
               "--resolution", "15", "--data-root", str(data), "--address", address, "--max-failures", "2",
               "--out", str(out)]
    search = subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while not second.trial_workers():
            assert search.poll() is None, f"the search ended before a trial ran on node 2:\n{search.stdout.read()}"
            assert time.monotonic() < deadline, "the second node never ran a trial"
            time.sleep(0.2)
        time.sleep(1.0)  # into the trial's training
        second.kill()
        output, _ = search.communicate(timeout=600)
    finally:
        if search.poll() is None:
            _signal_group(search.pid, signal.SIGKILL)
            search.wait()
    assert search.returncode == 0, output[-5000:]
    assert "(raylet)" not in output, output[-5000:]  # Ray's own log lines stay in its session folder
    header = next(line for line in output.splitlines() if line.startswith("algo"))
    assert "regret" not in header  # trained on a task: no table to measure regret against

    lines = (out / "trials.csv").read_text().splitlines()
    assert lines[0] == ",".join(COLUMNS + TUNE_COLUMNS) and len(lines) == 1 + trials
    import pandas as pd

    rows = pd.read_csv(out / "trials.csv")
    assert rows["trial_id"].is_unique and set(rows["status"]) <= {"finished", "stopped", "failed"}
    assert rows["failures"].sum() >= 1, "the trial on the killed node was retried"
    retried = rows[rows["failures"] > 0]
    assert (retried["status"] != "failed").all(), "a retry on the head finished what the dead node started"
    done = rows[rows["status"] != "failed"]
    assert np.isfinite(done["val"]).all() and np.isfinite(done["test"]).all() and (done["epochs"] >= 1).all()
    assert ((done["status"] == "finished") == (done["epochs"] == 3)).all()
    # every trial has its folder in the experiment, and every folder is a row
    [experiment] = (out / "tune").iterdir()
    folders = {p.name for p in experiment.iterdir() if p.is_dir()}
    assert folders == set(rows["trial_id"])
    # each trial reported once per epoch it trained (the last attempt of a retried one)
    for row in done.itertuples():
        reports = (experiment / row.trial_id / "result.json").read_text().splitlines()
        assert [json.loads(r)["epoch"] for r in reports][-row.epochs:] == list(range(1, row.epochs + 1))
    best = json.loads((out / "best.json").read_text())
    assert best["re"]["0"]["val"] == pytest.approx(done["val"].min()) and best["re"]["0"]["regret"] is None
    assert f"{trials} trials on Ray Tune" in output and "retries" in output
    assert not second.trial_workers() and second.proc.poll() is not None


def test_interrupted_tune_search_says_what_tune_kept(synthetic_path, tmp_path, stop_after):
    """SIGTERM (or Ctrl-C) during a search on Ray Tune: one line, exit 2, naming where Tune's
    finished trials are."""
    out = tmp_path / "out"
    command = [sys.executable, "-m", "nb360.cli", "search", "--backend", "ray", "--table", str(synthetic_path),
               "--algo", "rs", "--budget", "400", "--num-cpus", "1", "--out", str(out)]
    run, stderr = stop_after(command, total=400, done=3, timeout=300)
    assert run.returncode == 2, stderr[-3000:]
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("nb360 search: interrupted; the trials Tune finished are kept in ") and str(out) in last
    assert (out / "tune").is_dir() and not (out / "trials.csv").exists()
