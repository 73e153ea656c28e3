"""Student selection criteria on real digits and Darcy Flow, tiny networks, one epoch."""

import math

import numpy as np
import pytest

from nb360.w2s.criteria import CRITERIA, compare_criteria, picks
from nb360.w2s.protocol import Net

pytestmark = pytest.mark.filterwarnings("ignore:the ceiling is worse:RuntimeWarning",
                                        "ignore:PGR is undefined:RuntimeWarning")
TEACHER = Net.of(1, C=2, N=1)
CELLS = [Net.of(i, C=4, N=1) for i in (1462, 100)]


def test_every_criterion_scores_every_candidate_on_classification(digits, tmp_path):
    rows = compare_criteria(digits, TEACHER, CELLS, epochs=1, teacher_size=60, pool_size=120, true_labels=10,
                            batch_size=64, checkpoint_dir=tmp_path, device="cpu")
    assert [r["index"] for r in rows] == [1462, 100]
    for r in rows:
        assert set(CRITERIA) <= set(r) and all(math.isfinite(r[c]) for c in CRITERIA)
        assert 0 <= r["disagreement"] <= 1 and 0 <= r["confident_disagreement"] <= 1
        assert 0 <= r["overlap_density"] <= 1 and 0 <= r["true_labels"] <= 1
        assert r["weak"] == rows[0]["weak"]  # one teacher for all candidates
    chosen = picks(rows)
    assert chosen["disagreement"]["disagreement"] == min(r["disagreement"] for r in rows)
    assert chosen["synflow"]["synflow"] == max(r["synflow"] for r in rows)
    names = {p.name for p in tmp_path.glob("*.pt")}
    assert "criteria-student-1462-C4-N1-A60-B120-fit-seed0.pt" in names and "teacher-1-C2-N1-A60-seed0.pt" in names
    again = compare_criteria(digits, TEACHER, CELLS, epochs=1, teacher_size=60, pool_size=120, true_labels=10,
                             batch_size=64, checkpoint_dir=tmp_path, device="cpu")
    assert again == rows  # restored from the checkpoints, the same numbers


def test_regression_has_no_confidence_or_overlap_and_bad_sizes_are_refused(darcy):
    rows = compare_criteria(darcy, TEACHER, CELLS[:1], epochs=1, true_labels=3, batch_size=8, device="cpu")
    assert np.isnan(rows[0]["confident_disagreement"]) and np.isnan(rows[0]["overlap_density"])
    assert math.isfinite(rows[0]["disagreement"]) and math.isfinite(rows[0]["synflow"])
    assert "confident_disagreement" not in picks(rows)
    with pytest.raises(ValueError, match="true_labels must be in 1.."):
        compare_criteria(darcy, TEACHER, CELLS[:1], epochs=1, true_labels=1000, batch_size=8, device="cpu")
