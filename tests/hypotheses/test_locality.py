import numpy as np
import pandas as pd
import pytest

from nb360.hypotheses import locality
from nb360.spaces.nb201 import NUM_ARCHS, Arch

from .conftest import additive_scores, check_outputs, write_table


@pytest.fixture(scope="module")
def shuffled(tmp_path_factory):
    """The additive scores dealt to the cells at random: no locality."""
    q = np.random.default_rng(5).permutation(additive_scores())
    return write_table(tmp_path_factory.mktemp("shuffled") / "shuffled.h5", q, task="shuffled")


def test_smooth_against_shuffled_landscape(tmp_path, additive, shuffled):
    report = locality.run(tmp_path, tables=[additive, shuffled], seed=0)
    check_outputs(report, ["locality", "distance", "autocorrelation"])
    summary = pd.read_csv(report.csv("locality")).set_index("table")
    smooth, flat = summary.loc["additive"], summary.loc["shuffled"]
    # an additive score with distinct effects has one local optimum: every other cell improves by
    # giving some edge its best operation
    assert smooth["local_optima"] == 1 and smooth["local_optima_fraction"] == pytest.approx(1 / NUM_ARCHS)
    assert smooth["median_scored_neighbours"] == 24 and smooth["cells_counted"] == NUM_ARCHS
    assert flat["local_optima_fraction"] > 0.02 > smooth["local_optima_fraction"]
    assert smooth["spearman_distance_vs_difference"] > 0.2 > 0.05 > abs(flat["spearman_distance_vs_difference"])

    # theory for this landscape: corr(d) = 1 - 5d/24 at edit distance d (an edge whose operation
    # changes to another uniformly drawn one correlates at -1/4), and (19/24)^k at walk lag k
    distance = report.frames["distance"]
    smooth_d = distance[distance["table"] == "additive"].set_index("distance")
    for d in range(1, 7):
        assert smooth_d.loc[d, "score_correlation"] == pytest.approx(1 - 5 * d / 24, abs=0.03)
        assert smooth_d.loc[d, "pairs"] == locality.PAIRS  # complete table: no pair dropped
    walk = report.frames["autocorrelation"]
    smooth_w = walk[walk["table"] == "additive"].set_index("lag")
    for k in (1, 2, 3):
        assert smooth_w.loc[k, "autocorrelation"] == pytest.approx((19 / 24) ** k, abs=0.04)
    flat_w = walk[walk["table"] == "shuffled"]
    assert flat_w["autocorrelation"].abs().max() < 0.05
    assert "additive` (15,625 cells scored)" in report.answer and "locally smooth there" in report.answer
    assert "`shuffled`" in report.answer and "not locally smooth" in report.answer


def test_pairs_are_at_the_asked_distance():
    scores = np.arange(NUM_ARCHS, dtype=float)
    scores[::3] = np.nan
    for d in (1, 4, 6):
        a, b = locality.pairs_at_distance(scores, d, 500, np.random.default_rng(d))
        assert 0 < len(a) < 500 and np.isfinite(scores[a]).all() and np.isfinite(scores[b]).all()
        ops_a = np.array([Arch.from_index(int(i)).ops for i in a])
        ops_b = np.array([Arch.from_index(int(i)).ops for i in b])
        assert ((ops_a != ops_b).sum(axis=1) == d).all()


def test_local_optima_of_a_partial_table_against_arch_neighbors(tmp_path, partial):
    optimum, neighbours = locality.local_optima(partial.final("test_metric"))
    scores = partial.final("test_metric")
    for i in np.random.default_rng(0).choice(np.flatnonzero(np.isfinite(scores)), 60, replace=False):
        scored = [scores[n.index] for n in Arch.from_index(int(i)).neighbors() if np.isfinite(scores[n.index])]
        assert neighbours[i] == len(scored)
        assert optimum[i] == (len(scored) > 0 and min(scored) >= scores[i])
    assert not optimum[~np.isfinite(scores)].any()


def test_class_shuffle_keeps_members_tied():
    iso = np.array([0, 0, 2, 3, 3, 3])
    scores = np.array([1.0, 1.0, 5.0, 7.0, 8.0, np.nan])
    out = locality.shuffle_classes(scores, iso, np.random.default_rng(1))
    assert out[0] == out[1] and np.isnan(out[5]) and out[4] - out[3] == pytest.approx(1.0)
    assert sorted([out[0], out[2], (out[3] + out[4]) / 2]) == pytest.approx([1.0, 5.0, 7.5])


def test_runs_on_imported_nats_tables(tmp_path, nats_cifar, nats_darcy):
    report = locality.run(tmp_path, tables=[nats_cifar, nats_darcy], pairs=2000, walk_steps=5000)
    check_outputs(report, ["locality", "distance", "autocorrelation"])
    summary = report.frames["locality"].set_index("table")
    assert (summary["scored"] == 625).all() and (summary["cells_counted"] > 0).all()
    assert (report.frames["distance"]["pairs"] > 0).all()
