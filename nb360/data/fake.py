"""Building blocks of the format-faithful fake data sets (`nb360 data fake`).

Each data module's ``write_fake`` writes its files in the published format; these helpers give it
labels that span the published label range and inputs that carry a signal a small network picks up
within an epoch: a sinusoid whose frequency (cycles over the last axis) and level depend on the class,
at a random phase, plus Gaussian noise. The frequency survives the per-series z-scoring of the 1D
tasks; the level makes the classes apart at a glance where inputs are not normalised.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def spread_classes(num_classes: int, k: int) -> np.ndarray:
    """``k`` class ids spread over 0..num_classes-1, both ends included: few enough classes for tens of
    samples to learn, spanning the whole published range of labels."""
    return np.unique(np.linspace(0, num_classes - 1, min(k, num_classes)).round().astype(np.int64))


def balanced_labels(rng: np.random.Generator, n: int, classes: Sequence[int]) -> np.ndarray:
    """``n`` labels, each of ``classes`` as often as possible, in random order."""
    return rng.permutation(np.resize(np.asarray(classes, dtype=np.int64), n))


def class_signal(rng: np.random.Generator, labels: np.ndarray, shape: Sequence[int], noise: float = 0.3,
                 cycles: float = 1.0) -> np.ndarray:
    """(len(labels), *shape) float64: for the class of rank r among the labels present, a sinusoid of
    ``cycles * (r + 1)`` periods along the last axis (tilted along the one before, for 2-D samples),
    at a random phase, plus the level r / 2, plus N(0, noise^2)."""
    ranks = np.searchsorted(np.unique(labels), labels).astype(np.float64)
    n = len(labels)
    t = np.arange(shape[-1]) / shape[-1]
    phase = rng.uniform(0, 2 * np.pi, n)
    # angle per sample along the last axis, broadcast over the leading axes
    angle = 2 * np.pi * cycles * (ranks + 1)[:, None] * t[None] + phase[:, None]
    angle = angle.reshape(n, *([1] * (len(shape) - 1)), shape[-1])
    if len(shape) >= 2:
        s = np.arange(shape[-2]) / shape[-2]
        angle = angle + (2 * np.pi * s)[:, None]
    wave = np.sin(angle) + (ranks / 2).reshape(n, *([1] * len(shape)))
    return np.broadcast_to(wave, (n, *shape)) + noise * rng.standard_normal((n, *shape))
