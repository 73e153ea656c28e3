"""NinaPro DB5 as NAS-Bench-360 processed it: EMG windows of 18 hand gestures, read from the published files.

Files: ``ninapro_{train,val,test}.npy``, each (N, 52, 16): windows of 52 time steps of the 16 electrodes
of two Myo armbands, and ``label_{train,val,test}.npy``, each (N,) gesture ids 0..17. Plain numeric
arrays (the Perceiver IO loader in NAS-Bench-360 reads them without ``allow_pickle``), read with
``np.load``; any integer or float type is accepted for the data.

Task, as NAS-Bench-360's ``load_ninapro`` (backbone/data_utils/load_data.py): each window transposed to
electrodes x time and given one channel, (N, 1, 16, 52) float32, without normalisation; the three
published splits (2,638/659/659).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from nb360.data import checks
from nb360.data.fake import balanced_labels, class_signal, spread_classes

if TYPE_CHECKING:
    from nb360.data.task import Task

TASK = "ninapro"
SPLITS = ("train", "val", "test")
TIME, ELECTRODES, NUM_CLASSES = 52, 16, 18


def file_names(split: str) -> tuple[str, str]:
    """The (data, labels) files of a split."""
    return f"ninapro_{split}.npy", f"label_{split}.npy"


def read_split(data_root: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(windows (N, 1, 16, 52) float32, labels (N,) int64) of one split, checked against the published format."""
    data_name, label_name = file_names(split)
    data_path, label_path = (checks.require_file(Path(data_root), name, TASK, checks.published_url(f"ninapro/{name}"))
                             for name in (data_name, label_name))
    dims: dict = {}
    data = checks.check_array(checks.load_npy(data_path), data_path, "data", ("N", TIME, ELECTRODES), checks.REAL, dims)
    labels = checks.check_labels(checks.load_npy(label_path), label_path, "labels", 0, NUM_CLASSES - 1, dims)
    return np.ascontiguousarray(data.transpose(0, 2, 1)[:, None], dtype=np.float32), labels


def make_task(card: dict, data_root: Path) -> Task:
    """The ninapro ``Task``: the published splits, cross-entropy, 0-1 error."""
    import torch
    import torch.nn.functional as F
    from torch.utils.data import TensorDataset

    from nb360.data.task import Task
    from nb360.metrics import zero_one_error
    from nb360.train import Splits

    splits = [TensorDataset(*map(torch.from_numpy, read_split(data_root, split))) for split in SPLITS]
    return Task.from_card(card, Splits(*splits), F.cross_entropy, zero_one_error)


def write_fake(root: Path, n: int = 40, seed: int = 0) -> list[Path]:
    """The six published files: ``n`` training windows and n // 4 each to validate and test, float32
    (N, 52, 16) and int64 labels of a few gestures spread over 0..17; each window a wave along time
    whose frequency and level say its gesture."""
    if n < 1:
        raise ValueError(f"ninapro fake data needs n >= 1 training windows, got {n}")
    rng = np.random.default_rng(seed)
    classes = spread_classes(NUM_CLASSES, 5)
    paths = []
    for split, count in zip(SPLITS, (n, max(1, n // 4), max(1, n // 4))):
        labels = balanced_labels(rng, count, classes)
        windows = class_signal(rng, labels, (ELECTRODES, TIME)).transpose(0, 2, 1).astype(np.float32)
        for name, array in zip(file_names(split), (windows, labels)):
            path = Path(root) / name
            checks.atomic_write(path, lambda f, a=array: np.save(f, a))
            paths.append(path)
    return paths
