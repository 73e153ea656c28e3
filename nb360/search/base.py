"""The searcher interface: `ask` for an architecture, `tell` its score. Lower scores are better.

A searcher is a small object in the spirit of Optuna's samplers: it knows nothing of tables,
training or storage, only the scores it is told. Whoever evaluates (the tabular runner
`nb360.search.runner`, the Ray Tune adapter, a hand-written loop) does::

    searcher = SomeSearcher(rng=0)
    for _ in range(100):
        trial = searcher.ask_trial()          # Trial(arch, budget): budget None = full training
        score = evaluate(trial.arch, epochs=trial.budget)   # validation error, never test
        searcher.tell(trial.arch, score, trial.budget)

A new algorithm subclasses `Searcher` and writes `ask` (and `tell` if it learns): see
docs/search.md for one in 30 lines. Multi-fidelity algorithms (successive halving, Hyperband) also
say how many epochs to train an asked arch for: they override `ask_trial`, which every evaluator
calls; `ask` then returns the same arch without its budget, for code that always trains fully.

A multi-objective searcher (`multi_objective = True`) is told, in a search on several objectives,
a tuple per evaluation: the validation error first, then the costs (`nb360.search.objectives`),
all lower is better; its constructor may name `num_objectives` to learn how many. Told a single
score, it searches that alone.

Scores are validation errors (the task's metric at the evaluated epoch). An evaluation that failed
or has no result is told as `math.inf`, so comparisons stay plain `<`. A searcher is never told
test scores: the evaluator reports them after the search, never to it.

Searchers may work on official indices (ints) internally, for speed; `nb360.search.space` holds
the shared index tables (all archs, arch -> index, the 15,625 x 24 neighbour table).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from nb360.spaces.nb201 import Arch

RngLike = int | np.random.Generator


def make_rng(rng: RngLike) -> np.random.Generator:
    """A numpy Generator from a seed or a Generator (used as is, so a caller can share one)."""
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool) and rng >= 0:
        return np.random.default_rng(int(rng))
    raise ValueError(f"rng must be a non-negative int seed or a numpy.random.Generator, got {rng!r}")


def as_scores(score) -> tuple[float, ...]:
    """What a multi-objective searcher was told, as a tuple: a single score becomes a 1-tuple."""
    return tuple(score) if isinstance(score, (tuple, list)) else (score,)


@dataclass(frozen=True, slots=True)
class Trial:
    """One evaluation to run: train `arch` for `budget` epochs (None: the full protocol)."""

    arch: Arch
    budget: int | None = None


class Searcher:
    """Base class of every search algorithm.

    Subclasses implement `ask`; those that learn from results also implement `tell`; batch
    proposers (e.g. predictor-based ones) may override `ask_batch`; multi-fidelity ones override
    `ask_trial` and set `multi_fidelity = True`; those that take a tuple of scores (error, costs)
    set `multi_objective = True`.

    Construction: `Cls(rng=seed_or_generator, **options)`. Options have the defaults of the
    literature (cited in each class). `nb360.search.make_searcher` also passes, to classes whose
    `__init__` names them, the keywords of the evaluation context: `max_epochs` (the full training
    length) and `proxy` (per-arch zero-cost scores, higher is better).
    """

    multi_fidelity: ClassVar[bool] = False
    multi_objective: ClassVar[bool] = False

    def __init__(self, rng: RngLike = 0):
        self.rng = make_rng(rng)

    def ask(self) -> Arch:
        """The next architecture to evaluate."""
        raise NotImplementedError(f"{type(self).__name__} must implement ask()")

    def tell(self, arch: Arch, score: float, budget: int | None = None) -> None:
        """The validation score (lower is better, inf if the evaluation failed) of `arch` trained
        for `budget` epochs (None: fully), or for a multi-objective searcher possibly a tuple
        (error, costs...). Searchers that do not learn ignore it."""

    def ask_batch(self, n: int) -> list[Arch]:
        """`n` architectures to evaluate in parallel, told back in any order."""
        return [self.ask() for _ in range(n)]

    def ask_trial(self) -> Trial:
        """The next evaluation, with the number of epochs to train for; what evaluators call."""
        return Trial(self.ask())

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
