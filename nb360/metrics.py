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


def macro_f1_error(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """1 - macro F1 of the argmax predictions (scikit-learn's ``f1_score(average="macro")``).

    The F1 of each class is averaged over the classes that occur in the labels or the predictions
    (scikit-learn's label set); a class with no true and no predicted sample is left out, and a class
    with precision and recall both zero counts as F1 = 0.
    """
    pred = logits.argmax(dim=1).long().cpu()
    true = labels.long().cpu()
    if true.numel() == 0:
        raise ValueError("macro F1 of an empty split is undefined")
    n = int(max(pred.max(), true.max())) + 1
    tp = torch.bincount(true[pred == true], minlength=n).double()
    n_pred = torch.bincount(pred, minlength=n).double()
    n_true = torch.bincount(true, minlength=n).double()
    present = (n_pred + n_true) > 0
    f1 = 2 * tp[present] / (n_pred[present] + n_true[present])
    return 1.0 - f1.mean().item()


# ----------------------------------------------------------------------------------------------
# Ranking metrics (multi-label classification, pixel masks)
# ----------------------------------------------------------------------------------------------
#
# Each label is one column of scores and one column of 0/1 labels. Thresholds are the distinct
# scores, as in scikit-learn's precision_recall_curve / roc_curve: tied scores form one operating
# point, so ties are neither broken nor double counted. A label whose AP or AUROC is undefined on the
# split (AP: no positive; AUROC: no positive or no negative) is NaN and left out of the mean over
# labels. scikit-learn returns AP = 0 for a label without positives and NaN (with a warning) for
# AUROC with one class; NAS-Bench-360's per-label loops call scikit-learn, so they agree with these
# functions wherever every label has both classes, as in the published test splits.


def _operating_points(scores: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Cumulative (tp, fp) counts at each threshold, per column, with the counts of the threshold before.

    ``scores`` and ``labels`` are (n, k). Returns (tp, fp, tp_before, fp_before, is_point), each
    (n, k): row i of a column holds the counts of predicting positive for the i+1 highest scores;
    ``is_point`` marks the rows that end a group of tied scores (the real operating points), and the
    ``_before`` counts are those of the previous operating point (0 for the first).
    """
    scores, labels = _as_columns(scores, labels)
    order = torch.argsort(scores, dim=0, descending=True, stable=True)
    ranked = scores.gather(0, order)
    positive = labels.gather(0, order).double()
    tp, fp = positive.cumsum(0), (1 - positive).cumsum(0)
    is_point = torch.ones_like(ranked, dtype=torch.bool)
    is_point[:-1] = ranked[:-1] != ranked[1:]
    # Counts only grow, so the running maximum over earlier operating points is the previous one.
    tp_before = _shift_down(torch.where(is_point, tp, 0).cummax(0).values)
    fp_before = _shift_down(torch.where(is_point, fp, 0).cummax(0).values)
    return tp, fp, tp_before, fp_before, is_point


def _as_columns(scores: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(n,) or (n, k) scores and 0/1 labels of the same shape as (n, k) float64 columns."""
    if scores.shape != labels.shape or scores.dim() not in (1, 2):
        raise ValueError(f"scores and labels must have the same shape (n,) or (n, labels); got "
                         f"{tuple(scores.shape)} and {tuple(labels.shape)}")
    if scores.shape[0] == 0:
        raise ValueError("a ranking metric of an empty split is undefined")
    scores, labels = scores.detach().double(), labels.detach().double()
    if not torch.all((labels == 0) | (labels == 1)):
        raise ValueError("labels must be 0 or 1")
    return (scores[:, None], labels[:, None]) if scores.dim() == 1 else (scores, labels)


def _shift_down(x: torch.Tensor) -> torch.Tensor:
    return torch.cat([torch.zeros_like(x[:1]), x[:-1]])


def average_precision(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-label average precision, sum over thresholds of (R_t - R_(t-1)) P_t (scikit-learn's
    ``average_precision_score``, no interpolation). (k,) float64; NaN for a label with no positive."""
    tp, fp, tp_before, _, is_point = _operating_points(scores, labels)
    precision = tp / (tp + fp)
    gained = torch.where(is_point, tp - tp_before, 0)
    positives = tp[-1]
    return (gained * precision).sum(0) / positives  # 0/0 = NaN where there is no positive


def auroc(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-label area under the ROC curve, trapezoids between operating points (scikit-learn's
    ``roc_auc_score``; ties count one half). (k,) float64; NaN for a label with a single class."""
    tp, fp, tp_before, fp_before, is_point = _operating_points(scores, labels)
    area = torch.where(is_point, (fp - fp_before) * (tp + tp_before) / 2, 0).sum(0)
    return area / (tp[-1] * fp[-1])


def _mean_defined(values: torch.Tensor) -> float:
    """Mean over the labels where the metric is defined; NaN when it is defined for none."""
    defined = values[~values.isnan()]
    return defined.mean().item() if defined.numel() else float("nan")


def map_error(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """1 - macro mean average precision over the labels (columns) that have a positive."""
    return 1.0 - _mean_defined(average_precision(logits, labels))


def auroc_error(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """1 - mean AUROC over the labels (columns) that have both classes (DeepSEA's metric)."""
    return 1.0 - _mean_defined(auroc(logits, labels))


def fnr_at_fpr(scores: torch.Tensor, labels: torch.Tensor, fpr: float) -> float:
    """False negative rate at the best threshold whose false positive rate is at most ``fpr``.

    The operating point of a detector that may raise at most a fraction ``fpr`` of false alarms, as
    cosmic-ray detection is reported (deepCR quotes the true positive rate at a fixed low FPR). One
    label: ``scores`` and ``labels`` are flattened. No threshold at all (predict nothing) gives FNR 1.
    """
    tp, fp, _, _, is_point = _operating_points(scores.flatten(), labels.flatten())
    positives, negatives = tp[-1, 0], fp[-1, 0]
    if positives == 0 or negatives == 0:
        return float("nan")
    allowed = is_point[:, 0] & (fp[:, 0] / negatives <= fpr)
    best_tp = tp[:, 0][allowed].max() if allowed.any() else tp.new_zeros(())
    return 1.0 - (best_tp / positives).item()


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


# ----------------------------------------------------------------------------------------------
# Task metrics and losses whose targets carry more than the labels
# ----------------------------------------------------------------------------------------------
#
# The training loop hands a metric the predictions and targets of a whole split and a loss one
# batch; neither sees anything else. Where the metric needs more than the labels (which clip a chunk
# belongs to, which residue pair a pixel is), the targets carry it in extra columns or channels, so
# the metric is right in any order, and the loss reads only the labels.


def clip_map_error(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """FSD50K: 1 - macro mAP over clips, each clip scored by the mean of its chunks' logits.

    ``logits``: (n_chunks, labels). ``targets``: (n_chunks, labels + 1), the clip's multi-hot labels
    followed by the clip's id (any number, the same for all chunks of one clip). NAS-Bench-360 feeds
    all 1-s chunks of a clip through the network, averages the logits, applies the sigmoid (which
    leaves the ranking, hence AP, unchanged) and takes scikit-learn's macro AP over the clips.
    """
    if targets.dim() != 2 or logits.dim() != 2 or targets.shape != (logits.shape[0], logits.shape[1] + 1):
        raise ValueError(f"clip_map_error takes logits (n, labels) and targets (n, labels + 1) with the clip id last; "
                         f"got {tuple(logits.shape)} and {tuple(targets.shape)}")
    clips, chunk_clip = torch.unique(targets[:, -1], return_inverse=True)
    labels = targets[:, :-1]
    clip_logits = logits.new_zeros(len(clips), logits.shape[1]).index_add_(0, chunk_clip, logits.detach())
    clip_logits /= torch.bincount(chunk_clip, minlength=len(clips)).to(logits)[:, None]
    clip_labels = labels.new_zeros(len(clips), labels.shape[1])
    clip_labels[chunk_clip] = labels
    if not torch.equal(clip_labels[chunk_clip], labels):
        raise ValueError("chunks of one clip carry different labels: the clip ids in the targets' last column are wrong")
    return map_error(clip_logits, clip_labels)


def clip_bce_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy with logits on the labels of ``clip_map_error``'s targets (clip id dropped)."""
    return nn.functional.binary_cross_entropy_with_logits(logits, targets[:, :-1])


# PSICOV (PDNet's evaluation, as NAS-Bench-360 runs it): residue pairs at least 24 apart in the
# sequence whose true C-beta distance is at most 8 Angstrom; predictions are clipped below at 0.01.
PSICOV_MIN_SEPARATION = 24
PSICOV_MAX_DISTANCE = 8.0
PSICOV_MIN_PREDICTION = 0.01


def psicov_mae8(pred: torch.Tensor, targets: torch.Tensor) -> float:
    """MAE8: mean absolute error of the predicted distances on long-range contacts, per protein, then
    averaged over the proteins that have any.

    ``pred``: (n, 1, H, W) distances. ``targets``: (n, 2, H, W): channel 0 the true distance (padding
    and unknown pairs > 8, so they never count), channel 1 the sequence separation of the pixel's
    residue pair, column residue minus row residue (the pair is long-range where it is >= 24). Each
    sample is one protein map or crop.

    On maps whose rows and columns are the same residues (separation 0 on the top-left pixel: full
    test maps, uncropped training maps) the prediction is symmetrised exactly as NAS-Bench-360's
    ``evaluate_test_protein`` and ``calculate_mae`` do it: the upper triangle is first replaced by the
    mean of both triangles and everything clipped at 0.01, then ``calculate_mae`` averages both
    triangles again, so the pair (i, j), i < j, is scored at
    (clip((P[i,j] + P[j,i]) / 2) + clip(P[j,i])) / 2. On crops whose rows and columns are different
    stretches of the sequence (random training crops) the mirrored pixel is not in the crop, and the
    clipped prediction is scored as is. NAS-Bench-360 shuffles its test loader and looks up each
    protein's length by position, which can truncate a protein's map; here every pair is scored.
    """
    if pred.dim() != 4 or pred.shape[1] != 1 or targets.shape != (pred.shape[0], 2, *pred.shape[2:]):
        raise ValueError(f"psicov_mae8 takes predictions (n, 1, H, W) and targets (n, 2, H, W) (distance, separation); "
                         f"got {tuple(pred.shape)} and {tuple(targets.shape)}")
    p = pred[:, 0].detach().double()
    distance, separation = targets[:, 0].double(), targets[:, 1]
    clip = PSICOV_MIN_PREDICTION
    scored = p.clamp(min=clip)
    aligned = (separation[:, 0, 0] == 0) & (p.shape[1] == p.shape[2])
    if aligned.any():
        pa = p[aligned]
        mirrored = pa.transpose(1, 2)
        scored[aligned] = ((pa + mirrored) / 2).clamp(min=clip) / 2 + mirrored.clamp(min=clip) / 2
    pairs = (separation >= PSICOV_MIN_SEPARATION) & (distance <= PSICOV_MAX_DISTANCE)
    counts = pairs.sum((1, 2))
    errors = ((scored - distance).abs() * pairs).sum((1, 2))
    has_pairs = counts > 0
    if not has_pairs.any():
        return float("nan")
    return (errors[has_pairs] / counts[has_pairs]).mean().item()


def psicov_mse_loss(pred: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean squared error on the distance channel, every pixel of the crop (NAS-Bench-360's MSELoss)."""
    return nn.functional.mse_loss(pred[:, 0], targets[:, 0])


# Cosmic: NAS-Bench-360 thresholds the network's logits at 0.5 and scores the binary masks.
COSMIC_THRESHOLD = 0.5


def cosmic_auroc_error(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """1 - AUROC of the binary cosmic-ray mask, over every pixel of the split, as NAS-Bench-360 reports it.

    ``logits``: (n, 1, H, W). ``targets``: (n, 2, H, W), the cosmic-ray mask and the ignore mask.
    NAS-Bench-360 (``backbone/model_grid_original.py``) computes ``roc_auc_score(mask, logits > 0.5)``
    on all pixels: the scores are the thresholded (binary) predictions, so the AUROC is
    (TPR + 1 - FPR) / 2 at that threshold, and ignored pixels are scored too.
    """
    _check_mask_shapes(logits, targets, "cosmic_auroc_error")
    predicted = (logits[:, 0] > COSMIC_THRESHOLD).double()
    return auroc_error(predicted.flatten(), targets[:, 0].flatten())


def cosmic_fnr_at_fpr(logits: torch.Tensor, targets: torch.Tensor, fpr: float = 1e-4) -> float:
    """Cosmic: false negative rate of the pixel mask at a fixed false positive rate, pixels ranked by
    logit, ignored pixels left out. The default 0.01% is the operating point at which later
    cosmic-ray detectors are compared (Cosmic-CoNN, Xu et al. 2021, and its follow-ups report the
    true positive rate at 0.01% FPR)."""
    _check_mask_shapes(logits, targets, "cosmic_fnr_at_fpr")
    kept = targets[:, 1] == 0
    return fnr_at_fpr(logits[:, 0][kept], targets[:, 0][kept], fpr)


def masked_bce_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """NAS-Bench-360's cosmic loss: BCE with logits of logits * (1 - ignore) against mask * (1 - ignore),
    mean over all pixels (an ignored pixel becomes logit 0 against label 0: a constant, no gradient)."""
    keep = 1 - targets[:, 1:2]
    return nn.functional.binary_cross_entropy_with_logits(logits * keep, targets[:, 0:1] * keep)


def _check_mask_shapes(logits: torch.Tensor, targets: torch.Tensor, name: str) -> None:
    if logits.dim() != 4 or logits.shape[1] != 1 or targets.shape != (logits.shape[0], 2, *logits.shape[2:]):
        raise ValueError(f"{name} takes logits (n, 1, H, W) and targets (n, 2, H, W) (mask, ignore); "
                         f"got {tuple(logits.shape)} and {tuple(targets.shape)}")
