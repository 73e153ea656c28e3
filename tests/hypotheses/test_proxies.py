import numpy as np
import pandas as pd
import pytest
from scipy import stats

from nb360.hypotheses import proxies
from nb360.hypotheses.common import by_class
from nb360.spaces.nb201 import NUM_ARCHS

from .conftest import additive_scores, check_outputs, write_table


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """synflow = -score (a perfect proxy, higher is better), -inf for the worst 5% (as synflow is for
    cells without an input-output path); snip: noise; custom: an unknown column, = -score; params
    grow with the score (bigger is worse)."""
    q = additive_scores(seed=3)
    rng = np.random.default_rng(0)
    synflow = np.where(q > np.quantile(q, 0.95), -np.inf, -q)
    return write_table(tmp_path_factory.mktemp("proxies") / "planted.h5", q, val=q,
                       proxies={"synflow": synflow, "snip": rng.normal(size=NUM_ARCHS), "custom": -q},
                       params=1000 + 100 * q, flops=np.full(NUM_ARCHS, np.nan))


def test_planted_proxies_score_as_computed_directly(tmp_path, planted):
    report = proxies.run(tmp_path, tables=[planted])
    check_outputs(report, ["proxies"])
    rows = pd.read_csv(report.csv("proxies")).set_index("proxy")
    assert set(rows.index) == {"synflow", "snip", "custom", "params"}  # flops: no values, left out
    # -inf values are kept and rank as the worst (tied), which they are: not dropped as non-finite
    rep = planted.class_rows()
    synflow, test = by_class(planted.df["proxy_synflow"], rep), by_class(planted.final("test_metric"), rep)
    assert rows.loc["synflow", "n"] == 6466 and rows.loc["synflow", "direction"] == "max"
    assert rows.loc["synflow", "spearman"] == pytest.approx(stats.spearmanr(-synflow, test).statistic)
    assert rows.loc["synflow", "spearman"] > 0.9999
    assert rows.loc["synflow", "top_overlap"] == 1.0 and rows.loc["synflow", "regret_of_pick"] == 0.0
    assert rows.loc["custom", "direction"] == "max (assumed)" and rows.loc["custom", "spearman"] == pytest.approx(1.0)
    # params as "bigger is better": exactly the reverse of the truth here
    assert rows.loc["params", "spearman"] == pytest.approx(-1.0) and rows.loc["params", "baseline"]
    snip = by_class(planted.df["proxy_snip"], rep)
    assert rows.loc["snip", "spearman"] == pytest.approx(stats.spearmanr(-snip, test).statistic)
    assert abs(rows.loc["snip", "spearman"]) < 0.1
    assert "column is custom (Spearman 1," in report.answer  # tied with nothing: synflow has ties at -inf
    assert "2 reach Spearman >= 0.5 (custom, synflow)" in report.answer


def test_nats_table_has_its_size_baselines(tmp_path, nats_darcy, nats_cifar):
    report = proxies.run(tmp_path, tables=[nats_darcy, nats_cifar])
    check_outputs(report, ["proxies"])
    rows = report.frames["proxies"]
    assert set(rows["proxy"]) == {"params", "flops"} and (rows["n"] > 3).all()
    assert "only the size baselines" in report.answer


def test_a_table_without_proxies_or_costs_is_an_error(tmp_path, additive):
    with pytest.raises(ValueError, match="none of the tables has a proxy or cost column"):
        proxies.run(tmp_path, tables=[additive])
