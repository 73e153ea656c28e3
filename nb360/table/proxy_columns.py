"""Zero-cost proxy columns of a table: every selected iso class scored once, resumable.

For a table of task T built under a protocol (C, N, resolution in the table's `protocol`
attribute), each proxy of `nb360.proxies` is computed for the representative of every selected
isomorphism class, on T's network with the protocol's C and N, one fixed batch of T's training
split and T's loss, and written to `/proxies/<name>` for every member of the class (members build
the same function, as the table's runs are shared). Raw proxy values are stored (see
`nb360.proxy_names.PROXY_DIRECTION` for their direction).

Resuming: the columns themselves are the checkpoint. Classes not yet computed are NaN; the columns
are written every `save_every` classes and when the run stops (an error, Ctrl-C, SIGTERM), so the
same call computes only what is still NaN. Each column carries the settings that made it (batch size, seed,
device, C, N, resolution, data digest) as its `settings` attribute, and a run with other settings
is refused rather than mixed in (`overwrite=True` starts the columns afresh). A class whose proxy
is NaN by definition (jacob_cov of a cell with no input-output path) is recomputed on resume; there
are a handful of those.

The table file has one writer at a time: run this after the table's build has finished.
"""

from __future__ import annotations

import json
import os
import time
from contextlib import contextmanager

import numpy as np
import torch
from tqdm.auto import tqdm

from nb360.data.task import Task
from nb360.interrupts import raise_if_interrupted, sigterm_as_interrupt
from nb360.proxies import compute
from nb360.proxy_names import parse_names
from nb360.spaces.nb201 import ArchLike, NUM_ARCHS
from nb360.table.benchmark import resolve
from nb360.table.build import data_sha256, select_classes, table_task
from nb360.table.schema import TableWriter
from nb360.train import default_device

# One batch of 64, as zero-cost-nas scores NB201 cells (nasbench2_pred.py, --batch_size 64).
DEFAULT_BATCH_SIZE = 64
SAVE_EVERY = 200


def proxy_batch(task: Task, batch_size: int = DEFAULT_BATCH_SIZE, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """`batch_size` samples of the task's training split (all of it if smaller), drawn without
    replacement with `seed`: the one batch every cell of a table is scored on."""
    if batch_size < 2:
        raise ValueError(f"a proxy batch needs at least 2 samples (naswot and jacob_cov compare samples), got {batch_size}")
    train = task.train
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[:batch_size]
    samples = [train[int(i)] for i in order]
    return torch.stack([x for x, _ in samples]), torch.stack([torch.as_tensor(y) for _, y in samples])


def build_proxy_columns(
    table: str | os.PathLike,
    names: str | list[str] | None = None,
    data_root: str | os.PathLike | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    seed: int = 0,
    archs: str | int | list[ArchLike] = "all",
    device: str | torch.device | None = None,
    save_every: int = SAVE_EVERY,
    overwrite: bool = False,
    threads: int = 1,
    progress: bool = True,
) -> dict:
    """Compute proxies `names` (default: all) for the iso classes `archs` selects (default: all
    6,466; see `nb360.table.build.select_classes`) of table `table` and store them as proxy columns.

    The network is initialised with `seed`, which also draws the batch (`batch_size` training
    samples) and zen's Gaussian inputs. Resumes an interrupted run; `overwrite` recomputes the
    columns from scratch. `threads`: torch's CPU threads while computing; one by default, because
    a small network and one batch gain little from more, and extra threads that share busy cores
    spin instead of working (a run measured 13x slower with 2 threads on 2 loaded cores).

    Returns a summary: table, proxies, classes, computed, skipped, seconds (all of it) and
    seconds_per_class (of the computation alone).
    """
    start = time.perf_counter()
    if save_every < 1 or threads < 1:
        raise ValueError(f"save_every and threads must be >= 1, got {save_every}, {threads}")
    names = parse_names(names)
    path = resolve(table)
    task, C, N, protocol = table_task(path, data_root)
    device = torch.device(device) if device is not None else default_device()
    settings = {"batch_size": batch_size, "seed": seed, "device": device.type, "C": C, "N": N,
                "resolution": list(task.spec.in_shape), "task": task.name,
                "data_sha256": protocol.get("data_sha256") or data_sha256(task)}
    inputs, targets = proxy_batch(task, batch_size, seed)
    inputs, targets = inputs.to(device), targets.to(device)
    classes = select_classes(archs)
    with TableWriter(path) as writer, sigterm_as_interrupt(), torch_threads(threads):
        columns = _start_columns(writer, names, settings, overwrite)
        todo = [rep for rep in classes if any(np.isnan(columns[name][rep]) for name in names)]
        bar = tqdm(todo, unit="class", desc=f"proxies {path.name}", disable=not progress, dynamic_ncols=True)
        done, loop_start = 0, time.perf_counter()
        try:
            for rep in bar:
                raise_if_interrupted()
                values = compute(rep, task.spec, inputs, targets, task.loss, names, C=C, N=N, seed=seed)
                for name, value in values.items():
                    columns[name][classes[rep]] = value
                done += 1
                if done % save_every == 0:
                    _write(writer, columns, settings)
        finally:
            bar.close()
            _write(writer, columns, settings)
    end = time.perf_counter()
    return {"table": str(path), "proxies": list(names), "classes": len(classes), "computed": done,
            "skipped": len(classes) - len(todo), "seconds": end - start,
            "seconds_per_class": (end - loop_start) / done if done else float("nan")}


@contextmanager
def torch_threads(threads: int):
    """torch's CPU threads set to `threads` for the block, restored after."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _start_columns(writer: TableWriter, names: tuple[str, ...], settings: dict, overwrite: bool) -> dict[str, np.ndarray]:
    """The proxy columns to fill: the table's own where it has them with the same settings, NaN
    where it has none (or `overwrite`); a column made with other settings is an error."""
    group = writer.file["proxies"]
    columns = {}
    for name in names:
        if name in group and not overwrite:
            found = json.loads(group[name].attrs.get("settings", "{}"))
            if found != settings:
                differing = "; ".join(f"{key} (table: {found.get(key)!r}, now: {settings.get(key)!r})"
                                      for key in sorted(set(found) | set(settings)) if found.get(key) != settings.get(key))
                raise ValueError(f"{writer.path}: proxy column {name!r} was computed with other settings; "
                                 f"differing: {differing}. Use the same settings to resume, or overwrite "
                                 "(--overwrite) to recompute it")
            columns[name] = group[name][()]
        else:
            columns[name] = np.full(NUM_ARCHS, np.nan)
    return columns


def _write(writer: TableWriter, columns: dict[str, np.ndarray], settings: dict) -> None:
    for name, values in columns.items():
        writer.set_proxy(name, values, settings)
