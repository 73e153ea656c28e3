"""Writes NATS-format benchmark files with synthetic numbers, in the exact published layout.

The layout is that of NATS-Bench's published files (checked against NATS-Bench
fake_torch_dir/NATS-tss-v1_0-3ffb9-simple/*.pickle.pbz2) and of the collection script that wrote
them and NAS-Bench-360's (NAS-Bench-360 precompute/*/benchmark/tss-collect.py):

- the benchmark file (`fast_mode=False`): a bz2 pickle (protocol 4) of {"meta_archs": 15,625 arch
  strings in official order, "total_archs", "arch2infos": {index: OrderedDict({hp: ArchResults
  state dict})}, "evaluated_indexes": set};
- the archive (`fast_mode=True`): meta.pickle.pbz2 (the same dict with arch2infos None and an empty
  evaluated_indexes) and one {index:06d}.pickle.pbz2 per arch holding OrderedDict({hp: state}).

An ArchResults state is {arch_index, arch_str, all_results: {(dataset, int seed): ResultsCount
state}, dataset_seed: {dataset: sorted seeds}, clear_net_done}; a ResultsCount state has the
per-epoch dicts train_acc1es / train_acc5es / train_losses (keyed by epoch), train_times (an
OrderedDict), eval_acc1es / eval_losses / eval_times keyed "<set>@<epoch>", params (numpy float64,
millions), flop (float, millions), latency ([numpy float64] seconds, or None), seed as a 4-digit
string, epochs, eval_names, arch_config, name, net_state_dict None.

Also used by scripts/bench/table_query.py, which writes the full 15,625-arch file.
"""

from __future__ import annotations

import bz2
import pickle
from collections import OrderedDict
from pathlib import Path

import numpy as np

from nb360.spaces.nb201 import NUM_ARCHS, Arch

# The evaluation sets each dataset's runs carry (published NATS-Bench files; NAS-Bench-360's
# main-tss.py evaluates darcyflow and ninapro on "ori-test" only).
EVAL_SETS = {
    "cifar10-valid": ("x-valid", "ori-test"),
    "cifar10": ("ori-test",),
    "cifar100": ("x-valid", "x-test", "ori-test"),
    "ImageNet16-120": ("x-valid", "x-test", "ori-test"),
    "darcyflow": ("ori-test",),
    "ninapro": ("ori-test",),
}
CLASSES = {"cifar10-valid": 10, "cifar10": 10, "cifar100": 100, "ImageNet16-120": 120, "darcyflow": 1, "ninapro": 18}


def _scores(dataset: str, rng: np.random.Generator, epochs: int) -> tuple[list[float], list[float]]:
    """(accuracies, losses) over epochs as the dataset's files store them. Darcy Flow stores
    loss = relative L2 and accuracy = 1 - loss (NAS-Bench-360 funcs_nasbench.py `procedure`)."""
    if dataset == "darcyflow":
        loss = np.sort(rng.uniform(0.005, 0.2, epochs))[::-1]
        return [1.0 - float(x) for x in loss], [float(x) for x in loss]
    acc = np.sort(rng.uniform(5.0, 95.0, epochs))
    return [float(a) for a in acc], [float(x) for x in rng.uniform(0.05, 4.0, epochs)]


def results_count(dataset: str, arch: Arch, seed: int, epochs: int, rng: np.random.Generator,
                  params: float, flop: float, latency: float | None, final_only: tuple[str, ...] = ()) -> dict:
    """One ResultsCount state. Sets in `final_only` are scored at the last epoch only, as x-valid
    and x-test of cifar100 / ImageNet16-120 (and ori-test of cifar10-valid) at hp=200."""
    train_acc, train_loss = _scores(dataset, rng, epochs)
    eval_acc, eval_loss, eval_times = {}, {}, {}
    for name in EVAL_SETS[dataset]:
        acc, loss = _scores(dataset, rng, epochs)
        for e in range(epochs):
            eval_times[f"{name}@{e}"] = float(rng.uniform(0.5, 3.0))
            if name not in final_only or e == epochs - 1:
                eval_acc[f"{name}@{e}"], eval_loss[f"{name}@{e}"] = acc[e], loss[e]
    return {
        "name": dataset,
        "train_acc1es": dict(enumerate(train_acc)),
        "train_acc5es": {e: min(100.0, a + 10.0) for e, a in enumerate(train_acc)},
        "train_losses": dict(enumerate(train_loss)),
        "train_times": OrderedDict((e, float(rng.uniform(5.0, 10.0))) for e in range(epochs)),
        "arch_config": {"channel": 16, "num_cells": 5, "arch_str": str(arch), "class_num": CLASSES[dataset]},
        "params": np.float64(params),
        "flop": float(flop),
        "seed": f"{seed:04d}",
        "epochs": epochs,
        "latency": None if latency is None else [np.float64(latency)],
        "eval_names": list(EVAL_SETS[dataset]),
        "eval_acc1es": eval_acc,
        "eval_times": eval_times,
        "eval_losses": eval_loss,
        "net_state_dict": None,
    }


def arch_results(index: int, datasets: tuple[str, ...], seeds: tuple[int, ...], epochs: int,
                 rng: np.random.Generator, final_only: tuple[str, ...] = ()) -> dict:
    """One ArchResults state: every dataset trained with every seed; costs shared by the seeds of
    a dataset, as in the published files. NAS-Bench-360's files carry no latency."""
    arch = Arch.from_index(index)
    state = {"arch_index": index, "arch_str": str(arch), "all_results": {}, "dataset_seed": {}, "clear_net_done": True}
    for dataset in datasets:
        params, flop = round(float(rng.uniform(0.07, 1.6)), 6), round(float(rng.uniform(7.0, 220.0)), 5)
        latency = None if dataset in ("darcyflow", "ninapro") else float(rng.uniform(0.005, 0.03))
        for seed in sorted(seeds):
            state["all_results"][(dataset, seed)] = results_count(
                dataset, arch, seed, epochs, rng, params, flop, latency, final_only)
        state["dataset_seed"][dataset] = sorted(seeds)
    return state


def synthetic_nats(indices, datasets: tuple[str, ...], seeds: tuple[int, ...] = (777, 888), epochs: int = 12,
                   hp: str = "12", seed: int = 0, single_seed=(), final_only: tuple[str, ...] = ()) -> dict:
    """A benchmark-file dict for the archs `indices`; archs in `single_seed` ran seeds[0] only."""
    rng = np.random.default_rng(seed)
    single_seed = set(single_seed)
    arch2infos = {
        int(i): OrderedDict({hp: arch_results(int(i), datasets, seeds[:1] if i in single_seed else seeds, epochs, rng, final_only)})
        for i in indices
    }
    return {
        "meta_archs": [str(a) for a in Arch.all()],
        "total_archs": NUM_ARCHS,
        "arch2infos": arch2infos,
        "evaluated_indexes": set(arch2infos),
    }


def _dump(obj, path: Path) -> Path:
    """nats_bench.api_utils.pickle_save: bz2 file, pickle protocol 4."""
    with bz2.BZ2File(path, "wb") as f:
        pickle.dump(obj, f, protocol=4)
    return path


def write_nats_file(data: dict, path: str | Path) -> Path:
    """The benchmark file read by nats_bench.create(path, 'tss', fast_mode=False)."""
    return _dump(data, Path(path))


def write_nats_archive(data: dict, folder: str | Path) -> Path:
    """The archive read by nats_bench.create(folder, 'tss', fast_mode=True)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    _dump({**data, "arch2infos": None, "evaluated_indexes": set()}, folder / "meta.pickle.pbz2")
    for index, hp2info in data["arch2infos"].items():
        _dump(hp2info, folder / f"{index:06d}.pickle.pbz2")
    return folder
