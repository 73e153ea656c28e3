import numpy as np
import pytest

from nb360.w2s.detect import EASY, HARD, OVERLAP, confidence, detect_overlap
from nb360.w2s.synthetic import SyntheticProblem, _logistic, detection_scores


def test_confidence_is_twice_the_distance_from_one_half_for_two_classes_and_the_margin_otherwise():
    p = np.array([0.5, 0.8, 0.1, 1.0])
    expected = 2 * np.abs(p - 0.5)
    assert np.allclose(confidence(p), expected)
    assert np.allclose(confidence(np.stack([1 - p, p], axis=1)), expected)
    three = np.array([[0.6, 0.3, 0.1], [0.2, 0.2, 0.6], [1 / 3, 1 / 3, 1 / 3]])
    assert np.allclose(confidence(three), [0.3, 0.4, 0.0])


@pytest.mark.parametrize("bad", [np.array([[0.5]]), np.array([[1.5, -0.5], [0.5, 0.5]]), np.full((3, 2), np.nan)])
def test_confidence_rejects_what_is_not_probabilities(bad):
    with pytest.raises(ValueError, match="weak_probs"):
        confidence(bad)


def planted(density: float, seed: int, n: int = 500, **options):
    """Half B of the synthetic problem with the weak model's probabilities (trained on half A)."""
    problem = SyntheticProblem.make(seed=seed, **options)
    rng = np.random.default_rng(seed)
    a, b = problem.sample(n, density, rng), problem.sample(n, density, rng)
    return b, _logistic(a.weak_view, a.y).predict_proba(b.weak_view)


def test_every_point_is_in_exactly_one_group_and_scores_are_kept():
    b, probs = planted(0.2, seed=0)
    found = detect_overlap(probs, b.x)
    assert (found.easy.astype(int) + found.hard + found.overlap == 1).all()
    assert np.isnan(found.overlap_score[found.hard]).all() and np.isfinite(found.overlap_score[~found.hard]).all()
    assert (found.confidence[found.hard] < found.confidence_threshold).all()
    assert (found.overlap_score[found.overlap] >= found.overlap_threshold).all()
    assert (found.overlap_score[found.easy] < found.overlap_threshold).all()
    assert found.fallback == ()
    assert sum(found.fractions().values()) == pytest.approx(1.0)


@pytest.mark.parametrize("density", [0.05, 0.1, 0.2, 0.3])
def test_detection_recovers_the_planted_overlap_far_above_chance(density):
    """Measured at n = 500, mean of 3 seeds: overlap F1 0.85-0.95, three-way label accuracy ~0.97."""
    f1, chance_f1, accuracy, chance_accuracy = [], [], [], []
    for seed in range(3):
        b, probs = planted(density, seed)
        found = detect_overlap(probs, b.x)
        truth = b.group == OVERLAP
        f1.append(detection_scores(truth, found.overlap)["f1"])
        accuracy.append((found.labels == b.group).mean())
        # chance: the same group sizes, assigned at random
        shuffled = np.random.default_rng(seed).permutation(found.labels)
        chance_f1.append(detection_scores(truth, shuffled == OVERLAP)["f1"])
        chance_accuracy.append((shuffled == b.group).mean())
    assert np.mean(f1) > 0.75 and np.mean(f1) > np.mean(np.nan_to_num(chance_f1)) + 0.5
    assert np.mean(accuracy) > 0.9 and np.mean(accuracy) > np.mean(chance_accuracy) + 0.4


def test_hard_only_points_are_found_by_their_low_weak_confidence():
    b, probs = planted(0.2, seed=1)
    found = detect_overlap(probs, b.x)
    scores = detection_scores(b.group == HARD, found.hard)
    assert scores["recall"] > 0.95 and scores["precision"] > 0.9
    assert detection_scores(b.group == EASY, found.easy)["f1"] > 0.85


def test_no_change_point_falls_back_to_a_median_split():
    probs = np.full((10, 2), 0.5)  # one confidence for every point: no threshold separates them
    found = detect_overlap(probs, np.random.default_rng(0).normal(size=(10, 3)))
    assert "confidence" in found.fallback
    assert found.hard.sum() == 5
    few = detect_overlap(np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.5, 0.5]]), np.eye(4))
    assert set(few.fallback) == {"confidence", "overlap"}  # too few points for ruptures
    assert few.hard.sum() == 2


def test_hard_points_from_earlier_rounds_join_the_overlap_scores():
    b, probs = planted(0.3, seed=2, n=200)
    alone = detect_overlap(probs[:40], b.x[:40])
    extra = b.x[40:][b.group[40:] == HARD]
    helped = detect_overlap(probs[:40], b.x[:40], hard_reference=extra)
    assert np.array_equal(helped.hard, alone.hard)  # confidence alone decides the hard points
    # a maximum over more hard points can only grow, and here it does for some point
    assert (helped.overlap_score[~helped.hard] >= alone.overlap_score[~alone.hard] - 1e-9).all()
    assert (helped.overlap_score[~helped.hard] > alone.overlap_score[~alone.hard]).any()
    with pytest.raises(ValueError, match="hard_reference"):
        detect_overlap(probs[:40], b.x[:40], hard_reference=np.zeros((3, 7)))


def test_bad_shapes_are_clear_errors():
    with pytest.raises(ValueError, match="features must be"):
        detect_overlap(np.full((6, 2), 0.5), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="at least 4 points"):
        detect_overlap(np.full((3, 2), 0.5), np.zeros((3, 3)))
