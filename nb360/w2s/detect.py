"""Overlap detection: which points carry easy patterns, hard patterns, or both.

Shin, Cooper & Sala, "Weak-to-Strong Generalization Through the Data-Centric Lens" (ICLR 2025),
reference code SprocketLab/datacentric_w2s, `w2s/data_source_selection_linear_probing.py`:
1. `detect_hard_nonhard`: the weak model's confidence on each point; a change point of the sorted
   confidences (ruptures `Binseg(model="l2")`, one breakpoint) is the threshold, and points below
   it are *hard-only* (the weak model cannot read them).
2. `detect_overlap_easy`: every other point's overlap score is its largest inner product with the
   strong model's representations of the hard-only points; a second change point of the sorted
   scores separates *overlap* points (at or above it: they share the hard points' patterns) from
   *easy-only* ones.
Where a step finds no usable change point (too few points for ruptures, or a threshold that leaves
one side empty, e.g. constant scores) it falls back to a median split by rank; `Detection.fallback`
names the steps that did.

Confidence: the reference takes 2|p - 0.5| of the probability of class 1; for k classes we take the
margin between the two largest probabilities, which is the same number for two classes
(|p1 - p0| = |2 p1 - 1|).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EASY, HARD, OVERLAP = 0, 1, 2
GROUPS = ("easy", "hard", "overlap")
MIN_POINTS = 4
# Rows of the inner-product matrix computed at once: bounds memory at CHUNK x (hard points) floats.
CHUNK = 2048


@dataclass(frozen=True)
class Detection:
    """Each point in exactly one of `easy`, `hard`, `overlap` (boolean arrays), with the scores used:
    `confidence` (every point), `overlap_score` (NaN on hard points) and the two thresholds."""

    easy: np.ndarray
    hard: np.ndarray
    overlap: np.ndarray
    confidence: np.ndarray
    overlap_score: np.ndarray
    confidence_threshold: float
    overlap_threshold: float
    fallback: tuple[str, ...] = ()

    @property
    def labels(self) -> np.ndarray:
        """One label per point: EASY (0), HARD (1) or OVERLAP (2)."""
        labels = np.full(self.easy.shape, EASY, dtype=np.int8)
        labels[self.hard] = HARD
        labels[self.overlap] = OVERLAP
        return labels

    def fractions(self) -> dict[str, float]:
        """Share of the points in each group."""
        return {name: float(getattr(self, name).mean()) for name in GROUPS}


def confidence(weak_probs: np.ndarray) -> np.ndarray:
    """The weak model's confidence per point: top-1 minus top-2 probability (= 2|p - 0.5| for two
    classes). `weak_probs`: (n, k) class probabilities, or (n,) probabilities of class 1."""
    probs = np.asarray(weak_probs, dtype=np.float64)
    if probs.ndim == 1:
        probs = np.stack([1 - probs, probs], axis=1)
    if probs.ndim != 2 or probs.shape[1] < 2:
        raise ValueError(f"weak_probs must be (n, classes) with at least 2 classes, or (n,); got shape {probs.shape}")
    if not np.isfinite(probs).all() or (probs < 0).any() or (probs > 1).any():
        raise ValueError("weak_probs must be probabilities in [0, 1] (apply softmax to logits first)")
    top2 = np.sort(probs, axis=1)[:, -2:]
    return top2[:, 1] - top2[:, 0]


def split_low(values: np.ndarray) -> tuple[np.ndarray, float, bool]:
    """(points below the threshold, threshold, whether the median fallback was used).

    The threshold is the sorted value at ruptures' single breakpoint (Binseg, l2 cost, the
    reference's defaults min_size=2, jump=5); low means strictly below it, as in the reference.
    """
    from ruptures import Binseg
    from ruptures.exceptions import BadSegmentationParameters

    order = np.argsort(values, kind="stable")
    ranked = values[order]
    try:
        breakpoint = Binseg(model="l2").fit(ranked.reshape(-1, 1)).predict(n_bkps=1)[0]
    except BadSegmentationParameters:
        breakpoint = len(values)  # too few points to segment
    if 0 < breakpoint < len(values):
        threshold = float(ranked[breakpoint])
        low = values < threshold
        if low.any() and not low.all():
            return low, threshold, False
    low = np.zeros(len(values), dtype=bool)
    low[order[: len(values) // 2]] = True
    return low, float(np.median(values)), True


def overlap_scores(features: np.ndarray, hard_features: np.ndarray) -> np.ndarray:
    """Each point's largest inner product with the hard points' features (reference:
    `(X_nonhard @ X_hard.T).max(axis=1)`), computed in chunks of rows."""
    return np.concatenate([(features[i:i + CHUNK] @ hard_features.T).max(axis=1)
                           for i in range(0, len(features), CHUNK)]) if len(features) else np.empty(0)


def detect_overlap(weak_probs: np.ndarray, features: np.ndarray, hard_reference: np.ndarray | None = None) -> Detection:
    """Easy-only, hard-only and overlap points from the weak model's probabilities and the strong
    model's representations.

    `weak_probs`: (n, k) probabilities (or (n,) of class 1); `features`: (n, d). `hard_reference`:
    (m, d) features of hard-only points found earlier (the reference's source selection adds every
    hard point detected in previous rounds, `detect_easy_hard_overlap`), used only to score overlap.
    """
    conf = confidence(weak_probs)
    feats = np.asarray(features, dtype=np.float64)
    if feats.ndim != 2 or len(feats) != len(conf):
        raise ValueError(f"features must be (n, d) with n = {len(conf)} (the rows of weak_probs); got shape {feats.shape}")
    if len(conf) < MIN_POINTS:
        raise ValueError(f"overlap detection needs at least {MIN_POINTS} points, got {len(conf)}")
    if not np.isfinite(feats).all():
        raise ValueError("features contain NaN or infinite values")
    hard, conf_threshold, conf_fallback = split_low(conf)
    reference = feats[hard]
    if hard_reference is not None and len(hard_reference):
        extra = np.asarray(hard_reference, dtype=np.float64)
        if extra.ndim != 2 or extra.shape[1] != feats.shape[1]:
            raise ValueError(f"hard_reference must be (m, {feats.shape[1]}); got shape {extra.shape}")
        reference = np.concatenate([reference, extra])
    score = np.full(len(conf), np.nan)
    score[~hard] = overlap_scores(feats[~hard], reference)
    easy_part, score_threshold, score_fallback = split_low(score[~hard])
    easy = np.zeros(len(conf), dtype=bool)
    easy[np.flatnonzero(~hard)[easy_part]] = True
    fallback = tuple(step for step, used in (("confidence", conf_fallback), ("overlap", score_fallback)) if used)
    return Detection(easy=easy, hard=hard, overlap=~hard & ~easy, confidence=conf, overlap_score=score,
                     confidence_threshold=conf_threshold, overlap_threshold=score_threshold, fallback=fallback)
