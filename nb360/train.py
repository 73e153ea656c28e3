"""One training loop for every task: fit a model, evaluate each epoch, record, checkpoint.

Defaults follow NAS-Bench-201's protocol: SGD with Nesterov momentum 0.9, learning rate 0.1,
weight decay 5e-4, cosine decay to 0 over all steps. Evaluation on validation every epoch, on
test every epoch by default (every `test_every` epochs and after the last one, if asked). The same seed gives bit-identical records on the CPU (time fields aside).
"""

from __future__ import annotations

import math
import os
import random
import time
from pathlib import Path
from typing import Callable, NamedTuple, Optional

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from nb360.interrupts import raise_if_interrupted

Metric = Callable[[torch.Tensor, torch.Tensor], "float | torch.Tensor"]
# NB201's optimiser settings: the defaults of `fit`, and what a table's protocol records.
LR, WEIGHT_DECAY, MOMENTUM = 0.1, 5e-4, 0.9
TIME_FIELDS = ("train_seconds", "eval_seconds")
# Raised by every change that alters the numbers a run gives for the same seed (in this loop or in
# the networks): a table's protocol records it, so runs of two revisions never mix in one table.
# 2: avg_pool_3x3 summed by network.AvgPool3 (float rounding differs from torch's AvgPool), and
#    evaluation draws nothing from the global RNG (augmentations see the same stream however often
#    the test split is scored).
REVISION = 2


class Splits(NamedTuple):
    train: Dataset
    val: Optional[Dataset]
    test: Optional[Dataset]


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch, e.g. before building a model so its initial weights repeat."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _loader(ds: Dataset, batch_size: int, shuffle: bool, generator: torch.Generator | None = None) -> DataLoader:
    return DataLoader(ds, batch_size=batch_size, shuffle=shuffle, generator=generator, num_workers=0)


@torch.no_grad()
def evaluate(model: nn.Module, ds: Dataset, metric: Metric, batch_size: int, device: torch.device) -> float:
    """The metric over a whole split, model in eval mode."""
    model.eval()
    preds, targets = [], []
    # a generator of its own: a DataLoader iterator draws a base seed from the global RNG otherwise
    for x, y in _loader(ds, batch_size, shuffle=False, generator=torch.Generator()):
        preds.append(model(x.to(device)))
        targets.append(y.to(device))
    return float(metric(torch.cat(preds), torch.cat(targets)))


def fit(
    model: nn.Module,
    data: Splits | tuple,
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    metric: Metric,
    epochs: int,
    batch_size: int,
    lr: float = LR,
    weight_decay: float = WEIGHT_DECAY,
    momentum: float = MOMENTUM,
    seed: int = 0,
    callback: Callable[[dict], None] | None = None,
    device: torch.device | str | None = None,
    eval_batch_size: int | None = None,
    checkpoint: str | os.PathLike | None = None,
    progress: bool = True,
    test_every: int = 1,
) -> list[dict]:
    """Train `model` on `data.train` and return one record per epoch.

    A record holds epoch (1-based), lr (at the epoch's end), train_loss (mean over steps),
    train_metric (on the epoch's training predictions, in train mode, as NB201 reports it),
    val_metric and test_metric (NaN for a missing split; test_metric NaN too after an epoch that
    `test_every` skips: only every `test_every`-th and the last epoch are tested), train_seconds (cumulative, training
    only) and eval_seconds (this epoch's evaluation). `callback(record)` runs after each epoch.
    With `checkpoint`, the full state is saved there after every epoch and a run that finds the
    file resumes from it, giving the same records as an uninterrupted run.
    """
    if epochs < 1 or batch_size < 1 or test_every < 1:
        raise ValueError(f"epochs, batch_size and test_every must be positive, got {epochs}, {batch_size}, {test_every}")
    data = Splits(*data)
    device = torch.device(device) if device is not None else default_device()
    eval_batch_size = eval_batch_size or batch_size
    model.to(device)
    for fn in (loss, metric):
        if isinstance(fn, nn.Module):
            fn.to(device)
    shuffle_rng = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=True)
    train_loader = _loader(data.train, batch_size, shuffle=True, generator=shuffle_rng)
    total_steps = epochs * len(train_loader)
    records: list[dict] = []
    state_path = Path(checkpoint) if checkpoint is not None else None
    if state_path is not None and state_path.exists():
        records = _restore(state_path, model, optimizer, shuffle_rng, epochs)

    bar = tqdm(total=total_steps, initial=len(records) * len(train_loader), disable=not progress, unit="step", leave=False)
    train_seconds = records[-1]["train_seconds"] if records else 0.0
    step = len(records) * len(train_loader)
    for epoch in range(len(records) + 1, epochs + 1):
        raise_if_interrupted()
        model.train()
        losses, preds, targets = [], [], []
        start = time.perf_counter()
        for x, y in train_loader:
            x, y = x.to(device), y.to(device)
            for group in optimizer.param_groups:
                group["lr"] = 0.5 * lr * (1 + math.cos(math.pi * step / total_steps))
            out = model(x)
            batch_loss = loss(out, y)
            optimizer.zero_grad(set_to_none=True)
            batch_loss.backward()
            optimizer.step()
            losses.append(batch_loss.detach())
            preds.append(out.detach())
            targets.append(y)
            step += 1
            bar.update()
        train_seconds += time.perf_counter() - start
        start = time.perf_counter()
        record = {
            "epoch": epoch,
            "lr": 0.5 * lr * (1 + math.cos(math.pi * step / total_steps)),
            "train_loss": torch.stack(losses).mean().item(),
            "train_metric": float(metric(torch.cat(preds), torch.cat(targets))),
            "val_metric": _maybe_evaluate(model, data.val, metric, eval_batch_size, device),
            "test_metric": _maybe_evaluate(model, data.test if epoch % test_every == 0 or epoch == epochs else None,
                                           metric, eval_batch_size, device),
            "train_seconds": train_seconds,
        }
        record["eval_seconds"] = time.perf_counter() - start
        records.append(record)
        bar.set_postfix(epoch=epoch, loss=f"{record['train_loss']:.4g}", val=f"{record['val_metric']:.4g}")
        if state_path is not None:
            _save(state_path, model, optimizer, shuffle_rng, records, epochs)
        if callback is not None:
            callback(record)
    bar.close()
    return records


def _maybe_evaluate(model: nn.Module, ds: Dataset | None, metric: Metric, batch_size: int, device: torch.device) -> float:
    return float("nan") if ds is None else evaluate(model, ds, metric, batch_size, device)


def _save(path: Path, model: nn.Module, optimizer, shuffle_rng: torch.Generator, records: list[dict], epochs: int) -> None:
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "shuffle_rng": shuffle_rng.get_state(),
        "torch_rng": torch.get_rng_state(),
        "records": records,
        "epochs": epochs,
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)  # a crash mid-write leaves the previous checkpoint intact


def _restore(path: Path, model: nn.Module, optimizer, shuffle_rng: torch.Generator, epochs: int) -> list[dict]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
        if state["epochs"] != epochs:
            raise ValueError(
                f"{path}: checkpoint of a {state['epochs']}-epoch run, this run has {epochs} epochs "
                "(the cosine schedule depends on it); delete the file or match the epochs"
            )
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
    except (KeyError, RuntimeError) as e:
        raise ValueError(f"{path}: not a checkpoint of this model ({e}); delete it or pick another path") from None
    shuffle_rng.set_state(state["shuffle_rng"])
    torch.set_rng_state(state["torch_rng"])
    return list(state["records"])
