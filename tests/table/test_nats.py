"""The NATS-format importer: every number of a fixture file in NATS-Bench's exact layout lands in the
table, converted, and NATS-Bench's own API (when it installs) reads the same fixture to the same
answers, so that the fixture is proven to be in the real format."""

from __future__ import annotations

import bz2
import hashlib
import os
import pickle
import re
import subprocess
import sys

import h5py
import numpy as np
import pytest
from nats_fixture import synthetic_nats, write_nats_archive, write_nats_file

from nb360.spaces.nb201 import NUM_ARCHS, Arch
from nb360.table.benchmark import Benchmark
from nb360.table.nats import DATASETS, UnsafePickleError, import_nats, safe_load
from nb360.table.schema import CURVES, DONE, MISSING

INDICES = [0, 1, 9, 123, 4000, 7777, 15624] + list(range(300, 330))
SINGLE_SEED = {9, 4000, 310}  # these archs ran seed 777 only
SEEDS = (777, 888)
EPOCHS = 12
# Where val_metric and test_metric come from (nats_bench get_more_info)
SETS = {"cifar10-valid": ("x-valid", "ori-test"), "cifar100": ("x-valid", "x-test"),
        "darcyflow": (None, "ori-test")}


@pytest.fixture(scope="module")
def cifar(tmp_path_factory):
    """A benchmark file with two NATS-Bench datasets, its data and its archive."""
    folder = tmp_path_factory.mktemp("nats")
    data = synthetic_nats(INDICES, ("cifar10-valid", "cifar100"), SEEDS, EPOCHS, "12", seed=1, single_seed=SINGLE_SEED)
    path = write_nats_file(data, folder / "NATS-tss-v1_0-fixture.pickle.pbz2")
    archive = write_nats_archive(data, folder / "NATS-tss-v1_0-fixture-simple")
    return data, path, archive


@pytest.fixture(scope="module")
def darcy(tmp_path_factory):
    """A NAS-Bench-360 Darcy Flow file: dataset "darcyflow", ori-test only, seed 777, no latency."""
    data = synthetic_nats(INDICES[:10], ("darcyflow",), (777,), EPOCHS, "12", seed=2)
    return data, write_nats_file(data, tmp_path_factory.mktemp("nb360") / "NATS-tss-v1_0-darcy.pickle.pbz2")


def _table(tmp_path, source, task, **kwargs):
    return import_nats(source, task, tmp_path / f"{task}.h5", hp="12", progress=False, **kwargs)


def _expected_run(run: dict, task: str) -> dict[str, np.ndarray]:
    """The table curves of one fixture run, computed here independently of the importer."""
    val, test = SETS[task]  # val None: no validation set
    to_metric = (lambda a: 1.0 - a) if task == "darcyflow" else (lambda a: (100.0 - a) / 100.0)
    acc = run["eval_acc1es"]
    return {
        "train_loss": np.array([run["train_losses"][e] for e in range(EPOCHS)]),
        "train_metric": np.array([to_metric(run["train_acc1es"][e]) for e in range(EPOCHS)]),
        "val_metric": np.array([to_metric(acc[f"{val}@{e}"]) if f"{val}@{e}" in acc else np.nan for e in range(EPOCHS)]),
        "test_metric": np.array([to_metric(acc[f"{test}@{e}"]) if f"{test}@{e}" in acc else np.nan for e in range(EPOCHS)]),
        "train_seconds": np.cumsum([run["train_times"][e] for e in range(EPOCHS)]),
    }


def _check_table(table, data: dict, task: str) -> None:
    """Every curve value, status and cost of the table against the fixture; NaN elsewhere."""
    with h5py.File(table, "r") as f:
        seeds = [int(s) for s in f["seeds"][()]]
        curves = {name: f["curves"][name][()] for name in CURVES}
        status = f["runs/status"][()]
        costs = {name: f["archs"][name][()] for name in ("params", "flops", "latency_ms")}
    present = np.zeros(NUM_ARCHS, dtype=bool)
    for index, hp2info in data["arch2infos"].items():
        state = hp2info["12"]
        present[index] = True
        for col, seed in enumerate(seeds):
            run = state["all_results"].get((task, seed))
            if run is None:
                assert status[index, col] == MISSING
                assert all(np.isnan(curves[name][index, col]).all() for name in CURVES)
                continue
            assert status[index, col] == DONE
            for name, values in _expected_run(run, task).items():
                np.testing.assert_allclose(curves[name][index, col], values, rtol=1e-6, equal_nan=True, err_msg=name)
        run = state["all_results"][(task, state["dataset_seed"][task][0])]  # costs are shared by the seeds
        assert costs["params"][index] == round(float(run["params"]) * 1e6)
        assert costs["flops"][index] == round(run["flop"] * 1e6)
        latency = run["latency"]
        assert np.isnan(costs["latency_ms"][index]) if latency is None else costs["latency_ms"][index] == pytest.approx(1e3 * latency[0])
    assert (status[~present] == MISSING).all()
    assert all(np.isnan(curves[name][~present]).all() for name in CURVES)
    assert all(np.isnan(costs[name][~present]).all() for name in costs)


@pytest.mark.parametrize("task", ["cifar10-valid", "cifar100"])
def test_every_number_is_imported(tmp_path, cifar, task):
    data, path, _ = cifar
    table = _table(tmp_path, path, task)
    _check_table(table, data, task)
    b = Benchmark.load(table)
    assert (b.task, b.metric, b.epochs, b.seeds) == (task, "zero_one_error", EPOCHS, list(SEEDS))
    assert b.provenance["source"] == path.name
    assert b.provenance["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert (b.provenance["hp"], b.provenance["dataset"]) == ("12", task)
    assert (b.protocol["val_set"], b.protocol["test_set"]) == SETS[task]


def test_benchmark_returns_the_fixture_numbers(tmp_path, cifar):
    data, path, _ = cifar
    b = Benchmark.load(_table(tmp_path, path, "cifar100"))
    for index in (0, 123, 9):
        state = data["arch2infos"][index]["12"]
        runs = {seed: _expected_run(state["all_results"][("cifar100", seed)], "cifar100")
                for seed in state["dataset_seed"]["cifar100"]}
        for seed, expected in runs.items():
            np.testing.assert_allclose(b.curve(index, "val_metric", seed=seed), expected["val_metric"], rtol=1e-6)
            assert b.query(index, epoch=5, seed=seed)["test_metric"] == pytest.approx(expected["test_metric"][4], rel=1e-6)
        mean = np.mean([r["test_metric"][-1] for r in runs.values()])
        q = b.query(Arch.from_index(index))
        assert q["test_metric"] == pytest.approx(mean, rel=1e-6)
        assert q["runs_done"] == len(runs)


def test_the_archive_layout_gives_the_same_table(tmp_path, cifar):
    data, path, archive = cifar
    from_file, from_archive = _table(tmp_path, path, "cifar100"), import_nats(archive, "cifar100", tmp_path / "a.h5", hp="12", progress=False)
    _check_table(from_archive, data, "cifar100")
    with h5py.File(from_file, "r") as f, h5py.File(from_archive, "r") as g:
        for name in CURVES:
            np.testing.assert_array_equal(f["curves"][name][()], g["curves"][name][()])
    assert Benchmark.load(from_archive).provenance["layout"] == "archive"


def test_sets_scored_at_the_last_epoch_only_are_nan_before(tmp_path):
    """The published hp=200 files score x-valid and x-test of cifar100 at the last epoch only."""
    data = synthetic_nats([5, 6], ("cifar100",), SEEDS, EPOCHS, "12", final_only=("x-valid", "x-test"))
    b = Benchmark.load(_table(tmp_path, write_nats_file(data, tmp_path / "f.pickle.pbz2"), "cifar100"))
    curve = b.curve(5, "test_metric")
    assert np.isnan(curve[:-1]).all() and np.isfinite(curve[-1])
    assert np.isfinite(b.curve(5, "train_metric")).all()


def test_darcy_flow_accuracy_becomes_relative_l2(tmp_path, darcy):
    """NAS-Bench-360 stores loss = relative L2 and accuracy = 1 - relative L2."""
    data, path = darcy
    table = _table(tmp_path, path, "darcyflow")
    _check_table(table, data, "darcyflow")
    b = Benchmark.load(table)
    assert (b.metric, b.seeds, b.protocol["benchmark"]) == ("relative_l2", [777], "NAS-Bench-360")
    run = data["arch2infos"][0]["12"]["all_results"][("darcyflow", 777)]
    test = b.curve(0, "test_metric")
    np.testing.assert_allclose(test, [run["eval_losses"][f"ori-test@{e}"] for e in range(EPOCHS)], rtol=1e-5)
    np.testing.assert_allclose(test, [1.0 - run["eval_acc1es"][f"ori-test@{e}"] for e in range(EPOCHS)], rtol=1e-6)
    assert np.isnan(b.curve(0, "val_metric")).all()  # NAS-Bench-360's files have no validation set
    assert (b.protocol["val_set"], b.protocol["test_set"]) == (None, "ori-test")
    assert np.isnan(b.query(0)["latency_ms"])


def test_an_unknown_task_lists_the_supported_ones(tmp_path, cifar):
    with pytest.raises(ValueError, match="supported: " + ", ".join(DATASETS)):
        _table(tmp_path, cifar[1], "cifar1000")


def test_an_absent_hp_or_dataset_says_what_the_file_has(tmp_path, cifar):
    with pytest.raises(ValueError, match="hp='200'.*has hp 12"):
        import_nats(cifar[1], "cifar100", tmp_path / "t.h5", hp="200", progress=False)
    with pytest.raises(ValueError, match="no runs of 'ninapro'.*cifar10-valid, cifar100"):
        _table(tmp_path, cifar[1], "ninapro")
    assert not (tmp_path / "t.h5").exists()


def test_an_arch_away_from_its_official_index_is_an_error(tmp_path):
    data = synthetic_nats([0], ("cifar100",), SEEDS, EPOCHS, "12")
    data["meta_archs"][1], data["meta_archs"][2] = data["meta_archs"][2], data["meta_archs"][1]
    with pytest.raises(ValueError, match=re.escape(f"arch '{Arch.from_index(2)}' is at position 1 but its official index is 2")):
        _table(tmp_path, write_nats_file(data, tmp_path / "f.pickle.pbz2"), "cifar100")


def test_an_entry_holding_another_arch_is_an_error(tmp_path):
    data = synthetic_nats([0, 1], ("cifar100",), SEEDS, EPOCHS, "12")
    data["arch2infos"][0], data["arch2infos"][1] = data["arch2infos"][1], data["arch2infos"][0]
    with pytest.raises(ValueError, match="entry 0 holds arch 1"):
        _table(tmp_path, write_nats_file(data, tmp_path / "f.pickle.pbz2"), "cifar100")


def test_an_existing_table_is_kept(tmp_path, cifar):
    _table(tmp_path, cifar[1], "cifar100")
    with pytest.raises(FileExistsError):
        _table(tmp_path, cifar[1], "cifar100")
    _table(tmp_path, cifar[1], "cifar100", overwrite=True)


class _RunsCode:
    """Unpickling this calls `func(*args)`: what a malicious file would do."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


@pytest.mark.parametrize("func, name", [(os.system, f"{os.system.__module__}.system"), (eval, "builtins.eval")])
def test_a_pickle_that_runs_code_is_refused(tmp_path, func, name):
    marker = tmp_path / "pwned"
    command = f"open({str(marker)!r}, 'w')" if func is eval else f"touch {marker}"
    data = synthetic_nats([0], ("cifar100",), SEEDS, EPOCHS, "12")
    data["arch2infos"][0]["12"]["all_results"][("cifar100", 777)]["name"] = _RunsCode(func, command)
    path = write_nats_file(data, tmp_path / "evil.pickle.pbz2")
    with pytest.raises(UnsafePickleError, match=f"refusing to load {name}"):
        safe_load(path)
    with pytest.raises(UnsafePickleError):
        _table(tmp_path, path, "cifar100")
    assert not marker.exists() and not (tmp_path / "cifar100.h5").exists()


def test_numpy_scalars_of_older_numpy_are_read_as_numbers(tmp_path):
    """The published files were pickled by numpy < 2 (numpy.core.multiarray.scalar)."""
    raw = pickle.dumps({"params": np.float64(0.802426), "n": np.int64(7)}, protocol=3)
    raw = raw.replace(b"numpy._core.multiarray\nscalar", b"numpy.core.multiarray\nscalar")
    assert b"numpy.core.multiarray" in raw
    (tmp_path / "old.pbz2").write_bytes(bz2.compress(raw))
    assert safe_load(tmp_path / "old.pbz2") == {"params": 0.802426, "n": 7}


def test_numpy_arrays_are_refused(tmp_path):
    (tmp_path / "a.pbz2").write_bytes(bz2.compress(pickle.dumps(np.zeros(3))))
    with pytest.raises(UnsafePickleError, match="refusing to load numpy"):
        safe_load(tmp_path / "a.pbz2")


def test_nats_bench_reads_the_fixture_as_the_table_does(tmp_path, cifar, nats_bench):
    """NATS-Bench's own API on the fixture (benchmark file and archive) gives the table's numbers:
    the fixture is in the real format, and the importer follows get_more_info's choice of sets."""
    _, path, archive = cifar
    for api in (nats_bench.create(str(path), "tss", fast_mode=False, verbose=False),
                nats_bench.create(str(archive), "tss", fast_mode=True, verbose=False)):
        for task in ("cifar10-valid", "cifar100"):
            b = Benchmark.load(import_nats(path, task, tmp_path / f"{task}.h5", hp="12", overwrite=True, progress=False))
            for index in (0, 9, 15624):
                for seed in api.query_meta_info_by_index(index, hp="12").get_dataset_seeds(task):
                    for epoch in (1, 7, EPOCHS):
                        info = api.get_more_info(index, task, iepoch=epoch - 1, hp="12", is_random=seed)
                        q = b.query(index, epoch=epoch, seed=seed)
                        assert q["train_loss"] == pytest.approx(info["train-loss"], rel=1e-6)
                        assert q["train_metric"] == pytest.approx((100 - info["train-accuracy"]) / 100, rel=1e-6)
                        assert q["val_metric"] == pytest.approx((100 - info["valid-accuracy"]) / 100, rel=1e-6)
                        assert q["test_metric"] == pytest.approx((100 - info["test-accuracy"]) / 100, rel=1e-6)
                        assert q["train_seconds"] == pytest.approx(info["train-all-time"], rel=1e-6)
                mean = api.get_more_info(index, task, hp="12", is_random=False)
                assert b.query(index)["test_metric"] == pytest.approx((100 - mean["test-accuracy"]) / 100, rel=1e-6)
                cost = api.get_cost_info(index, task, hp="12")
                q = b.query(index)
                assert (q["params"], q["flops"]) == (round(cost["params"] * 1e6), round(cost["flops"] * 1e6))
                assert q["latency_ms"] == pytest.approx(cost["latency"] * 1e3)


def test_pickled_nats_bench_objects_are_read_as_their_state(tmp_path, cifar, nats_bench):
    """A file holding ArchResults objects instead of their state dicts imports to the same table."""
    data = cifar[0]
    objects = {**data, "arch2infos": {index: {hp: nats_bench.ArchResults.create_from_state_dict(state)
                                              for hp, state in hp2info.items()}
                                      for index, hp2info in data["arch2infos"].items()}}
    table = _table(tmp_path, write_nats_file(objects, tmp_path / "objects.pickle.pbz2"), "cifar100")
    _check_table(table, data, "cifar100")


def test_the_import_command(tmp_path, darcy):
    """`nb360 table import` end to end, then `nb360 query` on its table, as a user runs them."""
    data, path = darcy
    out = tmp_path / "darcy.h5"
    run = [sys.executable, "-m", "nb360.cli"]
    result = subprocess.run([*run, "table", "import", str(path), "--task", "darcyflow", "--hp", "12", "--out", str(out)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    index = INDICES[0]
    query = subprocess.run([*run, "query", str(out), str(index)], capture_output=True, text=True, check=True)
    fields = dict(line.split(None, 1) for line in query.stdout.splitlines())
    stored = data["arch2infos"][index]["12"]["all_results"][("darcyflow", 777)]["eval_acc1es"][f"ori-test@{EPOCHS - 1}"]
    assert float(fields["test_metric"]) == pytest.approx(1 - stored, rel=1e-6)
    again = subprocess.run([*run, "table", "import", str(path), "--task", "darcyflow", "--hp", "12", "--out", str(out)],
                           capture_output=True, text=True)
    assert again.returncode == 2 and "error" in again.stderr and len(again.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("how", ["not bz2", "truncated", "empty", "bz2 of text", "unsafe"])
def test_a_damaged_or_unsafe_file_is_one_line_naming_it(tmp_path, darcy, how):
    _, good = darcy
    path = tmp_path / f"{how.replace(' ', '-')}.pickle.pbz2"
    raw = good.read_bytes()
    if how == "not bz2":
        path.write_text("not a pickle\n")
    elif how == "truncated":
        path.write_bytes(raw[: len(raw) // 2])
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "bz2 of text":
        path.write_bytes(bz2.compress(b"hello, this is no pickle"))
    else:
        path.write_bytes(bz2.compress(pickle.dumps(_RunsCode(eval, "1"))))
    result = subprocess.run([sys.executable, "-m", "nb360.cli", "table", "import", str(path), "--task", "darcyflow",
                             "--hp", "12", "--out", str(tmp_path / "t.h5")], capture_output=True, text=True)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith("nb360 table import: error: ") and str(path) in lines[0]
    assert ("refusing to load builtins.eval" if how == "unsafe" else "not a readable NATS-Bench pickle") in lines[0]
    assert not (tmp_path / "t.h5").exists()
