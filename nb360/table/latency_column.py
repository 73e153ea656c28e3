"""The latency column of a table: the forward time of the table's own network for every iso class,
measured on this machine's CPU, resumable, with its noise measured alongside.

For a table built under a protocol (task, C, N, resolution in its `protocol` attribute), the
representative of every selected iso class is built as the table trained it, and one input (batch
size 1, the deployment case of one sample at a time) is passed forward `repeats` times after a
warm-up on one CPU thread (`nb360.spaces.costs.measure_latency_ms`: the median); the value goes to
`/archs/latency_ms` for every member of the class. No data are read: the network's input shape is
the task card's, at the protocol's resolution.

Noise: latency on a shared machine moves with what else runs. After the classes of a call are
measured, `noise_sample` of them (a fixed random draw) are measured again, and the column's
settings record the Spearman correlation of the two passes and the median relative difference of
a class between them: what a ranking by this column can be trusted for.

Resuming: the column is the checkpoint. Classes not yet measured are NaN; the column is written
every `save_every` classes and when the run stops (an error, Ctrl-C, SIGTERM), so the same call
measures only what is still NaN. The settings (repeats, batch size, threads, device, C, N,
resolution, the CPU) are stored with the column, and a call with other settings is refused rather
than mixed in (`overwrite=True` starts afresh). The table file has one writer at a time: run this
after the table's build has finished.
"""

from __future__ import annotations

import json
import os
import platform
import time

import numpy as np
from scipy import stats
from tqdm.auto import tqdm

from nb360.interrupts import raise_if_interrupted, sigterm_as_interrupt
from nb360.spaces.costs import measure_latency_ms
from nb360.spaces.nb201 import NUM_ARCHS, ArchLike
from nb360.spaces.network import build
from nb360.table.benchmark import resolve
from nb360.table.build import select_classes, table_spec
from nb360.table.proxy_columns import torch_threads
from nb360.table.schema import TableWriter

COLUMN = "latency_ms"
DEFAULT_REPEATS = 10
NOISE_SAMPLE = 100
SAVE_EVERY = 200
THREADS = 1  # one thread: what a single-sample deployment gets, and steady on a shared machine


def build_latency_column(table: str | os.PathLike, repeats: int = DEFAULT_REPEATS, archs: str | int | list[ArchLike] = "all",
                         noise_sample: int = NOISE_SAMPLE, save_every: int = SAVE_EVERY, overwrite: bool = False,
                         progress: bool = True) -> dict:
    """Measure the latency of the iso classes `archs` selects (default: all 6,466; see
    `nb360.table.build.select_classes`) and store it as the table's `latency_ms` column. Returns
    a summary: table, classes, measured, skipped, seconds, the noise (Spearman of two passes,
    median relative difference, the sample's size) and the column's median."""
    start = time.perf_counter()
    if repeats < 1 or save_every < 1 or noise_sample < 0:
        raise ValueError(f"repeats and save_every must be >= 1 and noise_sample >= 0, got {repeats}, {save_every}, "
                         f"{noise_sample}")
    path = resolve(table)
    spec, C, N = table_spec(path)
    settings = {"repeats": repeats, "batch_size": 1, "threads": THREADS, "device": "cpu", "C": C, "N": N,
                "resolution": list(spec.in_shape), "cpu": platform.processor() or platform.machine()}
    classes = select_classes(archs)

    def measure(rep: int) -> float:
        return measure_latency_ms(build(rep, spec, C, N), spec.input_shape, repeats)

    with TableWriter(path) as writer, sigterm_as_interrupt(), torch_threads(THREADS):
        column, noise = _start_column(writer, settings, overwrite)
        if noise:
            settings["noise"] = noise  # kept until this call measures a new sample
        todo = [rep for rep in classes if np.isnan(column[rep])]
        done = 0
        try:
            for rep in tqdm(todo, unit="class", desc=f"latency {path.name}", disable=not progress, dynamic_ncols=True):
                raise_if_interrupted()
                column[classes[rep]] = measure(rep)
                done += 1
                if done % save_every == 0:
                    _write(writer, column, settings)
            sample = [todo[i] for i in sorted(np.random.default_rng(0).choice(len(todo), min(noise_sample, len(todo)),
                                                                             replace=False))]
            again = np.array([measure(rep) for rep in sample])
            first = column[sample]
            if len(sample) >= 3:
                settings["noise"] = {"classes": len(sample),
                                     "spearman_two_passes": float(stats.spearmanr(first, again).statistic),
                                     "median_relative_difference": float(np.median(np.abs(again - first) / first))}
        finally:
            _write(writer, column, settings)
    noise = settings.get("noise", {})
    return {"table": str(path), "classes": len(classes), "measured": done, "skipped": len(classes) - len(todo),
            "seconds": time.perf_counter() - start, "noise_classes": noise.get("classes", 0),
            "spearman_two_passes": noise.get("spearman_two_passes", float("nan")),
            "median_relative_difference": noise.get("median_relative_difference", float("nan")),
            "median_latency_ms": float(np.nanmedian(column)) if np.isfinite(column).any() else float("nan")}


def _start_column(writer: TableWriter, settings: dict, overwrite: bool) -> tuple[np.ndarray, dict]:
    """The column to fill and the noise recorded with it: the table's own if it was measured with
    the same settings, NaN where it has none (or `overwrite`); a column measured with other
    settings (another CPU included) is an error."""
    dataset = writer.file["archs"][COLUMN]
    column = dataset[()].astype(float)
    found = json.loads(dataset.attrs.get("settings", "{}"))
    if overwrite or not np.isfinite(column).any():
        return np.full(NUM_ARCHS, np.nan), {}
    noise = found.pop("noise", {})
    if found != settings:
        differing = "; ".join(f"{key} (table: {found.get(key)!r}, now: {settings.get(key)!r})"
                              for key in sorted(set(found) | set(settings)) if found.get(key) != settings.get(key))
        raise ValueError(f"{writer.path}: its {COLUMN} column was measured with other settings; differing: {differing}. "
                         "Use the same settings to resume, or --overwrite to measure it again")
    return column, noise


def _write(writer: TableWriter, column: np.ndarray, settings: dict) -> None:
    writer.set_costs(**{COLUMN: column})
    writer.file["archs"][COLUMN].attrs["settings"] = json.dumps(settings, sort_keys=True)
