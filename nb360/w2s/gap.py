"""Performance gap recovered (PGR), Burns et al., "Weak-to-Strong Generalization" (2023), section 3.

PGR = (w2s performance - weak performance) / (ceiling performance - weak performance): 0 when the
student trained on the weak teacher's labels is no better than the teacher, 1 when it matches the
student trained on true labels. nb360 scores are errors (lower is better), so performance is
-error and

    PGR = ((-w2s) - (-weak)) / ((-ceiling) - (-weak)) = (weak - w2s) / (weak - ceiling).

A student worse than its teacher gives PGR < 0; one better than the ceiling gives PGR > 1.

The ratio is the same number whether it is computed from errors, from performance = -error or from
accuracy = 1 - error: numerator and denominator change sign (and shift) together. What the direction
decides is which ceiling is *worse* than the teacher, the case where PGR stops meaning "share of the
gap recovered" (a warning says so).
"""

from __future__ import annotations

import math
import warnings


def pgr(weak: float, w2s: float, ceiling: float, higher_is_better: bool = False) -> float:
    """PGR from the three test scores; errors by default, accuracies with `higher_is_better`.

    Degenerate cases give NaN with a `RuntimeWarning` instead of an error, so that a sweep over many
    seeds keeps going and the bad run stays visible in its output: a non-finite score, or a ceiling
    equal to the weak score (no gap to recover). A ceiling *worse* than the teacher still gives the
    ratio, with a warning, since its sign then no longer says whether the student improved.
    """
    scores = (float(weak), float(w2s), float(ceiling))
    if not all(math.isfinite(s) for s in scores):
        warnings.warn(f"PGR of non-finite scores (weak, w2s, ceiling) = {scores} is NaN", RuntimeWarning, stacklevel=2)
        return math.nan
    weak, w2s, ceiling = scores if higher_is_better else tuple(-s for s in scores)
    gap = ceiling - weak
    if gap == 0:
        warnings.warn(f"PGR is undefined when the ceiling equals the weak score ({ceiling:g}); returning NaN",
                      RuntimeWarning, stacklevel=2)
        return math.nan
    if gap < 0:
        warnings.warn("the ceiling is worse than the weak teacher, so the sign of PGR does not say whether "
                      "the student improved on it", RuntimeWarning, stacklevel=2)
    return (w2s - weak) / gap
