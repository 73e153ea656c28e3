"""DeepSEA: the published keys and shapes, the bases moved to the channel axis, the errors, one epoch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nb360.data import deepsea, load_task


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("deepsea")
    deepsea.write_fake(root, n=64, seed=0)
    return root


def rewritten(root, tmp_path, **changes):
    """A copy of the fake file with some arrays replaced (or removed, for None)."""
    with np.load(root / deepsea.FILE) as data:
        arrays = {k: data[k] for k in data.files}
    arrays.update(changes)
    np.savez(tmp_path / deepsea.FILE, **{k: v for k, v in arrays.items() if v is not None})
    return tmp_path


def test_fake_file_format(root):
    with np.load(root / deepsea.FILE) as data:
        assert sorted(data.files) == ["x_test", "x_train", "x_val", "y_test", "y_train", "y_val"]
        assert data["x_train"].shape == (64, 1000, 4) and data["y_train"].shape == (64, 36)
        assert (data["x_train"].sum(-1) == 1).all()  # one-hot bases


def test_splits_as_published(root):
    task = load_task("deepsea", root)
    with np.load(root / deepsea.FILE) as data:
        for split, (x_key, y_key) in deepsea.SPLITS.items():
            dataset = getattr(task, split)
            assert len(dataset) == len(data[y_key])
            x, y = dataset[3]
            assert x.shape == (4, 1000) and x.dtype == torch.float32 and y.shape == (36,) and y.dtype == torch.float32
            np.testing.assert_array_equal(x.numpy(), data[x_key][3].T)  # (1000, 4) -> bases as channels
            np.testing.assert_array_equal(y.numpy(), data[y_key][3])
    assert task.spec.input_shape == (4, 1000) and task.spec.out_size == 36 and task.batch_size == 256


def test_one_epoch(root, one_epoch):
    one_epoch(load_task("deepsea", root), batch_size=16)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"deepsea_filtered\.npz not found in .*pde-xd\.s3\.amazonaws\.com/deepsea/"):
        load_task("deepsea", tmp_path)


def test_missing_key(root, tmp_path):
    with pytest.raises(ValueError, match=r"field 'y_val' is missing; found keys"):
        load_task("deepsea", rewritten(root, tmp_path, y_val=None))


def test_wrong_number_of_labels(root, tmp_path):
    with pytest.raises(ValueError, match=r"field 'y_test' has shape \(16, 35\), expected \(N, 36\) with N = 16"):
        load_task("deepsea", rewritten(root, tmp_path, y_test=np.zeros((16, 35), np.uint8)))


def test_labels_not_binary(root, tmp_path):
    with pytest.raises(ValueError, match=r"field 'y_train' has values \[0 1 2\], expected 0/1 labels"):
        load_task("deepsea", rewritten(root, tmp_path, y_train=np.resize(np.arange(3, dtype=np.uint8), (64, 36))))


@pytest.mark.parametrize("keep", [0.3, 0.9])
def test_a_truncated_file_is_one_clear_error(root, tmp_path, keep):
    """Cut short, the archive loses its central directory: np.load fails, and the error names the file."""
    raw = (root / deepsea.FILE).read_bytes()
    (tmp_path / deepsea.FILE).write_bytes(raw[: int(len(raw) * keep)])
    with pytest.raises(ValueError, match=rf"{tmp_path / deepsea.FILE}: not an .npz file that numpy can read"):
        load_task("deepsea", tmp_path)


def test_a_damaged_member_is_one_clear_error(root, tmp_path):
    import zipfile

    # a valid archive whose x_val member holds a cut .npy: the directory reads, the member does not
    with zipfile.ZipFile(root / deepsea.FILE) as source, zipfile.ZipFile(tmp_path / deepsea.FILE, "w") as target:
        for name in source.namelist():
            data = source.read(name)
            target.writestr(name, data[: len(data) // 2] if name == "x_val.npy" else data)
    with pytest.raises(ValueError, match=r"field 'x_val' cannot be read, the file is damaged or truncated"):
        load_task("deepsea", tmp_path)
