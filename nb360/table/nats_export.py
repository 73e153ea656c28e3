"""Any nb360 table as a NATS-Bench topology file (`nb360 table export TABLE --format nats`).

The file has the layout of NATS-Bench's published files and of the collection script that wrote
them (see `nb360.table.nats` and tests/table/nats_fixture.py): a `.pickle.pbz2` benchmark file for
`nats_bench.create(path, "tss")`, or the fast-mode archive folder for `create(folder, "tss",
fast_mode=True)`. NATS-Bench's API then answers the table's numbers (accuracies as
`nb360.table.nats.ACCURACY` converts the metric, per epoch and seed, training times, params, FLOPs,
latency), and `nb360 table import` reads the file back to the same table.

What a table lacks is left out as NATS-Bench leaves out what a run lacks: evaluation losses (None; on
Darcy Flow the loss is the metric, relative L2, as in NAS-Bench-360's files) and test scores of
epochs a `test_every` protocol skipped (no entry for that epoch, as the sets NATS-Bench scores at the
last epoch only). Evaluation times, which tables do not keep either, are written as 0 for every set
and epoch: NATS-Bench's `simulate_train_eval` adds one evaluation's time to the training time and
fails on a missing one, and with 0 it charges the training time, as nb360's own `simulate` does.
"""

from __future__ import annotations

import bz2
import os
import pickle
import shutil
from collections import OrderedDict
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from nb360.spaces.nb201 import NUM_ARCHS
from nb360.table.benchmark import Benchmark, arch_strings
from nb360.table.nats import ACCURACY, PICKLE_EXT, class_count, dataset_spec


def export_nats(table: Benchmark | str | os.PathLike, out: str | os.PathLike, overwrite: bool = False,
                progress: bool = True) -> Path:
    """Write `table` as a NATS-Bench topology source at `out`: a single benchmark file if `out` ends
    in .pickle.pbz2, else the fast-mode archive folder. Every arch with a finished run is in it,
    with its finished seeds."""
    bench = table if isinstance(table, Benchmark) else Benchmark.load(table)
    out = Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out}: already there; choose another path or replace it (overwrite=True, --overwrite)")
    data = nats_data(bench, progress)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.with_name(f".{out.name}.new")
    if str(out).endswith(PICKLE_EXT):
        _dump(data, staging)
    else:
        staging.mkdir(parents=True, exist_ok=True)
        _dump({**data, "arch2infos": None, "evaluated_indexes": set()}, staging / f"meta{PICKLE_EXT}")
        for index, hp2info in tqdm(data["arch2infos"].items(), desc="write archive", disable=not progress):
            _dump(hp2info, staging / f"{index:06d}{PICKLE_EXT}")
    if out.is_dir():
        shutil.rmtree(out)
    os.replace(staging, out)
    return out


def nats_data(bench: Benchmark, progress: bool = False) -> dict:
    """The benchmark-file dict {meta_archs, total_archs, arch2infos, evaluated_indexes} of a table."""
    protocol = bench.protocol
    dataset, hp = bench.task, str(protocol.get("hp", bench.epochs))
    # an imported table keeps its file's set names; a built one has validation and test
    sets = {"val_metric": protocol.get("val_set", "x-valid"), "test_metric": protocol.get("test_set", "x-test")}
    sets = {curve: name for curve, name in sets.items() if name is not None}
    spec = dataset_spec(dataset, set(sets.values()))
    if (spec.val, spec.test) != (sets.get("val_metric"), sets["test_metric"]):  # import must find them again
        raise ValueError(f"{bench.path}: sets {sets} of dataset {dataset!r} would not be read back as such "
                         f"(the import would take validation {spec.val!r}, test {spec.test!r})")
    to_accuracy = ACCURACY[bench.metric][0]
    curves = {name: bench.curves(name)
              for name in ("train_loss", "train_metric", "val_metric", "test_metric", "train_seconds")}
    # (A, S) epochs each run holds: all of them, or fewer for a run imported from a file that has it so
    lengths = np.isfinite(curves["train_loss"]).sum(axis=-1)
    finished = lengths > 0
    costs = bench.df[["params", "flops", "latency_ms"]].to_numpy()
    config = {"channel": int(protocol.get("C", 16)), "num_cells": int(protocol.get("N", 5)),
              "class_num": class_count(dataset)}
    strings = arch_strings()
    arch2infos = {}
    for index in tqdm(np.flatnonzero(finished.any(axis=1)).tolist(), desc=f"export {bench.path.name}",
                      disable=not progress):
        seeds = [seed for seed, done in zip(bench.seeds, finished[index]) if done]
        params, flops, latency_ms = costs[index]
        runs = {}
        for seed in seeds:
            col = bench.seeds.index(seed)
            run = {name: values[index, col, :lengths[index, col]].astype(np.float64) for name, values in curves.items()}
            runs[(dataset, seed)] = _results_count(run, sets, dataset, strings[index], seed, config, params, flops,
                                                   latency_ms, to_accuracy, bench.metric == "relative_l2")
        arch2infos[index] = OrderedDict({hp: {"arch_index": index, "arch_str": strings[index], "all_results": runs,
                                              "dataset_seed": {dataset: sorted(seeds)}, "clear_net_done": True}})
    return {"meta_archs": list(strings), "total_archs": NUM_ARCHS, "arch2infos": arch2infos,
            "evaluated_indexes": set(arch2infos)}


def _results_count(run: dict[str, np.ndarray], sets: dict[str, str], dataset: str, arch: str, seed: int,
                   config: dict, params: float, flops: float, latency_ms: float, to_accuracy, loss_is_metric: bool
                   ) -> dict:
    """One ResultsCount state (NATS-Bench api_utils.py) from one run's per-epoch curves."""
    epochs = len(run["train_loss"])
    seconds = run["train_seconds"]
    per_epoch = np.diff(seconds, prepend=0.0)  # the import sums them back up
    eval_acc, eval_loss = {}, {}
    for curve, name in sets.items():
        for e, value in enumerate(run[curve]):
            if np.isfinite(value):
                eval_acc[f"{name}@{e}"] = float(to_accuracy(value))
                eval_loss[f"{name}@{e}"] = float(value) if loss_is_metric else None
    return {
        "name": dataset,
        "train_acc1es": {e: float(to_accuracy(v)) for e, v in enumerate(run["train_metric"])},
        "train_acc5es": None,
        "train_losses": {e: float(v) for e, v in enumerate(run["train_loss"])},
        "train_times": OrderedDict((e, float(t)) for e, t in enumerate(per_epoch)),
        "arch_config": {**config, "arch_str": arch},
        "params": np.float64(params / 1e6),
        "flop": float(flops / 1e6),
        "seed": f"{seed:04d}",
        "epochs": epochs,
        "latency": None if not np.isfinite(latency_ms) else [np.float64(latency_ms / 1e3)],
        "eval_names": list(sets.values()),
        "eval_acc1es": eval_acc,
        "eval_times": {f"{name}@{e}": 0.0 for name in sets.values() for e in range(epochs)},
        "eval_losses": eval_loss,
        "net_state_dict": None,
    }


def _dump(obj, path: Path) -> None:
    """nats_bench.api_utils.pickle_save: a bz2 file of a protocol-4 pickle."""
    with bz2.BZ2File(path, "wb") as f:
        pickle.dump(obj, f, protocol=4)
