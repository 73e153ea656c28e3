"""PSICOV: inputs and targets against a port of NAS-Bench-360's protein_io (get_feature, get_map,
get_input_output_dist), the archive format, the splits, the errors, one training epoch."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from archive_edit import rewrite_member

from nb360.data import load_task, psicov
from nb360.data.archives import Archive, npy_bytes

TEST_SIZE = 160  # fake proteins have at most 140 residues; NAS-Bench-360's 512 works too, only slower


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("psicov")
    psicov.write_fake(root, n=6, seed=0)
    return root


@pytest.fixture
def broken(root, tmp_path):
    (tmp_path / psicov.ARCHIVE).write_bytes((root / psicov.ARCHIVE).read_bytes())
    return tmp_path


def nb360_padded_maps(features: dict, cb_map: np.ndarray, outl: int) -> tuple[np.ndarray, np.ndarray]:
    """protein_io.get_feature + get_map + get_input_output_dist (no crop: the protein fits), loop for loop:
    X (outl, outl, 57), Y (outl, outl)."""
    length = len(features["seq"])
    X = np.full((length, length, 57), 0.0)
    fi = 0
    for j in range(3):
        a = np.repeat(features["ss"][j].reshape(1, length), length, axis=0)
        X[:, :, fi], X[:, :, fi + 1] = a, a.T
        fi += 2
    for j in range(22):
        a = np.repeat(features["pssm"][:, j].reshape(1, length), length, axis=0)
        X[:, :, fi], X[:, :, fi + 1] = a, a.T
        fi += 2
    for key in ("sa", "entropy"):
        a = np.repeat(features[key].reshape(1, length), length, axis=0)
        X[:, :, fi], X[:, :, fi + 1] = a, a.T
        fi += 2
    for key in ("ccmpred", "freecon", "potential"):
        X[:, :, fi] = features[key]
        fi += 1
    Y = cb_map.copy()
    Y[Y < 1.0] = 1.0
    Y[0, 0] = Y[0, 1]
    Y[length - 1, length - 1] = Y[length - 1, length - 2]
    for q in range(1, length - 1):
        Y[q, q] = (Y[q, q - 1] + Y[q, q + 1]) / 2.0
    XX, YY = np.zeros((outl, outl, 57)), np.full((outl, outl), 100.0)
    XX[5 : 5 + length, 5 : 5 + length] = X
    YY[5 : 5 + length, 5 : 5 + length] = Y
    return XX.astype(np.float32), YY.astype(np.float32)


def test_inputs_and_targets_match_nb360(root):
    archive = Archive(root / psicov.ARCHIVE)
    pid = psicov.read_list(archive, "psicov")[0]
    features = archive.load_pickle(f"psicov/features/{pid}.pkl")
    _, _, cb_map = archive.load_npy(f"psicov/distance/{pid}-cb.npy")
    X, Y = nb360_padded_maps(features, cb_map, TEST_SIZE)
    x, y = load_task("psicov", root, test_size=TEST_SIZE).test[0]
    np.testing.assert_allclose(x.numpy(), X.transpose(2, 0, 1), rtol=1e-6)
    np.testing.assert_allclose(y[0].numpy(), Y, rtol=1e-6)
    rows, cols = np.mgrid[:TEST_SIZE, :TEST_SIZE]
    np.testing.assert_array_equal(y[1].numpy(), cols - rows)  # separation: column residue - row residue


def test_training_crops(root):
    """A protein longer than the crop gets a random 128 x 128 window (independent row and column
    offsets) of its padded maps, distances clipped at 16, the separation channel shifted accordingly."""
    task = load_task("psicov", root, test_size=TEST_SIZE)
    archive = Archive(root / psicov.ARCHIVE)
    ids = task.train.ids
    i = next(k for k, pid in enumerate(ids) if psicov.Protein(archive, "deepcov", pid).length + 10 > 128)
    protein = psicov.Protein(archive, "deepcov", ids[i])
    full_x, full_y = protein.window(0, 0, protein.length + 10, clip=16.0)
    torch.manual_seed(1)
    x, y = task.train[i]
    assert x.shape == (57, 128, 128) and y.shape == (2, 128, 128) and x.dtype == y.dtype == torch.float32
    # the separation at (0, 0) is col_start - row_start: find the window of the full padded map it is
    matches = [(r, c) for r in range(protein.length + 10 - 127) for c in range(protein.length + 10 - 127)
               if c - r == int(y[1, 0, 0]) and np.array_equal(full_x[:, r : r + 128, c : c + 128], x.numpy())]
    assert matches, "the crop is not a window of the padded maps"
    row_start, col_start = matches[0]
    np.testing.assert_array_equal(y[0].numpy(), full_y[0, row_start : row_start + 128, col_start : col_start + 128])
    assert y[0].max() <= 16.0
    torch.manual_seed(1)
    assert torch.equal(task.train[i][0], x)  # the seed fixes the crop


def test_splits(root):
    task = load_task("psicov", root, test_size=TEST_SIZE)
    archive = Archive(root / psicov.ARCHIVE)
    deepcov, test_ids = psicov.read_list(archive, "deepcov"), psicov.read_list(archive, "psicov")
    assert task.val.ids == deepcov[:1] and task.train.ids == deepcov[1:]  # first DeepCov proteins validate
    assert task.test.ids == test_ids
    assert task.spec.input_shape == (57, 128, 128) and task.spec.kind == "dense2d" and task.batch_size == 8
    x, y = task.val[0]
    assert x.shape == (57, TEST_SIZE, TEST_SIZE) and y.shape == (2, TEST_SIZE, TEST_SIZE)
    assert y[0].max() == 100.0  # full maps are not clipped: padding keeps distance 100
    assert psicov.split_sizes(3456) == (3356, 100)
    # by default, evaluation maps are the smallest multiple of 128 that holds the split's longest protein
    longest = max(psicov.Protein(archive, "psicov", pid).length for pid in test_ids)
    assert load_task("psicov", root).test[0][0].shape[-1] == 128 * -(-(longest + 10) // 128)


def test_one_epoch(root, one_epoch):
    one_epoch(load_task("psicov", root, test_size=TEST_SIZE), batch_size=4, lr=0.01)


def test_missing_archive(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"protein\.zip not found in .*pde-xd\.s3\.amazonaws\.com/protein\.zip"):
        load_task("psicov", tmp_path)


def test_features_without_pssm(broken):
    archive = Archive(broken / psicov.ARCHIVE)
    pid = psicov.read_list(archive, "psicov")[0]
    features = archive.load_pickle(f"psicov/features/{pid}.pkl")
    del features["pssm"]
    rewrite_member(broken / psicov.ARCHIVE, f"psicov/features/{pid}.pkl", pickle.dumps(features))
    task = load_task("psicov", broken, test_size=TEST_SIZE)
    with pytest.raises(ValueError, match=rf"features/{pid}\.pkl: field 'pssm' is missing; found keys"):
        task.test[0]


def test_distance_map_of_wrong_size(broken):
    archive = Archive(broken / psicov.ARCHIVE)
    pid = psicov.read_list(archive, "psicov")[0]
    length, sequence, cb_map = archive.load_npy(f"psicov/distance/{pid}-cb.npy")
    record = np.empty(3, dtype=object)
    record[0], record[1], record[2] = length, sequence, cb_map[:-1, :-1]
    rewrite_member(broken / psicov.ARCHIVE, f"psicov/distance/{pid}-cb.npy", npy_bytes(record))
    task = load_task("psicov", broken, test_size=TEST_SIZE)
    with pytest.raises(ValueError, match=rf"{pid}-cb\.npy: field 'distance map' has shape \({length - 1}, {length - 1}\), "
                                         rf"expected \({length}, {length}\)"):
        task.test[0]


def test_test_maps_must_fit(root):
    with pytest.raises(ValueError, match="do not fit in test_size=64"):
        load_task("psicov", root, test_size=64)
