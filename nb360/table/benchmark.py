"""`Benchmark`: query a table of all 15,625 NB201 cells on one task.

The vocabulary follows NATS-Bench (`query`, `simulate`, ...) without its cost: `load` reads the
small per-architecture columns and the final epoch of every curve (a few MB), per-epoch curves are
read on first use, and a query is a NumPy lookup. Searches see validation scores only: `simulate`
never falls back to test scores. Scores are the task's metric, lower is better.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cache, cached_property
from typing import Sequence
from pathlib import Path

import h5py
import numpy as np

from nb360 import cards
from nb360.spaces.nb201 import NUM_ARCHS, Arch, ArchLike, iso_class_representatives
from nb360.table import manifest
from nb360.table.schema import COSTS, CURVES, DONE, FAILED, check_version, reading

TABLES_ENV = "NB360_TABLES"
# Curves a search may see; test scores are for reporting after the search.
_SEARCH_METRIC = "val_metric"


@cache
def arch_strings() -> list[str]:
    """NB201 strings of all cells in official index order, built once."""
    return [str(a) for a in Arch.all()]


def table_dirs() -> list[Path]:
    """Where shipped table names are looked up: $NB360_TABLES, then the package's precomputed/."""
    dirs = [Path(os.environ[TABLES_ENV]).expanduser()] if os.environ.get(TABLES_ENV) else []
    try:
        dirs.append(cards.card_dir("precomputed"))
    except FileNotFoundError:
        pass
    return dirs


def available() -> list[str]:
    """Names of the tables that `Benchmark.load` finds by name (other HDF5 files beside them, such
    as the cost file, are left out)."""
    return sorted({p.stem for d in table_dirs() for p in d.glob("*.h5") if _is_table(p)})


def _is_table(path: Path) -> bool:
    try:
        with h5py.File(path, "r") as f:
            return "schema_version" in f.attrs
    except OSError:  # unreadable or not HDF5: not a table to offer
        return False


def resolve(name_or_path: str | os.PathLike) -> Path:
    """A table path from a shipped name or a path; an unknown name lists the known ones."""
    path = Path(name_or_path).expanduser()
    if path.exists():
        if not path.is_file():
            raise FileNotFoundError(f"{path}: not a table file (a folder?)")
        return path
    name = str(name_or_path).removesuffix(".h5")  # the manifest names the files, with the suffix
    for d in table_dirs() if "/" not in name else ():
        candidate = d / f"{name}.h5"
        if candidate.is_file():
            return candidate
    if path.suffix == ".h5" or "/" in str(name_or_path):
        raise FileNotFoundError(f"{path}: no such table file (shipped tables: {', '.join(available()) or 'none'})")
    known = ", ".join(available()) or "none"
    raise ValueError(f"unknown table {str(name_or_path)!r}; available: {known} (or give a path to an .h5 file)")


@dataclass(frozen=True)
class _Columns:
    """Everything a query needs that is small enough to hold: per-arch columns, run status, and
    the final epoch of every curve ((A, S) each)."""

    iso: np.ndarray
    costs: dict[str, np.ndarray]
    proxies: dict[str, np.ndarray]
    status: np.ndarray
    final: dict[str, np.ndarray]


def _index(arch: ArchLike) -> int:
    """Official index of an Arch, NB201 string or index; plain ints skip building an Arch."""
    if isinstance(arch, (int, np.integer)) and not isinstance(arch, bool) and 0 <= arch < NUM_ARCHS:
        return int(arch)
    return Arch.parse(arch).index


class Benchmark:
    """A loaded table. `Benchmark.load(name_or_path)` is the way in."""

    def __init__(self, path: Path):
        """Reads the attributes only; the columns are read on first use (see `_columns`)."""
        self.path = path
        with reading(path) as f:
            check_version(f, path)
            self.attrs = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in f.attrs.items()}
            self.seeds: list[int] = [int(s) for s in f["seeds"][()]]
        self.protocol: dict = json.loads(self.attrs["protocol"])
        self.provenance: dict = json.loads(self.attrs["provenance"])
        self.builds: list[dict] = _builds(self.attrs)
        self.epochs: int = int(self.attrs["epochs"])
        self._curves: dict[str, np.ndarray] = {}

    @cached_property
    def _columns(self) -> _Columns:
        with reading(self.path) as f:
            return _Columns(
                iso=f["archs/iso_class"][()],
                costs={name: f["archs"][name][()] for name in COSTS},
                proxies={name: f["proxies"][name][()] for name in f["proxies"]},
                status=f["runs/status"][()],
                # the last epoch of every curve, read through the chunk cache: (A, S) per curve
                final={name: f["curves"][name][:, :, self.epochs - 1] for name in CURVES},
            )

    @cached_property
    def _final_rows(self) -> list[dict]:
        """The answer of `query(i)` with default epoch and seed, for every i, as plain Python
        (built once; a default query is then a list lookup and a dict copy)."""
        c = self._columns
        columns = {"iso_class": c.iso.tolist()}
        columns.update({name: self.final(name).tolist() for name in CURVES})
        columns.update({name: v.tolist() for name, v in c.costs.items()})
        columns.update({f"proxy_{name}": v.tolist() for name, v in c.proxies.items()})
        columns["runs_done"] = (c.status == DONE).sum(axis=1).tolist()
        strings = arch_strings()
        return [
            {"index": i, "arch": strings[i], "epoch": self.epochs, **{k: v[i] for k, v in columns.items()}}
            for i in range(NUM_ARCHS)
        ]

    @classmethod
    def load(cls, name_or_path: str | os.PathLike) -> Benchmark:
        """Open a table by shipped name or path. A file listed in a `MANIFEST.toml` beside it (the
        shipped tables) must match its sha256 there, else this raises instead of reading it."""
        path = resolve(name_or_path)
        manifest.verify(path)
        return cls(path)

    def __repr__(self) -> str:
        done = int((self._columns.status == DONE).sum())
        return (f"Benchmark({self.task!r}, metric={self.metric!r}, epochs={self.epochs}, seeds={self.seeds}, "
                f"runs {done}/{self._columns.status.size}, {self.path})")

    @property
    def task(self) -> str:
        return str(self.attrs["task"])

    @property
    def metric(self) -> str:
        return str(self.attrs["metric"])

    # ---- per-epoch data ----------------------------------------------------------------
    def _curve_array(self, name: str) -> np.ndarray:
        """(A, S, E) float32 for one curve, read from the file on first use."""
        if name not in CURVES:
            raise ValueError(f"unknown curve {name!r}; expected one of {', '.join(CURVES)}")
        if name not in self._curves:
            with reading(self.path) as f:
                self._curves[name] = f["curves"][name][()]
        return self._curves[name]

    def _seed_columns(self, seed: int | None) -> slice | list[int]:
        if seed is None:
            return slice(None)
        if seed not in self.seeds:
            raise ValueError(f"seed {seed} is not in this table; its seeds are {self.seeds}")
        return [self.seeds.index(seed)]

    def _epoch_index(self, epoch: int | None) -> int:
        if epoch is None:
            return self.epochs - 1
        if not 1 <= epoch <= self.epochs:
            raise ValueError(f"epoch must be in 1..{self.epochs} for this table (1-based), got {epoch}")
        return epoch - 1

    def _per_seed(self, name: str, index: int, epoch: int | None, seed: int | None = None) -> list[float]:
        """One curve's values after `epoch` for one arch: of `seed`, or of every seed in order."""
        cols = self._seed_columns(seed)
        e = self._epoch_index(epoch)
        values = self._columns.final[name][index, cols] if e == self.epochs - 1 else self._curve_array(name)[index, cols, e]
        return values.tolist()

    def _value(self, name: str, index: int, epoch: int | None, seed: int | None) -> float:
        return _mean_of_finite(self._per_seed(name, index, epoch, seed))

    # ---- queries -------------------------------------------------------------------------
    def query(self, arch: ArchLike, epoch: int | None = None, seed: int | None = None) -> dict:
        """Scores after `epoch` (1-based; None: the last), of one seed or averaged over seeds, and
        the architecture's costs. Missing numbers are NaN."""
        i = _index(arch)
        if epoch is None and seed is None:
            return dict(self._final_rows[i])
        c = self._columns
        out = {"index": i, "arch": arch_strings()[i], "epoch": self._epoch_index(epoch) + 1, "iso_class": int(c.iso[i])}
        out.update({name: self._value(name, i, epoch, seed) for name in CURVES})
        out.update({name: float(c.costs[name][i]) for name in COSTS})
        out.update({f"proxy_{name}": float(v[i]) for name, v in c.proxies.items()})
        out["runs_done"] = int((c.status[i, self._seed_columns(seed)] == DONE).sum())
        return out

    def curve(self, arch: ArchLike, metric: str = "val_metric", seed: int | None = None) -> np.ndarray:
        """The per-epoch values (E,) of one curve, of one seed or averaged over seeds."""
        values = self._curve_array(metric)[_index(arch), self._seed_columns(seed)]
        return _nanmean(values, axis=0)

    def simulate(self, arch: ArchLike, epochs: int | None = None, seed: int | None = None,
                 rng: np.random.Generator | None = None) -> tuple[float, float]:
        """(validation score, training seconds) of training `arch` for `epochs` (None: all).

        With `rng` and no `seed`, one of the arch's runs that reached `epochs` is drawn (a fresh
        training run, as NATS-Bench's `simulate_train_eval` draws one; a seed the table has not
        trained yet is not a run to draw); with neither, the mean over seeds. Only validation
        scores are used, never test scores: a table without them raises instead of falling back.
        """
        i = _index(arch)
        if seed is None and rng is not None:
            finished = [s for s, v in zip(self.seeds, self._per_seed(_SEARCH_METRIC, i, epochs)) if v == v]
            if finished:
                seed = finished[int(rng.integers(len(finished)))]
        score = self._value(_SEARCH_METRIC, i, epochs, seed)
        seconds = self._value("train_seconds", i, epochs, seed)
        if np.isnan(score) and not self._has_validation:
            raise ValueError(f"{self.path}: this table has no validation scores, and simulate never uses test scores")
        return score, seconds

    @cached_property
    def _has_validation(self) -> bool:
        return bool(np.isfinite(self._columns.final[_SEARCH_METRIC]).any())

    def archs(self) -> list[Arch]:
        """All 15,625 cells, in official index order (the rows of the table)."""
        return Arch.all()

    def iso_classes(self) -> np.ndarray:
        """For every official index, the official index of its iso-class representative."""
        return self._columns.iso.copy()

    def class_rows(self, metric: str = "test_metric") -> np.ndarray:
        """For every iso class (in `nb201.iso_class_representatives()` order), the row that stands for
        it: its smallest official index with a final `metric`, -1 where no member has one.

        Why one row per class: members of a class compute the same function, and tables built by
        `nb360 precompute` train one run per class and copy it to every member, so counting members
        would weight a class by its size (the degenerate cells, all alike, form the largest). The
        smallest scored member is the representative whenever it is scored, which it always is in a
        built table; imported NATS-Bench tables trained members separately, and any scored one may
        stand in."""
        scored = np.flatnonzero(np.isfinite(self.final(metric)))
        present, first = np.unique(self._columns.iso[scored], return_index=True)  # first = smallest index
        representatives = iso_class_representatives()
        rows = np.full(len(representatives), -1, dtype=np.int64)
        rows[np.searchsorted(representatives, present)] = scored[first]
        return rows

    def final(self, metric: str = "test_metric") -> np.ndarray:
        """(A,) final-epoch values of one curve, mean over seeds, NaN where no run finished."""
        if metric not in CURVES:
            raise ValueError(f"unknown curve {metric!r}; expected one of {', '.join(CURVES)}")
        return _nanmean(self._columns.final[metric], axis=1)

    def at_epoch(self, metric: str, epoch: int | None = None) -> np.ndarray:
        """(A, S) values of one curve after `epoch` (1-based; None: the last) for every arch and
        seed, NaN where missing, read-only: the arrays behind `query` and `simulate`, whole, for
        code that makes many lookups (the tabular search runner)."""
        if metric not in CURVES:
            raise ValueError(f"unknown curve {metric!r}; expected one of {', '.join(CURVES)}")
        e = self._epoch_index(epoch)
        values = (self._columns.final[metric] if e == self.epochs - 1 else self._curve_array(metric)[:, :, e]).view()
        values.flags.writeable = False
        return values

    def curves(self, metric: str) -> np.ndarray:
        """(A, S, E) values of one curve for every arch, seed and epoch, NaN where missing,
        read-only: the whole curve array, for code that converts or exports a table."""
        values = self._curve_array(metric).view()
        values.flags.writeable = False
        return values

    def best(self, metric: str = "test_metric", constraints: dict[str, float] | None = None) -> tuple[Arch, float]:
        """The cell with the lowest final `metric` (mean over seeds) and that value; with
        `constraints` ({column: upper bound}, e.g. {"flops": 2e7}), among the cells within them."""
        from nb360.table import pareto

        values = self.final(metric)
        if constraints:
            values = np.where(pareto.allowed(self.df, constraints), values, np.nan)
        if np.isnan(values).all():
            raise ValueError(f"{self.path}: no finished run has a {metric}"
                             + (f" among the cells within {constraints}" if constraints else ""))
        i = int(np.nanargmin(values))
        return Arch.from_index(i), float(values[i])

    def pareto(self, objectives: Sequence[str] = ("test_metric", "flops"),
               constraints: dict[str, float] | None = None):
        """The Pareto front of two or three objectives (columns of `df`, all lower is better) over
        the iso classes within `constraints`: a DataFrame, one row per class on the front, sorted by
        the first objective (`nb360.table.pareto`)."""
        from nb360.table import pareto

        return pareto.front(self, objectives, constraints)

    def regret(self, arch: ArchLike, metric: str = "test_metric") -> float:
        """How much worse `arch` is than the table's best cell on the final `metric` (>= 0)."""
        return float(self.final(metric)[_index(arch)] - self.best(metric)[1])

    @cached_property
    def df(self):
        """One row per cell (index = official index): arch string, iso class, costs, final-epoch
        curves (mean over seeds), proxies, runs done."""
        import pandas as pd

        columns = {"arch": arch_strings(), "iso_class": self._columns.iso}
        columns.update(self._columns.costs)
        columns.update({name: self.final(name) for name in CURVES})
        columns.update({f"proxy_{name}": v for name, v in self._columns.proxies.items()})
        columns["runs_done"] = (self._columns.status == DONE).sum(axis=1)
        return pd.DataFrame(columns, index=pd.RangeIndex(NUM_ARCHS, name="index"))

    def completeness(self) -> dict:
        """Counts of finished and failed runs, of archs with at least one finished run, and of
        finished runs per seed (a build trains a whole first seed before the next)."""
        done = self._columns.status == DONE
        return {
            "runs": int(self._columns.status.size),
            "done": int(done.sum()),
            "failed": int((self._columns.status == FAILED).sum()),
            "archs_with_a_run": int(done.any(axis=1).sum()),
            "done_per_seed": dict(zip(self.seeds, done.sum(axis=0).tolist())),
        }

    def failures(self) -> list[tuple[int, int, str]]:
        """(index, seed, error) of every failed run."""
        rows, cols = np.nonzero(self._columns.status == FAILED)
        if not len(rows):
            return []
        with reading(self.path) as f:
            errors = f["runs/error"]
            return [(int(r), self.seeds[c], errors[r, c].decode() if isinstance(errors[r, c], bytes) else str(errors[r, c]))
                    for r, c in zip(rows, cols)]


def _builds(attrs: dict) -> list[dict]:
    """One record per build job (`nb360.table.build`: when, the command, the machines, the
    versions) with its progress (runs_done, runs_failed, seconds); [] for a table never built
    (imported) or built before jobs were logged."""
    if "builds" not in attrs:
        return []
    progress = np.asarray(attrs["build_progress"], dtype=np.float64)
    return [{**record, "runs_done": int(done), "runs_failed": int(failed), "seconds": float(seconds)}
            for record, (done, failed, seconds) in zip(json.loads(attrs["builds"]), progress)]


def job_hardware(record: dict) -> str:
    """A build job's hardware in words, from its record in `Benchmark.builds`."""
    cluster = record["cluster"]
    return (f"driver {machine_in_words(record['driver'])}; Ray {counted(cluster['nodes'], 'node')}, "
            f"{counted(cluster['cpus'], 'CPU')}, {counted(cluster['gpus'], 'GPU')}")


def machine_in_words(machine: dict) -> str:
    """A machine as a build job's record keeps it (`build.this_machine`), in words."""
    gpus = ", ".join(machine["gpus"]) or "no GPU"
    return f"{counted(machine['cpus'], 'CPU core')} ({machine['machine']}), {machine['memory_gib']:.0f} GiB, {gpus}"


def counted(n: float, noun: str) -> str:
    """`n` and the noun, plural unless n is 1: '1 run', '4,816 runs', '0.5 GPUs' (Ray counts fractions)."""
    number = f"{int(n):,}" if float(n).is_integer() else f"{n:g}"
    return f"{number} {noun}{'' if n == 1 else 's'}"


def _mean_of_finite(values: list[float]) -> float:
    """Mean of the few per-seed values of one query, NaN if none is finite; plain Python, because
    NumPy's per-call overhead dominates for a handful of numbers."""
    finite = [v for v in values if v == v]
    return sum(finite) / len(finite) if finite else float("nan")


def _nanmean(values: np.ndarray, axis: int) -> np.ndarray:
    """Mean over `axis` ignoring NaN, NaN (without a warning) where everything is NaN."""
    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(finite, values, 0.0).sum(axis=axis) / finite.sum(axis=axis)
