import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from nb360.hypotheses import fidelity
from nb360.hypotheses.common import by_class
from nb360.spaces.nb201 import NUM_ARCHS, iso_class_ids

from .conftest import additive_scores, check_outputs, write_table

NOISE = (1.0, 0.3, 0.1, 0.0)  # validation noise after each epoch, in units of the score's sd


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    """mini: 4 epochs, validation = final test + noise that shrinks to 0; hifi: 2 epochs, the same
    final test scores on a sample of 40% of the iso classes (all their members, as a build trains)."""
    folder = tmp_path_factory.mktemp("fidelity")
    q = additive_scores(seed=7)
    rng = np.random.default_rng(0)
    val = q[:, None] + np.array(NOISE)[None, :] * q.std() * rng.normal(size=(NUM_ARCHS, len(NOISE)))
    mini = write_table(folder / "mini.h5", np.repeat(q[:, None], len(NOISE), axis=1), val=val, task="mini")
    iso = iso_class_ids()
    high = np.where(np.isin(iso, rng.choice(np.unique(iso), 2600, replace=False)), q, np.nan)
    hifi = write_table(folder / "hifi.h5", np.stack([high + 1.0, high], axis=1), val=np.stack([high, high], axis=1),
                       task="hifi")
    return mini, hifi, q, val


def direct_retention(signal, target, top=0.1, eta=3):
    both = np.isfinite(signal) & np.isfinite(target)
    s, t = signal[both], target[both]
    best = set(np.argsort(t)[: math.ceil(top * len(t))])
    kept = set(np.argsort(s)[: len(s) // eta])
    return len(best & kept) / len(best)


def test_epochs_against_final_and_against_a_higher_fidelity_table(tmp_path, tables):
    mini, hifi, q, val = tables
    report = fidelity.run(tmp_path, tables=[mini, hifi])
    check_outputs(report, ["fidelity", "safe_epochs"])
    rows = pd.read_csv(report.csv("fidelity"))
    within = rows[(rows["table"] == "mini") & (rows["comparison"] == "within")].set_index("epoch")
    rep = mini.class_rows()
    target = by_class(q, rep)
    retention = []
    for e in range(1, 5):
        signal = by_class(val[:, e - 1], rep)
        assert within.loc[e, "signal"] == "val_metric" and within.loc[e, "n"] == 6466
        assert within.loc[e, "spearman"] == pytest.approx(stats.spearmanr(signal, target).statistic, abs=1e-6)
        retention.append(direct_retention(signal, target))
        assert within.loc[e, "retention"] == pytest.approx(retention[-1])
    assert within.loc[4, "spearman"] == pytest.approx(1.0) and within.loc[4, "retention"] == 1.0
    assert within["spearman"].is_monotonic_increasing

    # across: mini's epochs against hifi's final test, over the classes hifi has
    across = rows[(rows["target"] == "hifi") & (rows["table"] == "mini")]
    high = by_class(hifi.final("test_metric"), hifi.class_rows())
    assert (across["n"] == (np.isfinite(high) & np.isfinite(target)).sum()).all()
    final = across[across["comparison"] == "final"].iloc[0]
    assert final["spearman"] == pytest.approx(1.0) and final["retention"] == 1.0 and final["signal"] == "test_metric"

    safe = report.frames["safe_epochs"].set_index(["table", "target", "comparison"])
    expected = next(e for e in range(1, 5) if all(r >= fidelity.SAFE for r in retention[e - 1:]))
    assert safe.loc[("mini", "mini", "within"), "first_safe_epoch"] == expected
    assert f"safe (retention >= 0.9) from epoch {expected} of 4" in report.answer


def test_retention_counts_survivors_of_the_cut():
    target = np.arange(30, dtype=float)  # best 10%: 0, 1, 2
    signal = np.array([0, 25, 2] + list(range(3, 25)) + [1, 26, 27, 28, 29], dtype=float)
    assert fidelity.retention(signal, target, 0.1, 3) == pytest.approx(2 / 3)  # arch 1 ranks 26th of 30: cut
    assert np.isnan(fidelity.retention(signal[:2], target[:2], 0.1, 3))


def test_nb360_style_table_uses_test_scores_and_nats_tables_run(tmp_path, nats_darcy, nats_cifar):
    report = fidelity.run(tmp_path, tables=[nats_darcy, nats_cifar])
    check_outputs(report, ["fidelity", "safe_epochs"])
    rows = report.frames["fidelity"]
    assert set(rows[rows["table"] == "nats-darcy"]["signal"]) == {"test_metric"}  # no validation scores
    assert set(rows[rows["table"] == "nats-cifar"]["signal"]) == {"val_metric"}
    assert len(rows[rows["table"] == "nats-darcy"]) == 12 + 12  # within, and across against nats-cifar
    assert "no validation scores" in report.summary.read_text()
