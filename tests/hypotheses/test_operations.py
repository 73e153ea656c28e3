import numpy as np
import pandas as pd
import pytest
from scipy import stats

from nb360.hypotheses import operations
from nb360.search.space import op_table
from nb360.spaces.nb201 import NUM_ARCHS, OPS, Arch

from .conftest import check_outputs, write_table

EDGE0 = np.array([0.5, 0.1, 0.2, 0.0, 0.3])  # score by the operation on edge 0, nothing else


@pytest.fixture(scope="module")
def edge0(tmp_path_factory):
    """The score depends on edge 0's operation only; 30% of the archs are missing."""
    q = EDGE0[op_table()[:, 0]].copy()
    q[np.random.default_rng(0).random(NUM_ARCHS) < 0.3] = np.nan
    return write_table(tmp_path_factory.mktemp("edge0") / "edge0.h5", q, task="edge0")


def test_onehot_is_arch_onehot():
    indices = [0, 17, 4321, 15624]
    np.testing.assert_array_equal(operations.onehot(op_table()[indices]),
                                  np.stack([Arch.from_index(i).onehot().ravel() for i in indices]))


def test_a_score_of_edge_0_alone_gives_edge_0_the_whole_effect(tmp_path, edge0):
    report = operations.run(tmp_path, tables=[edge0])
    check_outputs(report, ["edges", "effects", "ops", "op_counts"], pngs=2)
    edges = pd.read_csv(report.csv("edges")).set_index("edge")
    assert edges.loc["0->1", "share"] == pytest.approx(1.0) and edges["model_r2"].iloc[0] == pytest.approx(1.0)
    assert edges.drop("0->1")["share"].abs().max() < 1e-12
    assert (edges.loc["0->1", "best_op"], edges.loc["0->1", "worst_op"]) == ("nor_conv_3x3", "none")
    effects = report.frames["effects"]
    # scores are stored as float32: equal to 1e-6
    np.testing.assert_allclose(effects[effects["edge"] == "0->1"]["effect"], EDGE0 - EDGE0.mean(), atol=1e-6)
    np.testing.assert_allclose(effects[effects["edge"] != "0->1"]["effect"], 0.0, atol=1e-6)
    assert edges["n"].iloc[0] == np.isfinite(edge0.final("test_metric")).sum() < NUM_ARCHS
    assert "edge 0->1 matters most (share 1" in report.answer


def test_op_counts_match_a_direct_computation(tmp_path, additive):
    report = operations.run(tmp_path, tables=[additive])
    scores = additive.final("test_metric")
    convs = (op_table() == OPS.index("nor_conv_3x3")).sum(axis=1)
    counts = report.frames["op_counts"].set_index(["op", "count"])
    for c in (0, 2, 6):
        row = counts.loc[("nor_conv_3x3", c)]
        assert row["n"] == (convs == c).sum() and row["median"] == pytest.approx(np.median(scores[convs == c]))
    ops = report.frames["ops"].set_index("op")
    assert ops.loc["nor_conv_3x3", "count_spearman"] == pytest.approx(stats.spearmanr(convs, scores).statistic)
    # the additive landscape is explained whole by the additive model; shares then sum to R^2
    edges = report.frames["edges"]
    assert edges["model_r2"].iloc[0] == pytest.approx(1.0) and edges["share"].sum() == pytest.approx(1.0)


def test_runs_on_imported_nats_tables(tmp_path, nats_cifar, nats_darcy):
    report = operations.run(tmp_path, tables=[nats_cifar, nats_darcy])
    check_outputs(report, ["edges", "effects", "ops", "op_counts"], pngs=2)
    assert (report.frames["edges"]["n"] == 625).all()
