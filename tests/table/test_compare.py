import numpy as np
import pytest
from scipy import stats

from nb360.table.compare import agreement


def test_identical_rankings_agree_perfectly_and_reversed_ones_fully_disagree():
    x = np.arange(20.0)
    same = agreement(x, 3 * x + 1)
    assert (same["spearman"], same["kendall"], same["top_overlap"], same["regret_of_pick"]) == (1.0, 1.0, 1.0, 0.0)
    flipped = agreement(x, -x)
    assert flipped["spearman"] == pytest.approx(-1) and flipped["top_overlap"] == 0
    assert flipped["regret_of_pick"] == 19.0  # the low table's best is the high table's worst


def test_nan_rows_are_left_out_and_values_match_scipy():
    rng = np.random.default_rng(0)
    low, high = rng.normal(size=50), rng.normal(size=50)
    low[[3, 7]] = np.nan
    high[11] = np.nan
    keep = np.isfinite(low) & np.isfinite(high)
    result = agreement(low, high, top=0.2)
    assert result["n"] == 47
    assert result["spearman"] == pytest.approx(stats.spearmanr(low[keep], high[keep]).statistic)
    assert result["kendall"] == pytest.approx(stats.kendalltau(low[keep], high[keep]).statistic)
    k = 10  # ceil(0.2 * 47)
    expected = len(set(np.argsort(low[keep])[:k]) & set(np.argsort(high[keep])[:k])) / k
    assert result["top_overlap"] == expected
    assert result["regret_of_pick"] == pytest.approx(high[keep][np.argmin(low[keep])] - high[keep].min())


def test_too_few_common_rows_or_mismatched_shapes_are_refused():
    with pytest.raises(ValueError, match="at least 3 archs"):
        agreement(np.array([1.0, np.nan, 2.0]), np.array([1.0, 2.0, np.nan]))
    with pytest.raises(ValueError, match="same shape"):
        agreement(np.zeros(3), np.zeros(4))


def test_seed_reliability_measures_signal_against_seed_noise():
    from scipy import stats

    from nb360.table.compare import seed_reliability, spearman_brown, spearman_interval

    rng = np.random.default_rng(0)
    truth = rng.normal(size=3000)
    exact = seed_reliability(np.repeat(truth[:, None], 2, axis=1))
    assert exact["agreement"] == pytest.approx(1) and exact["reliability"] == pytest.approx(1)
    noise = seed_reliability(rng.normal(size=(3000, 2)))
    assert abs(noise["agreement"]) < 0.06 and noise["interval"][0] < 0 < noise["interval"][1]
    # signal variance 1, noise variance 1 per seed: Pearson 0.5 between seeds, Spearman about 0.48
    noisy = truth[:, None] + rng.normal(size=(3000, 4))
    two, four = seed_reliability(noisy[:, :2]), seed_reliability(noisy)
    assert 0.42 < two["agreement"] < 0.54 and 0.42 < four["agreement"] < 0.54
    assert four["reliability"] == pytest.approx(spearman_brown(four["agreement"], 4))
    assert four["reliability"] > two["reliability"] > two["agreement"]
    assert two["better_half_classes"] == 1500 and two["better_half_agreement"] < two["agreement"]
    assert list(four["by_seeds"]) == [4] and four["by_seeds"][4] == (3000, four["reliability"], four["better_half_reliability"])
    noisy[:10, 1] = np.nan  # classes missing a seed are left out of the agreement, and counted with the seeds they have
    partial = seed_reliability(noisy[:, :2])
    assert partial["classes"] == 2990
    assert partial["by_seeds"] == {2: (2990, partial["reliability"], partial["better_half_reliability"]),
                                   1: (10, partial["agreement"], partial["better_half_agreement"])}
    assert seed_reliability(noisy[:, :1]) is None and seed_reliability(noisy[:3, :2]) is None
    # a seed being added (seed 2 on 300 classes so far) counts in its pairs, over the classes it has
    # scored, without shrinking the other pairs to those classes
    growing = noisy[:, :3].copy()
    growing[300:, 2] = np.nan
    pairs = {(i, j): stats.spearmanr(*growing[np.isfinite(growing[:, [i, j]]).all(axis=1)][:, [i, j]].T).statistic
             for i, j in ((0, 1), (0, 2), (1, 2))}
    grown = seed_reliability(growing)
    assert grown["classes"] == 3000  # with two seeds or more (the ten that lack seed 1 have seed 2)
    assert grown["agreement"] == pytest.approx((2990 * pairs[0, 1] + 300 * pairs[0, 2] + 290 * pairs[1, 2]) / 3580)
    assert grown["interval"] == spearman_interval(grown["agreement"], 2990)
    assert {k: n for k, (n, _, _) in grown["by_seeds"].items()} == {3: 290, 2: 2710}
    assert seed_reliability(np.where(np.arange(3000)[:, None] < 3, noisy[:, :2], np.nan)) is None  # 3 shared classes
