"""Search for the student architecture using only the weak teacher's labels.

The teacher is trained on half A as in `run_w2s` (same seed: same halves, same teacher and the
same checkpoint). Half B is cut again: candidates train on B_fit with the teacher's labels and are
scored by their disagreement with the teacher on the held-out B_val (`nb360.w2s.losses.disagreement`:
1 - agreement for single-label tasks, the distillation loss otherwise). No true label enters the
loop. Any searcher of `nb360.search` runs through its ask/tell interface with real training,
in-process or on Ray Tune (a local Ray or a cluster: the relabelled task goes to the trials through
the object store); a multi-fidelity searcher's budget of e epochs trains the candidate for e epochs (at most
`epochs`, its own cosine schedule), and the result is the best of the full-length candidates.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import TensorDataset
from tqdm.auto import tqdm

from nb360.search import Algo, make_searcher
from nb360.spaces.nb201 import ArchLike
from nb360.spaces.network import DEFAULT_C, DEFAULT_N
from nb360.w2s import losses
from nb360.w2s.protocol import Net, Trainer, protocol_of, weak_labels

HOLDOUT = 0.25  # share of half B that scores candidates


@dataclass
class StudentSearch:
    """The search's result: `best` (lowest disagreement with the teacher on B_val) and every trial
    (trial, arch, index, epochs, score, seconds)."""

    best: Net
    best_score: float
    trials: list[dict]
    teacher: Net
    algo: str


def search_student(task, teacher: Net | ArchLike, algo: Algo = "re", budget: int = 10, *, C: int = DEFAULT_C,
                   N: int = DEFAULT_N, teacher_C: int | None = None, teacher_N: int | None = None, epochs: int = 10,
                   batch_size: int | None = None, lr: float | None = None, seed: int = 0, holdout: float = HOLDOUT,
                   device: torch.device | str | None = None, checkpoint_dir: str | os.PathLike | None = None,
                   progress: bool = True, backend: str = "inprocess", address: str | None = None,
                   num_cpus: int | None = None, teacher_size: int | None = None,
                   pool_size: int | None = None) -> StudentSearch:
    """Search `budget` student cells (width C, depth N) with `algo` (a name of nb360.search.SEARCHERS
    or a Searcher class) against the teacher's labels of half B. `lr`: default the task's.
    `backend`: "inprocess", or "ray" (`address` of a cluster, else a local Ray with `num_cpus`).
    `teacher_size`, `pool_size`: the sizes of A and B, as `run_w2s` takes them."""
    if backend not in ("inprocess", "ray"):
        raise ValueError(f"backend must be 'inprocess' or 'ray', got {backend!r}")
    if budget < 1:
        raise ValueError(f"budget must be at least 1 evaluation, got {budget}")
    if not 0 < holdout < 1:
        raise ValueError(f"holdout must be a fraction in (0, 1), got {holdout}")
    teacher = Net.of(teacher, teacher_C or C, teacher_N or N)
    kind = losses.label_kind(task)
    lr = task.lr if lr is None else lr
    trainer = Trainer(task, epochs, batch_size, lr, seed, device, checkpoint_dir, False,
                      protocol_of(task, kind, epochs, batch_size, lr))
    weak = weak_labels(trainer, teacher, kind, teacher_size, pool_size)  # B's true targets (weak.y): never used here
    x_b, labels = weak.x, weak.labels
    order = np.random.default_rng([seed, 1]).permutation(len(x_b))
    n_val = max(1, int(round(holdout * len(x_b))))
    fit_rows, val_rows = torch.from_numpy(order[n_val:]), torch.from_numpy(order[:n_val])
    fit_data = TensorDataset(x_b[fit_rows], labels[fit_rows])
    val_data = TensorDataset(x_b[val_rows], labels[val_rows])
    metric = losses.disagreement(kind, task.loss)
    if backend == "ray":
        trials = _search_on_ray(task, kind, fit_data, val_data, metric, algo, budget, C, N, epochs, batch_size, lr,
                                seed, address, num_cpus, progress)
    else:
        trials = _search_inprocess(task, kind, fit_data, val_data, metric, algo, budget, C, N, epochs, batch_size,
                                   lr, seed, device, progress)
    best = min((r for r in trials if r["epochs"] == epochs), key=lambda r: r["score"], default=None) \
        or min(trials, key=lambda r: r["score"])
    return StudentSearch(Net.of(best["index"], C, N), best["score"], trials, teacher, str(algo))


def _search_inprocess(task, kind, fit_data, val_data, metric, algo, budget, C, N, epochs, batch_size, lr, seed, device,
                      progress) -> list[dict]:
    searcher = make_searcher(algo, seed, max_epochs=epochs)
    trials: list[dict] = []
    for t in tqdm(range(budget), desc=f"w2s search ({algo})", disable=not progress, leave=False):
        trial = searcher.ask_trial()
        trial_epochs = min(trial.budget or epochs, epochs)
        start = time.perf_counter()
        candidate = Trainer(task, trial_epochs, batch_size, lr, seed, device, None, False, {})
        records = candidate.train(Net(trial.arch, C, N), fit_data, metric, f"candidate-{t}",
                                  lambda m, n: (m, losses.distillation_loss(kind, task.loss)), val=val_data)[1]
        score = records[-1]["val_metric"]  # disagreement with the teacher on B_val
        score = score if math.isfinite(score) else math.inf
        searcher.tell(trial.arch, score, trial.budget)
        trials.append({"trial": t, "arch": str(trial.arch), "index": trial.arch.index, "epochs": trial_epochs,
                       "score": score, "seconds": time.perf_counter() - start})
    return trials


def _search_on_ray(task, kind, fit_data, val_data, metric, algo, budget, C, N, epochs, batch_size, lr, seed, address,
                   num_cpus, progress) -> list[dict]:
    """The same search through `nb360.search.ray_tune.search_task`, on a task whose training split is
    B_fit with the teacher's labels and whose validation split is B_val (no test split: the
    candidates never see true labels)."""
    from nb360.data.task import Task
    from nb360.search.ray_tune import search_task
    from nb360.train import Splits

    relabelled = Task(task.name, task.card, Splits(fit_data, val_data, None), losses.distillation_loss(kind, task.loss),
                      metric, task.spec, task.batch_size)
    frame = search_task(relabelled, [algo], [seed], budget, epochs=epochs, C=C, N=N, batch_size=batch_size, lr=lr,
                        address=address, num_cpus=num_cpus, train_seed=seed, progress=progress)
    return [{"trial": int(r.trial), "arch": r.arch, "index": int(r.index), "epochs": int(r.epochs),
             "score": float(r.val) if math.isfinite(r.val) else math.inf, "seconds": float(r.wall_seconds)}
            for r in frame.itertuples()]


def best_from_file(path: str | os.PathLike, algo: str | None = None) -> tuple[int, dict]:
    """The architecture to use from a `nb360 search` best.json ({algo: {seed: entry | null}}, each
    entry with `index` and `val`): the entry with the lowest validation score, among `algo`'s seeds
    if given. Returns (official index, {"file", "algo", "seed", **entry})."""
    import json
    from pathlib import Path

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file (expected a best.json written by `nb360 search`)")
    try:
        best = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not JSON ({e})") from None
    if not isinstance(best, dict) or not all(isinstance(v, dict) for v in best.values()):
        raise ValueError(f"{path}: expected {{algo: {{seed: entry}}}} as `nb360 search` writes best.json")
    if algo is not None and algo not in best:
        raise ValueError(f"{path}: no algorithm {algo!r}; the file has {', '.join(best) or 'none'}")
    entries = [(a, seed, e) for a, seeds in best.items() if algo in (None, a) for seed, e in seeds.items() if e]
    for a, seed, e in entries:
        if not isinstance(e, dict) or "index" not in e or "val" not in e:
            raise ValueError(f"{path}: entry {a}/{seed} lacks 'index' or 'val': {e!r}")
    if not entries:
        raise ValueError(f"{path}: no finished search (every entry is null)")
    a, seed, e = min(entries, key=lambda t: (t[2]["val"], t[0], t[1]))
    return int(e["index"]), {"file": str(path), "algo": a, "seed": seed, **e}
