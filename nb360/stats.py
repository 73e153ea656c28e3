"""Confidence intervals over seeds, one place for every report that gives them: Student's t for a
mean, Welch's t for a difference of two means. NaN values (a run that scored nothing) are left
out; fewer than two values give a NaN interval."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np


def _finite(values: Sequence[float]) -> np.ndarray:
    return np.array([v for v in values if v is not None and math.isfinite(v)], dtype=float)


def mean_ci(values: Sequence[float]) -> dict:
    """Mean, half-width of the 95% t interval, the number of finite values, and the values."""
    from scipy import stats

    finite = _finite(values)
    half = float(stats.t.ppf(0.975, len(finite) - 1) * finite.std(ddof=1) / math.sqrt(len(finite))) \
        if len(finite) > 1 else math.nan
    return {"mean": float(finite.mean()) if len(finite) else math.nan, "ci95": half, "n": int(len(finite)),
            "values": [float(v) for v in values]}


def difference_ci(a: Sequence[float], b: Sequence[float]) -> dict:
    """mean(a) - mean(b) with the half-width of its 95% Welch interval, and the one-sided p-value
    of Welch's t test that mean(a) < mean(b) (independent samples: the searches of two algorithms
    with the same seed share nothing that would pair them)."""
    from scipy import stats

    a, b = _finite(a), _finite(b)
    diff = float(a.mean() - b.mean()) if len(a) and len(b) else math.nan
    if len(a) < 2 or len(b) < 2:
        return {"diff": diff, "ci95": math.nan, "p_less": math.nan}
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(va + vb)
    if se == 0:  # both samples constant: the difference is exact
        return {"diff": diff, "ci95": 0.0, "p_less": 0.0 if diff < 0 else 1.0}
    dof = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    return {"diff": diff, "ci95": float(stats.t.ppf(0.975, dof) * se), "p_less": float(stats.t.cdf(diff / se, dof))}
