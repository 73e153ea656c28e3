"""CIFAR-100: the fake files in torchvision's published layout, NAS-Bench-360's splits and transforms, bad files."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from signal_check import spectral_accuracy

from nb360.data import cifar, load_task

N = 50


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar")
    cifar.write_fake(root, n=N, seed=0)
    return root


def raw(root, name):
    with open(root / "cifar-100-python" / name, "rb") as f:
        return pickle.load(f, encoding="latin1")  # as torchvision reads them


def test_fake_files_have_the_published_layout(root):
    assert sorted(p.name for p in (root / "cifar-100-python").iterdir()) == ["meta", "test", "train"]
    train, test, meta = raw(root, "train"), raw(root, "test"), raw(root, "meta")
    for entry, n in ((train, N), (test, N // 4)):
        assert set(entry) == {"data", "fine_labels", "coarse_labels", "filenames", "batch_label"}
        assert entry["data"].dtype == np.uint8 and entry["data"].shape == (n, 3072)
        assert isinstance(entry["fine_labels"], list) and len(entry["fine_labels"]) == n
    assert min(train["fine_labels"]) == 0 and max(train["fine_labels"]) == 99  # the published label range
    assert len(meta["fine_label_names"]) == 100 and len(meta["coarse_label_names"]) == 20


def test_task_splits_and_normalisation(root):
    task = load_task("cifar100", root)
    assert (len(task.train), len(task.val), len(task.test)) == (40, 10, N // 4)  # val_split = 0.2, in file order
    assert task.spec.input_shape == (3, 32, 32) and task.spec.out_size == 100 and task.batch_size == 128
    entry = raw(root, "train")
    # val item 0 is training image 40, untouched but for ToTensor and the per-channel normalisation
    image = entry["data"][40].reshape(3, 32, 32).astype(np.float32) / 255
    expected = (image - np.array(cifar.MEAN, np.float32)[:, None, None]) / np.array(cifar.STD, np.float32)[:, None, None]
    x, y = task.val[0]
    assert x.dtype == torch.float32 and y == entry["fine_labels"][40]
    np.testing.assert_allclose(x.numpy(), expected, atol=1e-6)
    torch.manual_seed(0)
    crops = torch.stack([task.train[0][0] for _ in range(8)])
    assert crops.shape == (8, 3, 32, 32) and crops.std(dim=0).max() > 0  # training images are augmented


def test_fake_data_carries_a_signal(root):
    accuracy, chance = spectral_accuracy(load_task("cifar100", root))
    assert accuracy >= 0.8 > chance


def test_one_epoch_gives_a_finite_metric(root, one_epoch):
    one_epoch(load_task("cifar100", root), batch_size=16)


def test_missing_file_names_file_directory_and_source(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        load_task("cifar100", tmp_path)
    message = str(error.value)
    assert "train" in message and str((tmp_path / "cifar-100-python").resolve()) in message
    assert cifar.PUBLISHED_URL in message


@pytest.mark.parametrize("field, value, expected", [
    ("data", lambda e: e["data"].astype(np.float64), "field 'data' has dtype float64, expected uint8"),
    ("data", lambda e: e["data"][:, :1024], "field 'data' has shape (50, 1024), expected (N, 3072)"),
    ("fine_labels", lambda e: e["fine_labels"][:-1], "field 'fine_labels' has shape (49,), expected (N,) with N = 50"),
    ("fine_labels", lambda e: [label + 1 for label in e["fine_labels"]], "values in [1, 100], expected integers in [0, 99]"),
    ("fine_labels", None, "field 'fine_labels' is missing"),
])
def test_bad_train_file_names_file_field_found_and_expected(tmp_path, field, value, expected):
    cifar.write_fake(tmp_path, n=N)
    path = tmp_path / "cifar-100-python" / "train"
    entry = raw(tmp_path, "train")
    if value is None:
        del entry[field]
    else:
        entry[field] = value(entry)
    path.write_bytes(pickle.dumps(entry, protocol=2))
    with pytest.raises(ValueError) as error:
        load_task("cifar100", tmp_path)
    assert str(path) in str(error.value) and expected in str(error.value)
