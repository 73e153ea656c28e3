"""DeepSEA (NAS-Bench-360's genomics task): 36 chromatin-profile labels of 1000-bp DNA sequences.

The published ``deepsea_filtered.npz`` (NAS-Bench-360's filtering of Zhou & Troyanskaya's DeepSEA
data to 36 of the 919 profiles) holds ``x_train`` (71,753, 1000, 4) one-hot sequences and ``y_train``
(71,753, 36) 0/1 labels, and likewise ``x_val``/``y_val`` (2,490) and ``x_test``/``y_test`` (149,400).
NAS-Bench-360 (``backbone_1d/data_utils/load_data.py: load_deepsea_data``) reads the three splits
as they are, moves the bases to the channel axis (4 x 1000) and trains with binary cross-entropy;
the metric is 1 - mean AUROC over the 36 labels (``backbone_1d/model_def.py``).

The file is about 860 MB for 224k sequences of 4000 entries, so its arrays are one byte per entry;
the sequences are kept in that dtype in memory (a quarter of float32) and converted per sample.
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.utils.data import Dataset

from nb360.data import checks

if TYPE_CHECKING:
    from nb360.data.task import Task

FILE = "deepsea_filtered.npz"
SPLITS = {"train": ("x_train", "y_train"), "val": ("x_val", "y_val"), "test": ("x_test", "y_test")}
LENGTH, BASES, LABELS = 1000, 4, 36
NUMERIC = "biuf"
MOTIF_COPIES = 30  # fake data: copies of a label's motif in a positive sequence


class Sequences(Dataset):
    """(sequence (4, 1000) float32, labels (36,) float32); the sequences stay in the file's dtype."""

    def __init__(self, x: np.ndarray, y: np.ndarray):
        self.x = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 2, 1)))  # (N, 4, 1000)
        self.y = torch.from_numpy(y.astype(np.float32))

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[i].float(), self.y[i]


def read_arrays(data_root: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The three (x, y) pairs of the published file, checked: x (N, 1000, 4) and y (N, 36), numeric,
    labels 0 or 1."""
    path = checks.require_file(Path(data_root), FILE, "deepsea", checks.published_url(f"deepsea/{FILE}"))
    # a truncated or damaged archive fails on opening (no central directory) or on reading a member
    damaged = (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error)
    try:
        archive = np.load(path, allow_pickle=False)
    except damaged as error:
        raise ValueError(f"{path}: not an .npz file that numpy can read ({type(error).__name__}: {error})") from None

    def member(key: str) -> np.ndarray:
        try:
            return archive[key]
        except damaged as error:
            raise ValueError(f"{path}: field {key!r} cannot be read, the file is damaged or truncated "
                             f"({type(error).__name__}: {error})") from None

    with archive:
        keys = [key for pair in SPLITS.values() for key in pair]
        checks.require_keys({name: None for name in archive.files}, keys, path)
        arrays = {}
        for split, (x_key, y_key) in SPLITS.items():
            dims: dict = {}
            x = checks.check_array(member(x_key), path, x_key, ("N", LENGTH, BASES), NUMERIC, dims)
            y = checks.check_array(member(y_key), path, y_key, ("N", LABELS), NUMERIC, dims)
            if not np.isin(y, (0, 1)).all():
                raise ValueError(f"{path}: field {y_key!r} has values {np.unique(y)[:5]}, expected 0/1 labels")
            if x.dtype.kind == "f" and x.dtype != np.float32:
                x = x.astype(np.float32)
            arrays[split] = (x, y)
    return arrays


def make_task(card: dict, data_root: Path) -> Task:
    """The deepsea ``Task``: BCE with logits, 1 - mean AUROC over the 36 labels."""
    from nb360.data.task import Task
    from nb360.metrics import auroc_error
    from nb360.train import Splits

    arrays = read_arrays(data_root)
    train, val, test = (Sequences(*arrays[split]) for split in SPLITS)
    return Task.from_card(card, Splits(train, val, test), torch.nn.BCEWithLogitsLoss(), auroc_error)


def write_fake(root: str | Path, n: int = 200, seed: int = 0) -> Path:
    """A small ``deepsea_filtered.npz`` with the published keys and shapes: ``n`` training sequences and
    n/4 (at least 8) each for validation and test, one-hot uint8 (N, 1000, 4), labels uint8 (N, 36).
    Label j is on when its own 3-base motif is planted (each label with probability 0.3) at
    ``MOTIF_COPIES`` random places, so that the motif is enriched in the sequence; then flipped with
    probability 0.05. Learnable from the sequence by small filters. (The published dtypes are not
    documented; the file's size fits one byte per entry.)"""
    if n < 8:
        raise ValueError(f"deepsea fake data needs n >= 8 training sequences, got {n}")
    rng = np.random.default_rng(seed)
    motifs = rng.permutation(np.stack(np.unravel_index(np.arange(BASES**3), (BASES,) * 3), axis=1))[:LABELS]
    arrays = {}
    for split, count in {"train": n, "val": max(8, n // 4), "test": max(8, n // 4)}.items():
        bases = rng.integers(0, BASES, size=(count, LENGTH))
        labels = rng.random((count, LABELS)) < 0.3
        for i, j in zip(*np.nonzero(labels)):
            for start in rng.integers(0, LENGTH - 3, size=MOTIF_COPIES):
                bases[i, start : start + 3] = motifs[j]
        labels ^= rng.random((count, LABELS)) < 0.05
        x_key, y_key = SPLITS[split]
        arrays[x_key] = np.eye(BASES, dtype=np.uint8)[bases]
        arrays[y_key] = labels.astype(np.uint8)
    path = Path(root) / FILE
    checks.atomic_write(path, lambda handle: np.savez(handle, **arrays))
    return path
