"""Multi-objective search over a table: what a searcher is told, and how the front it found scores.

A multi-objective search minimises the validation error and one or two costs (`COSTS`). Each query
tells the searcher a tuple, the error first: the validation score of the drawn run, then the
cell's costs (params, FLOPs and latency are properties of the network, known exactly; training
seconds are the drawn run's, like its score).

What a search found is scored as a practitioner would use it: the queried cells that no other
queried cell beats on every objective *as the search saw them* (validation error, observed costs)
form its front; those cells are then scored on test (mean over seeds, final epoch; training
seconds likewise), and the hypervolume of that front (`nb360.table.pareto.hypervolume`, in the
normalised space of `pareto.Scale`) is compared with the table's true test front over the same
cells (its classes within any constraints):

    hypervolume regret = 1 - HV(found front, on test) / HV(true front)

0 when the search found every cell of the true front, 1 before it found anything. It is the
multi-objective counterpart of the single-objective test regret of the incumbent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

from nb360.table import pareto

if TYPE_CHECKING:
    from nb360.table.benchmark import Benchmark

ERROR = "val_metric"  # what a search minimises first; reported as test_metric
COSTS = ("params", "flops", "latency_ms", "train_seconds")


def check(objectives: Sequence[str]) -> list[str]:
    """The objectives of a multi-objective search: the validation error, then one or two costs."""
    objectives = list(objectives)
    if (len(objectives) not in (2, 3) or objectives[0] != ERROR or len(set(objectives)) != len(objectives)
            or not set(objectives[1:]) <= set(COSTS)):
        raise ValueError(f"objectives {','.join(objectives)}: expected {ERROR} then one or two different costs of "
                         f"{', '.join(COSTS)} (e.g. {ERROR},flops); a search never sees test scores")
    return objectives


class FrontScorer:
    """A table prepared for scoring fronts on `objectives` among the cells `allowed`: each cell's
    known costs (for what a searcher is told) and its normalised test point (for hypervolume).
    `error` is the column a front's error is scored by: test, or validation (mean over seeds) to ask
    how well a search did at what it could see."""

    def __init__(self, benchmark: "Benchmark", objectives: Sequence[str], allowed: np.ndarray,
                 error: str = "test_metric"):
        self.objectives = check(objectives)
        df = benchmark.df
        missing = [c for c in self.objectives[1:] if c not in df.columns or not np.isfinite(df[c]).any()]
        if missing:
            raise ValueError(f"{benchmark.path}: no {', '.join(missing)} column with values; this table can be "
                             f"searched for {ERROR} against " + ", ".join(c for c in COSTS if c in df.columns
                                                                         and np.isfinite(df[c]).any()))
        reported = [error, *self.objectives[1:]]
        values = df[reported].to_numpy(dtype=float)
        scored = allowed & np.isfinite(values).all(axis=1)
        classes = pareto.classes(benchmark).index.to_numpy()
        classes = classes[scored[classes]]
        if not len(classes):
            raise ValueError(f"{benchmark.path}: no cell has all of {', '.join(reported)}; no front to score")
        self.scale = pareto.Scale(values[classes], reported)
        self.points = np.where(scored[:, None], self.scale(values), np.nan)  # (A, k), NaN: cannot be on a front
        true = classes[pareto.nondominated(values[classes])]
        self.true_front = true[np.argsort(values[true, 0], kind="stable")]
        self.best_hypervolume = pareto.hypervolume(self.points[self.true_front])
        # what a searcher is told besides its error: known costs, or None for the drawn run's seconds
        known = [None if c == "train_seconds" else df[c].to_numpy(dtype=float).tolist() for c in self.objectives[1:]]
        self._known = known

    def observed(self, index: int, error: float, seconds: float) -> tuple[float, ...]:
        """What a query of `index` tells the searcher: the error, then the costs in objective order."""
        return (error, *(seconds if column is None else column[index] for column in self._known))

    def regret(self, indices: Sequence[int]) -> float:
        """1 - HV(the test points of `indices`) / HV(the true front); cells without a test point
        (no finished run on every objective, or outside the constraints) add nothing."""
        points = self.points[list(indices)]
        points = points[np.isfinite(points).all(axis=1)]
        return 1.0 - pareto.hypervolume(points) / self.best_hypervolume


class FoundFront:
    """The queried cells no other queried cell beats on every observed objective, kept as queries
    arrive (a handful of points: plain Python is faster than any array call here)."""

    def __init__(self, scorer: FrontScorer):
        self.scorer = scorer
        self.members: list[tuple[tuple[float, ...], int]] = []  # (observed objectives, index)
        self.regret = 1.0

    def add(self, index: int, observed: tuple[float, ...]) -> None:
        """Add a query; `regret` is recomputed only when the front changes."""
        if observed[0] != observed[0] or observed[0] == float("inf"):
            return
        for seen, _ in self.members:
            if all(s <= o for s, o in zip(seen, observed)):
                return  # beaten by, or equal to, a member
        self.members = [(seen, i) for seen, i in self.members if not all(o <= s for o, s in zip(observed, seen))]
        self.members.append((observed, index))
        self.regret = self.scorer.regret([i for _, i in self.members])
