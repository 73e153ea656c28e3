"""`nb360 oneshot` and `run_oneshot_many`: several methods and seeds, written as they finish,
resumed, looked up again as the table grows."""

import math

import numpy as np
import pandas as pd
import pytest

from nb360.data import darcy, load_task
from nb360.search.oneshot import search_oneshot
from nb360.search.oneshot_runs import FILES, run_oneshot_many, summarize
from nb360.spaces.network import build
from nb360.table.benchmark import Benchmark
from nb360.table.build import RunSpec, data_sha256, protocol
from nb360.table.schema import TableWriter, create
from nb360.train import fit, seed_everything

pytestmark = pytest.mark.usefixtures("one_thread")

OPTIONS = dict(epochs=2, C=2, N=1, batch_size=4)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("darcy")
    darcy.generate(root, n=16, resolution=9, solver_resolution=17, progress=False)
    return root


@pytest.fixture(scope="module")
def task(data_root):
    return load_task("darcyflow", data_root, resolution=9)


def empty_table(path, task, data_root):
    """A table with the protocol `nb360 precompute` records (C=2, N=1, 9 x 9, batch 4)."""
    spec = RunSpec(task="darcyflow", data_root=str(data_root), resolution=9, C=2, N=1, epochs=1, batch_size=4,
                   lr=0.1, weight_decay=5e-4, data_sha256=data_sha256(task))
    return create(path, task="darcyflow", metric=task.metric_name, seeds=[0], epochs=1,
                  protocol=protocol(spec, task), provenance={"command": "test"})


def train_into(path, task, archs):
    with TableWriter(path) as writer:
        for arch in archs:
            seed_everything(0)
            writer.write_run(arch.index, 0, fit(build(arch, task.spec, 2, 1), task.splits, task.loss, task.metric,
                                                epochs=1, batch_size=4, seed=0, progress=False))


def test_runs_are_written_resumed_and_looked_up_again(task, data_root, tmp_path):
    path = empty_table(tmp_path / "t.h5", task, data_root)
    derived = search_oneshot(task, "gdas", seed=1, train_epochs=0, progress=False, **OPTIONS).arch
    train_into(path, task, [derived.neighbors()[0], derived.neighbors()[1]])  # the derived cell not yet in it
    out = tmp_path / "out"

    first = run_oneshot_many(task, ["gdas"], [0, 1], out, table=Benchmark.load(path), progress=False, **OPTIONS)
    assert list(first["seed"]) == [0, 1] and list(first["method"]) == ["gdas", "gdas"]
    assert first.loc[1, "arch"] == str(derived) and math.isnan(first.loc[1, "regret"])
    records = pd.read_csv(out / FILES["epochs"])
    assert len(records) == 4 and list(records["epoch"]) == [1, 2, 1, 2]
    assert set(np.load(out / FILES["alphas"])) == {"gdas-0", "gdas-1"}
    assert (out / FILES["figure"]).stat().st_size > 5_000 and (out / FILES["alphas_figure"]).stat().st_size > 5_000

    # the table gains the derived cell; a third seed runs, the first two are only looked up again
    train_into(path, task, [derived])
    again = run_oneshot_many(task, ["gdas"], [0, 1, 2], out, table=Benchmark.load(path), progress=False, **OPTIONS)
    assert list(again["seed"]) == [0, 1, 2]
    assert again.loc[1, "search_seconds"] == first.loc[1, "search_seconds"]  # not searched again
    bench = Benchmark.load(path)
    assert again.loc[1, "regret"] == pytest.approx(bench.regret(derived)) and again.loc[1, "regret"] >= 0
    assert again.loc[1, "test"] == pytest.approx(bench.query(derived)["test_metric"])
    records = pd.read_csv(out / FILES["epochs"])
    assert len(records) == 6
    last = records[(records["seed"] == 1) & (records["epoch"] == 2)].iloc[0]
    assert last["arch"] == str(derived) and last["table_regret"] == pytest.approx(bench.regret(derived))

    row = summarize(again).iloc[0]
    assert row["runs"] == 3 and row["scored"] == int(np.isfinite(again["test"]).sum()) >= 1

    with pytest.raises(ValueError, match="other settings .* write to another --out folder"):
        run_oneshot_many(task, ["gdas"], [0], out, table=bench, progress=False, **{**OPTIONS, "epochs": 3})


def test_without_a_table_the_derived_cells_are_trained(task, tmp_path):
    runs = run_oneshot_many(task, ["darts"], [0], tmp_path, train_epochs=1, progress=False, **OPTIONS)
    row = runs.iloc[0]
    assert row["source"] == "trained" and math.isfinite(row["test"]) and math.isnan(row["regret"])
    assert summarize(runs).iloc[0]["mean_test"] == pytest.approx(row["test"])
    assert "table_regret" not in pd.read_csv(tmp_path / FILES["epochs"]).columns


def test_command_takes_task_and_network_from_the_table(cli, task, data_root, tmp_path):
    path = empty_table(tmp_path / "t.h5", task, data_root)
    train_into(path, task, [search_oneshot(task, "gdas", seed=0, train_epochs=0, progress=False, **OPTIONS).arch])
    out = tmp_path / "out"
    result = cli("oneshot", "--method", "gdas", "--table", str(path), "--epochs", "2", "--data-root", str(data_root),
                   "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "C=2 N=1" in result.stdout and "gdas   1 runs, 1 scored, mean 0.00000" in result.stdout
    assert pd.read_csv(out / FILES["runs"]).loc[0, "regret"] == 0.0  # the only cell in the table is the best

    for args, expected in [(("--table", str(path), "--C", "4"), "--C: with --table the network and data are"),
                           ((), "give --table"), (("--method", "enas", "--task", "darcyflow"), "expected distinct one-shot methods among darts, gdas"),
                           (("--table", str(path), "--data-root", str(tmp_path)), "piececonst")]:
        bad = cli("oneshot", "--out", str(tmp_path / "bad"), *args)
        assert bad.returncode == 2 and expected in bad.stderr, bad.stderr
