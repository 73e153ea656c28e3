"""Satellite image time series (NAS-Bench-360's satellite task), read from the published files.

Files: ``satellite_train.npy`` (900,000 series) and ``satellite_test.npy`` (100,000), each a dict
``{"data": (N, 46), "label": (N,)}`` saved with ``np.save`` (a 0-d object array), labels 1..24. They
are read through a restricted unpickler (arrays and plain containers only); any integer or float type
is accepted for the series.

Task, as NAS-Bench-360's ``load_satellite_data`` (backbone_1d/data_utils/load_data.py): labels shifted
to 0..23; every series z-scored on its own (population standard deviation); one channel, (N, 1, 46)
float32; val = the last len(test) series of the training file, train = the ones before.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from nb360.data import checks
from nb360.data.fake import balanced_labels, class_signal, spread_classes

if TYPE_CHECKING:
    from nb360.data.task import Task

TASK = "satellite"
FILES = {"train": "satellite_train.npy", "test": "satellite_test.npy"}
LENGTH, NUM_CLASSES = 46, 24


def read_split(data_root: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(z-scored series (N, 1, 46) float32, labels (N,) int64 in 0..23) of ``train`` or ``test``."""
    name = FILES[split]
    path = checks.require_file(Path(data_root), name, TASK, checks.published_url(f"satellite/{name}"))
    content = checks.require_keys(checks.load_npy(path), ["data", "label"], path)
    dims: dict = {}
    data = checks.check_array(content["data"], path, "data", ("N", LENGTH), checks.REAL, dims)
    labels = checks.check_labels(content["label"], path, "label", 1, NUM_CLASSES, dims)
    checks.check_nonconstant_rows(data, path, "data")
    data = data.astype(np.float64)
    scored = (data - data.mean(axis=1, keepdims=True)) / data.std(axis=1, keepdims=True)
    return scored[:, None].astype(np.float32), labels - 1


def make_task(card: dict, data_root: Path) -> Task:
    """The satellite ``Task``: NAS-Bench-360's splits, cross-entropy, 0-1 error."""
    import torch
    import torch.nn.functional as F
    from torch.utils.data import TensorDataset

    from nb360.data.task import Task
    from nb360.metrics import zero_one_error
    from nb360.train import Splits

    x, y = map(torch.from_numpy, read_split(data_root, "train"))
    test = TensorDataset(*map(torch.from_numpy, read_split(data_root, "test")))
    n_fit = len(y) - len(test)
    if n_fit < 1:
        raise ValueError(f"{Path(data_root) / FILES['train']}: field 'data' has {len(y)} series, expected more than "
                         f"the {len(test)} of {FILES['test']} (the last len(test) training series validate)")
    splits = Splits(TensorDataset(x[:n_fit], y[:n_fit]), TensorDataset(x[n_fit:], y[n_fit:]), test)
    return Task.from_card(card, splits, F.cross_entropy, zero_one_error)


def write_fake(root: Path, n: int = 60, seed: int = 0) -> list[Path]:
    """The two published files: ``n`` training series (the last n // 6 of them validate) and n // 6 test
    series, float64 (N, 46), int64 labels of a few classes spread over 1..24; each series a wave
    whose frequency says its class."""
    if n < 2:
        raise ValueError(f"satellite fake data needs n >= 2 training series, got {n}")
    rng = np.random.default_rng(seed)
    classes = spread_classes(NUM_CLASSES, 5) + 1
    paths = []
    for split, count in (("train", n), ("test", max(1, n // 6))):
        labels = balanced_labels(rng, count, classes)
        content = {"data": 1000 + 300 * class_signal(rng, labels, (LENGTH,)), "label": labels}
        path = Path(root) / FILES[split]
        checks.atomic_write(path, lambda f, c=content: np.save(f, c, allow_pickle=True))
        paths.append(path)
    return paths
