"""What every hypothesis script shares: loading tables, one row per isomorphism class, agreement
that tolerates too few rows, what a table is (protocol, completeness, caveats), figures, and the
report each question writes (CSV files, PNG figures and summary.md).

Tables may be partial (archs not yet trained are NaN): every number is computed on the rows the
tables involved score, and its `n` says how many those were.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from nb360 import cards
from nb360.spaces.nb201 import NUM_ARCHS, iso_class_representatives
from nb360.table import manifest
from nb360.table.benchmark import Benchmark
from nb360.figures import figure  # noqa: F401  (the question modules take it from here)
from nb360.table.compare import agreement
from nb360.table.manifest import TASK_TABLES  # noqa: F401  (the question modules take it from here)

TableLike = str | os.PathLike | Benchmark
# The top fraction behind "top-k" numbers: the best 10%, as NB201 / NAS-Bench-360 studies report.
TOP = 0.1
# The protocol NAS-Bench-360 (and NAS-Bench-201's hp=200) trains: C=16, N=5 (search_spaces/nb201.toml
# defaults), 200 epochs. A table below it is a reduced protocol, and its summary says so.
FULL_EPOCHS = 200
AGREEMENT_KEYS = ("n", "spearman", "kendall", "top_fraction", "top_overlap", "regret_of_pick")  # compare.agreement's


# ---- tables -----------------------------------------------------------------------------------------
def label(table: Benchmark) -> str:
    """The short name a table goes by in CSVs and figures: its file name without .h5."""
    return table.path.stem


def load_tables(tables: Sequence[TableLike], question: str, minimum: int = 1) -> list[Benchmark]:
    """Benchmarks from shipped names, paths or loaded Benchmarks; at least `minimum`, each once."""
    loaded = [t if isinstance(t, Benchmark) else Benchmark.load(t) for t in tables]
    if len(loaded) < minimum:
        raise ValueError(f"{question} needs at least {minimum} table{'s' if minimum > 1 else ''}, got {len(loaded)} "
                         f"({', '.join(map(str, tables)) or 'none'})")
    labels = [label(b) for b in loaded]
    repeated = sorted({name for name in labels if labels.count(name) > 1})
    if repeated:
        raise ValueError(f"{question}: tables are told apart by file name, and {', '.join(repeated)} appears twice")
    return loaded


def by_class(values: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """(classes,) `values` (one per arch) read at each class's row, NaN where the class has none."""
    out = np.full(len(rows), np.nan)
    has = rows >= 0
    out[has] = np.asarray(values, dtype=float)[rows[has]]
    return out


def at_epoch(table: Benchmark, metric: str, epoch: int | None = None) -> np.ndarray:
    """(A,) `metric` after `epoch` (None: the last), mean over the seeds that have it, NaN if none."""
    values = np.asarray(table.at_epoch(metric, epoch), dtype=float)
    finite = np.isfinite(values)
    with np.errstate(invalid="ignore"):
        return np.where(finite, values, 0.0).sum(axis=1) / finite.sum(axis=1)


def has_validation(table: Benchmark) -> bool:
    return bool(np.isfinite(table.final("val_metric")).any())


def agree(low: np.ndarray, high: np.ndarray, top: float = TOP) -> dict:
    """`nb360.table.compare.agreement`, with NaN numbers (and the n found) instead of an error when
    fewer than 3 rows are scored by both: a partial table can leave a comparison empty."""
    if not 0 < top <= 1:
        raise ValueError(f"top is the fraction of best cells compared, in (0, 1]; got {top}")
    n = int((np.isfinite(low) & np.isfinite(high)).sum())
    if n < 3:
        return {**dict.fromkeys(AGREEMENT_KEYS, math.nan), "n": n, "top_fraction": top}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant input (all tied): the correlation is NaN, as it should be
        return agreement(low, high, top)


def protocol_text(table: Benchmark) -> str:
    """The protocol as `key=value` pairs (a data digest shortened)."""
    items = []
    for key, value in sorted(table.protocol.items()):
        if isinstance(value, str) and len(value) == 64 and key.endswith("sha256"):
            value = value[:12] + "..."
        items.append(f"{key}={value}")
    return ", ".join(items)


def completeness_text(table: Benchmark) -> str:
    c = table.completeness()
    classes_scored = int((table.class_rows() >= 0).sum())
    return (f"{c['archs_with_a_run']:,}/{NUM_ARCHS:,} archs ({c['archs_with_a_run'] / NUM_ARCHS:.0%}) and "
            f"{classes_scored:,}/{len(iso_class_representatives()):,} iso classes scored; runs {c['done']:,}/{c['runs']:,} done, "
            f"{c['failed']} failed")


def caveats(table: Benchmark) -> list[str]:
    """What a reader must know before trusting numbers from `table`: partial, reduced, no
    validation scores, and the fidelity measured for it where its manifest records one."""
    name, out = label(table), []
    c = table.completeness()
    if c["archs_with_a_run"] < NUM_ARCHS:
        out.append(f"`{name}` is partial: {c['archs_with_a_run']:,} of {NUM_ARCHS:,} archs have a finished run, "
                   f"so every number on it is over those (see n).")
    defaults = cards.load("search_spaces", "nb201")["defaults"]
    size = {key: table.protocol.get(key) for key in ("C", "N")}
    reduced = [f"{key}={value}" for key, value in size.items() if value is not None and value < defaults[key]]
    if table.epochs < FULL_EPOCHS:
        reduced.append(f"{table.epochs} epochs")
    if reduced:
        out.append(f"`{name}` is a reduced protocol ({', '.join(reduced)}; NAS-Bench-360 trains C={defaults['C']}, "
                   f"N={defaults['N']} for {FULL_EPOCHS} epochs): its ranking is an estimate of the full protocol's, "
                   f"as good as its fidelity.")
    if not has_validation(table):
        out.append(f"`{name}` has no validation scores (as NAS-Bench-360's published files): what needs them "
                   f"(searches, validation-based fidelity) uses its test scores or cannot run on it.")
    recorded = manifest.read(table.path.parent).get(table.path.name, {})
    for key, what in (("fidelity", "its fidelity"), ("seed_agreement", "the agreement of its seeds")):
        if key in recorded:
            out.append(f"`{name}`'s manifest records {what}: {_numbers(recorded[key])}")
    return out


def _numbers(record: dict) -> str:
    return ", ".join(f"{k}=({_numbers(v)})" if isinstance(v, dict) else f"{k}={fmt(v)}" for k, v in record.items())


# ---- numbers as text -----------------------------------------------------------------------------------
def fmt(value) -> str:
    """A number as a report shows it: 4 significant digits, whole numbers from 1,000 whole, NaN as 'n/a'."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return "n/a"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        if not (value.is_integer() and abs(value) >= 1_000):  # counts (params, FLOPs) stay whole
            return f"{value:.4g}"
    if isinstance(value, (int, float, np.integer, np.floating)):
        return f"{int(value):,}" if abs(int(value)) >= 10_000 else str(int(value))
    return str(value)


def markdown_table(frame, max_rows: int = 40) -> str:
    """A DataFrame as a Markdown table (the first `max_rows` rows, and a line saying how many more)."""
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    lines = [header, "|" + "---|" * len(frame.columns)]
    for row in frame.head(max_rows).itertuples(index=False):
        lines.append("| " + " | ".join(fmt(v) for v in row) + " |")
    if len(frame) > max_rows:
        lines.append(f"\n({len(frame) - max_rows} more rows in the CSV)")
    return "\n".join(lines)


# ---- the report ------------------------------------------------------------------------------------------
@dataclass
class Report:
    """What one question wrote into `out`: its CSVs (`frames`, by file stem), figures, and
    summary.md, which holds the generated answer, the figures, the numbers, the tables used and the
    caveats."""

    name: str
    question: str
    out: Path
    tables: list[Benchmark]
    frames: dict[str, object]
    figures: list[Path]
    answer: str
    notes: list[str] = field(default_factory=list)
    shown: Sequence[str] | None = None  # the frames summary.md shows (default: all)

    def csv(self, stem: str) -> Path:
        return self.out / f"{stem}.csv"

    @property
    def summary(self) -> Path:
        return self.out / "summary.md"

    def write(self) -> Report:
        for stem, frame in self.frames.items():
            # 12 significant digits: far beyond what the numbers mean, and short of the last bits that
            # differ between BLAS builds, so the same tables write the same files on any machine
            frame.to_csv(self.csv(stem), index=False, float_format="%.12g")
        self.summary.write_text(self.markdown(self.out) + "\n")
        return self

    def markdown(self, relative_to: Path, level: int = 1) -> str:
        """The summary, with figure and CSV links relative to the folder `relative_to` (summary.md's
        own folder, or that of a page gathering several reports) and headings from `level`."""
        h = "#" * level

        def link(path: Path) -> str:
            return Path(os.path.relpath(path, relative_to)).as_posix()

        parts = [f"{h} `{self.name}`: {self.question}", self.answer]
        parts += [f"![{p.stem}]({link(p)})" for p in self.figures]
        parts.append(f"{h}# Numbers")
        for stem in self.shown if self.shown is not None else self.frames:
            parts += [f"`{stem}.csv` ([file]({link(self.csv(stem))})):", markdown_table(self.frames[stem])]
        parts.append(f"{h}# Tables used")
        rows = ["| table | task | metric | completeness | protocol |", "|---|---|---|---|---|"]
        rows += [f"| `{label(b)}` | {b.task} | {b.metric} (lower is better) | {completeness_text(b)} | "
                 f"{protocol_text(b)} |" for b in self.tables]
        parts.append("\n".join(rows))
        notes = self.notes + [c for b in self.tables for c in caveats(b)]
        if notes:
            parts += [f"{h}# Caveats", "\n".join(f"- {n}" for n in notes)]
        return "\n\n".join(parts)


def start(out: str | os.PathLike) -> Path:
    """The output folder, created if needed."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    return out
