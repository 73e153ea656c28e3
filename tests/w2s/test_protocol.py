"""run_w2s on real data: scikit-learn's digits and generated Darcy Flow, tiny networks, one epoch."""

import json
import math

import pytest
import torch

from nb360.w2s.protocol import PROTOCOL_FILE, Net, check_protocol, halves, output_layer, predict, run_w2s

# one-epoch runs of tiny networks: the ceiling may well be no better than the teacher
pytestmark = pytest.mark.filterwarnings("ignore:the ceiling is worse:RuntimeWarning",
                                        "ignore:PGR is undefined:RuntimeWarning")

TEACHER = Net.of(1, C=2, N=1)


def comparable(records: list[dict], times: bool = True) -> list[dict]:
    """Records with NaN (no val/test split during the fit) as None, timings kept or dropped."""
    return [{k: None if isinstance(v, float) and math.isnan(v) else v for k, v in r.items()
             if times or "seconds" not in k} for r in records]
TINY = dict(C=4, N=1, epochs=1, device="cpu", progress=False)


@pytest.fixture(scope="module")
def digits_run(digits, tmp_path_factory):
    folder = tmp_path_factory.mktemp("w2s-digits")
    return run_w2s(digits, TEACHER, 1, batch_size=128, checkpoint_dir=folder, **TINY), folder


def test_digits_report_has_every_score(digits_run):
    report, folder = digits_run
    for value in (report.weak, report.w2s, report.ceiling, *report.val.values()):
        assert 0 <= value <= 1
    assert math.isfinite(report.pgr) or report.weak == report.ceiling
    assert report.protocol["half_a"] == 448 and report.protocol["half_b"] == 449
    assert report.teacher == {"model": "nb201", "arch": str(TEACHER.arch), "index": 1, "C": 2, "N": 1}
    assert report.student["C"] == 4 and report.metric == "zero_one_error"
    assert {role: len(r) for role, r in report.records.items()} == {"weak": 1, "ceiling": 1, "w2s": 1}
    fractions = report.detection["fractions"]
    assert sum(fractions.values()) == pytest.approx(1.0)
    assert set(report.detection["weak_accuracy"]) == {"easy", "hard", "overlap"}
    names = sorted(p.name for p in folder.iterdir())
    assert names == sorted(["ceiling-1-C4-N1-seed0.pt", "student-1-C4-N1-seed0.pt", "teacher-1-C2-N1-seed0.pt",
                            PROTOCOL_FILE])
    json.dumps(report.to_dict())  # the report is plain data


def test_same_seed_same_report_and_an_interrupted_run_resumes(digits, digits_run):
    report, folder = digits_run
    fresh = run_w2s(digits, TEACHER, 1, batch_size=128, **TINY)  # no checkpoints: trains all three again
    assert (fresh.weak, fresh.w2s, fresh.ceiling, fresh.val) == (report.weak, report.w2s, report.ceiling, report.val)
    for role in report.records:
        assert comparable(fresh.records[role], times=False) == comparable(report.records[role], times=False)
    # the student's training was lost: a rerun restores teacher and ceiling (their records, timings
    # included, come back from the checkpoints) and trains the student again, to the same result
    (folder / "student-1-C4-N1-seed0.pt").unlink()
    resumed = run_w2s(digits, TEACHER, 1, batch_size=128, checkpoint_dir=folder, **TINY)
    assert comparable(resumed.records["weak"]) == comparable(report.records["weak"])
    assert comparable(resumed.records["ceiling"]) == comparable(report.records["ceiling"])
    assert (resumed.weak, resumed.w2s, resumed.ceiling) == (report.weak, report.w2s, report.ceiling)


def test_another_protocol_in_the_same_checkpoint_folder_is_refused(digits_run):
    _, folder = digits_run
    stored = json.loads((folder / PROTOCOL_FILE).read_text())
    with pytest.raises(ValueError, match=r"epochs differ"):
        check_protocol(folder, {**stored, "epochs": 7})


def test_auxiliary_loss_checkpoints_its_schedule(digits, tmp_path):
    report = run_w2s(digits, TEACHER, 1, batch_size=128, aux_loss=True, checkpoint_dir=tmp_path, detect=False, **TINY)
    assert report.protocol["aux_loss"] and report.detection is None and math.isfinite(report.w2s)
    state = torch.load(tmp_path / "student-1-C4-N1-seed0-aux.pt", weights_only=False)
    assert int(state["model"]["steps"]) == 4  # 449 points in batches of 128, one epoch


def test_darcy_flow_student_learns_the_teachers_fields(darcy):
    report = run_w2s(darcy, TEACHER, 1, batch_size=8, **TINY)
    for value in (report.weak, report.w2s, report.ceiling, report.val["w2s"]):
        assert math.isfinite(value) and value > 0
    assert report.metric == "relative_l2" and report.detection is None
    assert report.protocol["labels"] == "regression" and report.protocol["half_b"] == 18
    with pytest.raises(ValueError, match="auxiliary confidence loss needs class probabilities"):
        run_w2s(darcy, TEACHER, 1, aux_loss=True, **TINY)


def test_halves_are_a_seeded_partition():
    a, b = halves(11, seed=3)
    assert sorted(a.tolist() + b.tolist()) == list(range(11)) and len(a) == 5
    assert (halves(11, 3)[0] == a).all() and not (halves(11, 4)[0] == a).all()
    with pytest.raises(ValueError, match="at least 4"):
        halves(3, 0)


def test_the_baseline_network_and_its_features(digits):
    net = Net.of("wrn")
    assert net.arch is None and net.key == "wrn" and net.to_dict()["model"] == "wrn"
    model = net.build(digits.spec)
    x = torch.stack([digits.train[i][0] for i in range(3)])
    assert predict(model, x, 2, torch.device("cpu")).shape == (3, 10)
    features = predict(model, x, 2, torch.device("cpu"), features=True)
    assert features.shape == (3, output_layer(model).in_features)
