"""Spherical CIFAR-100: the fake gzip pickle in the published layout, NAS-Bench-360's splits, bad files."""

from __future__ import annotations

import gzip
import pickle

import numpy as np
import pytest
import torch
from signal_check import spectral_accuracy

from nb360.data import load_task, spherical

N = 50


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("spherical")
    spherical.write_fake(root, n=N, seed=0)
    return root


def raw(root):
    with gzip.open(root / "s2_cifar100.gz", "rb") as f:
        return pickle.load(f)


def test_fake_file_has_the_published_layout(root):
    content = raw(root)
    assert set(content) == {"train", "test"}
    for split, n in (("train", N), ("test", N // 4)):
        assert set(content[split]) == {"images", "labels"}
        assert content[split]["images"].shape == (n, 3, 60, 60) and content[split]["images"].dtype == np.uint8
        assert content[split]["labels"].shape == (n,) and content[split]["labels"].dtype == np.int64
    assert content["train"]["labels"].min() == 0 and content["train"]["labels"].max() == 99


def test_task_splits_values_as_stored(root):
    task = load_task("spherical", root)
    assert (len(task.train), len(task.val), len(task.test)) == (40, 10, N // 4)  # int(0.8 N) train, in file order
    assert task.spec.input_shape == (3, 60, 60) and task.spec.out_size == 100
    content = raw(root)
    x, y = task.val[3]
    assert x.dtype == torch.float32 and y.dtype == torch.int64
    # NAS-Bench-360 casts the stored values to float32 without normalising them
    np.testing.assert_array_equal(x.numpy(), content["train"]["images"][43].astype(np.float32))
    assert int(y) == content["train"]["labels"][43]
    np.testing.assert_array_equal(task.test[0][0].numpy(), content["test"]["images"][0])


def test_fake_data_carries_a_signal(root):
    accuracy, chance = spectral_accuracy(load_task("spherical", root))
    assert accuracy >= 0.8 > chance


def test_one_epoch_gives_a_finite_metric(root, one_epoch):
    one_epoch(load_task("spherical", root), batch_size=16)


def test_missing_file_names_file_directory_and_source(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        load_task("spherical", tmp_path)
    message = str(error.value)
    assert "s2_cifar100.gz" in message and str(tmp_path.resolve()) in message and spherical.PUBLISHED_URL in message


@pytest.mark.parametrize("change, expected", [
    (lambda c: c["train"].update(images=c["train"]["images"][:, :, :, :59]),
     "field 'train.images' has shape (50, 3, 60, 59), expected (N, 3, 60, 60)"),
    (lambda c: c["test"].update(labels=c["test"]["labels"][:-1]),
     "field 'test.labels' has shape (11,), expected (N,) with N = 12 as in 'test.images'"),
    (lambda c: c["train"].update(labels=c["train"]["labels"].astype(np.float32) + 0.5),
     "field 'train.labels' holds floats that are not whole numbers (row 0: "),
    (lambda c: c["train"].update(labels=c["train"]["labels"].astype(str)),
     "field 'train.labels' has dtype <U21, expected signed integer or unsigned integer or floating point"),
    (lambda c: c.pop("test"), "field 'test' is missing; found keys ['train'], expected ['train', 'test']"),
    (lambda c: c["train"].pop("labels"), "field 'train.labels' is missing; found keys ['images'], expected ['images', 'labels']"),
])
def test_bad_file_names_file_field_found_and_expected(tmp_path, change, expected):
    spherical.write_fake(tmp_path, n=N)
    content = raw(tmp_path)
    change(content)
    with gzip.open(tmp_path / "s2_cifar100.gz", "wb") as f:
        pickle.dump(content, f)
    with pytest.raises(ValueError) as error:
        load_task("spherical", tmp_path)
    assert str(tmp_path / "s2_cifar100.gz") in str(error.value) and expected in str(error.value)


def test_not_a_gzip_file(tmp_path):
    (tmp_path / "s2_cifar100.gz").write_bytes(pickle.dumps({"train": {}, "test": {}}))  # pickled but not gzipped
    with pytest.raises(ValueError, match="s2_cifar100.gz: cannot be read"):
        load_task("spherical", tmp_path)
