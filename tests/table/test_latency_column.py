import json
import shutil

import h5py
import numpy as np
import pytest

from nb360.spaces.nb201 import iso_class_ids
from nb360.table.benchmark import Benchmark, resolve
from nb360.table.build import select_classes
from nb360.table.latency_column import build_latency_column


@pytest.fixture
def table(tmp_path):
    path = tmp_path / "burgers.h5"
    shutil.copy(resolve("nb201-burgers-mini"), path)
    return path


def test_the_column_is_measured_per_class_resumed_and_its_noise_recorded(table):
    first = build_latency_column(table, repeats=3, archs=12, noise_sample=5, progress=False)
    assert first["measured"] == 12 and first["noise_classes"] == 5
    latency = Benchmark.load(table).df["latency_ms"].to_numpy()
    members = [m for ms in select_classes(12).values() for m in ms]
    assert np.isfinite(latency[members]).all() and np.isnan(np.delete(latency, members)).all()
    iso = iso_class_ids()
    for rep, ms in select_classes(12).items():  # one value per class, copied to its members
        assert len(set(latency[ms])) == 1 and iso[rep] == iso[ms[0]]
    assert (latency[members] > 0).all() and (latency[members] < 1e4).all()
    with h5py.File(table) as f:
        settings = json.loads(f["archs/latency_ms"].attrs["settings"])
    assert settings["repeats"] == 3 and settings["batch_size"] == 1 and settings["resolution"] == [64]
    assert -1 <= settings["noise"]["spearman_two_passes"] <= 1 and settings["noise"]["classes"] == 5
    resumed = build_latency_column(table, repeats=3, archs=14, noise_sample=5, progress=False)
    assert resumed["measured"] == 2 and resumed["skipped"] == 12
    assert np.array_equal(Benchmark.load(table).df["latency_ms"].to_numpy()[members], latency[members])
    nothing = build_latency_column(table, repeats=3, archs=14, progress=False)
    assert nothing["measured"] == 0 and nothing["noise_classes"] == 5  # the noise of the last sample of 3 or more is kept
    with pytest.raises(ValueError, match=r"other settings; differing: repeats \(table: 3, now: 5\)"):
        build_latency_column(table, repeats=5, archs=14, progress=False)


def test_the_command_fills_the_column_and_refuses_other_settings(cli, table):
    done = cli("table", "latency", str(table), "--classes", "3", "--repeats", "2", "--noise-sample", "3")
    assert done.returncode == 0 and "measured=3" in done.stdout and "spearman_two_passes=" in done.stdout, done.stderr
    other = cli("table", "latency", str(table), "--classes", "3", "--repeats", "4")
    assert other.returncode == 2 and "measured with other settings" in other.stderr
