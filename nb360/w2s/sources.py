"""Sources of one real task with different overlap density: the data-centric mechanism on real inputs.

The synthetic problem (`nb360.w2s.synthetic`) builds easy, hard and overlap points from two blocks
of features, the weak model seeing the easy block only. Here the same construction is made from a
task's own inputs: an input's *easy* pattern is its coarse part P x (the means of factor x factor
blocks, spread back over each block), its *hard* pattern the fine residual x - P x. P is an
orthogonal projection, so the two parts are orthogonal and add up to the input, as the two blocks do.
- easy-only points are P x, hard-only points x - P x, overlap points the sharp input x itself;
- the weak teacher sees P of whatever it is given (the weak model's view; P of a hard-only point is
  all zeros, as the synthetic weak view of a hard-only point is); it learns true labels on A;
- a source of overlap density d is a pool B in which a share d of the inputs are sharp and the
  rest split evenly between coarse-only and fine-only ones. Every source transforms the same
  images of B, so that sources differ in their mixture alone;
- student and ceiling (the strong network, seeing the whole input) learn B's teacher labels and
  true labels; all are scored on the task's test split transformed into equal thirds of the three
  kinds (one yardstick for every source), with errors per kind.
Only some channels may carry the pattern (`channels`: Darcy Flow's inputs are the coefficient field
then two coordinate channels, which are left whole).

Per source the run reports PGR, the true overlap density, and the overlap density that detection
(`nb360.w2s.detect`) finds from the teacher's probabilities and (a) the trained student's
penultimate features, (b) the raw inputs, with its precision and recall against the known kinds
(single-label tasks only: detection needs class probabilities). Source selection
(`nb360.w2s.select`) then buys points from the sources by their detected overlap, the strong
representation being the raw inputs: it must be fixed before any label is bought, and nb360 has no
pretrained strong model whose embeddings would play that part.
"""

from __future__ import annotations

import math
import os
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Subset, TensorDataset

from nb360.train import evaluate
from nb360.w2s import losses
from nb360.w2s.detect import EASY, GROUPS, HARD, OVERLAP, confidence, detect_overlap
from nb360.w2s.gap import pgr
from nb360.w2s.protocol import Net, Trainer, halves, materialize, predict, protocol_of, size_key
from nb360.w2s.select import POLICIES, select_sources
from nb360.w2s.synthetic import detection_scores

DENSITIES = (0.1, 0.5, 0.9, 1.0)  # 1.0: no fine-only input in the pool at all
SELECTION_BATCH = 20


def coarse(x: torch.Tensor, factor: int, channels: int | None = None) -> torch.Tensor:
    """P x: each factor x factor block of the first `channels` channels (default all) replaced by its
    mean; the other channels unchanged. Inputs (n, c, h, w) with h and w multiples of `factor`."""
    if x.dim() != 4:
        raise ValueError(f"pattern sources need image-like inputs (n, channels, height, width); got shape "
                         f"{tuple(x.shape)}")
    h, w = x.shape[-2:]
    if factor < 2 or h % factor or w % factor:
        raise ValueError(f"the coarse block size must be at least 2 and divide the inputs' {h}x{w}; got {factor}")
    c = x.shape[1] if channels is None else channels
    if not 1 <= c <= x.shape[1]:
        raise ValueError(f"pattern channels must be in 1..{x.shape[1]} (the inputs' channels), got {c}")
    out = x.clone()
    out[:, :c] = F.interpolate(F.avg_pool2d(x[:, :c], factor), scale_factor=factor, mode="nearest")
    return out


def fine(x: torch.Tensor, factor: int, channels: int | None = None) -> torch.Tensor:
    """x - P x on the pattern channels, the other channels unchanged."""
    c = x.shape[1] if channels is None else channels
    out = x.clone()
    out[:, :c] = x[:, :c] - coarse(x, factor, channels)[:, :c]
    return out


def mixture(x: torch.Tensor, density: float, rng: np.random.Generator, factor: int,
            channels: int | None = None) -> tuple[torch.Tensor, np.ndarray]:
    """The inputs as a source of overlap density `density`: round(density * n) sharp inputs, the rest
    split evenly between coarse-only and fine-only ones (the synthetic `sample`'s rule), kinds in
    random order. Returns (inputs, kind per input: EASY, HARD or OVERLAP)."""
    if not 0 <= density <= 1:
        raise ValueError(f"overlap density must be in [0, 1], got {density}")
    n = len(x)
    n_overlap = int(round(density * n))
    n_easy = (n - n_overlap) // 2
    kind = np.repeat(np.array([EASY, HARD, OVERLAP], dtype=np.int8), [n_easy, n - n_overlap - n_easy, n_overlap])
    kind = kind[rng.permutation(n)]
    out = x.clone()
    easy, hard = torch.from_numpy(kind == EASY), torch.from_numpy(kind == HARD)
    out[easy] = coarse(x[easy], factor, channels)
    out[hard] = fine(x[hard], factor, channels)
    return out, kind


def run_sources(task, teacher: Net, student: Net, *, densities: Sequence[float] = DENSITIES, factor: int = 2,
                channels: int | None = None, epochs: int = 10, seed: int = 0, teacher_size: int | None = None,
                pool_size: int | None = None, batch_size: int | None = None, lr: float | None = None,
                selection_batch: int = SELECTION_BATCH, device: torch.device | str | None = None,
                checkpoint_dir: str | os.PathLike | None = None, progress: bool = False) -> dict[str, list[dict]]:
    """One seed of the sources experiment (module docstring). Returns {"sources": one row per density
    (errors, PGR, detection, the training seconds of its student and ceiling and of the shared
    teacher), "selection": one row per policy of `nb360.w2s.select` (single-label tasks; else empty)}.
    Trainings are checkpointed under `checkpoint_dir` (names start with `sources-`)."""
    if not densities or len(set(densities)) != len(densities):
        raise ValueError(f"the sources' overlap densities must be distinct (one source each), got {list(densities)}")
    kind = losses.label_kind(task)
    lr = task.lr if lr is None else lr
    trainer = Trainer(task, epochs, batch_size, lr, seed, device, checkpoint_dir, progress,
                      protocol_of(task, kind, epochs, batch_size, lr))
    bs = trainer.batch_size
    half_a, half_b = halves(len(task.train), seed, teacher_size, pool_size)
    single = kind == "softmax"
    if single and len(half_b) < selection_batch:
        raise ValueError(f"source selection buys rounds of {selection_batch} points; the pool has {len(half_b)} "
                         "(--pool-size)")
    torch.manual_seed(seed)
    x_a, y_a = materialize(Subset(task.train, half_a.tolist()), bs)
    x_b, y_b = materialize(Subset(task.train, half_b.tolist()), bs)
    x_test, y_test = materialize(task.test, bs)
    # everything a training depends on is in its checkpoint's name, so a rerun with other options never restores it
    pattern = f"-f{factor}" + (f"c{channels}" if channels is not None else "")
    sizes = f"{pattern}{size_key('A', teacher_size)}{size_key('B', pool_size)}-seed{seed}"
    view = lambda x: coarse(x, factor, channels)  # noqa: E731 - the teacher's view of any input
    weak_model, weak_records = trainer.train(teacher, TensorDataset(view(x_a), y_a), task.metric,
                                             f"sources-teacher-{teacher.key}{sizes}", lambda m, n: (m, task.loss))
    test_x, test_kind = mixture(x_test, 1 / 3, np.random.default_rng([seed, 3]), factor, channels)

    def errors(model, inputs) -> dict[str, float]:
        out = {"test": evaluate(model, TensorDataset(inputs, y_test), task.metric, bs, trainer.device)}
        for code, group in enumerate(GROUPS):
            rows = torch.from_numpy(test_kind == code)
            out[group] = evaluate(model, TensorDataset(inputs[rows], y_test[rows]), task.metric, bs, trainer.device)
        return out

    weak_err = errors(weak_model, view(test_x))
    rows, pool_x, pool_probs, pool_kind = [], [], [], []
    for density in densities:  # a source's mixture depends on its density, not on its place in the list
        x_src, src_kind = mixture(x_b, density, np.random.default_rng([seed, 2, round(density * 10**6)]), factor,
                                  channels)
        labels = losses.teacher_labels(kind, predict(weak_model, view(x_src), bs, trainer.device))
        name = f"{student.key}-d{density:g}{sizes}"
        w2s, w2s_records = trainer.train(student, TensorDataset(x_src, labels), losses.disagreement(kind, task.loss),
                                         f"sources-student-{name}",
                                         lambda m, n: (m, losses.distillation_loss(kind, task.loss)))
        ceiling, ceiling_records = trainer.train(student, TensorDataset(x_src, y_b), task.metric,
                                                 f"sources-ceiling-{name}", lambda m, n: (m, task.loss))
        w2s_err, ceiling_err = errors(w2s, test_x), errors(ceiling, test_x)
        row = {"density": density, "true_overlap": float((src_kind == OVERLAP).mean()),
               "weak": weak_err["test"], "w2s": w2s_err["test"], "ceiling": ceiling_err["test"],
               "pgr": pgr(weak_err["test"], w2s_err["test"], ceiling_err["test"]),
               "train_seconds": w2s_records[-1]["train_seconds"] + ceiling_records[-1]["train_seconds"],
               "teacher_seconds": weak_records[-1]["train_seconds"]}
        for group in GROUPS:
            row.update({f"weak_{group}": weak_err[group], f"w2s_{group}": w2s_err[group],
                        f"ceiling_{group}": ceiling_err[group]})
        if single:  # the teacher's confidence (detection's first step) on each kind of the source's points
            margin = confidence(labels.numpy())
            row.update({f"teacher_confidence_{g}": float(margin[src_kind == c].mean()) if (src_kind == c).any()
                        else math.nan for c, g in enumerate(GROUPS)})
            features = {"student": predict(w2s, x_src, bs, trainer.device, features=True).numpy(),
                        "inputs": x_src.flatten(1).numpy()}
            for source, feats in features.items():
                found = detect_overlap(labels.numpy(), feats)
                scores = detection_scores(src_kind == OVERLAP, found.overlap)
                row.update({f"detected_overlap_{source}": float(found.overlap.mean()),
                            f"precision_{source}": scores["precision"], f"recall_{source}": scores["recall"]})
            pool_x.append(x_src.flatten(1).numpy())
            pool_probs.append(labels.numpy())
            pool_kind.append(src_kind)
        rows.append(row)
    selection = []
    if single:
        sources = np.split(np.arange(sum(len(p) for p in pool_x)), np.cumsum([len(p) for p in pool_x])[:-1])
        probs, inputs, kinds = np.concatenate(pool_probs), np.concatenate(pool_x), np.concatenate(pool_kind)
        best_pgr = int(np.nanargmax([r["pgr"] for r in rows])) if any(math.isfinite(r["pgr"]) for r in rows) else -1
        for policy in POLICIES:
            chosen, log = select_sources(sources, probs, inputs, len(x_b), policy=policy, batch_size=selection_batch,
                                         seed=seed)
            played = np.bincount([r["source"] for r in log], minlength=len(densities)) / len(log)
            selection.append({"policy": policy, "true_overlap": float((kinds[chosen] == OVERLAP).mean()),
                              "detected_overlap": float(np.mean([r["overlap_fraction"] for r in log])),
                              "share_best_pgr": float(played[best_pgr]) if best_pgr >= 0 else math.nan,
                              **{f"share_d{d:g}": float(s) for d, s in zip(densities, played)}})
    return {"sources": rows, "selection": selection}
