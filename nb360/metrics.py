"""Task metrics and losses. Every metric is an error: lower is better.

A metric takes the predictions and targets of a whole split (so that ranking metrics such as mAP
or AUROC can be computed on it) and returns a float. A loss takes a batch and returns a
differentiable scalar. Where a task trains on normalised targets (Darcy Flow), the loss and the
metric hold the normaliser and measure in physical units, as NAS-Bench-360 and FNO do.
"""

from __future__ import annotations

import torch
from torch import nn


def zero_one_error(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of misclassified samples (1 - top-1 accuracy)."""
    return (logits.argmax(dim=1) != labels).float().mean().item()


def _relative_l2(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-sample ||pred - target||_2 / ||target||_2, averaged over the batch (FNO's LpLoss, p=2)."""
    diff = (pred - target).flatten(1).norm(dim=1)
    return (diff / target.flatten(1).norm(dim=1)).mean()


class RelativeL2(nn.Module):
    """Relative L2 error, in physical units when given the targets' normaliser (its `decode`).

    The same object serves as loss (a tensor, differentiable) and metric (`float(...)`).
    """

    def __init__(self, normalizer: nn.Module | None = None):
        super().__init__()
        self.normalizer = normalizer

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.normalizer is not None:
            pred, target = self.normalizer.decode(pred), self.normalizer.decode(target)
        return _relative_l2(pred, target)
