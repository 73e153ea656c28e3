"""Satellite: the fake np.save'd dicts in the published layout, per-series z-scores, NB360's split, bad files."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from signal_check import spectral_accuracy

from nb360.data import load_task, satellite

N = 60


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("satellite")
    satellite.write_fake(root, n=N, seed=0)
    return root


def raw(root, split):
    return np.load(root / f"satellite_{split}.npy", allow_pickle=True)[()]  # as NAS-Bench-360 reads it


def test_fake_files_have_the_published_layout(root):
    assert sorted(p.name for p in root.iterdir()) == ["satellite_test.npy", "satellite_train.npy"]
    for split, n in (("train", N), ("test", N // 6)):
        content = raw(root, split)
        assert set(content) == {"data", "label"}
        assert content["data"].shape == (n, 46) and content["data"].dtype.kind == "f"
        assert content["label"].shape == (n,) and content["label"].dtype.kind == "i"
    assert raw(root, "train")["label"].min() == 1 and raw(root, "train")["label"].max() == 24  # 1..24 as published


def test_task_zscores_each_series_and_validates_on_the_last_len_test(root):
    task = load_task("satellite", root)
    n_test = N // 6
    assert (len(task.train), len(task.val), len(task.test)) == (N - n_test, n_test, n_test)
    assert task.spec.input_shape == (1, 46) and task.spec.out_size == 24 and task.batch_size == 4096
    content = raw(root, "train")
    series = content["data"][N - n_test]  # the first validation series is the first of the last len(test)
    x, y = task.val[0]
    assert x.shape == (1, 46) and x.dtype == torch.float32 and y.dtype == torch.int64
    np.testing.assert_allclose(x[0].numpy(), (series - series.mean()) / series.std(), rtol=1e-5, atol=1e-6)
    assert int(y) == content["label"][N - n_test] - 1  # labels shifted to 0..23


def test_fake_data_carries_a_signal(root):
    accuracy, chance = spectral_accuracy(load_task("satellite", root))
    assert accuracy >= 0.8 > chance


def test_one_epoch_gives_a_finite_metric(root, one_epoch):
    one_epoch(load_task("satellite", root), batch_size=16)


def test_missing_file_names_file_directory_and_source(tmp_path):
    satellite.write_fake(tmp_path, n=12)
    (tmp_path / "satellite_test.npy").unlink()
    with pytest.raises(FileNotFoundError) as error:
        load_task("satellite", tmp_path)
    message = str(error.value)
    assert "satellite_test.npy" in message and str(tmp_path.resolve()) in message
    assert "https://pde-xd.s3.amazonaws.com/satellite/satellite_test.npy" in message


@pytest.mark.parametrize("content, expected", [
    ({"data": np.ones((5, 45)), "label": np.ones(5, np.int64)}, "field 'data' has shape (5, 45), expected (N, 46)"),
    ({"data": np.random.default_rng(0).random((5, 46)), "label": np.zeros(5, np.int64)},
     "field 'label' has values in [0, 0], expected integers in [1, 24]"),
    ({"data": np.ones((5, 46)), "label": np.ones(5, np.int64)}, "field 'data' row 0 is constant"),
    ({"series": np.ones((5, 46)), "label": np.ones(5, np.int64)}, "field 'data' is missing; found keys ['label', 'series']"),
    (np.ones((5, 46)), "the top level is a ndarray, expected a dict with keys ['data', 'label']"),
])
def test_bad_file_names_file_field_found_and_expected(tmp_path, content, expected):
    satellite.write_fake(tmp_path, n=12)
    np.save(tmp_path / "satellite_test.npy", content, allow_pickle=True)
    with pytest.raises(ValueError) as error:
        load_task("satellite", tmp_path)
    assert str(tmp_path / "satellite_test.npy") in str(error.value) and expected in str(error.value)


def test_a_pickle_that_would_run_code_is_refused(tmp_path):
    satellite.write_fake(tmp_path, n=12)
    np.save(tmp_path / "satellite_test.npy", np.array([print], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="refusing to load builtins.print"):
        load_task("satellite", tmp_path)
