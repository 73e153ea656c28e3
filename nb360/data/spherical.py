"""Spherical CIFAR-100 (NAS-Bench-360): CIFAR-100 projected onto the sphere, read from the published file.

File: ``s2_cifar100.gz``, a gzip-compressed pickle of ``{"train": {"images", "labels"}, "test": {...}}``
with images (N, 3, 60, 60) (the sphere sampled at bandwidth 30, i.e. 2b x 2b points, by the S2CNN
projection script) and labels (N,) in 0..99. The published images are uint8 as S2CNN's generator
writes them (and as the file's 272 MB for 60,000 x 3 x 60 x 60 values implies); any integer or float
type is read.

Task, as NAS-Bench-360's ``load_scifar100_data`` (backbone/data_utils/load_data.py): images cast to
float32 as they are, without normalisation or augmentation; train = the first int(0.8 N) training
images, val = the rest (``val_split=0.2``); test = the test images.
"""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from nb360.data import checks
from nb360.data.fake import balanced_labels, class_signal, spread_classes

if TYPE_CHECKING:
    from nb360.data.task import Task

TASK = "spherical"
FILE = "s2_cifar100.gz"
UNZIPPED = "s2_cifar100"  # the same pickle after `gzip -d`, as NAS-Bench-360's download script leaves it
PUBLISHED_URL = checks.published_url("spherical/s2_cifar100.gz")
NUM_CLASSES, SIDE = 100, 60
VAL_FRACTION = 0.2  # NB360's val_split


def read(data_root: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{"train"/"test": (images (N, 3, 60, 60) float32, labels (N,) int64)}, checked field by field."""
    unzipped = Path(data_root) / UNZIPPED
    if unzipped.is_file() and not (Path(data_root) / FILE).is_file():  # gunzipped, as download_datasets.sh leaves it
        path, opener = unzipped, open
    else:
        path, opener = checks.require_file(Path(data_root), FILE, TASK, PUBLISHED_URL), gzip.open
    content = checks.require_keys(checks.load_pickle(path, opener=opener), ["train", "test"], path)
    splits = {}
    for split in ("train", "test"):
        part = checks.require_keys(content[split], ["images", "labels"], path, split)
        dims: dict = {}
        images = checks.check_array(part["images"], path, f"{split}.images", ("N", 3, SIDE, SIDE), checks.REAL, dims)
        labels = checks.check_labels(part["labels"], path, f"{split}.labels", 0, NUM_CLASSES - 1, dims)
        splits[split] = images.astype(np.float32), labels
    return splits


def make_task(card: dict, data_root: Path) -> Task:
    """The spherical ``Task``: NAS-Bench-360's splits, cross-entropy, 0-1 error."""
    import torch
    import torch.nn.functional as F
    from torch.utils.data import TensorDataset

    from nb360.data.task import Task
    from nb360.metrics import zero_one_error
    from nb360.train import Splits

    splits = read(data_root)
    x, y = (torch.from_numpy(a) for a in splits["train"])
    n_fit = int((1 - VAL_FRACTION) * len(y))
    if n_fit < 1 or n_fit == len(y):
        raise ValueError(f"{Path(data_root) / FILE}: field 'train.images' has {len(y)} images, expected at least 2 "
                         "(the last 20% validate)")
    test = TensorDataset(*(torch.from_numpy(a) for a in splits["test"]))
    return Task.from_card(card, Splits(TensorDataset(x[:n_fit], y[:n_fit]), TensorDataset(x[n_fit:], y[n_fit:]), test),
                          F.cross_entropy, zero_one_error)


def write_fake(root: Path, n: int = 50, seed: int = 0) -> list[Path]:
    """``s2_cifar100.gz`` in the published layout: ``n`` training and n // 4 test images, uint8
    (N, 3, 60, 60), int64 labels of a few classes spread over 0..99, each image a grating whose
    frequency and brightness say its class."""
    if n < 5:
        raise ValueError(f"spherical fake data needs n >= 5 training images (4 to train, 1 to validate), got {n}")
    rng = np.random.default_rng(seed)
    classes = spread_classes(NUM_CLASSES, 5)
    content = {}
    for split, count in (("train", n), ("test", max(1, n // 4))):
        labels = balanced_labels(rng, count, classes)
        images = np.clip(128 + 50 * class_signal(rng, labels, (3, SIDE, SIDE)), 0, 255).astype(np.uint8)
        content[split] = {"images": images, "labels": labels}
    path = Path(root) / FILE

    def write(handle) -> None:
        with gzip.GzipFile(fileobj=handle, mode="wb") as f:
            pickle.dump(content, f)

    checks.atomic_write(path, write)
    return [path]
