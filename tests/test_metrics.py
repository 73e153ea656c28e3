"""Metrics against scikit-learn or a direct port of NAS-Bench-360's evaluation code, on random inputs
with ties and on the edge cases (a label without positives, one class only, empty splits)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score, f1_score, roc_auc_score, roc_curve

from nb360 import metrics


def random_multilabel(n: int, k: int, seed: int, levels: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(scores, 0/1 labels) of shape (n, k); ``levels`` rounds the scores to that many values (ties)."""
    g = torch.Generator().manual_seed(seed)
    labels = (torch.rand(n, k, generator=g) < 0.3).double()
    scores = torch.randn(n, k, generator=g, dtype=torch.float64) + labels  # some signal
    if levels is not None:
        scores = torch.round(scores * levels / 4) / (levels / 4)
    return scores, labels


# ----------------------------------------------------------------------------------------------
# Classification
# ----------------------------------------------------------------------------------------------


def test_zero_one_error():
    logits = torch.tensor([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0], [0.0, 1.0]])
    assert metrics.zero_one_error(logits, torch.tensor([0, 1, 1, 1])) == pytest.approx(0.25)


@pytest.mark.parametrize("seed", range(5))
def test_macro_f1_matches_sklearn(seed):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(60, 5, generator=g)
    labels = torch.randint(0, 4, (60,), generator=g)  # class 4 is predicted but never true
    expected = 1 - f1_score(labels.numpy(), logits.argmax(1).numpy(), average="macro")
    assert metrics.macro_f1_error(logits, labels) == pytest.approx(expected, abs=1e-12)


def test_macro_f1_classes_absent_everywhere_are_left_out():
    logits = torch.tensor([[5.0, 0, 0, 0], [0, 0, 5.0, 0], [5.0, 0, 0, 0]])  # classes 1 and 3 never occur
    labels = torch.tensor([0, 2, 2])
    # class 0: P = 1/2, R = 1 -> 2/3; class 2: P = 1, R = 1/2 -> 2/3
    assert metrics.macro_f1_error(logits, labels) == pytest.approx(1 - 2 / 3)
    assert metrics.macro_f1_error(logits, labels) == pytest.approx(1 - f1_score([0, 2, 2], [0, 2, 0], average="macro"))


def test_macro_f1_empty_raises():
    with pytest.raises(ValueError, match="empty"):
        metrics.macro_f1_error(torch.zeros(0, 4), torch.zeros(0, dtype=torch.long))


# ----------------------------------------------------------------------------------------------
# Ranking metrics
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("levels", [None, 3, 8])
def test_average_precision_matches_sklearn(levels):
    scores, labels = random_multilabel(200, 6, seed=1, levels=levels)
    expected = [average_precision_score(labels[:, j], scores[:, j]) for j in range(6)]
    np.testing.assert_allclose(metrics.average_precision(scores, labels).numpy(), expected, rtol=1e-12)
    expected_macro = average_precision_score(labels.numpy(), scores.numpy(), average="macro")
    assert metrics.map_error(scores, labels) == pytest.approx(1 - expected_macro, abs=1e-12)


@pytest.mark.parametrize("levels", [None, 2, 8])
def test_auroc_matches_sklearn(levels):
    scores, labels = random_multilabel(200, 6, seed=2, levels=levels)
    expected = [roc_auc_score(labels[:, j], scores[:, j]) for j in range(6)]
    np.testing.assert_allclose(metrics.auroc(scores, labels).numpy(), expected, rtol=1e-12)
    assert metrics.auroc_error(scores, labels) == pytest.approx(1 - np.mean(expected), abs=1e-12)


def test_all_tied_scores():
    """One threshold: AP is the positive rate, AUROC one half."""
    labels = torch.tensor([1.0, 0.0, 0.0, 1.0, 0.0])
    scores = torch.full((5,), 0.3)
    assert metrics.average_precision(scores, labels).item() == pytest.approx(0.4)
    assert metrics.auroc(scores, labels).item() == pytest.approx(0.5)


def test_label_without_positives_is_left_out():
    scores, labels = random_multilabel(50, 4, seed=3)
    labels[:, 1] = 0  # no positives: AP and AUROC undefined
    labels[:, 2] = 1  # no negatives: AUROC undefined, AP = 1
    ap = metrics.average_precision(scores, labels)
    assert math.isnan(ap[1]) and ap[2] == pytest.approx(1.0)
    kept = [0, 2, 3]
    expected_ap = np.mean([average_precision_score(labels[:, j], scores[:, j]) for j in kept])
    assert metrics.map_error(scores, labels) == pytest.approx(1 - expected_ap, abs=1e-12)
    roc = metrics.auroc(scores, labels)
    assert math.isnan(roc[1]) and math.isnan(roc[2])
    expected_auc = np.mean([roc_auc_score(labels[:, j], scores[:, j]) for j in (0, 3)])
    assert metrics.auroc_error(scores, labels) == pytest.approx(1 - expected_auc, abs=1e-12)


def test_no_defined_label_gives_nan():
    assert math.isnan(metrics.map_error(torch.rand(4, 2), torch.zeros(4, 2)))
    assert math.isnan(metrics.auroc_error(torch.rand(4, 2), torch.ones(4, 2)))


def test_ranking_bad_input():
    with pytest.raises(ValueError, match="empty"):
        metrics.auroc_error(torch.zeros(0, 3), torch.zeros(0, 3))
    with pytest.raises(ValueError, match="same shape"):
        metrics.map_error(torch.zeros(4, 3), torch.zeros(4, 2))
    with pytest.raises(ValueError, match="0 or 1"):
        metrics.map_error(torch.zeros(4, 1), torch.full((4, 1), 2.0))


@pytest.mark.parametrize("target_fpr", [0.0, 0.01, 0.1, 0.5])
def test_fnr_at_fpr_matches_roc_curve(target_fpr):
    scores, labels = random_multilabel(500, 1, seed=4, levels=20)
    fpr, tpr, _ = roc_curve(labels[:, 0], scores[:, 0], drop_intermediate=False)
    expected = 1 - tpr[fpr <= target_fpr].max()
    assert metrics.fnr_at_fpr(scores, labels, target_fpr) == pytest.approx(expected, abs=1e-12)


# ----------------------------------------------------------------------------------------------
# FSD50K: clip averaging
# ----------------------------------------------------------------------------------------------


def test_clip_map_error_averages_chunk_logits_per_clip():
    g = torch.Generator().manual_seed(5)
    n_clips, n_labels = 30, 5
    clip_labels = (torch.rand(n_clips, n_labels, generator=g) < 0.4).float()
    chunks = torch.randint(1, 5, (n_clips,), generator=g)  # 1..4 chunks per clip
    clip_of_chunk = torch.repeat_interleave(torch.arange(n_clips), chunks)
    logits = torch.randn(len(clip_of_chunk), n_labels, generator=g)
    targets = torch.cat([clip_labels[clip_of_chunk], clip_of_chunk[:, None].float() * 7 + 3], dim=1)  # any id

    mean_logits = torch.stack([logits[clip_of_chunk == c].mean(0) for c in range(n_clips)])
    expected = 1 - average_precision_score(clip_labels.numpy(), torch.sigmoid(mean_logits).numpy(), average="macro")
    assert metrics.clip_map_error(logits, targets) == pytest.approx(expected, abs=1e-6)
    shuffled = torch.randperm(len(targets), generator=g)  # the order of the chunks does not matter
    assert metrics.clip_map_error(logits[shuffled], targets[shuffled]) == pytest.approx(expected, abs=1e-6)


def test_clip_map_error_hand_built():
    """Two chunks of clip A (label 0), one of clip B (label 1): averaging flips clip A's ranking."""
    logits = torch.tensor([[4.0, 0.0], [-3.0, 0.0], [0.0, 1.0]])
    targets = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
    # clip A mean logits (0.5, 0), clip B (0, 1): both labels ranked right -> mAP 1
    assert metrics.clip_map_error(logits, targets) == pytest.approx(0.0)
    # per chunk, the second chunk of A would rank below B for label 0: AP(label 0) = (1 + 2/3) / 2 < 1
    assert metrics.map_error(logits, targets[:, :2]) > 0


def test_clip_map_error_rejects_inconsistent_clips():
    targets = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])  # same clip id, different labels
    with pytest.raises(ValueError, match="different labels"):
        metrics.clip_map_error(torch.zeros(2, 2), targets)
    with pytest.raises(ValueError, match="clip id"):
        metrics.clip_map_error(torch.zeros(2, 2), targets[:, :2])


def test_clip_bce_loss_ignores_clip_id():
    logits = torch.randn(4, 3)
    labels = (torch.rand(4, 3) < 0.5).float()
    targets = torch.cat([labels, torch.arange(4.0)[:, None] * 1000], dim=1)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels)
    assert torch.allclose(metrics.clip_bce_loss(logits, targets), expected)


# ----------------------------------------------------------------------------------------------
# PSICOV: MAE8, against a port of NAS-Bench-360's evaluate_test_protein + calculate_mae
# ----------------------------------------------------------------------------------------------


def nb360_mae8(P: np.ndarray, Y: np.ndarray, lengths: list[int], lmax: int, pad_size: int = 10) -> float:
    """backbone/model_grid_original.py evaluate_test_protein and utils_grid.calculate_mae (the long-range,
    8 A part), loop for loop. P, Y: (n, lmax, lmax, 1) padded maps, the protein at offset pad_size / 2."""
    P, Y = P.copy(), Y.copy()
    for j in range(lmax):
        for k in range(j, lmax):
            P[:, j, k, :] = (P[:, k, j, :] + P[:, j, k, :]) / 2.0
    P[P < 0.01] = 0.01
    h = pad_size // 2
    P[:, : lmax - pad_size, : lmax - pad_size, :] = P[:, h : lmax - h, h : lmax - h, :]
    Y[:, : lmax - pad_size, : lmax - pad_size, :] = Y[:, h : lmax - h, h : lmax - h, :]
    maes = np.zeros(len(P))
    for i, L in enumerate(lengths):
        PAVG = np.full((L, L), 100.0)
        for j in range(L):
            for k in range(j, L):
                PAVG[j, k] = (P[i, k, j, 0] + P[i, j, k, 0]) / 2.0
        y, p = np.copy(Y[i, :L, :L, 0]), np.copy(PAVG)
        for a in range(L):
            for b in range(L):
                if b - a < 24 or y[a, b] > 8:
                    y[a, b] = p[a, b] = np.nan
        maes[i] = np.nanmean(np.abs(y - p)) if not np.isnan(np.abs(y - p)).all() else np.nan
    return float(np.nanmean(maes))


def padded_protein_maps(lengths: list[int], lmax: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random predictions (n, lmax, lmax, 1) and true maps padded with 100 (NB360's get_input_output_dist)."""
    rng = np.random.default_rng(seed)
    P = rng.uniform(-1, 14, (len(lengths), lmax, lmax, 1))  # some below the 0.01 clip
    Y = np.full((len(lengths), lmax, lmax, 1), 100.0)
    for i, L in enumerate(lengths):
        y = rng.uniform(3, 20, (L, L))
        Y[i, 5 : 5 + L, 5 : 5 + L, 0] = (y + y.T) / 2
    return P, Y


def separation_channel(n: int, size: int, row_start: int = 0, col_start: int = 0) -> np.ndarray:
    rows, cols = np.arange(size)[:, None] + row_start, np.arange(size)[None, :] + col_start
    return np.broadcast_to(cols - rows, (n, size, size)).astype(np.float64)


def test_psicov_mae8_matches_nb360():
    lengths, lmax = [30, 45, 52], 64
    P, Y = padded_protein_maps(lengths, lmax, seed=6)
    expected = nb360_mae8(P, Y, lengths, lmax)
    pred = torch.from_numpy(P[..., 0])[:, None]
    targets = torch.from_numpy(np.stack([Y[..., 0], separation_channel(3, lmax)], axis=1))
    assert metrics.psicov_mae8(pred, targets) == pytest.approx(expected, rel=1e-12)


def test_psicov_mae8_unaligned_crop_is_scored_as_is():
    """A crop whose rows and columns are different stretches: |clip(P) - Y| on pairs >= 24 apart, <= 8 A."""
    rng = np.random.default_rng(7)
    P, Y = rng.uniform(-1, 12, (1, 16, 16)), rng.uniform(2, 12, (1, 16, 16))
    sep = separation_channel(1, 16, row_start=3, col_start=20)  # separations 1 .. 32
    pairs = (sep >= 24) & (Y <= 8)
    expected = np.abs(np.clip(P, 0.01, None) - Y)[pairs].mean()
    targets = torch.from_numpy(np.stack([Y, sep], axis=1))
    assert metrics.psicov_mae8(torch.from_numpy(P)[:, None], targets) == pytest.approx(expected, rel=1e-12)


def test_psicov_mae8_without_pairs_is_nan():
    targets = torch.stack([torch.full((1, 8, 8), 3.0), torch.from_numpy(separation_channel(1, 8)).float()], dim=1)
    assert math.isnan(metrics.psicov_mae8(torch.zeros(1, 1, 8, 8), targets))  # separations < 24 only


def test_psicov_mse_loss_on_distance_channel():
    pred, targets = torch.randn(2, 1, 4, 4), torch.randn(2, 2, 4, 4)
    assert torch.allclose(metrics.psicov_mse_loss(pred, targets), ((pred[:, 0] - targets[:, 0]) ** 2).mean())


# ----------------------------------------------------------------------------------------------
# Cosmic
# ----------------------------------------------------------------------------------------------


def cosmic_batch(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    mask = (torch.rand(3, 1, 16, 16, generator=g) < 0.1).float()
    ignore = (torch.rand(3, 1, 16, 16, generator=g) < 0.05).float()
    logits = torch.randn(3, 1, 16, 16, generator=g) + 2 * mask
    return logits, torch.cat([mask, ignore], dim=1)


def test_cosmic_auroc_error_is_nb360s():
    logits, targets = cosmic_batch(8)
    expected = 1 - roc_auc_score(targets[:, 0].flatten().numpy(), (logits.flatten() > 0.5).numpy().astype(np.int32))
    assert metrics.cosmic_auroc_error(logits, targets) == pytest.approx(expected, abs=1e-12)
    # binary scores: AUROC = (TPR + 1 - FPR) / 2
    predicted, mask = logits[:, 0] > 0.5, targets[:, 0] == 1
    tpr, fpr = (predicted & mask).sum() / mask.sum(), (predicted & ~mask).sum() / (~mask).sum()
    assert metrics.cosmic_auroc_error(logits, targets) == pytest.approx(1 - (tpr + 1 - fpr).item() / 2, abs=1e-6)


def test_cosmic_fnr_at_fpr_leaves_ignored_pixels_out():
    logits, targets = cosmic_batch(9)
    kept = targets[:, 1] == 0
    fpr, tpr, _ = roc_curve(targets[:, 0][kept].numpy(), logits[:, 0][kept].numpy(), drop_intermediate=False)
    expected = 1 - tpr[fpr <= 0.01].max()
    assert metrics.cosmic_fnr_at_fpr(logits, targets, fpr=0.01) == pytest.approx(expected, abs=1e-12)


def test_masked_bce_loss_formula():
    logits, targets = cosmic_batch(10)
    keep = 1 - targets[:, 1:2]
    z, y = logits * keep, targets[:, 0:1] * keep
    expected = (torch.clamp(z, min=0) - z * y + torch.log1p(torch.exp(-z.abs()))).mean()
    assert torch.allclose(metrics.masked_bce_loss(logits, targets), expected, atol=1e-6)
    logits.requires_grad_(True)
    metrics.masked_bce_loss(logits, targets).backward()
    assert torch.all(logits.grad[targets[:, 1:2] == 1] == 0)  # ignored pixels get no gradient


def test_cosmic_shapes_checked():
    with pytest.raises(ValueError, match="mask, ignore"):
        metrics.cosmic_auroc_error(torch.zeros(2, 1, 4, 4), torch.zeros(2, 1, 4, 4))


# ----------------------------------------------------------------------------------------------
# Relative L2
# ----------------------------------------------------------------------------------------------


def test_relative_l2_formula():
    pred, target = torch.randn(3, 1, 5, 5), torch.randn(3, 1, 5, 5)
    expected = np.mean([np.linalg.norm(pred[i] - target[i]) / np.linalg.norm(target[i]) for i in range(3)])
    assert float(metrics.RelativeL2()(pred, target)) == pytest.approx(expected, rel=1e-5)
