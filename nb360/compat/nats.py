"""NATS-Bench's topology API over any nb360 table, so that code written for NATS-Bench runs on it.

`create(table, "tss")` stands where `nats_bench.create(path, "tss")` stood and answers the calls NAS
code makes on `nats_bench.api_topology.NATStopology` (nats_bench 1.8) with NATS-Bench's words, keys,
units and randomness: `len(api)`, `api[i]`, `arch`, `random`, `query_index_by_arch`, `get_more_info`,
`simulate_train_eval` with its running clock (`reset_time`, `used_time`), `get_cost_info`,
`get_latency`, `find_best`, `get_net_config`. It reads the table through `Benchmark` and needs
neither torch nor nats_bench.

What an nb360 table holds, in NATS-Bench's terms:
- `dataset`: the table's task (an imported NATS-format table keeps its dataset name); `hp`: the one
  training length the table has (its epochs; an imported table keeps its hp). `create(..., hps=...)`
  lets more hp names answer with that same length, for scripts that ask for "12" while searching
  and "200" when reporting.
- Scores come as NATS-Bench's "accuracy", higher is better: top-1 in percent for 0-1 errors, as
  NATS-Bench; 1 - relative L2 for Darcy Flow, as NAS-Bench-360's own NATS-format files; for the
  metrics no NATS-format file holds, the score in percent (mAP, AUROC, macro F1) or minus MAE8
  (PSICOV) (`nb360.table.nats.ACCURACY`, the inverse of what `nb360 table import` applies).
- Evaluation losses and evaluation times are not in nb360 tables: they are None, as NATS-Bench
  gives an unknown time (Darcy Flow's loss is its metric, relative L2, and is given). So the time a
  `simulate_train_eval` costs is the training time alone.
- `is_random=True` draws one finished run with Python's `random`, as NATS-Bench does, so
  `random.seed(...)` in a script makes it repeat; False averages the seeds; an int picks that seed.
"""

from __future__ import annotations

import os
import random
from collections.abc import Sequence
from typing import Any

import numpy as np

from nb360 import cards
from nb360.spaces.nb201 import NUM_ARCHS, Arch
from nb360.table.benchmark import Benchmark, arch_strings
from nb360.table.nats import ACCURACY, class_count

# nats_bench.api_utils.ArchResults.get_config: the network NATS-Bench names for a topology cell.
NET_NAME = "infer.tiny"
# NATS-Bench API calls that hand out its internal objects or trained weights, which a table lacks.
NOT_OFFERED = ("query_meta_info_by_index", "query_by_index", "query_info_str_by_arch", "query_by_arch",
               "get_net_param", "show", "statistics", "reload", "clear_params", "get_unique_str")


def create(table: Benchmark | str | os.PathLike, search_space: str = "tss", fast_mode: bool = False,
           verbose: bool = False, hps: Sequence[str | int] = ()) -> NATStopology:
    """The NATS-Bench topology API over `table` (a Benchmark, a shipped table's name or a path),
    in the place of `nats_bench.create(file, search_space, fast_mode, verbose)`. `fast_mode` and
    `verbose` are accepted for the same call to work and change nothing: a table is read lazily
    anyway, and the API prints nothing."""
    if search_space not in ("tss", "topology"):
        raise ValueError(f"search space {search_space!r}: nb360 tables hold NATS-Bench's topology space "
                         "('tss' or 'topology') only")
    return NATStopology(table, hps=hps, verbose=verbose)


class NATStopology:
    """See the module's docstring: NATS-Bench's `NATStopology` calls, answered from an nb360 table."""

    search_space_name = "topology"
    is_topology, is_size, fast_mode = True, False, False

    def __init__(self, table: Benchmark | str | os.PathLike, hps: Sequence[str | int] = (), verbose: bool = False):
        self.table = table if isinstance(table, Benchmark) else Benchmark.load(table)
        self.verbose = verbose  # NATS-Bench's attribute; nothing is printed either way
        self.filename = self.table.path.name
        self.meta_archs: list[str] = list(arch_strings())
        self.archstr2index = {arch: i for i, arch in enumerate(self.meta_archs)}
        protocol = self.table.protocol
        self.dataset: str = self.table.task
        own_hp = str(protocol.get("hp", self.table.epochs))
        self._hps = [own_hp] + [str(h) for h in hps if str(h) != own_hp]
        self._accuracy = ACCURACY[self.table.metric][0]  # a table's metric -> NATS-Bench's accuracy
        self._has_loss = self.table.metric == "relative_l2"  # NAS-Bench-360's Darcy loss is the metric
        finished = np.isfinite(self.table.at_epoch("train_loss"))  # (A, S): runs with a last epoch
        self._seeds_done: list[list[int]] = [[self.table.seeds[c] for c in np.flatnonzero(row)] for row in finished]
        self.evaluated_indexes: set[int] = set(np.flatnonzero(finished.any(axis=1)).tolist())
        # Which get_more_info prefix each curve fills, and which set names find_best reads it by:
        # as NATS-Bench names the sets an imported file had; a built table has validation and test.
        val_set, test_set = protocol.get("val_set", "x-valid"), protocol.get("test_set", "x-test")
        self._prefix = {"val_metric": "valid" if val_set else None,
                        "test_metric": "test" if test_set != "ori-test" or self.dataset in ("cifar10", "cifar10-valid")
                        else "valtest"}
        self._set_curves = {"train": "train_metric", "valid": "val_metric", "test": "test_metric",
                            **({val_set: "val_metric"} if val_set else {}), test_set: "test_metric"}
        if "val_set" not in protocol:  # built tables: NATS-Bench's other test-set name means the same
            self._set_curves["ori-test"] = "test_metric"
        self.reset_time()

    # ---- the space ----------------------------------------------------------------------------
    def __len__(self) -> int:
        return NUM_ARCHS

    def __getitem__(self, index: int) -> str:
        return self.meta_archs[index]

    def __repr__(self) -> str:
        return (f"NATStopology({len(self.evaluated_indexes)}/{NUM_ARCHS} architectures, fast_mode=False, "
                f"file={self.filename})")

    def __getattr__(self, name: str) -> Any:
        if name in NOT_OFFERED:
            raise AttributeError(f"NATStopology.{name} is not offered over an nb360 table: it hands out NATS-Bench's "
                                 "own result objects or trained weights, which the table does not hold; "
                                 "the table itself is `api.table` (nb360.Benchmark)")
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def arch(self, index: int) -> str:
        if not 0 <= index < NUM_ARCHS:
            raise ValueError(f"invalid index : {index} vs. {NUM_ARCHS}.")
        return self.meta_archs[index]

    def random(self) -> int:
        return random.randint(0, NUM_ARCHS - 1)

    def query_index_by_arch(self, arch: Any) -> int:
        """The index of `arch` (an index, an NB201 string, an nb360 Arch or anything with NATS-Bench's
        `tostr()`); -1 for a string or object that is no cell of the space, as NATS-Bench."""
        if isinstance(arch, (int, np.integer)):
            if 0 <= arch < NUM_ARCHS:
                return int(arch)
            raise ValueError(f"Invalid architecture index {arch} vs [0, {NUM_ARCHS}].")
        if isinstance(arch, Arch):
            return arch.index
        if hasattr(arch, "tostr"):
            arch = arch.tostr()
        return self.archstr2index.get(arch, -1) if isinstance(arch, str) else -1

    # ---- the clock ----------------------------------------------------------------------------
    @property
    def used_time(self) -> float:
        return self._used_time

    def reset_time(self) -> None:
        self._used_time = 0.0

    @property
    def avaliable_hps(self) -> list[str]:  # NATS-Bench's spelling
        return list(self._hps)

    @property
    def full_train_epochs(self) -> int:
        return self.table.epochs

    # ---- results ------------------------------------------------------------------------------
    def get_more_info(self, index: Any, dataset: str, iepoch: int | None = None, hp: str | int | None = None,
                      is_random: bool | int = True) -> dict[str, Any]:
        """The training and evaluation results of one cell after epoch `iepoch` (0-based; None:
        the last), under NATS-Bench's keys: train-loss, train-accuracy, train-per-time,
        train-all-time, then valid-* and test-* (an imported NAS-Bench-360 file's held-out set as
        valtest-*, as NATS-Bench reads those files)."""
        index = self._evaluated(index)
        self._check(dataset, hp)
        epoch = None if iepoch is None else self._epoch(iepoch)
        row = self.table.query(index, epoch=epoch, seed=self._seed(index, is_random))
        info = {"train-loss": row["train_loss"], "train-accuracy": self._accuracy(row["train_metric"]),
                "train-per-time": row["train_seconds"] / row["epoch"], "train-all-time": row["train_seconds"]}
        for curve, prefix in self._prefix.items():
            if prefix is not None:
                info.update({f"{prefix}-loss": row[curve] if self._has_loss else None,
                             f"{prefix}-accuracy": self._accuracy(row[curve]),
                             f"{prefix}-per-time": None, f"{prefix}-all-time": None})
        return info

    def simulate_train_eval(self, arch: Any, dataset: str, iepoch: int | None = None, hp: str | int | None = None,
                            account_time: bool = True) -> tuple[float, float | None, float, float]:
        """(validation accuracy, latency, time cost, total time used) of one training run drawn at
        random, as NATS-Bench: the validation accuracy where the table has one, else the held-out
        set's (NATS-Bench's valtest fallback); the time cost is the run's training seconds."""
        index = self.query_index_by_arch(arch)
        info = self.get_more_info(index, dataset, iepoch=iepoch, hp=hp, is_random=True)
        accuracy = info["valid-accuracy"] if "valid-accuracy" in info else info["valtest-accuracy"]
        time_cost = info["train-all-time"]
        if account_time:
            self._used_time += time_cost
        return accuracy, self.get_latency(index, dataset, hp=hp), time_cost, self._used_time

    def get_cost_info(self, index: Any, dataset: str, hp: str | int | None = None) -> dict[str, float | None]:
        """flops (millions of multiply-adds), params (millions), latency (seconds, None where not
        measured) and the training time per epoch and in total (mean over seeds), NATS-Bench's units."""
        index = self._evaluated(index)
        self._check(dataset, hp)
        row = self.table.query(index)
        return {"flops": row["flops"] / 1e6, "params": row["params"] / 1e6,
                "latency": None if not np.isfinite(row["latency_ms"]) else row["latency_ms"] / 1e3,
                "T-train@epoch": row["train_seconds"] / self.table.epochs, "T-train@total": row["train_seconds"]}

    def get_latency(self, index: Any, dataset: str, hp: str | int | None = None) -> float | None:
        return self.get_cost_info(index, dataset, hp)["latency"]

    def find_best(self, dataset: str, metric_on_set: str, flop_max: float | None = None,
                  param_max: float | None = None, hp: str | int | None = None,
                  enforce_all: bool | None = None) -> tuple[int, float | None]:
        """(index, accuracy) of the cell with the highest final accuracy on `metric_on_set` (mean over
        seeds) among the trained cells within `flop_max` (millions of FLOPs) and `param_max`
        (millions of params); (-1, None) if none. The first such index wins a tie, as in NATS-Bench."""
        self._check(dataset, hp)
        if metric_on_set not in self._set_curves:
            raise ValueError(f"unknown set {metric_on_set!r} for this table; expected one of "
                             f"{', '.join(self._set_curves)}")
        accuracy = self._accuracy(self.table.final(self._set_curves[metric_on_set]))
        costs = self.table.df
        allowed = np.isfinite(accuracy)
        if flop_max is not None:
            allowed &= ~(costs["flops"].to_numpy() / 1e6 > flop_max)
        if param_max is not None:
            allowed &= ~(costs["params"].to_numpy() / 1e6 > param_max)
        if not allowed.any():
            return -1, None
        best = int(np.argmax(np.where(allowed, accuracy, -np.inf)))
        return best, float(accuracy[best])

    def get_net_config(self, index: int, dataset: str) -> dict[str, Any]:
        """NATS-Bench's network config (name, C, N, arch_str, num_classes) and, for a task nb360
        has a card for, `spec`, the nb360 network's input and output: `nb360.build(cfg["arch_str"],
        nb360.Spec(**cfg["spec"]), C=cfg["C"], N=cfg["N"])` is the table's network."""
        self._check(dataset, None)
        protocol = self.table.protocol
        config: dict[str, Any] = {"name": NET_NAME, "C": int(protocol.get("C", 16)), "N": int(protocol.get("N", 5)),
                                  "arch_str": self.arch(self.query_index_by_arch(index)),
                                  "num_classes": class_count(self.dataset)}
        if self.dataset in cards.names("tasks"):
            card = cards.load("tasks", self.dataset)
            config["spec"] = {"kind": card["kind"], "in_channels": int(card["in_channels"]),
                              "in_shape": tuple(protocol.get("resolution", card["in_shape"])),
                              "out_size": int(card["out_size"])}
        return config

    # ---- checks ---------------------------------------------------------------------------------
    def _check(self, dataset: str, hp: str | int | None) -> None:
        if dataset != self.dataset:
            raise ValueError(f"dataset {dataset!r}: {self.filename} holds {self.dataset!r} only (NATS-Bench's own "
                             "datasets are in its files; `nb360 table import` turns them into tables)")
        if hp is not None and str(hp) not in self._hps:
            raise ValueError(f"hp {hp!r}: {self.filename} holds hp {self._hps[0]!r} (its {self.table.epochs} "
                             f"epochs) only; create(..., hps=[{str(hp)!r}]) lets that name answer with it")

    def _epoch(self, iepoch: int) -> int:
        if not 0 <= iepoch < self.table.epochs:
            raise ValueError(f"invalid iepoch={iepoch} < {self.table.epochs}")
        return iepoch + 1

    def _evaluated(self, arch: Any) -> int:
        index = self.query_index_by_arch(arch)
        if index < 0:
            raise ValueError(f"{arch!r} is not a cell of the NB201 space")
        if index not in self.evaluated_indexes:
            raise ValueError(f"Did not find {index} from arch2infos_dict: {self.filename} has no finished run "
                             "of that cell")
        return index

    def _seed(self, index: int, is_random: bool | int) -> int | None:
        """The seed `is_random` asks for (None: the mean over seeds), as ArchResults.get_metrics."""
        if is_random is False:
            return None
        seeds = self._seeds_done[index]
        if is_random is True:
            return random.choice(seeds)
        if is_random not in seeds:
            raise ValueError(f"can not find random seed ({is_random}) from {seeds}")
        return int(is_random)
