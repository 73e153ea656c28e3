"""Cosmic: deepCR's archive layout, NAS-Bench-360's field selection, crop, split and sky augmentation,
the errors, one training epoch."""

from __future__ import annotations

import tarfile

import numpy as np
import pytest
import torch

from nb360.data import cosmic, load_task
from nb360.data.archives import Archive, npy_bytes, write_tar


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("cosmic")
    cosmic.write_fake(root, n=8, seed=0)
    return root


def copy_with(root, tmp_path, part: str, changes: dict[str, bytes]):
    """A copy of the fake data whose ``part`` tar has ``changes`` (member -> bytes) applied."""
    for name in cosmic.ARCHIVES.values():
        (tmp_path / name).write_bytes((root / name).read_bytes())
    archive = Archive(tmp_path / cosmic.ARCHIVES[part])
    members = {n: archive.read(n) for n in archive.names()} | changes
    write_tar(tmp_path / cosmic.ARCHIVES[part], members)
    return tmp_path


def test_fake_archive_layout(root):
    with tarfile.open(root / "deepCR.ACS-WFC.train.tar") as tar:
        names = tar.getnames()
    assert "npy_train/f435w/10760/2/sky.npy" in names and "npy_train/f435w/10760/2/1_0.npy" in names
    assert any(n.startswith("npy_train/f606w/") for n in names)  # another filter, skipped by the loader
    stack = Archive(root / "deepCR.ACS-WFC.train.tar").load_npy("npy_train/f435w/10760/2/1_0.npy")
    assert stack.shape == (3, 256, 256) and stack.dtype == np.float32
    assert set(np.unique(stack[1])) <= {0.0, 1.0} and set(np.unique(stack[2])) <= {0.0, 1.0}


def test_field_selection_and_splits(root):
    task = load_task("cosmic", root)
    archive = Archive(root / cosmic.ARCHIVES["train"])
    members = cosmic.image_members(archive, "train")
    # F435W images of resolved-galaxy fields only: the globular-cluster field and the F606W visit are skipped
    assert all(m.split("/")[1] == "f435w" and cosmic.FIELD_TYPE["_".join(m.split("/")[2:4])] == "GAL" for m in members)
    assert not any("/10595/" in m for m in members)
    n_train = int(len(members) * 0.9)
    assert task.train.members == members[:n_train] and task.val.members == members[n_train:]
    assert len(task.test) == len(cosmic.image_members(Archive(root / cosmic.ARCHIVES["test"]), "test"))
    assert task.spec.input_shape == (1, 128, 128) and task.spec.kind == "dense2d" and task.batch_size == 8
    assert cosmic.split_sizes(4830) == (4347, 4347)  # docs/index.md: 4,347 train, 483 validation


def test_crop_and_sky_augmentation(root):
    task = load_task("cosmic", root)
    archive = Archive(root / cosmic.ARCHIVES["train"])
    name = task.train.members[0]
    stack = archive.load_npy(name)
    sky = archive.load_npy(name.rsplit("/", 1)[0] + "/sky.npy")[int(name.rsplit("/", 1)[1].split("_")[0]) - 1]
    x, y = task.val[0]  # validation: the plain crop
    val_stack = archive.load_npy(task.val.members[0])
    np.testing.assert_array_equal(x[0].numpy(), val_stack[0, 64:192, 64:192])
    np.testing.assert_array_equal(y.numpy(), val_stack[1:, 64:192, 64:192])
    torch.manual_seed(0)
    x, y = task.train[0]
    added = x[0].numpy() - stack[0, 64:192, 64:192]
    assert x.shape == (1, 128, 128) and y.shape == (2, 128, 128) and x.dtype == y.dtype == torch.float32
    assert np.ptp(added) < 1e-3 * abs(sky) + 1e-3  # one sky offset for the whole image
    assert -0.9 * sky - 1e-3 <= added.mean() <= 3.0 * sky + 1e-3


def test_one_epoch(root, one_epoch):
    one_epoch(load_task("cosmic", root), batch_size=4)


def test_missing_test_archive(root, tmp_path):
    (tmp_path / cosmic.ARCHIVES["train"]).write_bytes((root / cosmic.ARCHIVES["train"]).read_bytes())
    with pytest.raises(FileNotFoundError, match=r"deepCR\.ACS-WFC\.test\.tar not found in .*"
                                                r"pde-xd\.s3\.amazonaws\.com/cosmic/deepCR\.ACS-WFC\.test\.tar"):
        load_task("cosmic", tmp_path)


def test_unknown_field(root, tmp_path):
    broken = copy_with(root, tmp_path, "train", {"npy_train/f435w/99999/9/1_0.npy": npy_bytes(np.zeros((3, 256, 256), np.float32))})
    with pytest.raises(ValueError, match=r"npy_train/f435w/99999/9/1_0\.npy: field '99999_9' \(proposal_visit\) is not one"):
        load_task("cosmic", broken)


def test_image_too_small(root, tmp_path):
    name = cosmic.image_members(Archive(root / cosmic.ARCHIVES["test"]), "test")[0]
    broken = copy_with(root, tmp_path, "test", {name: npy_bytes(np.zeros((3, 100, 100), np.float32))})
    task = load_task("cosmic", broken)
    with pytest.raises(ValueError, match=rf"{name}: images of 100 x 100 pixels, expected at least 192 x 192"):
        task.test[0]


def test_stack_of_wrong_shape(root, tmp_path):
    name = cosmic.image_members(Archive(root / cosmic.ARCHIVES["test"]), "test")[0]
    broken = copy_with(root, tmp_path, "test", {name: npy_bytes(np.zeros((256, 256), np.float32))})
    with pytest.raises(ValueError, match=rf"{name}: found shape \(256, 256\), expected an array \(3, H, W\)"):
        load_task("cosmic", broken).test[0]
