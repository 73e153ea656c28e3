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


def test_sized_sets_are_disjoint_and_grow_the_pool_from_the_same_permutation():
    a, b = halves(100, seed=5, teacher_size=10, pool_size=30)
    assert len(a) == 10 and len(b) == 30 and not set(a) & set(b)
    a2, b2 = halves(100, seed=5, teacher_size=10, pool_size=80)
    assert (a2 == a).all() and set(b) <= set(b2)  # a larger pool adds to the smaller one
    for sizes in ((1, 10), (10, 1), (60, 50)):
        with pytest.raises(ValueError, match="--teacher-size, --pool-size"):
            halves(100, 0, *sizes)


def test_a_small_teacher_set_a_larger_pool_and_a_pretrained_student(digits, tmp_path):
    report = run_w2s(digits, TEACHER, 1, batch_size=128, teacher_size=50, pool_size=200, pretrain_epochs=1,
                     checkpoint_dir=tmp_path, detect=False, **TINY)
    assert (report.protocol["half_a"], report.protocol["half_b"]) == (50, 200)
    assert report.protocol["pretrain"] == "rotation" and report.protocol["pretrain_epochs"] == 1
    names = sorted(p.name for p in tmp_path.glob("*.pt"))
    assert names == ["ceiling-1-C4-N1-A50-B200-pre1-seed0.pt", "pretrain-1-C4-N1-rotation1-A50-B200-seed0.pt",
                     "student-1-C4-N1-A50-B200-pre1-seed0.pt", "teacher-1-C2-N1-A50-seed0.pt"]
    # ceiling and student start from the pretrained weights, so they train otherwise than without
    plain = run_w2s(digits, TEACHER, 1, batch_size=128, teacher_size=50, pool_size=200, detect=False, **TINY)
    assert plain.weak == report.weak
    assert plain.records["ceiling"][0]["train_loss"] != report.records["ceiling"][0]["train_loss"]


def test_pretraining_objectives_fit_the_network():
    from nb360.spaces.network import Spec, build
    from nb360.w2s import pretrain

    x = torch.randn(6, 3, 15, 15)
    data, spec, loss = pretrain.pretext(Spec("dense2d", 3, (15, 15), 1), x)
    masked, target = data[0]
    assert spec.out_size == 1 and torch.equal(target, x[0, :1])
    zeroed = (masked == 0).float().mean().item()
    assert 0.2 < zeroed < 0.8 and torch.equal(masked[masked != 0], x[0][masked != 0])
    data, spec, loss = pretrain.pretext(Spec("classify2d", 1, (8, 8), 10), torch.randn(5, 1, 8, 8))
    assert len(data) == 20 and spec.out_size == 4 and [data[i][1] for i in range(4)] == [0, 1, 2, 3]
    assert torch.equal(data[1][0], torch.rot90(data[0][0], 1, dims=(-2, -1)))
    rotation_net, student = build(1, spec, C=4, N=1), build(1, Spec("classify2d", 1, (8, 8), 10), C=4, N=1)
    kept = pretrain.transferable(rotation_net.state_dict(), student)
    assert set(student.state_dict()) - set(kept) == {"classifier.weight", "classifier.bias"}
    with pytest.raises(ValueError, match="no pretraining objective for classify1d"):
        pretrain.objective(Spec("classify1d", 1, (100,), 4))


def test_the_baseline_network_and_its_features(digits):
    net = Net.of("wrn")
    assert net.arch is None and net.key == "wrn" and net.to_dict()["model"] == "wrn"
    model = net.build(digits.spec)
    x = torch.stack([digits.train[i][0] for i in range(3)])
    assert predict(model, x, 2, torch.device("cpu")).shape == (3, 10)
    features = predict(model, x, 2, torch.device("cpu"), features=True)
    assert features.shape == (3, output_layer(model).in_features)
