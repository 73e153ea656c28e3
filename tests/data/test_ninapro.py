"""NinaPro DB5: the six fake .npy files in the published layout, NAS-Bench-360's transpose, bad files."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from signal_check import spectral_accuracy

from nb360.data import load_task, ninapro

N = 40
FILES = ["label_test.npy", "label_train.npy", "label_val.npy", "ninapro_test.npy", "ninapro_train.npy", "ninapro_val.npy"]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("ninapro")
    ninapro.write_fake(root, n=N, seed=0)
    return root


def test_fake_files_have_the_published_layout(root):
    assert sorted(p.name for p in root.iterdir()) == FILES
    for split, n in (("train", N), ("val", N // 4), ("test", N // 4)):
        data = np.load(root / f"ninapro_{split}.npy")  # plain arrays: no allow_pickle needed
        labels = np.load(root / f"label_{split}.npy")
        assert data.shape == (n, 52, 16) and data.dtype == np.float32  # time steps x electrodes
        assert labels.shape == (n,) and labels.dtype == np.int64
    train_labels = np.load(root / "label_train.npy")
    assert train_labels.min() == 0 and train_labels.max() == 17


def test_task_transposes_windows_to_electrodes_by_time(root):
    task = load_task("ninapro", root)
    assert (len(task.train), len(task.val), len(task.test)) == (N, N // 4, N // 4)
    assert task.spec.input_shape == (1, 16, 52) and task.spec.out_size == 18 and task.batch_size == 256
    x, y = task.val[2]
    assert x.shape == (1, 16, 52) and x.dtype == torch.float32 and y.dtype == torch.int64
    np.testing.assert_array_equal(x[0].numpy(), np.load(root / "ninapro_val.npy")[2].T)
    assert int(y) == np.load(root / "label_val.npy")[2]


def test_fake_data_carries_a_signal(root):
    accuracy, chance = spectral_accuracy(load_task("ninapro", root))
    assert accuracy >= 0.8 > chance


def test_one_epoch_gives_a_finite_metric(root, one_epoch):
    one_epoch(load_task("ninapro", root), batch_size=16)


def test_missing_file_names_file_directory_and_source(tmp_path):
    ninapro.write_fake(tmp_path, n=8)
    (tmp_path / "label_val.npy").unlink()
    with pytest.raises(FileNotFoundError) as error:
        load_task("ninapro", tmp_path)
    message = str(error.value)
    assert "label_val.npy" in message and str(tmp_path.resolve()) in message
    assert "https://pde-xd.s3.amazonaws.com/ninapro/label_val.npy" in message


@pytest.mark.parametrize("name, array, expected", [
    ("ninapro_train.npy", np.zeros((8, 16, 52), np.float32), "field 'data' has shape (8, 16, 52), expected (N, 52, 16)"),
    ("label_train.npy", np.zeros(7, np.int64), "field 'labels' has shape (7,), expected (N,) with N = 8 as in 'data'"),
    ("label_test.npy", np.full(2, 18), "field 'labels' has values in [18, 18], expected integers in [0, 17]"),
    ("label_val.npy", np.array([1.0, 2.5]), "field 'labels' holds floats that are not whole numbers (row 1: "),
    ("label_val.npy", np.array([1.0, np.nan]), "field 'labels' has 1 non-finite values (NaN or inf) in 1 rows (the first: 1)"),
    ("label_val.npy", np.full(2, "a"), "field 'labels' has dtype <U1, expected signed integer"),
    ("ninapro_val.npy", np.full((2, 52, 16), "x"), "field 'data' has dtype <U1, expected signed integer"),
    ("ninapro_test.npy", np.where(np.arange(2 * 52 * 16).reshape(2, 52, 16) == 60, np.nan, 1.0),
     "field 'data' has 1 non-finite values (NaN or inf) in 1 rows (the first: 0)"),
])
def test_bad_file_names_file_field_found_and_expected(tmp_path, name, array, expected):
    ninapro.write_fake(tmp_path, n=8)
    np.save(tmp_path / name, array)
    with pytest.raises(ValueError) as error:
        load_task("ninapro", tmp_path)
    assert str(tmp_path / name) in str(error.value) and expected in str(error.value)


def test_integral_float_labels_read_as_integers(tmp_path):
    """Label files stored as floats holding whole numbers, as some copies of the published files are:
    read as NAS-Bench-360's loader casts them."""
    ninapro.write_fake(tmp_path, n=8)
    original = load_task("ninapro", tmp_path)
    for split in ("train", "val", "test"):
        path = tmp_path / f"label_{split}.npy"
        np.save(path, np.load(path).astype(np.float64))
    as_floats = load_task("ninapro", tmp_path)
    for a, b in zip(original.splits, as_floats.splits):
        assert b.tensors[1].dtype == torch.int64 and torch.equal(a.tensors[1], b.tensors[1])
