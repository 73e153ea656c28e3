"""Error against cost in a table: Pareto fronts and constrained queries.

Every objective is a column of `Benchmark.df` where lower is better: the errors (`val_metric` to
search by, `test_metric` to report), `train_seconds`, and the costs `params`, `flops`, `latency_ms`.
A front is computed over one row per iso class (members of a class are one network, and counting
them would only repeat points); non-dominated sorting and hypervolume are moocore's. No torch.

Hypervolume, to score a front a search found against the table's true one, is taken in a
normalised space (`Scale`): each objective mapped to [0, 1] between its best and worst value over
the table's classes, costs on a log scale first (params and FLOPs of NB201 cells span three
decades, and a linear scale would give all the area to the few largest cells), and the reference
point 1.1 on every axis, the usual margin that lets the worst cells of a front count.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Sequence

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

    from nb360.table.benchmark import Benchmark

OBJECTIVES = ("val_metric", "test_metric", "train_metric", "train_seconds", "params", "flops", "latency_ms")
ERRORS = ("val_metric", "test_metric", "train_metric")  # on a linear scale; the others on a log scale
HV_REFERENCE = 1.1
_CONSTRAINT = re.compile(r"^\s*([a-z_]+)\s*<=\s*([-+0-9.eE]+)\s*$")


def check_objectives(objectives: Sequence[str]) -> list[str]:
    objectives = list(objectives)
    unknown = [o for o in objectives if o not in OBJECTIVES]
    if unknown or not 2 <= len(objectives) <= 3 or len(set(objectives)) != len(objectives):
        raise ValueError(f"objectives {objectives}: give two or three different ones of {', '.join(OBJECTIVES)}"
                         + (f" ({', '.join(unknown)} unknown)" if unknown else ""))
    return objectives


def parse_constraint(text: str) -> tuple[str, float]:
    """'flops<=2e7' -> ("flops", 2e7): an upper bound on an objective (all are lower-is-better)."""
    match = _CONSTRAINT.match(text)
    if not match or match.group(1) not in OBJECTIVES:
        raise ValueError(f"constraint {text!r}: expected COLUMN<=NUMBER with COLUMN one of {', '.join(OBJECTIVES)} "
                         "(e.g. 'flops<=2e7')")
    try:
        return match.group(1), float(match.group(2))
    except ValueError:
        raise ValueError(f"constraint {text!r}: {match.group(2)!r} is not a number") from None


def allowed(df: "pd.DataFrame", constraints: dict[str, float] | None) -> np.ndarray:
    """(rows,) True where every constrained column is known and at most its bound."""
    mask = np.ones(len(df), dtype=bool)
    for column, bound in (constraints or {}).items():
        if column not in OBJECTIVES:
            raise ValueError(f"constraint on {column!r}: expected one of {', '.join(OBJECTIVES)}")
        values = df[column].to_numpy(dtype=float)
        mask &= np.isfinite(values) & (values <= bound)
    return mask


def nondominated(values: np.ndarray) -> np.ndarray:
    """(rows,) True for the rows of `values` (rows x objectives, all minimised, finite) that no other
    row is at least as good as on every objective and better on one; of identical rows, one."""
    import moocore

    return np.asarray(moocore.is_nondominated(np.asarray(values, dtype=float), keep_weakly=False), dtype=bool)


def front(bench: "Benchmark", objectives: Sequence[str] = ("test_metric", "flops"),
          constraints: dict[str, float] | None = None) -> "pd.DataFrame":
    """The Pareto front of `objectives` over the table's iso classes (one row each, its smallest
    scored member) that meet `constraints`: the rows no other row beats on every objective, sorted
    by the first objective, with `iso_members` (the class's size)."""
    objectives = check_objectives(objectives)
    df = classes(bench)
    df = df[allowed(df, constraints) & np.isfinite(df[objectives].to_numpy(dtype=float)).all(axis=1)]
    if df.empty:
        return df
    return df[nondominated(df[objectives].to_numpy(dtype=float))].sort_values(objectives[0], kind="stable")


def classes(bench: "Benchmark") -> "pd.DataFrame":
    """`Benchmark.df` restricted to one row per iso class with a final test score, with the class size."""
    df = bench.df
    rows = bench.class_rows()
    sizes = df.groupby("iso_class")["arch"].transform("size")
    return df.assign(iso_members=sizes).loc[rows[rows >= 0]]


class Scale:
    """Objectives mapped to [0, 1] over a table's classes: 0 the best value, 1 the worst, errors on
    a linear scale and costs on a log scale (see the module's docstring)."""

    def __init__(self, values: np.ndarray, objectives: Sequence[str]):
        """`values`: (classes, objectives) finite values that span the range (the table's classes)."""
        self.objectives = list(objectives)
        self._log = np.array([o not in ERRORS for o in self.objectives])
        values = self._transform(np.asarray(values, dtype=float))
        self.low, high = values.min(axis=0), values.max(axis=0)
        self.span = np.where(high > self.low, high - self.low, 1.0)

    def _transform(self, values: np.ndarray) -> np.ndarray:
        return np.where(self._log, np.log10(np.maximum(values, 1e-300)), values)

    def __call__(self, values: np.ndarray) -> np.ndarray:
        return (self._transform(np.asarray(values, dtype=float)) - self.low) / self.span


def hypervolume(points: np.ndarray) -> float:
    """The hypervolume dominated by `points` (rows x objectives, normalised by `Scale`, minimised)
    up to the reference point `HV_REFERENCE` on every axis; 0 for no points."""
    import moocore

    points = np.asarray(points, dtype=float)
    if not len(points):
        return 0.0
    return float(moocore.hypervolume(points, ref=np.full(points.shape[1], HV_REFERENCE)))
