"""The table file: one HDF5 file per (search space, task, protocol). Schema in docs/tables.md.

Layout (schema version 1)::

    /                    attrs: schema_version, space, task, metric, metric_direction ("min"),
                                num_archs, epochs, protocol (JSON), provenance (JSON),
                                build_seconds (wall time of the builds that wrote it, if built),
                                builds (JSON list: one record per build job, see `start_build`),
                                build_progress (float64 (jobs, 3): each job's runs done, runs
                                failed and seconds, rewritten in place as it goes)
    /seeds               int64 (S,)            the seeds, in column order
    /archs/iso_class     int32 (A,)            official index of the iso-class representative
    /archs/params        float64 (A,)          NaN where unknown
    /archs/flops         float64 (A,)          multiply-adds; NaN where unknown
    /archs/latency_ms    float64 (A,)          NaN where unknown
    /curves/<name>       float32 (A, S, E)     per-epoch records of nb360.train.fit, NaN where missing:
                                               train_loss, train_metric, val_metric, test_metric,
                                               train_seconds (cumulative)
    /runs/status         int8 (A, S)           0 missing, 1 done, 2 failed
    /runs/error          vlen str (A, S)       the error of a failed run, else ""
    /proxies/<name>      float64 (A,)          optional zero-cost proxy scores

A is 15,625 (rows in official index order), S the number of seeds, E the protocol's epochs. Every
score is the task's metric, lower is better. Curves are chunked 64 architectures at a time, so one
row is read without the others; the per-architecture columns are small and read whole.

This module imports h5py and numpy only: the query side must not pull in torch.
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Sequence

import h5py
import numpy as np

from nb360.spaces.nb201 import NUM_ARCHS, iso_class_ids

SCHEMA_VERSION = 1
CURVES = ("train_loss", "train_metric", "val_metric", "test_metric", "train_seconds")
COSTS = ("params", "flops", "latency_ms")
MISSING, DONE, FAILED = 0, 1, 2
# fletcher32: a checksum per chunk, so damage inside a dataset is reported as such when it is read
# (files made before it read as before, without the check).
_COMPRESSION = {"compression": "gzip", "compression_opts": 4, "shuffle": True, "fletcher32": True}
# Curves are chunked 64 architectures at a time: one row costs one small chunk, one column (e.g. the
# final epoch of every arch, read at load) 245 chunks instead of 15,625.
_CHUNK_ARCHS = 64


def _version() -> str:
    from nb360 import __version__

    return __version__


def create(
    path: str | os.PathLike,
    *,
    task: str,
    metric: str,
    seeds: Sequence[int],
    epochs: int,
    protocol: dict,
    provenance: dict,
    space: str = "nb201",
    overwrite: bool = False,
) -> Path:
    """Write an empty table (every score NaN, every run missing) with its attributes.

    `protocol` describes how the numbers were made (epochs, batch size, lr, C, N, resolution,
    split sizes...); `provenance` where they come from (source file or build command). The package
    version and the creation time are added to the provenance.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path}: a table is already there; choose another path or replace it (overwrite=True, --overwrite)")
    if epochs < 1 or not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"a table needs epochs >= 1 and distinct seeds, got epochs={epochs}, seeds={list(seeds)}")
    seeds = [int(s) for s in seeds]
    provenance = {**provenance, "nb360_version": _version(), "created": datetime.now(timezone.utc).isoformat()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with h5py.File(tmp, "w") as f:
        f.attrs.update(
            schema_version=SCHEMA_VERSION, space=space, task=task, metric=metric, metric_direction="min",
            num_archs=NUM_ARCHS, epochs=int(epochs),
            protocol=json.dumps({**protocol, "epochs": int(epochs), "seeds": seeds}, sort_keys=True),
            provenance=json.dumps(provenance, sort_keys=True),
        )
        f.create_dataset("seeds", data=np.array(seeds, dtype=np.int64))
        archs = f.create_group("archs")
        archs.create_dataset("iso_class", data=iso_class_ids().astype(np.int32), **_COMPRESSION)
        for name in COSTS:
            archs.create_dataset(name, data=np.full(NUM_ARCHS, np.nan), **_COMPRESSION)
        curves = f.create_group("curves")
        shape = (NUM_ARCHS, len(seeds), int(epochs))
        for name in CURVES:
            curves.create_dataset(name, shape=shape, dtype=np.float32, fillvalue=np.nan,
                                  chunks=(_CHUNK_ARCHS, len(seeds), int(epochs)), **_COMPRESSION)
        runs = f.create_group("runs")
        runs.create_dataset("status", data=np.zeros((NUM_ARCHS, len(seeds)), dtype=np.int8), **_COMPRESSION)
        runs.create_dataset("error", shape=(NUM_ARCHS, len(seeds)), dtype=h5py.string_dtype())
        f.create_group("proxies")
    os.replace(tmp, path)
    return path


def add_seeds(path: str | os.PathLike, seeds: Sequence[int]) -> list[int]:
    """Give a table columns for those of `seeds` it lacks, after its own, and return the seeds it
    added: a table whose seeds turn out too few for a reliable ranking gets more without losing
    a run. Every run, cost, proxy column, attribute and build log entry is kept; the new columns'
    runs are missing. The file is rewritten under a temporary name and renamed, so it is never
    half extended (and a table another process is writing is refused: `BusyTableError`)."""
    path = Path(path)
    with reading(path) as f:
        old = [int(s) for s in f["seeds"][()]]
    added = [s for s in dict.fromkeys(int(s) for s in seeds) if s not in old]
    if not added:
        return []
    columns = old + added
    tmp = path.with_name(f".{path.name}.seeds.tmp")
    try:
        with reading(path) as src, h5py.File(tmp, "w") as dst:
            dst.attrs.update(src.attrs)
            protocol = json.loads(src.attrs["protocol"])
            dst.attrs["protocol"] = json.dumps({**protocol, "seeds": columns}, sort_keys=True)
            for name in src:
                if name not in ("seeds", "curves", "runs"):
                    src.copy(src[name], dst, name=name)
            dst.create_dataset("seeds", data=np.array(columns, dtype=np.int64))
            for name, dataset in src["curves"].items():
                archs, kept, epochs = dataset.shape
                widened = dst.create_dataset(f"curves/{name}", shape=(archs, len(columns), epochs), dtype=dataset.dtype,
                                             fillvalue=np.nan, chunks=(_CHUNK_ARCHS, len(columns), epochs), **_COMPRESSION)
                widened[:, :kept] = dataset[()]
            status = np.zeros((len(src["runs/status"]), len(columns)), dtype=np.int8)
            status[:, :len(old)] = src["runs/status"][()]
            dst.create_dataset("runs/status", data=status, **_COMPRESSION)
            error = dst.create_dataset("runs/error", shape=status.shape, dtype=h5py.string_dtype())
            error[:, :len(old)] = src["runs/error"][()]
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return added


class TableReplacedError(FileNotFoundError):
    """The file a `TableWriter` opened is no longer at its path (replaced or removed under it)."""


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino


class TableWriter:
    """The single writer of a table file: runs, failures, costs and proxy columns.

    Every call is flushed to disk before it returns, so an interrupted job loses nothing it has
    written. Use as a context manager.

    A file replaced under a running writer (a `git checkout`, `git stash` or copy onto a table
    that a build is writing) would silently take every later write into a deleted file. After
    each flush the writer checks that its path still names the file it opened; if not, it saves
    what it wrote beside the path and raises `TableReplacedError` saying where.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.file = h5py.File(self.path, "r+")
        self._opened = _identity(self.path)
        check_version(self.file, self.path)
        self.seeds = [int(s) for s in self.file["seeds"][()]]
        self.epochs = int(self.file.attrs["epochs"])

    def __enter__(self) -> TableWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.file.close()

    def _flush(self) -> None:
        self.file.flush()
        if _identity(self.path) == self._opened:
            return
        saved = self.path.with_name(f"{self.path.stem}.written-{os.getpid()}{self.path.suffix}")
        _copy_open_file(self.file.id.get_vfd_handle(), saved)
        raise TableReplacedError(
            f"{self.path} was replaced or removed while this writer had it open; everything written to it, "
            f"up to and including the last run, is saved in {saved}. Put that file back "
            f"(mv {saved} {self.path}) and resume."
        )

    def _column(self, seed: int) -> int:
        try:
            return self.seeds.index(int(seed))
        except ValueError:
            raise ValueError(f"{self.path}: seed {seed} is not one of the table's seeds {self.seeds}") from None

    def write_run(self, indices: int | Iterable[int], seed: int, records: Sequence[dict]) -> None:
        """Store one training run (the records of `nb360.train.fit`) for one or more archs (the
        members of an iso class share one run). Epochs beyond the records stay NaN."""
        rows, col = _rows(indices), self._column(seed)
        for name, values in self._curve_values(records).items():
            # one selection per dataset (h5py wants the rows increasing), not one write per member
            self.file["curves"][name][rows, col, :] = np.broadcast_to(values, (len(rows), self.epochs))
        self._set_status(rows, col, DONE, "")

    def write_runs(self, runs: Iterable[tuple[int | Iterable[int], int, Sequence[dict]]]) -> None:
        """Store many runs, (indices, seed, records) each, as `write_run` would, for an import of a
        whole file: each seed's column of each curve is read, filled and written back once, instead
        of one small write per run."""
        by_column: dict[int, list[tuple[list[int], dict[str, np.ndarray]]]] = {}
        for indices, seed, records in runs:
            by_column.setdefault(self._column(seed), []).append((_rows(indices), self._curve_values(records)))
        for col, items in by_column.items():
            status = self.file["runs/status"][:, col]
            for name in CURVES:
                block = self.file["curves"][name][:, col, :]
                for rows, values in items:
                    block[rows] = values[name]
                self.file["curves"][name][:, col, :] = block
            rows = sorted({row for item_rows, _ in items for row in item_rows})
            was_failed = [row for row in rows if status[row] == FAILED]
            status[rows] = DONE
            self.file["runs/status"][:, col] = status
            for row in was_failed:  # an earlier failure's message no longer applies
                self.file["runs/error"][row, col] = ""
        self._flush()

    def _curve_values(self, records: Sequence[dict]) -> dict[str, np.ndarray]:
        """(E,) float32 per curve from fit-style records, NaN after the last record."""
        if not 1 <= len(records) <= self.epochs:
            raise ValueError(f"{self.path}: a run has 1 to {self.epochs} epochs of records, got {len(records)}")
        curves = {}
        for name in CURVES:
            values = np.full(self.epochs, np.nan, dtype=np.float32)
            values[: len(records)] = [r[name] for r in records]
            curves[name] = values
        return curves

    def write_failure(self, indices: int | Iterable[int], seed: int, message: str) -> None:
        """Record that a run failed for good, with its error, instead of dropping it."""
        self._set_status(_rows(indices), self._column(seed), FAILED, message)

    def _set_status(self, rows: list[int], col: int, status: int, message: str) -> None:
        self.file["runs/status"][rows, col] = np.full(len(rows), status, dtype=np.int8)
        self.file["runs/error"][rows, col] = np.array([message] * len(rows), dtype=object)
        self._flush()

    def set_costs(self, **columns: np.ndarray) -> None:
        """Whole per-arch cost columns (params, flops, latency_ms), NaN where unknown."""
        for name, values in columns.items():
            if name not in COSTS:
                raise ValueError(f"unknown cost column {name!r}; expected one of {', '.join(COSTS)}")
            self.file["archs"][name][...] = _full_column(values, name)
        self._flush()

    def set_proxy(self, name: str, values: np.ndarray, settings: dict | None = None) -> None:
        """A zero-cost proxy column (one score per arch, NaN where not computed); `settings` (what
        computed it) are stored with it as its JSON `settings` attribute, so that a resumed or
        repeated computation can check them."""
        group = self.file["proxies"]
        if name in group:
            group[name][...] = _full_column(values, name)
        else:
            group.create_dataset(name, data=_full_column(values, name), **_COMPRESSION)
        if settings is not None:
            group[name].attrs["settings"] = json.dumps(settings, sort_keys=True)
        self._flush()

    def make_portable(self) -> None:
        """Rewrite the provenance and the build log with no absolute path of the machines that built
        the table (`nb360.table.portable.redact`): for tables made before builds recorded portable paths."""
        from nb360.table.portable import redact

        self.file.attrs["provenance"] = json.dumps(redact(json.loads(self.file.attrs["provenance"])), sort_keys=True)
        if "builds" in self.file.attrs:
            self.file.attrs["builds"] = json.dumps(redact(json.loads(self.file.attrs["builds"])))
        self._flush()

    def start_build(self, record: dict) -> int:
        """Log a build job: `record` (JSON: when, the command, the machines, the versions) is
        appended to the `builds` attribute and a row of zeros to `build_progress`, which
        `build_progress` keeps current. A table built over many resumed jobs, on one machine or
        several, keeps them all. Returns the job's position."""
        builds = json.loads(self.file.attrs["builds"]) if "builds" in self.file.attrs else []
        progress = self.file.attrs["build_progress"] if "build_progress" in self.file.attrs else np.zeros((0, 3))
        self.file.attrs["builds"] = json.dumps(builds + [record])
        self.file.attrs["build_progress"] = np.vstack([progress, np.zeros((1, 3))])
        self._flush()
        return len(builds)

    def build_progress(self, position: int, runs_done: int, runs_failed: int, seconds: float) -> None:
        """Job `position`'s progress so far, written after every run so that the log of a killed
        job is still true; the seconds it gained since its last report are added to the table's
        `build_seconds`. A numeric attribute is rewritten in place; rewriting the JSON log after
        every run would leave its old copies in the file, a few KB each."""
        progress = self.file.attrs["build_progress"]
        gained = seconds - float(progress[position, 2])
        progress[position] = (runs_done, runs_failed, seconds)
        self.file.attrs["build_progress"] = progress
        self.file.attrs["build_seconds"] = float(self.file.attrs.get("build_seconds", 0.0)) + gained
        self._flush()

    def status(self) -> np.ndarray:
        """(A, S) int8: MISSING, DONE or FAILED for every arch and seed."""
        return self.file["runs/status"][()]


def _copy_open_file(fd: int, out: Path) -> None:
    """Copy a file by its open descriptor (the file may no longer have a name), without moving
    the descriptor's offset."""
    size, offset = os.fstat(fd).st_size, 0
    with open(out, "wb") as f:
        while offset < size:
            chunk = os.pread(fd, min(1 << 24, size - offset), offset)
            if not chunk:
                break
            f.write(chunk)
            offset += len(chunk)


def _rows(indices: int | Iterable[int]) -> list[int]:
    """Distinct architecture rows, increasing (the order h5py's list selections need)."""
    rows = sorted({int(indices)} if np.isscalar(indices) else {int(i) for i in indices})
    if not rows or rows[0] < 0 or rows[-1] >= NUM_ARCHS:
        raise ValueError(f"architecture indices must lie in [0, {NUM_ARCHS}), got {rows[:5]}")
    return rows


def _full_column(values: np.ndarray, name: str) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    if values.shape != (NUM_ARCHS,):
        raise ValueError(f"column {name!r} must have one value per arch, shape ({NUM_ARCHS},), got {values.shape}")
    return values


class DamagedTableError(ValueError):
    """A table file that HDF5 cannot read: truncated, overwritten, not HDF5, or a checksum mismatch."""


class BusyTableError(ValueError):
    """A table file that another process holds open for writing (HDF5's lock): a build still running."""


@contextmanager
def reading(path: Path):
    """Open a table for reading; a file HDF5 cannot read, on opening or inside a dataset, raises
    DamagedTableError naming the file (h5py's own message names neither the file nor the cause)."""
    try:
        with h5py.File(path, "r") as f:
            yield f
    except (OSError, KeyError) as error:
        if isinstance(error, FileNotFoundError):
            raise
        what = " ".join(str(error).split())
        if "unable to lock file" in what:
            raise BusyTableError(f"{path}: another process has the table open for writing (a build still running?); "
                                 "read it when that process ends, or read a copy made before it started") from None
        checksum = "checksum" in what or "filter returned failure" in what
        raise DamagedTableError(
            f"{path}: cannot read the table ({what}): "
            + ("a dataset inside it is damaged" if checksum else "the file is damaged, truncated or not an nb360 table")
            + "; rebuild it or copy it again") from None


def check_version(f: h5py.File, path: Path) -> None:
    """Refuse files that are not nb360 tables of a schema version this code reads."""
    version = f.attrs.get("schema_version")
    if version is None:
        raise ValueError(f"{path}: not an nb360 table (no 'schema_version' attribute)")
    if int(version) != SCHEMA_VERSION:
        raise ValueError(f"{path}: table schema version {version}, this nb360 reads version {SCHEMA_VERSION}")
    for group, names in (("curves", CURVES), ("archs", ("iso_class", *COSTS)), ("runs", ("status", "error"))):
        for name in names:
            if f"{group}/{name}" not in f:
                raise ValueError(f"{path}: field '{group}/{name}' is missing; the file is not a complete nb360 table")
