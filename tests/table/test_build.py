"""The table builder on a real local Ray cluster: selection, equality with direct training, a
worker killed mid-build, a driver interrupted and resumed, failures, protocol checks.

Faults are injected by a Ray worker setup hook (`_install_faults`) that wraps the network builder
in each worker process of a job, steered by files in a folder: the builder's own code path is the
one under test. Tiny protocol: Darcy Flow 9x9 (16 samples), C=2, N=1, 2 epochs, batch 4.
"""

import inspect
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import ray
import torch

import nb360
from nb360.data import darcy, load_task
from nb360.spaces.costs import table_costs
from nb360.spaces.nb201 import NUM_ARCHS, Arch, iso_class_ids
from nb360.spaces.network import build
from nb360.table.benchmark import Benchmark, counted, job_hardware, machine_in_words
from nb360.table.build import RunSpec, precompute, select_classes, this_machine, train_run
from nb360.table.schema import CURVES, DONE, FAILED, MISSING, TableWriter
from nb360.train import REVISION as TRAIN_REVISION, fit, seed_everything

REPO = Path(nb360.__file__).resolve().parents[1]
FAULTS_ENV = "NB360_TEST_FAULTS"
SEEDS = [0, 1]
CLASSES = 20
# Every argument of the reference build except where it writes and where the data live.
# Runs on the CPU (bit-identity is promised there) even where there is a GPU.
BUILD = dict(task="darcyflow", epochs=2, seeds=SEEDS, archs=CLASSES, C=2, N=1, batch_size=4, resolution=9,
             num_gpus_per_task=0, progress=False)
# Curves compared bit for bit (training time differs from run to run).
COMPARED = [name for name in CURVES if name != "train_seconds"]


def _install_faults() -> None:
    """Ray worker setup hook: wraps `nb360.spaces.network.build` so that a test can count, slow,
    fail or kill trainings through files in the folder named by $NB360_TEST_FAULTS:
    trainings.log gets one line per training; `fail-<index>` makes that arch raise; `kill-at`
    holding n makes the n-th training SIGKILL its own worker (once: the file is renamed to
    `killed`); `delay` holds seconds to sleep before each training."""
    import os
    import signal
    import time
    from pathlib import Path

    from nb360.spaces import network
    from nb360.spaces.nb201 import Arch

    faults = Path(os.environ["NB360_TEST_FAULTS"])
    real_build = network.build

    def build(arch, spec, C, N):
        index = Arch.parse(arch).index
        with open(faults / "trainings.log", "a") as log:
            log.write(f"{index}\n")
        if (faults / f"fail-{index}").exists():
            raise RuntimeError(f"injected failure of arch {index}")
        kill_at = faults / "kill-at"
        if kill_at.exists() and len((faults / "trainings.log").read_text().split()) >= int(kill_at.read_text()):
            try:
                os.rename(kill_at, faults / "killed")  # one worker wins the rename
            except FileNotFoundError:
                pass
            else:
                os.kill(os.getpid(), signal.SIGKILL)
        if (faults / "delay").exists():
            time.sleep(float((faults / "delay").read_text()))
        return real_build(arch, spec, C, N)

    network.build = build


# ---- fixtures ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("darcy")
    darcy.generate(root, n=16, resolution=9, solver_resolution=17, progress=False)
    return root


@pytest.fixture(scope="module")
def faults_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("faults")


@pytest.fixture(scope="module")
def cluster(faults_dir):
    """One local Ray instance (2 CPUs) for the tests of this file, its workers carrying the fault hook
    (shipped by value: workers cannot import this test module; the hook runs before a worker has
    the driver's folder on its path, hence PYTHONPATH)."""
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(num_cpus=2, include_dashboard=False, runtime_env={
        "worker_process_setup_hook": _install_faults,
        "env_vars": {FAULTS_ENV: str(faults_dir), "PYTHONPATH": str(REPO)}})
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture
def faults(cluster, faults_dir) -> Path:
    """The fault folder, emptied: no faults armed, no trainings counted."""
    for path in faults_dir.iterdir():
        path.unlink()
    return faults_dir


@pytest.fixture(scope="module")
def reference(cluster, data_root, tmp_path_factory) -> Path:
    """The fault-free build that the other builds must reproduce."""
    path = tmp_path_factory.mktemp("reference") / "reference.h5"
    summary = precompute(out=path, data_root=data_root, **BUILD)
    assert summary["done"] == CLASSES * len(SEEDS) and summary["failed"] == summary["skipped"] == 0
    return path


def build_seconds(path: Path) -> float:
    with h5py.File(path, "r") as f:
        return float(f.attrs["build_seconds"])


@pytest.fixture
def one_thread():
    """Train on one thread in this process, as every worker does; restore the count afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ---- helpers ----------------------------------------------------------------------------------
def trainings(faults: Path) -> list[int]:
    log = faults / "trainings.log"
    return [int(line) for line in log.read_text().split()] if log.exists() else []


def table(path: Path) -> dict[str, np.ndarray]:
    with h5py.File(path, "r") as f:
        out = {name: f["curves"][name][()] for name in CURVES}
        out.update(status=f["runs/status"][()], error=f["runs/error"].asstr()[()],
                   params=f["archs/params"][()], flops=f["archs/flops"][()],
                   protocol=json.loads(f.attrs["protocol"]))
    return out


def assert_same_results(path: Path, reference: Path) -> None:
    a, b = table(path), table(reference)
    np.testing.assert_array_equal(a["status"], b["status"])
    for name in COMPARED:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def selected_members(archs) -> list[int]:
    return sorted(i for members in select_classes(archs).values() for i in members)


# ---- selection --------------------------------------------------------------------------------
def test_selection_repeats_extends_and_brings_whole_classes(tmp_path):
    iso = iso_class_ids()
    assert len(select_classes("all")) == 6466 and len(selected_members("all")) == 15625
    small, large = select_classes(5), select_classes(12)
    assert small == select_classes("5") and list(small) == list(large)[:5]  # a prefix of one random order
    assert list(select_classes("all"))[:12] == list(large)
    assert list(large) != sorted(large)  # a partial build samples the space, not its low indices
    for rep, members in large.items():
        assert members == sorted(np.flatnonzero(iso == rep).tolist()) and rep == members[0]
    member = next(m for members in large.values() for m in members[1:])  # a non-representative
    assert select_classes([member]) == {int(iso[member]): large[int(iso[member])]}
    listed = tmp_path / "archs.txt"
    listed.write_text(f"# chosen cells\n{member}\n\n{Arch.from_index(7)}  # by string\n")
    assert set(select_classes(listed)) == {int(iso[member]), int(iso[7])}
    with pytest.raises(ValueError, match="1..6466"):
        select_classes(0)
    with pytest.raises(FileNotFoundError, match="no such file"):
        select_classes(tmp_path / "absent.txt")


# ---- a build ------------------------------------------------------------------------------------
def test_build_fills_exactly_the_selected_classes_with_direct_fit_results(reference, data_root, one_thread):
    t = table(reference)
    members = selected_members(CLASSES)
    others = np.setdiff1d(np.arange(15625), members)
    assert (t["status"][members] == DONE).all() and (t["status"][others] == MISSING).all()
    for name in CURVES:
        assert np.isfinite(t[name][members]).all() and np.isnan(t[name][others]).all()
    task = load_task("darcyflow", data_root, resolution=9)
    params, flops = table_costs(task.spec, C=2, N=1)
    np.testing.assert_array_equal(t["params"], params)
    np.testing.assert_array_equal(t["flops"], flops)
    assert t["protocol"]["epochs"] == 2 and t["protocol"]["seeds"] == SEEDS and t["protocol"]["batch_size"] == 4

    for rep, class_members in select_classes(CLASSES).items():
        for col, seed in enumerate(SEEDS):
            seed_everything(seed)
            records = fit(build(rep, task.spec, 2, 1), task.splits, task.loss, task.metric, epochs=2,
                          batch_size=4, seed=seed, device="cpu", progress=False)
            for name in COMPARED:
                expected = np.array([r[name] for r in records], dtype=np.float32)
                for row in class_members:
                    np.testing.assert_array_equal(t[name][row, col], expected, err_msg=f"{name} {rep} {seed}")


def test_a_worker_killed_mid_build_is_retried_and_changes_nothing(reference, faults, data_root, tmp_path):
    (faults / "kill-at").write_text(str(CLASSES * len(SEEDS) // 2))
    summary = precompute(out=tmp_path / "t.h5", data_root=data_root, **BUILD)
    assert (faults / "killed").exists(), "no worker was killed"
    assert summary["done"] == CLASSES * len(SEEDS) and summary["failed"] == 0
    assert len(trainings(faults)) == CLASSES * len(SEEDS) + 1  # the killed run trained again
    assert_same_results(tmp_path / "t.h5", reference)


def test_an_interrupted_driver_resumes_without_retraining_finished_runs(reference, faults, cluster, data_root, tmp_path):
    """A driver in another process (joined to the same cluster, its trainings slowed) gets SIGINT
    mid-build; running the same build again finishes the table as if nothing had happened."""
    out = tmp_path / "t.h5"
    its_faults = tmp_path / "faults"
    its_faults.mkdir()
    (its_faults / "delay").write_text("0.4")
    script = "\n".join([
        "import json, sys, ray",
        "from nb360.table.build import precompute",
        inspect.getsource(_install_faults),
        "args = json.loads(sys.argv[1])",
        "ray.init(address=args.pop('address'), runtime_env={'worker_process_setup_hook': _install_faults,",
        f"         'env_vars': {{{FAULTS_ENV!r}: args.pop('faults'), 'PYTHONPATH': {str(REPO)!r}}}}})",
        "precompute(**args)",
    ])
    args = {**BUILD, "out": str(out), "data_root": str(data_root), "address": cluster, "faults": str(its_faults)}
    # Ctrl-C's default action even where pytest runs as a background job (`pytest &`), whose children
    # inherit an ignored SIGINT and so would never see it
    driver = subprocess.Popen([sys.executable, "-c", script, json.dumps(args)], cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while len(trainings(its_faults)) < 8:
        assert driver.poll() is None, driver.communicate()[0]
        assert time.monotonic() < deadline, "the build did not start"
        time.sleep(0.1)
    driver.send_signal(signal.SIGINT)
    output = driver.communicate(timeout=60)[0]
    assert driver.returncode != 0 and "KeyboardInterrupt" in output, output

    runs_written = sum(int((table(out)["status"][members, col] == DONE).all())
                       for members in select_classes(CLASSES).values() for col in range(len(SEEDS)))
    assert 0 < runs_written < CLASSES * len(SEEDS)
    interrupted_seconds = build_seconds(out)
    assert interrupted_seconds > 0  # the killed build's time was counted as it went

    summary = precompute(out=out, data_root=data_root, **BUILD)
    assert summary["skipped"] == runs_written and summary["done"] == CLASSES * len(SEEDS) - runs_written
    assert interrupted_seconds < build_seconds(out) <= interrupted_seconds + summary["seconds"]
    assert len(trainings(faults)) == summary["done"]  # finished runs were not trained again
    assert_same_results(out, reference)

    # both jobs are in the table's build log, the killed one with the progress it had made
    killed, resumed = Benchmark.load(out).builds
    assert (killed["runs_before"], killed["runs_to_do"], killed["runs_done"]) == (0, CLASSES * len(SEEDS), runs_written)
    assert (resumed["runs_before"], resumed["runs_done"], resumed["runs_failed"]) == (runs_written, summary["done"], 0)
    assert killed["seconds"] + resumed["seconds"] == pytest.approx(build_seconds(out), abs=2.0)
    assert killed["started"] <= resumed["started"] and "-c" in killed["command"]
    assert resumed["cluster"] == {"nodes": 1, "cpus": 2.0, "gpus": 0.0}
    assert resumed["driver"]["cpus"] >= 1 and resumed["versions"]["nb360"] == nb360.__version__
    assert job_hardware(resumed).endswith("Ray 1 node, 2 CPUs, 0 GPUs")


def test_a_machine_is_recorded_and_worded_as_the_build_log_keeps_it():
    here = this_machine()
    assert here["cpus"] == os.cpu_count() and here["memory_gib"] > 0
    assert machine_in_words(here).startswith(f"{os.cpu_count()} CPU core")
    lent = {"machine": "x86_64", "cpus": 1, "memory_gib": 80.4, "gpus": ["GPU A", "GPU B"]}
    assert machine_in_words(lent) == "1 CPU core (x86_64), 80 GiB, GPU A, GPU B"
    assert [counted(n, "run") for n in (1, 2.0, 0.5, 1_234_567)] == ["1 run", "2 runs", "0.5 runs", "1,234,567 runs"]


def test_a_failing_run_is_recorded_with_its_error_and_retried_on_resume(faults, data_root, tmp_path):
    reps = list(select_classes(3))
    failing = reps[1]
    (faults / f"fail-{failing}").touch()
    build_args = {**BUILD, "archs": reps, "seeds": [0], "out": tmp_path / "t.h5", "data_root": data_root}
    summary = precompute(**build_args)
    assert summary["done"] == 2 and summary["failed"] == 1
    assert trainings(faults).count(failing) == 1  # a deterministic error is not retried
    t = table(tmp_path / "t.h5")
    members = select_classes(reps)[failing]
    assert (t["status"][members, 0] == FAILED).all()
    assert all(f"injected failure of arch {failing}" in t["error"][m, 0] for m in members)
    assert np.isnan(t["val_metric"][members]).all()

    (faults / f"fail-{failing}").unlink()
    summary = precompute(**build_args)
    assert (summary["done"], summary["failed"], summary["skipped"]) == (1, 0, 2)
    t = table(tmp_path / "t.h5")
    assert (t["status"][members, 0] == DONE).all() and (t["error"][members, 0] == "").all()


def test_resuming_with_another_protocol_names_the_differing_fields(reference, data_root, tmp_path):
    out = tmp_path / "t.h5"
    shutil.copy(reference, out)
    with pytest.raises(ValueError, match=r"another protocol.*batch_size \(table: 4, now: 8\).*epochs \(table: 2, now: 3\)"):
        precompute(**{**BUILD, "batch_size": 8, "epochs": 3}, out=out, data_root=data_root)
    assert_same_results(out, reference)


def test_more_seeds_extend_a_table_keeping_its_runs(reference, faults, data_root, tmp_path):
    """A table whose seeds prove too few gets another: only the new seed is trained, everything the
    table held is kept, and the new column equals that seed built on its own (a run is its seed's)."""
    out = tmp_path / "t.h5"
    shutil.copy(reference, out)
    with TableWriter(out) as writer:
        writer.set_proxy("snip", np.arange(NUM_ARCHS, dtype=float), settings={"batch_size": 1})
    assert precompute(**{**BUILD, "seeds": [1]}, out=out, data_root=data_root)["skipped"] == CLASSES  # a subset: done
    summary = precompute(**{**BUILD, "seeds": [0, 1, 2]}, out=out, data_root=data_root)
    assert (summary["done"], summary["skipped"], summary["runs"]) == (CLASSES, 2 * CLASSES, 3 * CLASSES)
    assert sorted(trainings(faults)) == sorted(select_classes(CLASSES))  # seed 2 of each class, once

    precompute(**{**BUILD, "seeds": [2]}, out=tmp_path / "seed2.h5", data_root=data_root)
    extended, before, alone = table(out), table(reference), table(tmp_path / "seed2.h5")
    assert extended["protocol"] == {**before["protocol"], "seeds": [0, 1, 2]}
    np.testing.assert_array_equal(extended["status"], np.hstack([before["status"], alone["status"]]))
    for name in COMPARED:
        np.testing.assert_array_equal(extended[name], np.concatenate([before[name], alone[name]], axis=1), err_msg=name)
    b = Benchmark.load(out)
    assert b.seeds == [0, 1, 2] and b.df["proxy_snip"].tolist() == list(range(NUM_ARCHS))
    assert len(b.builds) == len(Benchmark.load(reference).builds) + 1  # the job that added seed 2; the subset had nothing to do
    np.testing.assert_array_equal(b.df["params"], before["params"])


def test_a_worker_refuses_data_that_differ_from_the_drivers(data_root, one_thread):
    spec = RunSpec(task="darcyflow", data_root=str(data_root), resolution=9, C=2, N=1, epochs=1, batch_size=4,
                   lr=0.1, weight_decay=5e-4, data_sha256="0" * 64)
    with pytest.raises(ValueError, match="differ from the driver's"):
        train_run(spec, 0, seed=0)


def test_precompute_joins_a_running_cluster_by_address(cluster, data_root, tmp_path):
    """The path of `--address`: a fresh process connects with precompute's own ray.init and leaves."""
    args = {**BUILD, "archs": 2, "seeds": [0], "out": str(tmp_path / "t.h5"), "data_root": str(data_root),
            "address": cluster}
    script = "import json, sys; from nb360.table.build import precompute; print(json.dumps(precompute(**json.loads(sys.argv[1]))))"
    done = subprocess.run([sys.executable, "-c", script, json.dumps(args)], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert (summary["done"], summary["failed"]) == (2, 0)


def test_a_larger_test_set_is_part_of_the_protocol(cluster, data_root, tmp_path):
    """`test_size`: more of smooth2 scores every run, the protocol records it, resuming with another
    size is refused, and `table_task` loads the table's own test set."""
    from nb360.table.build import table_task

    out = tmp_path / "t.h5"
    summary = precompute(**{**BUILD, "archs": 1, "seeds": [0]}, test_size=8, out=out, data_root=data_root)
    assert summary["done"] == 1
    with h5py.File(out, "r") as f:
        assert json.loads(f.attrs["protocol"])["test_size"] == 8
    task, *_ = table_task(out, data_root)
    assert len(task.test) == 8  # the data hold 16: the table's own size, not the loader's default
    with pytest.raises(ValueError, match=r"test_size \(table: 8, now: 16\)"):
        precompute(**{**BUILD, "archs": 1, "seeds": [0]}, test_size=16, out=out, data_root=data_root)


def test_test_every_scores_the_test_split_less_often_and_is_part_of_the_protocol(reference, data_root, tmp_path):
    """`test_every`: epochs it skips store NaN test scores, everything else equals the reference
    build (which scores test every epoch); the protocol records it, with the training revision
    (runs of another nb360 numerics never join a table)."""
    out = tmp_path / "t.h5"
    precompute(**{**BUILD, "epochs": 2}, test_every=2, out=out, data_root=data_root)
    ours, ref = table(out), table(reference)
    np.testing.assert_array_equal(ours["status"], ref["status"])
    trained = ref["status"] == DONE
    assert np.isnan(ours["test_metric"][trained][:, 0]).all()  # epoch 1 skipped, epoch 2 is the last
    for name in COMPARED:
        if name != "test_metric":
            np.testing.assert_array_equal(ours[name], ref[name], err_msg=name)
    np.testing.assert_array_equal(ours["test_metric"][..., 1], ref["test_metric"][..., 1])
    assert (ours["protocol"]["test_every"], ref["protocol"]["test_every"]) == (2, 1)
    assert ours["protocol"]["revision"] == TRAIN_REVISION
    with pytest.raises(ValueError, match=r"test_every \(table: 2, now: 1\)"):
        precompute(**BUILD, out=out, data_root=data_root)


def test_the_spec_is_the_tables_network_without_its_data():
    from nb360.table.benchmark import resolve
    from nb360.table.build import table_spec

    spec, C, N = table_spec(resolve("nb201-burgers-mini"))
    assert (spec.kind, spec.in_channels, spec.in_shape, spec.out_size, C, N) == ("dense1d", 2, (64,), 1, 4, 1)
