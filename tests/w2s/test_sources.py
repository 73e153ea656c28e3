"""Pattern sources on real digits and Darcy Flow: the decomposition, the mixtures, short runs."""

import math

import numpy as np
import pytest
import torch

from nb360.w2s.detect import EASY, HARD, OVERLAP
from nb360.w2s.protocol import Net
from nb360.w2s.sources import coarse, fine, mixture, run_sources

pytestmark = pytest.mark.filterwarnings("ignore:the ceiling is worse:RuntimeWarning",
                                        "ignore:PGR is undefined:RuntimeWarning")
TEACHER, STUDENT = Net.of(1, C=2, N=1), Net.of(1462, C=4, N=1)


def test_coarse_and_fine_are_orthogonal_parts_that_add_up():
    x = torch.randn(5, 3, 6, 6, dtype=torch.float64)
    c, f = coarse(x, 3, channels=1), fine(x, 3, channels=1)
    assert torch.allclose(c[:, :1] + f[:, :1], x[:, :1])
    assert torch.equal(c[:, 1:], x[:, 1:]) and torch.equal(f[:, 1:], x[:, 1:])  # other channels whole
    assert abs(float((c[:, :1] * f[:, :1]).sum())) < 1e-9  # an orthogonal projection and its residual
    assert torch.allclose(coarse(c, 3, 1), c)  # a projection: applying it again changes nothing
    assert torch.allclose(coarse(f, 3, 1)[:, :1], torch.zeros_like(f[:, :1]))  # the teacher sees nothing of it
    block = c[0, 0, :3, :3]
    assert torch.allclose(block, x[0, 0, :3, :3].mean().expand(3, 3))


@pytest.mark.parametrize("shape, factor, channels, expected", [
    ((4, 1, 8, 8), 3, None, "divide the inputs' 8x8"),
    ((4, 1, 8, 8), 1, None, "at least 2"),
    ((4, 1, 8, 8), 2, 2, "pattern channels must be in 1..1"),
    ((4, 8), 2, None, "image-like inputs"),
])
def test_bad_patterns_are_refused(shape, factor, channels, expected):
    with pytest.raises(ValueError, match=expected):
        coarse(torch.zeros(shape), factor, channels)


def test_a_mixture_has_the_density_asked_and_each_kind_its_pattern():
    x = torch.randn(40, 1, 4, 4)
    out, kind = mixture(x, 0.5, np.random.default_rng(0), 2)
    assert (kind == OVERLAP).sum() == 20 and (kind == EASY).sum() == 10 and (kind == HARD).sum() == 10
    assert torch.equal(out[kind == OVERLAP], x[kind == OVERLAP])
    assert torch.allclose(out[kind == EASY], coarse(x[kind == EASY], 2))
    assert torch.allclose(out[kind == HARD], fine(x[kind == HARD], 2))
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        mixture(x, 1.5, np.random.default_rng(0), 2)


def test_digits_sources_report_pgr_detection_and_selection(digits, tmp_path):
    options = dict(densities=(0.0, 1.0), epochs=1, teacher_size=60, pool_size=80, batch_size=64,
                   checkpoint_dir=tmp_path, device="cpu")
    found = run_sources(digits, TEACHER, STUDENT, **options)
    rows = found["sources"]
    assert [r["true_overlap"] for r in rows] == [0.0, 1.0]
    assert rows[0]["weak"] == rows[1]["weak"]  # one teacher, one test set for every source
    for r in rows:
        assert 0 <= r["detected_overlap_student"] <= 1 and 0 <= r["detected_overlap_inputs"] <= 1
        assert all(0 <= r[f"{role}_{g}"] <= 1 for role in ("weak", "w2s", "ceiling") for g in ("easy", "hard", "overlap"))
    assert math.isnan(rows[0]["teacher_confidence_overlap"]) and math.isnan(rows[1]["teacher_confidence_hard"])
    # the teacher sees the coarse part only: a fine-only input is blank to it, so one class for all of them
    assert rows[0]["weak_hard"] >= 0.5
    policies = {r["policy"]: r for r in found["selection"]}
    assert set(policies) == {"ucb", "random", "fixed"}
    assert all(math.isclose(r["share_d0"] + r["share_d1"], 1) for r in policies.values())
    names = {p.name for p in tmp_path.glob("*.pt")}
    assert {"sources-teacher-1-C2-N1-f2-A60-B80-seed0.pt", "sources-student-1462-C4-N1-d1-f2-A60-B80-seed0.pt"} <= names
    assert run_sources(digits, TEACHER, STUDENT, **options) == found  # restored from checkpoints, same numbers


def test_a_source_is_the_same_whatever_the_other_sources(digits, tmp_path):
    options = dict(epochs=1, teacher_size=60, pool_size=40, batch_size=64, checkpoint_dir=tmp_path, device="cpu")
    alone = run_sources(digits, TEACHER, STUDENT, densities=(0.5,), **options)["sources"][0]
    among = run_sources(digits, TEACHER, STUDENT, densities=(0.9, 0.5), **options)["sources"][1]
    assert alone == among
    with pytest.raises(ValueError, match="must be distinct"):
        run_sources(digits, TEACHER, STUDENT, densities=(0.5, 0.5), **options)


def test_darcy_sources_have_no_detection(darcy, tmp_path):
    found = run_sources(darcy, TEACHER, STUDENT, densities=(0.5,), factor=3, channels=1, epochs=1, teacher_size=10,
                        pool_size=20, batch_size=8, device="cpu", checkpoint_dir=tmp_path)
    (row,) = found["sources"]
    assert found["selection"] == [] and "detected_overlap_student" not in row
    assert math.isfinite(row["pgr"]) and row["weak"] > 0
    assert (tmp_path / "sources-teacher-1-C2-N1-f3c1-A10-B20-seed0.pt").exists()  # the pattern channels in the name
