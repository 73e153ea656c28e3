"""Tables with planted structure for the hypothesis tests, written through the real table writer, and
tables imported from NATS-format fixture files (tests/table/nats_fixture.py)."""

import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "table"))  # nats_fixture, shared with the table tests

from nats_fixture import synthetic_nats, write_nats_file  # noqa: E402

from nb360.search.space import op_table  # noqa: E402
from nb360.spaces.nb201 import NUM_ARCHS, NUM_EDGES, NUM_OPS  # noqa: E402
from nb360.table.benchmark import Benchmark  # noqa: E402
from nb360.table.nats import import_nats  # noqa: E402
from nb360.table.schema import TableWriter, create  # noqa: E402

NATS_INDICES = list(range(0, NUM_ARCHS, 25))  # 625 archs with runs, the rest missing


def write_table(path, test, val=None, proxies=None, params=None, flops=None, task="planted",
                protocol=None) -> Benchmark:
    """A one-seed table whose test score after each epoch is `test` ((A,) or (A, E); the last epoch
    is the final score) and validation score `val` (same shapes; None: no validation scores). Archs
    whose final test score is NaN get no run."""
    test = np.asarray(test, dtype=float).reshape(NUM_ARCHS, -1)
    epochs = test.shape[1]
    val = np.full_like(test, np.nan) if val is None else \
        np.broadcast_to(np.asarray(val, dtype=float).reshape(NUM_ARCHS, -1), test.shape)
    path = create(path, task=task, metric="error", seeds=[0], epochs=epochs,
                  protocol=protocol if protocol is not None else {"C": 4, "N": 1}, provenance={"command": "planted"})
    runs = [(i, 0, [{"train_loss": 1.0, "train_metric": 1.0, "val_metric": val[i, e], "test_metric": test[i, e],
                     "train_seconds": float(e + 1)} for e in range(epochs)])
            for i in np.flatnonzero(np.isfinite(test[:, -1]))]
    with TableWriter(path) as w:
        w.write_runs(runs)
        for name, values in (proxies or {}).items():
            w.set_proxy(name, values)
        w.set_costs(**{k: v for k, v in (("params", params), ("flops", flops)) if v is not None})
    return Benchmark.load(path)


def write_cost_file(path, tasks=("darcyflow", "digits"), seed=1) -> Path:
    """A cost file in `nb360.table.cost_file`'s layout with random counts (cost_file.write builds
    every task's network, minutes of work)."""
    rng = np.random.default_rng(seed)
    with h5py.File(path, "w") as f:
        f.attrs.update(content="nb201-costs", space="nb201", num_archs=NUM_ARCHS, C=16, N=5)
        for k, task in enumerate(tasks):
            f.create_dataset(f"{task}/params", data=rng.integers(1, 100, NUM_ARCHS) * 10 ** (k + 1))
            f.create_dataset(f"{task}/flops", data=rng.integers(1, 100, NUM_ARCHS) * 7 * 10 ** (k + 1))
    return Path(path)


def additive_scores(seed: int = 0) -> np.ndarray:
    """(A,) a sum of per-edge, per-operation effects, all distinct: a smooth landscape with a
    single best cell."""
    effects = np.random.default_rng(seed).normal(size=(NUM_EDGES, NUM_OPS))
    return effects[np.arange(NUM_EDGES), op_table()].sum(axis=1)


@pytest.fixture(scope="session")
def additive(tmp_path_factory):
    """Complete: validation = test = the additive scores, one epoch."""
    q = additive_scores()
    return write_table(tmp_path_factory.mktemp("additive") / "additive.h5", q, val=q)


@pytest.fixture(scope="session")
def additive_copy(tmp_path_factory):
    """The same scores under another name (another task)."""
    q = additive_scores()
    return write_table(tmp_path_factory.mktemp("copy") / "copy.h5", q, val=q, task="copy")


@pytest.fixture(scope="session")
def partial(tmp_path_factory):
    """Another landscape, 40% of the archs scored (the others never trained)."""
    q = additive_scores(seed=1)
    q[np.random.default_rng(2).random(NUM_ARCHS) < 0.6] = np.nan
    return write_table(tmp_path_factory.mktemp("partial") / "partial.h5", q, val=q, task="partial")


@pytest.fixture(scope="session")
def nats_cifar(tmp_path_factory):
    """A partial table imported from a NATS-Bench file (cifar10-valid: x-valid and ori-test)."""
    folder = tmp_path_factory.mktemp("nats")
    data = synthetic_nats(NATS_INDICES, ("cifar10-valid",), (777,), 12, "12", seed=3)
    source = write_nats_file(data, folder / "NATS-tss-v1_0-fixture.pickle.pbz2")
    out = folder / "nats-cifar.h5"
    return Benchmark.load(import_nats(source, task="cifar10-valid", out=out, hp="12", progress=False))


@pytest.fixture(scope="session")
def nats_darcy(tmp_path_factory):
    """A partial table imported from a NAS-Bench-360 file (darcyflow: ori-test only, no validation)."""
    folder = tmp_path_factory.mktemp("nb360")
    data = synthetic_nats(NATS_INDICES, ("darcyflow",), (777,), 12, "12", seed=4)
    source = write_nats_file(data, folder / "NATS-tss-v1_0-darcy.pickle.pbz2")
    return Benchmark.load(import_nats(source, task="darcyflow", out=folder / "nats-darcy.h5", hp="12", progress=False))


def check_outputs(report, csvs, pngs=1):
    """The report wrote its CSVs, at least `pngs` figures and a summary that embeds them and names
    its tables, their protocol and their completeness."""
    for stem in csvs:
        assert report.csv(stem).is_file() and report.csv(stem).stat().st_size > 0
    figures = sorted(report.out.glob("*.png"))
    assert len(figures) >= pngs and all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in figures)
    text = report.summary.read_text()
    assert all(f"]({p.name})" in text for p in figures)
    for table in report.tables:
        assert f"`{table.path.stem}`" in text
    assert "Tables used" in text and "iso classes scored" in text and "C=" in text
    return text
