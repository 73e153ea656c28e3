"""`export_nats`: a table as a NATS-Bench file that nats_bench loads with the table's numbers, and
that `import_nats` reads back to the same table."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from nats_fixture import synthetic_nats, write_nats_file

from nb360.compat.nats import create as nb360_api
from nb360.table.benchmark import Benchmark
from nb360.table.nats import import_nats
from nb360.table.nats_export import export_nats
from nb360.table.schema import CURVES, TableWriter, create

INDICES = [0, 1, 9, 123, 4000, 15624] + list(range(300, 310))
EPOCHS = 6


def table_arrays(path) -> dict:
    with h5py.File(path, "r") as f:
        out = {name: f["curves"][name][()] for name in CURVES}
        out.update(status=f["runs/status"][()], seeds=f["seeds"][()],
                   **{name: f["archs"][name][()] for name in ("params", "flops", "latency_ms")})
    return out


def assert_same_table(a, b) -> None:
    a, b = table_arrays(a), table_arrays(b)
    for name in (*CURVES, "status", "seeds", "params", "flops"):
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    np.testing.assert_allclose(a["latency_ms"], b["latency_ms"], rtol=1e-12, equal_nan=True)  # ms -> s -> ms


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    """Tables imported from NATS-Bench and NAS-Bench-360 fixture files: {dataset: table path}."""
    folder = tmp_path_factory.mktemp("imported")
    cifar = write_nats_file(synthetic_nats(INDICES, ("cifar10-valid", "cifar100"), (777, 888), EPOCHS, "6", seed=5,
                                           single_seed={9, 300}), folder / "cifar.pickle.pbz2")
    darcy = write_nats_file(synthetic_nats(INDICES, ("darcyflow",), (777,), EPOCHS, "6", seed=6),
                            folder / "darcy.pickle.pbz2")
    return {dataset: import_nats(source, dataset, folder / f"{dataset}.h5", hp="6", progress=False)
            for source, dataset in ((cifar, "cifar10-valid"), (cifar, "cifar100"), (darcy, "darcyflow"))}


@pytest.mark.parametrize("dataset", ["cifar10-valid", "cifar100", "darcyflow"])
@pytest.mark.parametrize("layout", ["file", "archive"])
def test_import_export_import_gives_the_same_table(imported, tmp_path, dataset, layout):
    out = tmp_path / ("t.pickle.pbz2" if layout == "file" else "archive")
    export_nats(imported[dataset], out, progress=False)
    again = import_nats(out, dataset, tmp_path / "again.h5", hp="6", progress=False)
    assert_same_table(again, imported[dataset])
    assert Benchmark(again).protocol == Benchmark(imported[dataset]).protocol


def built_table(path, task: str, metric: str) -> Benchmark:
    """A table as `nb360 precompute` writes one, with validation, a test set scored every 2nd epoch
    and after the last, seed 1 missing for one arch, and costs."""
    rng = np.random.default_rng(7)
    create(path, task=task, metric=metric, seeds=[0, 1], epochs=EPOCHS,
           protocol={"task": task, "C": 4, "N": 1, "resolution": [15, 15], "test_every": 2},
           provenance={"command": "tests/table/test_nats_export.py"})
    runs = []
    for index in INDICES:
        for seed in (0, 1) if index != 123 else (0,):
            scores = np.sort(rng.uniform(0.05, 0.6, (3, EPOCHS)))[:, ::-1]
            runs.append((index, seed, [
                {"train_loss": scores[0, e], "train_metric": scores[0, e], "val_metric": scores[1, e],
                 "test_metric": scores[2, e] if (e + 1) % 2 == 0 or e == EPOCHS - 1 else np.nan,
                 "train_seconds": 1.5 * (e + 1) + rng.uniform(0, 0.1)} for e in range(EPOCHS)]))
    params = np.full(15625, np.nan)
    flops = np.full(15625, np.nan)
    params[INDICES], flops[INDICES] = rng.integers(1_000, 90_000, len(INDICES)), rng.integers(10**5, 10**7, len(INDICES))
    with TableWriter(path) as writer:
        writer.write_runs(runs)
        writer.set_costs(params=params, flops=flops)
    return Benchmark(path)


@pytest.mark.parametrize("task, metric, accuracy", [("darcyflow", "relative_l2", lambda m: 1 - m),
                                                    ("digits", "zero_one_error", lambda m: 100 * (1 - m))])
def test_nats_bench_answers_a_built_tables_numbers(tmp_path, nats_bench, task, metric, accuracy):
    bench = built_table(tmp_path / "built.h5", task, metric)
    ours = nb360_api(bench)
    for layout, out in (("file", tmp_path / "t.pickle.pbz2"), ("archive", tmp_path / "archive")):
        export_nats(bench, out, progress=False)
        api = nats_bench.create(str(out), "tss", fast_mode=layout == "archive", verbose=False)
        for index in (0, 123, 15624):
            seeds = api.query_meta_info_by_index(index, hp=str(EPOCHS)).get_dataset_seeds(task)
            assert seeds == ([0] if index == 123 else [0, 1])
            for seed in seeds:
                for iepoch in range(EPOCHS):
                    info = api.get_more_info(index, task, iepoch=iepoch, hp=str(EPOCHS), is_random=seed)
                    row = bench.query(index, epoch=iepoch + 1, seed=seed)
                    assert info["train-loss"] == pytest.approx(row["train_loss"], rel=1e-6)
                    assert info["train-accuracy"] == pytest.approx(accuracy(row["train_metric"]), rel=1e-6)
                    assert info["train-all-time"] == pytest.approx(row["train_seconds"], rel=1e-6)
                    assert info["valid-accuracy"] == pytest.approx(accuracy(row["val_metric"]), rel=1e-6)
                    assert info["valid-per-time"] == 0  # tables keep no evaluation times: exported as 0
                    if np.isnan(row["test_metric"]):  # an epoch test_every skipped: no test entry
                        assert "test-accuracy" not in info
                    else:
                        assert info["test-accuracy"] == pytest.approx(accuracy(row["test_metric"]), rel=1e-6)
                        assert info["test-loss"] == (pytest.approx(row["test_metric"]) if metric == "relative_l2"
                                                     else None)
                    mine = ours.get_more_info(index, task, iepoch=iepoch, is_random=seed)
                    known = {k: v for k, v in mine.items() if v is not None and v == v}  # not None, not NaN
                    assert known == pytest.approx({k: info[k] for k in known}, rel=1e-6)
            cost = api.get_cost_info(index, task, hp=str(EPOCHS))
            assert (round(cost["params"] * 1e6), round(cost["flops"] * 1e6)) == (bench.query(index)["params"],
                                                                                 bench.query(index)["flops"])
            assert cost["latency"] is None
            config = api.get_net_config(index, task)
            assert (config["C"], config["N"], config["arch_str"]) == (4, 1, bench.query(index)["arch"])
        for metric_on_set in ("x-valid", "x-test") if layout == "file" else ():  # fast mode's needs all 15,625
            assert api.find_best(task, metric_on_set, hp=str(EPOCHS)) == pytest.approx(
                ours.find_best(task, metric_on_set), rel=1e-6)
        again = import_nats(out, task, tmp_path / f"again-{layout}.h5", hp=str(EPOCHS), progress=False)
        assert_same_table(again, bench.path)


def test_an_existing_output_is_kept(imported, tmp_path):
    out = tmp_path / "t.pickle.pbz2"
    out.write_bytes(b"mine")
    with pytest.raises(FileExistsError, match="already there"):
        export_nats(imported["darcyflow"], out, progress=False)
    assert out.read_bytes() == b"mine"
    export_nats(imported["darcyflow"], out, overwrite=True, progress=False)
    assert out.stat().st_size > 4


def test_the_export_command(imported, tmp_path, cli):
    out = tmp_path / "archive"
    done = cli("table", "export", str(imported["darcyflow"]), "--format", "nats", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert (out / "meta.pickle.pbz2").is_file() and len(list(out.glob("0*.pickle.pbz2"))) == len(INDICES)
    again = cli("table", "export", str(imported["darcyflow"]), "--out", str(out))
    assert again.returncode == 2 and "already there" in again.stderr and len(again.stderr.splitlines()) == 1
