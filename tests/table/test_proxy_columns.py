"""Proxy columns of a table: values equal to direct computation for every member of the selected
classes, an interrupted run resumed without recomputing finished classes, settings checked, CLI.

The table is what `nb360 precompute` writes before its first run (its `create` and `protocol`),
on Darcy Flow 9x9 generated here (16 samples), C=2, N=1.
"""

import json
import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest

from nb360.data import darcy, load_task
from nb360.proxies import compute
from nb360.proxy_names import PROXIES
from nb360.table import proxy_columns
from nb360.table.benchmark import Benchmark
from nb360.table.build import RunSpec, data_sha256, protocol, select_classes
from nb360.table.proxy_columns import build_proxy_columns, proxy_batch
from nb360.table.schema import create

pytestmark = pytest.mark.usefixtures("one_thread")

CLASSES = 4
OPTIONS = dict(archs=CLASSES, batch_size=8, seed=0, device="cpu", progress=False)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("darcy")
    darcy.generate(root, n=16, resolution=9, solver_resolution=17, progress=False)
    return root


@pytest.fixture
def table(data_root, tmp_path):
    task = load_task("darcyflow", data_root, resolution=9)
    spec = RunSpec(task="darcyflow", data_root=str(data_root), resolution=9, C=2, N=1, epochs=2, batch_size=4,
                   lr=0.1, weight_decay=5e-4, data_sha256=data_sha256(task))
    return create(tmp_path / "t.h5", task="darcyflow", metric=task.metric_name, seeds=[0], epochs=2,
                  protocol=protocol(spec, task), provenance={"command": "test"})


def columns(path):
    with h5py.File(path, "r") as f:
        return {name: f["proxies"][name][()] for name in f["proxies"]}, {
            name: json.loads(f["proxies"][name].attrs["settings"]) for name in f["proxies"]}


def test_columns_hold_each_class_value_for_every_member(table, data_root):
    summary = build_proxy_columns(table, data_root=data_root, **OPTIONS)
    assert (summary["classes"], summary["computed"], summary["skipped"]) == (CLASSES, CLASSES, 0)
    values, settings = columns(table)
    assert set(values) == set(PROXIES)
    assert settings["snip"]["batch_size"] == 8 and settings["snip"]["C"] == 2 and settings["snip"]["resolution"] == [9, 9]

    task = load_task("darcyflow", data_root, resolution=9)
    x, y = proxy_batch(task, 8, seed=0)
    classes = select_classes(CLASSES)
    members = sorted(m for ms in classes.values() for m in ms)
    for rep, class_members in classes.items():
        expected = compute(rep, task.spec, x, y, task.loss, C=2, N=1, seed=0)
        for name, value in expected.items():
            np.testing.assert_array_equal(values[name][class_members], value, err_msg=f"{name} of class {rep}")
    others = np.setdiff1d(np.arange(15625), members)
    assert all(np.isnan(column[others]).all() for column in values.values())
    df = Benchmark.load(table).df
    assert df.loc[members, "proxy_synflow"].notna().all()

    again = build_proxy_columns(table, data_root=data_root, **OPTIONS)
    assert (again["computed"], again["skipped"]) == (0, CLASSES)  # nothing left to do


def test_an_interrupted_run_resumes_where_it_stopped(table, data_root, monkeypatch):
    fresh = table.with_name("fresh.h5")
    shutil.copy(table, fresh)
    build_proxy_columns(table, data_root=data_root, names="snip,synflow,naswot", **OPTIONS)
    complete, _ = columns(table)
    calls = []
    real_compute = proxy_columns.compute

    def interrupted(*args, **kwargs):  # the real computation, interrupted at the third class
        calls.append(args[0])
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_compute(*args, **kwargs)

    monkeypatch.setattr(proxy_columns, "compute", interrupted)
    with pytest.raises(KeyboardInterrupt):
        build_proxy_columns(fresh, data_root=data_root, names="snip,synflow,naswot", save_every=100, **OPTIONS)
    partial, _ = columns(fresh)  # written on the way out
    classes = select_classes(CLASSES)
    done = [rep for rep in classes if not np.isnan(partial["snip"][rep])]
    assert done == calls[:2]

    monkeypatch.setattr(proxy_columns, "compute", real_compute)
    resumed = build_proxy_columns(fresh, data_root=data_root, names="snip,synflow,naswot", **OPTIONS)
    assert (resumed["computed"], resumed["skipped"]) == (CLASSES - 2, 2)
    final, _ = columns(fresh)
    for name in complete:
        np.testing.assert_array_equal(final[name], complete[name], err_msg=name)


def test_other_settings_are_refused_unless_overwritten(table, data_root):
    build_proxy_columns(table, data_root=data_root, names="grad_norm", **OPTIONS)
    refused = r"'grad_norm' was computed with other settings; differing: batch_size \(table: 8, now: 4\)"
    with pytest.raises(ValueError, match=refused):
        build_proxy_columns(table, data_root=data_root, names="grad_norm", **{**OPTIONS, "batch_size": 4})
    summary = build_proxy_columns(table, data_root=data_root, names="grad_norm", overwrite=True,
                                  **{**OPTIONS, "batch_size": 4})
    assert summary["computed"] == CLASSES and columns(table)[1]["grad_norm"]["batch_size"] == 4


def test_data_other_than_the_tables_are_refused(table, tmp_path):
    other = tmp_path / "other"
    darcy.generate(other, n=16, resolution=9, solver_resolution=17, seed=1, progress=False)
    with pytest.raises(ValueError, match="differ from the data the table was built on"):
        build_proxy_columns(table, data_root=other, **OPTIONS)


def test_cli_stopped_by_sigterm_keeps_its_columns_and_resumes(table, data_root, stop_after):
    """A scheduler's SIGTERM ends the command like Ctrl-C: what was computed is written, the same
    command resumes from it."""
    command = [sys.executable, "-m", "nb360.cli", "proxies", "--table", str(table), "--data-root", str(data_root),
               "--proxies", "snip,grasp", "--classes", "200", "--batch-size", "8"]
    # enough classes that the command cannot finish before the signal
    run, stderr = stop_after(command, total=200)
    assert run.returncode == 2 and stderr.strip().splitlines()[-1].startswith("nb360 proxies: interrupted")
    values, _ = columns(table)
    written = [rep for rep in select_classes(200) if np.isfinite(values["snip"][rep])]
    assert 2 <= len(written) < 200 and np.isfinite(values["grasp"][written]).all()

    resumed = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    summary = dict(item.split("=", 1) for item in resumed.stdout.strip().splitlines()[-1].split(", "))
    assert summary["proxies"] == "snip,grasp" and int(summary["skipped"]) == len(written)
    assert int(summary["computed"]) == 200 - len(written)
    bad = subprocess.run([*command[:-6], "--proxies", "snip,nope"], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    assert "expected distinct proxies among" in bad.stderr and "'snip,nope'" in bad.stderr
