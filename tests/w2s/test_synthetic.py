import numpy as np
import pytest

from nb360.w2s.synthetic import EASY, HARD, OVERLAP, SyntheticProblem, density_sweep, run_synthetic


def test_groups_have_the_chosen_density_and_their_blocks():
    problem = SyntheticProblem.make(d_easy=5, d_hard=7, seed=0)
    data = problem.sample(200, 0.3, np.random.default_rng(0))
    assert data.x.shape == (200, 12)
    assert (data.group == OVERLAP).sum() == 60 and (data.group == EASY).sum() == 70 and (data.group == HARD).sum() == 70
    assert data.overlap_density == pytest.approx(0.3)
    assert (data.x[data.group == EASY, 5:] == 0).all() and (data.x[data.group == HARD, :5] == 0).all()
    assert (data.x[data.group == OVERLAP] != 0).all()
    assert (data.weak_view[:, 5:] == 0).all() and np.array_equal(data.weak_view[:, :5], data.x[:, :5])


def test_labels_shift_the_mean_by_theta_and_seeds_repeat():
    problem = SyntheticProblem.make(d_easy=3, d_hard=3, seed=4, variance=0.01)
    data = problem.sample(400, 1.0, np.random.default_rng(1))
    sign = np.where(data.y == 1, 1.0, -1.0)[:, None]
    assert np.allclose((data.x * sign).mean(axis=0), problem.theta, atol=0.02)
    again = SyntheticProblem.make(d_easy=3, d_hard=3, seed=4, variance=0.01).sample(400, 1.0, np.random.default_rng(1))
    assert np.array_equal(data.x, again.x) and np.array_equal(data.group, again.group)


@pytest.mark.parametrize("args", [dict(n=10, overlap_density=1.5), dict(n=0, overlap_density=0.1)])
def test_bad_sample_arguments(args):
    with pytest.raises(ValueError):
        SyntheticProblem.make().sample(rng=np.random.default_rng(0), **args)


def test_weak_to_strong_gain_grows_with_overlap_density():
    """The data-centric paper's trend; measured (3 seeds): PGR ~0.0 at density 0, ~0.5 at 0.1, ~0.97 at 0.3."""
    sweep = density_sweep([0.0, 0.1, 0.3], seeds=3, n=600)
    pgr = sweep.groupby("density")["pgr"].mean()
    assert pgr[0.0] < 0.15 and pgr[0.3] > 0.7 and pgr[0.0] < pgr[0.1] < pgr[0.3]
    acc = sweep.groupby("density")[["weak_acc", "w2s_acc", "ceiling_acc"]].mean()
    assert (acc["ceiling_acc"] > acc["weak_acc"] + 0.1).all()  # a gap to recover at every density


def test_one_run_reports_every_number():
    row = run_synthetic(0.2, seed=0, n=400, n_test=400)
    for key in ("weak_acc", "w2s_acc", "ceiling_acc", "pgr", "labels_acc", "overlap_precision", "overlap_recall",
                "overlap_f1"):
        assert np.isfinite(row[key]), key
