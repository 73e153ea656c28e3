"""CIFAR-100 as NAS-Bench-360 uses it, read by torchvision from the published python files.

Files (``cifar-100-python/`` under the data root, as in the published archive): ``train`` and ``test``
are pickled dicts with ``data`` (N, 3072) uint8, rows of 1024 red, 1024 green and 1024 blue pixels
of a 32x32 image, and ``fine_labels`` (N ints in 0..99), beside ``coarse_labels``, ``filenames`` and
``batch_label``; ``meta`` holds ``fine_label_names`` (100) and ``coarse_label_names`` (20).

Task, as NAS-Bench-360's loaders (backbone/data_utils/load_data.py): train = the first 40,000 training
images, val = the last 10,000 (``val_split=0.2``), test = the 10,000 test images; normalised with
mean (0.5071, 0.4867, 0.4408) and std (0.2675, 0.2565, 0.2761) per channel (NB201's CIFAR-100
statistics, 129.3/124.1/112.4 and 68.2/65.4/70.4 over 255, are the same numbers); training images
randomly cropped to 32 with 4 pixels of padding and flipped horizontally, as NB201 trains its cells.
Two differences from NAS-Bench-360, on purpose: the validation images get the test transform (NB360
takes them from the augmented training set, so its validation error is measured on random crops), and
no Cutout (NB360's WRN backbone adds Cutout(16); NB201 and NB360's DARTS search do not).
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from nb360.data import checks
from nb360.data.fake import balanced_labels, class_signal, spread_classes

if TYPE_CHECKING:
    from nb360.data.task import Task

TASK = "cifar100"
FOLDER = "cifar-100-python"
PUBLISHED_URL = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"  # NB360 docs/index.md, download_datasets.sh
MEAN, STD = (0.5071, 0.4867, 0.4408), (0.2675, 0.2565, 0.2761)
NUM_CLASSES, NUM_COARSE = 100, 20
VAL_FRACTION = 0.2  # NB360's val_split
SIDE = 32


def read_split(data_root: Path, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Check one of ``train``/``test`` and return (data (N, 3072) uint8, fine labels (N,) int64)."""
    path = checks.require_file(Path(data_root) / FOLDER, name, TASK, PUBLISHED_URL)
    entry = checks.require_keys(checks.load_pickle(path), ["data", "fine_labels"], path)
    dims: dict = {}
    data = checks.check_array(entry["data"], path, "data", ("N", 3 * SIDE * SIDE), np.uint8, dims)
    labels = np.asarray(entry["fine_labels"])
    checks.check_array(labels, path, "fine_labels", ("N",), checks.INTEGER, dims)
    return data, checks.check_range(labels.astype(np.int64), path, "fine_labels", 0, NUM_CLASSES - 1)


def _check_meta(data_root: Path) -> None:
    path = checks.require_file(Path(data_root) / FOLDER, "meta", TASK, PUBLISHED_URL)
    meta = checks.require_keys(checks.load_pickle(path), ["fine_label_names"], path)
    if len(meta["fine_label_names"]) != NUM_CLASSES:
        raise ValueError(f"{path}: field 'fine_label_names' has {len(meta['fine_label_names'])} names, "
                         f"expected {NUM_CLASSES}")


def make_task(card: dict, data_root: Path) -> Task:
    """The cifar100 ``Task``: torchvision's reader, NAS-Bench-360's splits, NB201's transforms."""
    import torch.nn.functional as F
    from torch.utils.data import Subset
    from torchvision import transforms
    from torchvision.datasets import CIFAR100

    from nb360.data.task import Task
    from nb360.metrics import zero_one_error
    from nb360.train import Splits

    n_train = len(read_split(data_root, "train")[1])
    read_split(data_root, "test")
    _check_meta(data_root)

    class PublishedCIFAR100(CIFAR100):
        """torchvision's reader without its md5 checks: the files were checked above, field by field,
        and the same code then reads a published copy and a fake one."""

        train_list = [["train", None]]
        test_list = [["test", None]]
        meta = {**CIFAR100.meta, "md5": None}

    normalize = [transforms.ToTensor(), transforms.Normalize(MEAN, STD)]
    augment = transforms.Compose([transforms.RandomCrop(SIDE, padding=4), transforms.RandomHorizontalFlip(),
                                  *normalize])
    plain = transforms.Compose(normalize)
    n_fit = int((1 - VAL_FRACTION) * n_train)
    train = Subset(PublishedCIFAR100(str(data_root), train=True, transform=augment), range(n_fit))
    val = Subset(PublishedCIFAR100(str(data_root), train=True, transform=plain), range(n_fit, n_train))
    test = PublishedCIFAR100(str(data_root), train=False, transform=plain)
    return Task.from_card(card, Splits(train, val, test), F.cross_entropy, zero_one_error)


def write_fake(root: Path, n: int = 50, seed: int = 0) -> list[Path]:
    """``cifar-100-python/{train,test,meta}`` in the published layout (Python pickles, protocol 2, the
    published keys and dtypes): ``n`` training images and n // 4 test images of a few classes spread
    over 0..99, each a coloured grating whose frequency and brightness say its class."""
    if n < 5:
        raise ValueError(f"cifar100 fake data needs n >= 5 training images (4 to train, 1 to validate), got {n}")
    rng = np.random.default_rng(seed)
    folder = Path(root) / FOLDER
    classes = spread_classes(NUM_CLASSES, 5)
    paths = []
    for name, count in (("train", n), ("test", max(1, n // 4))):
        labels = balanced_labels(rng, count, classes)
        images = 128 + 50 * class_signal(rng, labels, (3, SIDE, SIDE))
        batch = {
            "filenames": [f"fake_{name}_{i:05d}.png" for i in range(count)],
            "batch_label": f"{name} batch 1 of 1",
            "fine_labels": labels.tolist(),
            "coarse_labels": (labels // (NUM_CLASSES // NUM_COARSE)).tolist(),
            "data": np.clip(images, 0, 255).astype(np.uint8).reshape(count, -1),
        }
        paths.append(_write_pickle(folder / name, batch))
    meta = {"fine_label_names": [f"class_{i:02d}" for i in range(NUM_CLASSES)],
            "coarse_label_names": [f"superclass_{i:02d}" for i in range(NUM_COARSE)]}
    paths.append(_write_pickle(folder / "meta", meta))
    return paths


def _write_pickle(path: Path, obj: dict) -> Path:
    checks.atomic_write(path, lambda f: pickle.dump(obj, f, protocol=2))
    return path
