"""How well one table's scores stand in for another's: rank correlations, top-k overlap, regret.

Used to measure the fidelity of a reduced protocol against a higher one (the shipped mini tables
against their high-fidelity sample) and, by the hypothesis scripts, to ask whether rankings
transfer between tasks. Both inputs are per-arch score arrays over the same rows (official index
order), lower is better; rows where either is NaN are left out.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats

# What a shipped table's score must reach (split-half reliability, over all iso classes and over the
# better half, where searches end) for its ranking to count as signal rather than seed noise.
RELIABILITY_GOAL = (0.9, 0.75)


def agreement(low: np.ndarray, high: np.ndarray, top: float = 0.1) -> dict:
    """Spearman and Kendall (tau-b) correlations, top-`top` overlap, and the regret at `high` of
    the arch that `low` ranks best.

    top_overlap: the fraction of the best ceil(top * n) archs under `high` that are also among
    the best ceil(top * n) under `low` (1 is perfect, `top` is what chance gives).
    regret_of_pick: high[argmin(low)] - min(high), on the rows both score.
    """
    low, high = np.asarray(low, dtype=float), np.asarray(high, dtype=float)
    if low.shape != high.shape:
        raise ValueError(f"score arrays must have the same shape, got {low.shape} and {high.shape}")
    both = np.isfinite(low) & np.isfinite(high)
    n = int(both.sum())
    if n < 3:
        raise ValueError(f"need at least 3 archs scored in both tables, found {n}")
    low, high = low[both], high[both]
    k = max(1, int(np.ceil(top * n)))
    best_low, best_high = set(np.argsort(low, kind="stable")[:k]), set(np.argsort(high, kind="stable")[:k])
    return {
        "n": n,
        "spearman": float(stats.spearmanr(low, high).statistic),
        "kendall": float(stats.kendalltau(low, high).statistic),
        "top_fraction": top,
        "top_overlap": len(best_low & best_high) / k,
        "regret_of_pick": float(high[int(np.argmin(low))] - high.min()),
    }


def spearman_interval(r: float, n: int) -> tuple[float, float]:
    """Approximate 95% interval of a Spearman correlation over `n` pairs (Fisher z with the standard
    error 1.06 / sqrt(n - 3) of Fieller, Hartley and Pearson)."""
    if n < 4 or not np.isfinite(r) or abs(r) >= 1:
        return (float("nan"), float("nan"))
    half = 1.96 * 1.06 / np.sqrt(n - 3)
    return float(np.tanh(np.arctanh(r) - half)), float(np.tanh(np.arctanh(r) + half))


def with_interval(r: float, bounds: Sequence[float]) -> str:
    """A correlation as reports print it: three decimals, then its 95% interval to two."""
    return f"{r:.3f} [{bounds[0]:.2f}, {bounds[1]:.2f}]"


def spearman_brown(r: float, factor: float = 2.0) -> float:
    """The reliability of a score averaged over `factor` times as many seeds, from the agreement `r`
    of two independent measurements (Spearman-Brown prophecy)."""
    return factor * r / (1 + (factor - 1) * r)


def seed_reliability(per_seed: np.ndarray) -> dict | None:
    """How much of a table's ranking is signal rather than seed noise, from per-seed final scores
    `per_seed` (classes x seeds, NaN where a run is missing; one row per iso class).

    `agreement` is the Spearman correlation between two seeds, each pair of seeds measured over
    the classes both scored, averaged over pairs weighted by those classes (so a seed being added
    to a table counts as soon as it has scored a few classes, without shrinking the sample to the
    classes it has reached), with a 95% interval for the largest pair's number of classes;
    `classes`: classes scored by two seeds or more. `reliability` is the Spearman-Brown estimate
    from that agreement for the mean over all the table's seeds, the score the table reports (for
    two seeds, the split-half reliability). The `better_half_` figures are the same over the
    classes at or below the median of the pair's mean, where searches end; choosing them by the
    compared seeds themselves biases the agreement low, so they are conservative.

    A table being built, or built with a further seed on a sample of its classes only, scores some
    classes with fewer seeds: `by_seeds` maps each number of seeds k that some class has to
    (classes with k seeds, reliability of a k-seed mean, the same over the better half), where
    reliability is the Spearman-Brown estimate from the measured agreement (one seed: the
    agreement itself). None with fewer than two seeds or no pair of seeds sharing four classes."""
    per_seed = np.asarray(per_seed, dtype=float)
    seeds = per_seed.shape[1]
    scored = np.isfinite(per_seed)
    pairs = [(i, j) for i in range(seeds) for j in range(i + 1, seeds)
             if (scored[:, i] & scored[:, j]).sum() >= 4]
    if not pairs:
        return None
    out: dict = {"seeds": seeds, "classes": int((scored.sum(axis=1) >= 2).sum())}
    for name in ("", "better_half_"):
        rs, ns = [], []
        for i, j in pairs:
            both = per_seed[scored[:, i] & scored[:, j]][:, [i, j]]
            if name:
                mean = both.mean(axis=1)
                both = both[mean <= np.median(mean)]
            rs.append(stats.spearmanr(both[:, 0], both[:, 1]).statistic)
            ns.append(len(both))
        r = float(np.average(rs, weights=ns))
        if name:
            out["better_half_classes"] = max(ns)
        out.update({f"{name}agreement": r, f"{name}interval": spearman_interval(r, max(ns)),
                    f"{name}reliability": spearman_brown(r, seeds)})
    counts = np.bincount(scored.sum(axis=1), minlength=seeds + 1)
    out["by_seeds"] = {k: (int(counts[k]), spearman_brown(out["agreement"], k),
                           spearman_brown(out["better_half_agreement"], k))
                       for k in range(seeds, 0, -1) if counts[k]}
    return out
