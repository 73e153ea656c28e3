"""Choosing the student without true labels: which score of a candidate predicts its PGR?

A search for the student sees only the teacher's labels. Scoring candidates by agreement with the
teacher (what `search_student` does) may select the best imitators of the teacher, the opposite
of what weak-to-strong wants. `compare_criteria` trains every candidate on the same weak labels and
scores it by each criterion, so that the PGR each criterion's choice leads to can be compared:

- `disagreement`: with the teacher on held-out B_val (1 - agreement; for regression the
  distillation loss), lower is chosen (today's search score);
- `confident_disagreement` (single-label tasks): disagreement weighted by the teacher's confidence
  (the margin of its two largest probabilities), lower is chosen: a student may depart from its
  teacher where the teacher is unsure, not where it is sure;
- `overlap_density` (single-label tasks): the share of B_val that overlap detection
  (`nb360.w2s.detect`, teacher probabilities and the candidate's penultimate features) calls
  overlap, higher is chosen: the data-centric paper's predictor of weak-to-strong gain;
- zero-cost proxies (`synflow`, `naswot`) of the candidate's untrained network on a batch of B,
  higher is chosen (no labels at all);
- `true_labels` (the upper bound, it uses true labels): the error on `true_labels` true-labeled
  samples of B_val, lower is chosen.

Each candidate's student and ceiling train on B_fit (the pool without B_val): the student on the
teacher's labels, the ceiling on true labels, from the same initial weights; PGR from their test
errors and the teacher's. The teacher is `run_w2s`'s (same seed, same sets, same checkpoint).
"""

from __future__ import annotations

import math
import os

import numpy as np
import torch
from torch.utils.data import TensorDataset

from nb360.w2s import losses
from nb360.w2s.detect import confidence, detect_overlap
from nb360.w2s.gap import pgr
from nb360.w2s.protocol import Net, Trainer, predict, protocol_of, size_key, weak_labels

CRITERIA = {  # name -> True if higher is chosen
    "disagreement": False, "confident_disagreement": False, "overlap_density": True, "synflow": True,
    "naswot": True, "true_labels": False,
}
PROXIES = ("synflow", "naswot")
HOLDOUT = 0.25
TRUE_LABELS = 50
PROXY_BATCH = 64


def compare_criteria(task, teacher: Net, candidates: list[Net], *, epochs: int = 10, seed: int = 0,
                     teacher_size: int | None = None, pool_size: int | None = None, holdout: float = HOLDOUT,
                     true_labels: int = TRUE_LABELS, batch_size: int | None = None, lr: float | None = None,
                     device: torch.device | str | None = None, checkpoint_dir: str | os.PathLike | None = None,
                     progress: bool = False) -> list[dict]:
    """One dict per candidate: its cell, every criterion (`CRITERIA`; NaN where a criterion does not
    apply to the task), its weak, w2s and ceiling test errors and PGR, and the training seconds of
    its student and ceiling (`train_seconds`) and of the shared teacher (`teacher_seconds`)."""
    from nb360.proxies import compute

    kind = losses.label_kind(task)
    lr = task.lr if lr is None else lr
    trainer = Trainer(task, epochs, batch_size, lr, seed, device, checkpoint_dir, progress,
                      protocol_of(task, kind, epochs, batch_size, lr))
    weak = weak_labels(trainer, teacher, kind, teacher_size, pool_size)
    order = np.random.default_rng([seed, 1]).permutation(len(weak.x))  # search_student's split of B
    n_val = max(1, int(round(holdout * len(weak.x))))
    if not 1 <= true_labels <= n_val:
        raise ValueError(f"true_labels must be in 1..{n_val} (the held-out part of the pool), got {true_labels}")
    fit_rows, val_rows = torch.from_numpy(order[n_val:]), torch.from_numpy(order[:n_val])
    weak_test = trainer.score(weak.model)["test"]
    single = kind == "softmax"
    teacher_val = weak.labels[val_rows]
    margin = confidence(teacher_val.numpy()) if single else None
    proxy_inputs = weak.x[fit_rows[:PROXY_BATCH]]
    proxy_targets = weak.labels[fit_rows[:PROXY_BATCH]].argmax(1) if single else weak.labels[fit_rows[:PROXY_BATCH]]
    rows = []
    for candidate in candidates:
        name = f"{candidate.key}{size_key('A', teacher_size)}{size_key('B', pool_size)}-fit-seed{seed}"
        student, student_records = trainer.train(
            candidate, TensorDataset(weak.x[fit_rows], weak.labels[fit_rows]), losses.disagreement(kind, task.loss),
            f"criteria-student-{name}", lambda m, n: (m, losses.distillation_loss(kind, task.loss)))
        ceiling, ceiling_records = trainer.train(candidate, TensorDataset(weak.x[fit_rows], weak.y[fit_rows]),
                                                 task.metric, f"criteria-ceiling-{name}", lambda m, n: (m, task.loss))
        outputs = predict(student, weak.x[val_rows], trainer.batch_size, trainer.device)
        row = {"arch": str(candidate.arch), "index": candidate.arch.index,
               "disagreement": float(losses.disagreement(kind, task.loss)(outputs, teacher_val)),
               "true_labels": float(task.metric(outputs[:true_labels], weak.y[val_rows][:true_labels]))}
        if single:
            differs = (outputs.argmax(1) != teacher_val.argmax(1)).float().numpy()
            row["confident_disagreement"] = float((margin * differs).sum() / margin.sum())
            features = predict(student, weak.x[val_rows], trainer.batch_size, trainer.device, features=True)
            row["overlap_density"] = float(detect_overlap(teacher_val.numpy(), features.numpy()).overlap.mean())
        else:
            row["confident_disagreement"] = row["overlap_density"] = math.nan
        row.update(compute(candidate.arch, task.spec, proxy_inputs, proxy_targets, task.loss, PROXIES,
                           C=candidate.C, N=candidate.N, seed=seed))
        w2s, top = trainer.score(student)["test"], trainer.score(ceiling)["test"]
        row.update(weak=weak_test, w2s=w2s, ceiling=top, pgr=pgr(weak_test, w2s, top),
                   train_seconds=student_records[-1]["train_seconds"] + ceiling_records[-1]["train_seconds"],
                   teacher_seconds=weak.records[-1]["train_seconds"])
        rows.append(row)
    return rows


def picks(rows: list[dict]) -> dict[str, dict]:
    """For each criterion that scored every candidate, the candidate it chooses (ties: the first),
    and `oracle`, the candidate with the best PGR."""
    chosen = {}
    for criterion, higher in CRITERIA.items():
        values = np.array([r[criterion] for r in rows], dtype=float)
        if np.isfinite(values).all():
            chosen[criterion] = rows[int(np.argmax(values) if higher else np.argmin(values))]
    finite = [r for r in rows if math.isfinite(r["pgr"])]
    if finite:
        chosen["oracle"] = max(finite, key=lambda r: r["pgr"])
    return chosen

