"""How well one table's scores stand in for another's: rank correlations, top-k overlap, regret.

Used to measure the fidelity of a reduced protocol against a higher one (the shipped mini tables
against their high-fidelity sample) and, by the hypothesis scripts, to ask whether rankings
transfer between tasks. Both inputs are per-arch score arrays over the same rows (official index
order), lower is better; rows where either is NaN are left out.
"""

from __future__ import annotations

import numpy as np
from scipy import stats


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
