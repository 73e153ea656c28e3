"""What the student learns from: the weak teacher's labels, the distillation losses, the
auxiliary confidence loss, and how closely a prediction agrees with the teacher.

Three kinds of labels, chosen by the task card's `loss`:
- "softmax" (single-label classification, `cross_entropy`): the teacher's class probabilities;
  the student minimises the cross-entropy to them (soft labels, as openai/weak-to-strong's
  `xent_loss` receives `soft_label` columns).
- "sigmoid" (multi-label and per-pixel binary tasks): the teacher's per-label probabilities; binary
  cross-entropy with logits against them.
- "regression" (Darcy Flow, PSICOV): the teacher's predicted fields; the student minimises the
  task's own loss against them, so a normalised target is compared in physical units as usual.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F

LABEL_KINDS: dict[str, str] = {
    "cross_entropy": "softmax",
    "bce_with_logits": "sigmoid",
    "clip_bce": "sigmoid",
    "masked_bce": "sigmoid",
    "relative_l2": "regression",
    "psicov_mse": "regression",
}
# openai/weak-to-strong, weak_to_strong/loss.py, logconf_loss_fn: aux_coef=0.5, warmup_frac=0.1.
AUX_COEF, WARMUP_FRAC = 0.5, 0.1


def label_kind(task) -> str:
    """The kind of teacher labels for a task, from its card's `loss`."""
    loss = task.card.get("loss")
    if loss not in LABEL_KINDS:
        raise ValueError(f"task {task.name!r}: weak-to-strong needs a loss among {', '.join(LABEL_KINDS)}; "
                         f"its card (tasks/{task.name}.toml) says loss = {loss!r}")
    return LABEL_KINDS[loss]


def teacher_labels(kind: str, outputs: torch.Tensor) -> torch.Tensor:
    """The targets a student trains on, from the teacher's raw outputs."""
    if kind == "softmax":
        return outputs.softmax(dim=1)
    if kind == "sigmoid":
        return outputs.sigmoid()
    return outputs


def aux_weight(step_frac: float, aux_coef: float = AUX_COEF, warmup_frac: float = WARMUP_FRAC) -> float:
    """Weight `a` of the student's own hardened predictions at a fraction of training.

    Linear from 0 to `aux_coef` over the first `warmup_frac` of the steps, then constant: the
    schedule the paper describes (Burns et al. 2023, appendix A.4) and openai/weak-to-strong PR #33
    ("Fix confidence loss to scale up correctly") restores. The released `logconf_loss_fn` uses
    `coef = 1.0 if step_frac > warmup_frac else step_frac`, which reaches only `warmup_frac` before
    jumping to 1; we follow the paper rather than that jump.
    """
    if warmup_frac <= 0 or step_frac >= warmup_frac:
        return aux_coef
    return aux_coef * step_frac / warmup_frac


def harden(probs: torch.Tensor, weak_probs: torch.Tensor) -> torch.Tensor:
    """The student's predictions made hard (one-hot), as `logconf_loss_fn` does.

    Two classes: the reference's adaptive threshold, so that the batch's share of class 1 matches
    the weak labels' mean (`threshold = quantile(p0, mean(weak p1))`, class 0 where p0 >= threshold).
    More classes: argmax; the reference handles two classes only (it asserts so), and a quantile
    threshold per class does not give one label per point.
    """
    if probs.shape[1] == 2:
        threshold = torch.quantile(probs[:, 0], weak_probs[:, 1].mean())
        is_zero = probs[:, 0] >= threshold
        return torch.stack([is_zero, ~is_zero], dim=1).to(probs.dtype)
    return F.one_hot(probs.argmax(dim=1), probs.shape[1]).to(probs.dtype)


class Progress(nn.Module):
    """A model that counts its training forward passes.

    The count is a buffer, so it is part of the model's state and `nb360.train.fit`'s checkpoint
    carries it: a resumed run continues the auxiliary loss's schedule where it stopped.
    """

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.steps += 1
        return self.net(x)


class ConfidenceLoss(nn.Module):
    """Auxiliary confidence loss (openai/weak-to-strong, weak_to_strong/loss.py, `logconf_loss_fn`):
    cross-entropy to (1 - a) * teacher probabilities + a * the student's own hardened predictions,
    `a = aux_weight(step / total_steps)` counted by `progress` (the model being trained)."""

    def __init__(self, progress: Progress, total_steps: int, aux_coef: float = AUX_COEF,
                 warmup_frac: float = WARMUP_FRAC):
        super().__init__()
        self.progress, self.total_steps = progress, total_steps
        self.aux_coef, self.warmup_frac = aux_coef, warmup_frac

    def forward(self, logits: torch.Tensor, weak_probs: torch.Tensor) -> torch.Tensor:
        # The forward pass of this batch has already counted itself; the reference's step starts at 0.
        step_frac = (int(self.progress.steps) - 1) / self.total_steps
        a = aux_weight(step_frac, self.aux_coef, self.warmup_frac)
        strong = harden(logits.detach().float().softmax(dim=1), weak_probs)
        return F.cross_entropy(logits, (1 - a) * weak_probs + a * strong)


def distillation_loss(kind: str, task_loss: Callable) -> Callable:
    """The student's loss against teacher labels of `kind` (without the auxiliary term)."""
    if kind == "softmax":
        return F.cross_entropy  # accepts class probabilities as targets
    if kind == "sigmoid":
        return F.binary_cross_entropy_with_logits
    return task_loss


def disagreement(kind: str, task_loss: Callable) -> Callable[[torch.Tensor, torch.Tensor], float]:
    """A metric of how far predictions are from the teacher's labels, lower is better, over a whole
    split: 1 - agreement of the argmax for single-label classification, the distillation loss
    otherwise. What the student's training records show, and what a search for a student is told."""
    if kind == "softmax":
        return lambda logits, probs: (logits.argmax(dim=1) != probs.argmax(dim=1)).float().mean().item()
    loss = distillation_loss(kind, task_loss)
    return lambda pred, target: float(loss(pred, target))
