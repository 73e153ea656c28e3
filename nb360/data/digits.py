"""The digits task: scikit-learn's 8x8 handwritten digits as an image classification task.

Not a NAS-Bench-360 task. The data ship inside scikit-learn, so this is real data available on
every machine without a download; the shipped tables use it as a second task for cross-task
questions. Pixels (integers 0-16) are scaled to [0, 1] and then standardised with the mean and
standard deviation of the training split (one scalar each, as CIFAR pipelines do per channel).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SPLIT_SEED = 0
TRAIN, VAL, TEST = 897, 450, 450


def load_arrays() -> tuple[np.ndarray, np.ndarray]:
    """(images (1797, 1, 8, 8) float32 in [0, 1], labels (1797,) int64) in scikit-learn's order."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[:, None]
    return images, digits.target.astype(np.int64)


def split_indices(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices of the train, val and test splits: one fixed permutation cut in blocks."""
    if n != TRAIN + VAL + TEST:
        raise ValueError(f"scikit-learn's digits: expected {TRAIN + VAL + TEST} images, found {n}")
    order = np.random.default_rng(SPLIT_SEED).permutation(n)
    return order[:TRAIN], order[TRAIN:TRAIN + VAL], order[TRAIN + VAL:]


def make_task(card: dict, data_root: Path):
    """The digits ``Task``: splits as the card says, cross-entropy loss, 0-1 error."""
    import torch
    from torch.nn import functional as F
    from torch.utils.data import TensorDataset

    from nb360.data.task import Task
    from nb360.metrics import zero_one_error
    from nb360.spaces.network import Spec
    from nb360.train import Splits

    images, labels = load_arrays()
    train, val, test = split_indices(len(labels))
    mean, std = images[train].mean(), images[train].std()
    x = torch.from_numpy((images - mean) / std)
    y = torch.from_numpy(labels)
    splits = Splits(*(TensorDataset(x[i], y[i]) for i in (train, val, test)))
    spec = Spec(card["kind"], card["in_channels"], tuple(card["in_shape"]), card["out_size"])
    return Task(card["name"], card, splits, F.cross_entropy, zero_one_error, spec, card["batch_size"])
