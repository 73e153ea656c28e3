import math

import numpy as np
import pytest
from scipy import stats

from nb360.stats import difference_ci, mean_ci


def test_mean_and_confidence_interval():
    s = mean_ci([1.0, 2.0, 3.0])
    assert s["mean"] == 2.0 and s["n"] == 3
    assert s["ci95"] == pytest.approx(4.302653 * 1.0 / math.sqrt(3), rel=1e-5)  # t(0.975, 2) * sd / sqrt(n)
    assert math.isnan(mean_ci([0.5])["ci95"]) and mean_ci([0.5, float("nan")])["n"] == 1


def test_difference_matches_welch_test():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0.0, 1.0, 20), rng.normal(0.8, 2.0, 25)
    d = difference_ci(list(a) + [float("nan")], b)
    welch = stats.ttest_ind(a, b, equal_var=False, alternative="less")
    assert d["diff"] == pytest.approx(a.mean() - b.mean())
    assert d["p_less"] == pytest.approx(welch.pvalue, rel=1e-9)
    two_sided = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert d["ci95"] == pytest.approx((two_sided.high - two_sided.low) / 2, rel=1e-9)


def test_difference_degenerate_samples():
    assert math.isnan(difference_ci([1.0], [2.0, 3.0])["ci95"])
    same = difference_ci([1.0, 1.0], [2.0, 2.0])
    assert same == {"diff": -1.0, "ci95": 0.0, "p_less": 0.0}
