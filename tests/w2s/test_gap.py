import math
import warnings

import pytest

from nb360.w2s.gap import pgr


def test_errors_lower_is_better():
    # weak error 0.30, ceiling 0.10: a student at 0.20 recovers half the gap
    assert pgr(0.30, 0.20, 0.10) == pytest.approx(0.5)
    assert pgr(0.30, 0.10, 0.10) == pytest.approx(1.0)
    assert pgr(0.30, 0.30, 0.10) == pytest.approx(0.0)


def test_student_worse_than_teacher_is_negative_and_better_than_ceiling_above_one():
    assert pgr(0.30, 0.40, 0.10) == pytest.approx(-0.5)
    assert pgr(0.30, 0.05, 0.10) == pytest.approx(1.25)


def test_errors_accuracies_and_negated_errors_give_one_pgr():
    weak, w2s, ceiling = 0.38, 0.29, 0.10  # errors
    expected = (0.38 - 0.29) / (0.38 - 0.10)
    assert pgr(weak, w2s, ceiling) == pytest.approx(expected)
    assert pgr(1 - weak, 1 - w2s, 1 - ceiling, higher_is_better=True) == pytest.approx(expected)
    assert pgr(-weak, -w2s, -ceiling, higher_is_better=True) == pytest.approx(expected)


def test_the_direction_decides_which_ceiling_is_worse():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pgr(0.30, 0.20, 0.10)  # errors: the ceiling's 0.10 is better than the teacher's 0.30
    with pytest.warns(RuntimeWarning, match="ceiling is worse"):
        pgr(0.30, 0.20, 0.10, higher_is_better=True)  # accuracies: 0.10 is worse than 0.30
    with pytest.warns(RuntimeWarning, match="ceiling is worse"):
        # the ratio is still given: 0.5, though this student is worse than its teacher
        assert pgr(0.10, 0.15, 0.20) == pytest.approx(0.5)


def test_equal_ceiling_and_weak_is_nan_with_a_warning():
    with pytest.warns(RuntimeWarning, match="ceiling equals the weak score"):
        assert math.isnan(pgr(0.2, 0.1, 0.2))


def test_non_finite_scores_are_nan_with_a_warning():
    with pytest.warns(RuntimeWarning, match="non-finite"):
        assert math.isnan(pgr(float("nan"), 0.1, 0.05))
