import numpy as np
import pandas as pd
import pytest
from scipy import stats

from nb360.hypotheses import rank_transfer
from nb360.hypotheses.common import by_class

from .conftest import check_outputs


def test_identical_scores_transfer_perfectly_and_a_partial_table_counts_what_it_scores(tmp_path, additive,
                                                                                      additive_copy, partial):
    report = rank_transfer.run(tmp_path, tables=[additive, additive_copy, partial])
    text = check_outputs(report, ["rank_transfer"], pngs=2)
    rows = pd.read_csv(report.csv("rank_transfer")).set_index(["source", "target"])
    assert len(rows) == 6  # ordered pairs
    same = rows.loc[("additive", "copy")]
    assert same["spearman"] == pytest.approx(1.0) and same["kendall"] == pytest.approx(1.0)
    assert same["top_overlap"] == 1.0 and same["regret_of_pick"] == 0.0 and same["pick_rank_fraction"] == 0.0
    assert same["top_spearman"] == pytest.approx(1.0) and same["n"] == 6466  # one row per iso class

    # the partial table: numbers over the classes both score, as a direct computation gives them
    a = by_class(additive.final("test_metric"), additive.class_rows())
    p = by_class(partial.final("test_metric"), partial.class_rows())
    both = np.isfinite(a) & np.isfinite(p)
    row = rows.loc[("partial", "additive")]
    assert row["n"] == both.sum() < 6466
    assert row["spearman"] == pytest.approx(stats.spearmanr(p[both], a[both]).statistic)
    pick = a[both][np.argmin(p[both])]
    assert row["regret_of_pick"] == pytest.approx(pick - a[both].min())
    assert row["pick_rank_fraction"] == pytest.approx((a[both] < pick).mean())
    in_top = p[both] <= np.quantile(p[both], 0.1)
    assert row["top_spearman"] == pytest.approx(stats.spearmanr(p[both][in_top], a[both][in_top]).statistic)
    assert "partial" in text and "transfer" in report.answer


def test_reversed_ranking_and_an_imported_nats_table(tmp_path, additive, nats_cifar, nats_darcy):
    from .conftest import write_table

    reversed_ = write_table(tmp_path / "reversed.h5", -additive.final("test_metric"), task="reversed")
    report = rank_transfer.run(tmp_path / "out", tables=[additive, reversed_, nats_cifar, nats_darcy])
    check_outputs(report, ["rank_transfer"], pngs=2)
    rows = report.frames["rank_transfer"].set_index(["source", "target"])
    assert rows.loc[("additive", "reversed"), "spearman"] == pytest.approx(-1.0)
    assert rows.loc[("additive", "reversed"), "pick_rank_fraction"] == pytest.approx(1 - 1 / 6466)
    nats = rows.loc[("nats-cifar", "nats-darcy")]
    assert 3 <= nats["n"] < 625 and np.isfinite(nats["spearman"])
    assert "do not transfer" in report.answer  # the mean over pairs is far below 0.5


def test_needs_two_tables(tmp_path, additive):
    with pytest.raises(ValueError, match="at least 2"):
        rank_transfer.run(tmp_path, tables=[additive])
    with pytest.raises(ValueError, match="appears twice"):
        rank_transfer.run(tmp_path, tables=[additive, additive])
