import pytest
import torch
from torch.nn import functional as F

from nb360.w2s import losses


def test_aux_weight_ramps_linearly_over_the_warm_up_then_holds():
    assert losses.aux_weight(0.0) == 0.0
    assert losses.aux_weight(0.05) == pytest.approx(0.25)  # half of the 10% warm-up: half of 0.5
    assert losses.aux_weight(0.1) == pytest.approx(0.5)
    assert losses.aux_weight(0.7) == pytest.approx(0.5)
    assert losses.aux_weight(0.0, aux_coef=0.75, warmup_frac=0.0) == 0.75


def test_harden_two_classes_matches_the_weak_labels_share_of_class_one():
    torch.manual_seed(0)
    probs = torch.rand(100, 1)
    probs = torch.cat([probs, 1 - probs], dim=1)
    weak = torch.zeros(100, 2)
    weak[:30, 1], weak[30:, 0] = 1.0, 1.0  # 30% of the weak labels say class 1
    hard = losses.harden(probs, weak)
    assert ((hard == 0) | (hard == 1)).all() and (hard.sum(dim=1) == 1).all()
    assert hard[:, 1].sum() == pytest.approx(30, abs=1)
    # class 1 goes to the points where the student's p0 is lowest
    assert probs[hard[:, 1] == 1, 0].max() <= probs[hard[:, 0] == 1, 0].min()


def test_harden_more_classes_is_the_argmax():
    probs = torch.tensor([[0.2, 0.5, 0.3], [0.6, 0.3, 0.1]])
    assert torch.equal(losses.harden(probs, probs), torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]))


def test_progress_counts_training_passes_only_and_is_saved_with_the_model():
    net = losses.Progress(torch.nn.Linear(3, 2))
    x = torch.zeros(4, 3)
    net.train()
    net(x), net(x)
    net.eval()
    net(x)
    assert int(net.steps) == 2 and "steps" in net.state_dict()


def test_confidence_loss_is_soft_cross_entropy_at_the_start_and_mixes_in_hard_predictions_later():
    torch.manual_seed(1)
    model = losses.Progress(torch.nn.Linear(4, 3))
    loss = losses.ConfidenceLoss(model, total_steps=10)
    x, weak = torch.randn(8, 4), torch.softmax(torch.randn(8, 3), dim=1)
    model.train()
    logits = model(x)  # step 1 of 10: step_frac 0, a = 0
    assert loss(logits, weak).item() == pytest.approx(F.cross_entropy(logits, weak).item())
    for _ in range(5):
        logits = model(x)  # step 6: step_frac 0.5, past the warm-up, a = 0.5
    strong = F.one_hot(logits.argmax(dim=1), 3).float()
    assert loss(logits, weak).item() == pytest.approx(F.cross_entropy(logits, 0.5 * weak + 0.5 * strong).item())


def test_labels_losses_and_disagreement_by_kind():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 1.0]])
    probs = losses.teacher_labels("softmax", logits)
    assert torch.allclose(probs.sum(dim=1), torch.ones(3))
    teacher = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7]])
    assert losses.disagreement("softmax", None)(logits, teacher) == pytest.approx(2 / 3)
    assert torch.equal(losses.teacher_labels("regression", logits), logits)
    assert torch.allclose(losses.teacher_labels("sigmoid", logits), logits.sigmoid())
    mse = torch.nn.functional.mse_loss
    assert losses.distillation_loss("regression", mse) is mse
    assert losses.disagreement("regression", mse)(logits, logits) == 0.0


def test_a_task_without_a_known_loss_is_refused():
    class Card:
        name, card = "odd", {"loss": "hinge"}

    with pytest.raises(ValueError, match=r"tasks/odd.toml\) says loss = 'hinge'"):
        losses.label_kind(Card)


def test_every_task_card_has_a_kind_of_teacher_labels():
    from nb360 import cards

    for name in cards.names("tasks"):
        assert cards.load("tasks", name)["loss"] in losses.LABEL_KINDS, name
