"""The weak-to-strong protocol on an nb360 task (Burns et al., "Weak-to-Strong Generalization", 2023;
openai/weak-to-strong, `train_weak_to_strong.py`, `main`).

The training split is cut in two random halves A and B (the reference's `train_test_split(test_size=0.5)`):
1. the weak teacher is trained on A with true labels and labels B (soft labels, or predicted
   fields for regression tasks: `nb360.w2s.losses`);
2. the strong ceiling, the student's network, is trained on B with true labels;
3. the weak-to-strong student, the same network from the same initial weights, is trained on B
   with the teacher's labels (optionally with the auxiliary confidence loss);
and all three are scored with the task's metric (lower is better) on the test split, PGR computed
from those errors (`nb360.w2s.gap`). Every training is `nb360.train.fit` with the task's loss or the
distillation loss, NB201's optimiser and the same number of epochs (the reference trains weak, strong
and transfer models for `gt_epochs` each); validation scores are reported too, never used.

Deviations from the reference, and why: B is drawn once from the task's training set (inputs and
true targets held in memory), so a task whose training set draws random crops or augmentations
(PSICOV, FSD50K, cosmic) gives teacher, ceiling and student one fixed draw of B; the teacher's
labels would not match a fresh draw. On single-label tasks the report also gives an overlap
detection of B (`nb360.w2s.detect`) from the teacher's probabilities and the student's penultimate
features (nb360 has no pretrained strong model; the student, trained on weak labels only, is the
strong representation that needs no ground truth).
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset, TensorDataset

from nb360.spaces.nb201 import Arch, ArchLike
from nb360.spaces.network import DEFAULT_C, DEFAULT_N, build
from nb360.train import Splits, default_device, evaluate, fit, seed_everything
from nb360.w2s import losses, pretrain
from nb360.w2s.detect import GROUPS, MIN_POINTS, detect_overlap
from nb360.w2s.gap import pgr

ROLES = ("weak", "w2s", "ceiling")
PROTOCOL_FILE = "w2s-protocol.json"


BASELINE = "wrn"  # the name that selects the task's baseline network instead of a cell


@dataclass(frozen=True)
class Net:
    """A network of the protocol: an NB201 cell `arch` at width `C` with `N` cells per stage, or, with
    `arch=None`, the task's baseline network (NAS-Bench-360's WRN, `nb360.spaces.wrn.build_wrn`)."""

    arch: Arch | None
    C: int = DEFAULT_C
    N: int = DEFAULT_N

    @classmethod
    def of(cls, value: Net | ArchLike, C: int = DEFAULT_C, N: int = DEFAULT_N) -> Net:
        """`value` as is if it is a Net; "wrn" for the baseline; else the cell it names (string,
        official index, Arch) at C, N."""
        if isinstance(value, Net):
            return value
        if isinstance(value, str) and value.strip().lower() == BASELINE:
            return cls(None)
        return cls(Arch.parse(value), C, N)

    def build(self, spec) -> nn.Module:
        if self.arch is None:
            from nb360.spaces.wrn import build_wrn

            return build_wrn(spec)
        return build(self.arch, spec, C=self.C, N=self.N)

    @property
    def key(self) -> str:
        """A file-name-safe name: official index, width, depth (or the baseline's name)."""
        return BASELINE if self.arch is None else f"{self.arch.index}-C{self.C}-N{self.N}"

    def to_dict(self) -> dict:
        if self.arch is None:
            return {"model": BASELINE, "arch": None, "index": None, "C": None, "N": None}
        return {"model": "nb201", "arch": str(self.arch), "index": self.arch.index, "C": self.C, "N": self.N}


@dataclass
class Report:
    """One weak-to-strong run. `weak`, `w2s`, `ceiling`: test errors (the task's metric, lower is
    better); `val`: the same on the validation split; `pgr` from the test errors, `pgr_val` from the
    validation errors; `records`: fit's per-epoch records of each training; `detection`: the overlap
    detection of half B (single-label tasks), with the teacher's and student's accuracy per group."""

    task: str
    metric: str
    seed: int
    teacher: dict
    student: dict
    weak: float
    w2s: float
    ceiling: float
    pgr: float
    val: dict
    pgr_val: float
    protocol: dict
    records: dict = field(default_factory=dict)
    detection: dict | None = None
    seconds: float = math.nan

    def to_dict(self) -> dict:
        return asdict(self)


def halves(n: int, seed: int, teacher_size: int | None = None, pool_size: int | None = None
           ) -> tuple[np.ndarray, np.ndarray]:
    """Indices of A (the teacher's labeled set) and B (the student's pool) in a training split of n
    samples: a seeded permutation, A its first `teacher_size` (default: half), B the next
    `pool_size` (default: the rest). The defaults are the reference's halves; sizes let the pool
    outgrow the teacher's set (the same seed keeps A's first samples whatever the sizes)."""
    if n < 4:
        raise ValueError(f"the training split has {n} samples; weak-to-strong needs at least 4 to cut in halves")
    a = n // 2 if teacher_size is None else teacher_size
    b = n - a if pool_size is None else pool_size
    if a < 2 or b < 2 or a + b > n:
        raise ValueError(f"teacher set {a} and pool {b} samples: each needs at least 2, and together at most the "
                         f"{n} samples of the task's training split (--teacher-size, --pool-size)")
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[:a]), np.sort(order[a:a + b])


def materialize(ds: Dataset, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """All (inputs, targets) of a dataset as two tensors, in order (one draw of a random dataset)."""
    xs, ys = zip(*DataLoader(ds, batch_size=batch_size, shuffle=False))
    return torch.cat(xs), torch.cat(ys)


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int, device: torch.device,
            features: bool = False) -> torch.Tensor:
    """The model's outputs on `x` (eval mode), or with `features` the input of its output layer
    (the penultimate representation)."""
    model.eval().to(device)
    captured: list[torch.Tensor] = []
    hook = output_layer(model).register_forward_pre_hook(lambda _, args: captured.append(args[0].detach().cpu())) \
        if features else None
    try:
        outputs = [model(x[i:i + batch_size].to(device)).cpu() for i in range(0, len(x), batch_size)]
    finally:
        if hook is not None:
            hook.remove()
    return torch.cat(captured).flatten(1) if features else torch.cat(outputs)


def output_layer(model: nn.Module) -> nn.Module:
    """The last layer: `classifier` of an NB201 network, `head` of a WRN, `final` of the 1D ResNet."""
    for name in ("classifier", "head", "final"):
        if isinstance(getattr(model, name, None), nn.Module):
            return getattr(model, name)
    raise ValueError(f"{type(model).__name__} has no output layer named classifier, head or final")


class Trainer:
    """Runs the trainings of one protocol (task, epochs, optimiser, seed, device), each fit
    checkpointed under `checkpoint_dir` as `<role>-<net key>...pt` so an interrupted run resumes."""

    def __init__(self, task, epochs: int, batch_size: int | None, lr: float, seed: int, device,
                 checkpoint_dir: str | os.PathLike | None, progress: bool, protocol: dict):
        self.task, self.epochs, self.lr, self.seed = task, epochs, lr, seed
        self.batch_size = batch_size or task.batch_size
        self.device = torch.device(device) if device is not None else default_device()
        self.progress = progress
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        if self.checkpoint_dir is not None:
            check_protocol(self.checkpoint_dir, protocol)

    def checkpoint(self, name: str) -> Path | None:
        return None if self.checkpoint_dir is None else self.checkpoint_dir / f"{name}.pt"

    def train(self, net: Net, data: Dataset, metric, name: str, setup,
              val: Dataset | None = None, init: dict | None = None, spec=None,
              epochs: int | None = None) -> tuple[nn.Module, list[dict]]:
        """Build `net` from the run's seed (for `spec`, default the task's), load the entries of a
        pretrained state `init` that fit it, train it on `data` for `epochs` (default the
        protocol's) and return (model, records).
        `setup(model, n) -> (module to train, loss)`. Only `val` (if given) is scored every epoch,
        with `metric`; the task's splits are scored after training."""
        seed_everything(self.seed)
        model = net.build(spec or self.task.spec)
        if init is not None:
            model.load_state_dict(pretrain.transferable(init, model), strict=False)
        trained, loss = setup(model, len(data))
        records = fit(trained, Splits(data, val, None), loss, metric, epochs=epochs or self.epochs,
                      batch_size=self.batch_size,
                      lr=self.lr, seed=self.seed, device=self.device, checkpoint=self.checkpoint(name),
                      progress=self.progress)
        return model, records

    def score(self, model: nn.Module) -> dict[str, float]:
        return {split: evaluate(model, getattr(self.task, split), self.task.metric, self.batch_size, self.device)
                for split in ("val", "test") if getattr(self.task, split) is not None}

    def steps(self, n: int) -> int:
        """Optimiser steps of one fit on n samples (fit's loader keeps the last partial batch)."""
        return self.epochs * math.ceil(n / self.batch_size)


def protocol_of(task, kind: str, epochs: int, batch_size: int | None, lr: float, aux_coef: float = losses.AUX_COEF,
                warmup_frac: float = losses.WARMUP_FRAC) -> dict:
    """What must match for checkpoints to be reused: data, labels and the training recipe."""
    return {"task": task.name, "spec": list(task.spec.input_shape) + [task.spec.out_size], "labels": kind,
            "train_samples": len(task.train), "epochs": epochs, "batch_size": batch_size or task.batch_size,
            "lr": lr, "optimizer": "NB201 (SGD nesterov 0.9, wd 5e-4, cosine)", "aux_coef": aux_coef,
            "warmup_frac": warmup_frac}


@dataclass
class WeakLabels:
    """The teacher trained on half A and what it says about half B (inputs `x`, true targets `y`)."""

    model: nn.Module
    records: list[dict]
    x: torch.Tensor
    y: torch.Tensor
    labels: torch.Tensor
    sizes: tuple[int, int]
    half_a: np.ndarray  # the teacher's samples (indices into the training split)


def weak_labels(trainer: Trainer, teacher: Net, kind: str, teacher_size: int | None = None,
                pool_size: int | None = None) -> WeakLabels:
    """Step 1 of the protocol: train the teacher on A (true labels), label the pool B (`halves`)."""
    task, seed = trainer.task, trainer.seed
    half_a, half_b = halves(len(task.train), seed, teacher_size, pool_size)
    model, records = trainer.train(teacher, Subset(task.train, half_a.tolist()), task.metric,
                                   f"teacher-{teacher.key}{size_key('A', teacher_size)}-seed{seed}",
                                   lambda m, n: (m, task.loss))
    torch.manual_seed(seed)  # a dataset that draws random crops draws the same B every run
    x_b, y_b = materialize(Subset(task.train, half_b.tolist()), trainer.batch_size)
    labels = losses.teacher_labels(kind, predict(model, x_b, trainer.batch_size, trainer.device))
    return WeakLabels(model, records, x_b, y_b, labels, (len(half_a), len(half_b)), half_a)


def size_key(name: str, size: int | None) -> str:
    """The part of a checkpoint name that tells a set of a chosen size from the default halves."""
    return "" if size is None else f"-{name}{size}"


def pretrained_state(trainer: Trainer, student: Net, weak: WeakLabels, epochs: int) -> tuple[dict, list[dict]]:
    """The student's network pretrained on the unlabeled inputs of A and B (`nb360.w2s.pretrain`):
    its state and the training's records."""
    task = trainer.task
    torch.manual_seed(trainer.seed)
    x_a, _ = materialize(Subset(task.train, weak.half_a.tolist()), trainer.batch_size)
    data, spec, loss = pretrain.pretext(task.spec, torch.cat([x_a, weak.x]))
    name = f"pretrain-{student.key}-{pretrain.objective(task.spec)}{epochs}{size_key('A', weak.sizes[0])}" \
           f"{size_key('B', weak.sizes[1])}-seed{trainer.seed}"
    model, records = trainer.train(student, data, loss, name, lambda m, n: (m, loss), spec=spec, epochs=epochs)
    return model.state_dict(), records


def check_protocol(directory: Path, protocol: dict) -> None:
    """Record the protocol beside the checkpoints, or check that a resumed run has the same one."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / PROTOCOL_FILE
    stored = json.loads(path.read_text()) if path.exists() else None
    if stored is None:
        path.write_text(json.dumps(protocol, indent=2) + "\n")
    elif stored != protocol:
        changed = sorted(k for k in set(stored) | set(protocol) if stored.get(k) != protocol.get(k))
        raise ValueError(f"{path}: the checkpoints there are of another protocol ({', '.join(changed)} differ: "
                         f"{ {k: stored.get(k) for k in changed} } there, { {k: protocol.get(k) for k in changed} } "
                         "now); use another checkpoint folder")


def run_w2s(task, teacher: Net | ArchLike, student: Net | ArchLike, *, C: int = DEFAULT_C, N: int = DEFAULT_N,
            epochs: int = 10, batch_size: int | None = None, lr: float | None = None, aux_loss: bool = False,
            aux_coef: float = losses.AUX_COEF, warmup_frac: float = losses.WARMUP_FRAC, seed: int = 0,
            teacher_size: int | None = None, pool_size: int | None = None, pretrain_epochs: int = 0,
            device: torch.device | str | None = None, checkpoint_dir: str | os.PathLike | None = None,
            detect: bool = True, progress: bool = True) -> Report:
    """Weak teacher, weak-to-strong student and strong ceiling on `task` (an `nb360.data.Task`).

    `teacher` and `student`: a `Net`, an NB201 cell (Arch, string or official index) at width `C`
    and depth `N`, or "wrn" for the task's baseline network. `lr`: default the task's (`Task.lr`). `aux_loss`: add the auxiliary confidence loss (single-label tasks). The same
    seed gives the same halves, initial weights, batches and report; with `checkpoint_dir` the three
    trainings are checkpointed there every epoch and a rerun resumes them (teacher checkpoints are
    shared by runs with the same teacher, so several students reuse one teacher).

    `teacher_size` and `pool_size`: samples of the teacher's labeled set A and of the student's pool
    B (default: the two halves of the training split; `halves`). `pretrain_epochs` > 0: the student's
    network is first pretrained that long on the unlabeled inputs of A and B
    (`nb360.w2s.pretrain`), and ceiling and student both start from the pretrained weights.
    """
    start = time.perf_counter()
    teacher, student = Net.of(teacher, C, N), Net.of(student, C, N)
    kind = losses.label_kind(task)
    if aux_loss and kind != "softmax":
        raise ValueError(f"the auxiliary confidence loss needs class probabilities; task {task.name!r} has "
                         f"{kind} labels (for a regression target it only rescales the loss)")
    if epochs < 1 or pretrain_epochs < 0:
        raise ValueError(f"epochs must be positive and pretrain_epochs non-negative, got {epochs}, {pretrain_epochs}")
    if pretrain_epochs:
        pretrain.objective(task.spec)  # a task without a pretraining objective fails before any training
    lr = task.lr if lr is None else lr
    protocol = protocol_of(task, kind, epochs, batch_size, lr, aux_coef, warmup_frac)
    trainer = Trainer(task, epochs, batch_size, lr, seed, device, checkpoint_dir, progress, protocol)
    weak = weak_labels(trainer, teacher, kind, teacher_size, pool_size)
    models, records = {"weak": weak.model}, {"weak": weak.records}
    init = None
    if pretrain_epochs:
        init, records["pretrain"] = pretrained_state(trainer, student, weak, pretrain_epochs)
    variant = f"{size_key('A', teacher_size)}{size_key('B', pool_size)}{size_key('pre', pretrain_epochs or None)}"
    models["ceiling"], records["ceiling"] = trainer.train(student, TensorDataset(weak.x, weak.y), task.metric,
                                                          f"ceiling-{student.key}{variant}-seed{seed}",
                                                          lambda m, n: (m, task.loss), init=init)
    models["w2s"], records["w2s"] = trainer.train(
        student, TensorDataset(weak.x, weak.labels), losses.disagreement(kind, task.loss),
        f"student-{student.key}{variant}-seed{seed}{'-aux' if aux_loss else ''}",
        lambda model, n: student_loss(model, kind, task.loss, aux_loss, trainer.steps(n), aux_coef, warmup_frac),
        init=init)
    scores = {role: trainer.score(models[role]) for role in ROLES}
    val = {role: scores[role].get("val", math.nan) for role in ROLES}
    report = Report(
        task=task.name, metric=task.metric_name, seed=seed, teacher=teacher.to_dict(), student=student.to_dict(),
        weak=scores["weak"]["test"], w2s=scores["w2s"]["test"], ceiling=scores["ceiling"]["test"],
        pgr=pgr(scores["weak"]["test"], scores["w2s"]["test"], scores["ceiling"]["test"]),
        val=val, pgr_val=pgr(val["weak"], val["w2s"], val["ceiling"]) if not math.isnan(val["weak"]) else math.nan,
        protocol={**protocol, "seed": seed, "aux_loss": aux_loss, "half_a": weak.sizes[0], "half_b": weak.sizes[1],
                  "pretrain_epochs": pretrain_epochs,
                  "pretrain": pretrain.objective(task.spec) if pretrain_epochs else None, "device": str(trainer.device)},
        records=records)
    if detect and kind == "softmax" and len(weak.x) >= MIN_POINTS:
        report.detection = detection_summary(models, weak, trainer)
    report.seconds = time.perf_counter() - start
    return report


def student_loss(model: nn.Module, kind: str, task_loss, aux_loss: bool, total_steps: int, aux_coef: float,
                 warmup_frac: float) -> tuple[nn.Module, Callable]:
    """(module to train, loss) for the student: with the auxiliary loss, the model is wrapped so that
    its step count (and the loss's schedule) lives in the checkpointed state."""
    if not aux_loss:
        return model, losses.distillation_loss(kind, task_loss)
    progress = losses.Progress(model)
    return progress, losses.ConfidenceLoss(progress, total_steps, aux_coef, warmup_frac)


def detection_summary(models: dict, weak: WeakLabels, trainer: Trainer) -> dict:
    """Overlap detection on half B, and (for analysis only, never for training) the share of each
    group and the teacher's and student's accuracy on it against the true labels."""
    features = predict(models["w2s"], weak.x, trainer.batch_size, trainer.device, features=True)
    found = detect_overlap(weak.labels.numpy(), features.numpy())
    summary: dict = {"fractions": found.fractions(), "fallback": list(found.fallback),
                     "confidence_threshold": found.confidence_threshold, "overlap_threshold": found.overlap_threshold}
    if weak.y.dim() == 1:  # class labels: accuracy per detected group
        truth = weak.y.numpy()
        for role in ("weak", "w2s"):
            pred = predict(models[role], weak.x, trainer.batch_size, trainer.device).argmax(dim=1).numpy()
            summary[f"{role}_accuracy"] = {g: float((pred == truth)[getattr(found, g)].mean()) if getattr(found, g).any()
                                           else math.nan for g in GROUPS}
    return summary
