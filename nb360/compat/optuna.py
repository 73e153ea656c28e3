"""Optuna's samplers as nb360 searchers, through Optuna's ask/tell interface.

A study asks for the six edges of a cell as categorical parameters (`edge_<to>_<from>`, the keys the
Ray Tune backend uses too) and is told the validation error (minimised); an evaluation that failed
or has no score (`math.inf`, nb360's convention) is told as a failed trial, which Optuna's samplers
leave out of their models. So any of Optuna's samplers runs on the in-process tabular runner, with
nb360's seeds, budgets and reports (`nb360 search --algo optuna-tpe,optuna-nsga2`), and on Ray Tune
as every nb360 searcher does.

Registered: `optuna-tpe` (TPESampler, Optuna's default: independent TPE with its default 10 random
startup trials) and `optuna-nsga2` (NSGAIISampler, a genetic algorithm: population 50, crossover
over the categorical edges, mutation); `OptunaSearcher(sampler=...)` takes any other sampler class.
The sampler is seeded from the searcher's NumPy generator, so a seed gives the same search.

Both are multi-objective samplers as well (TPE becomes MOTPE, NSGA-II its original self): in a
search on several objectives (`nb360 search --objectives val_metric,flops`) the study minimises
every one of them.
"""

from __future__ import annotations

import math
from collections import defaultdict, deque

from nb360.search.base import RngLike, Searcher, as_scores
from nb360.spaces.nb201 import EDGE_KEYS, OPS, Arch


class OptunaSearcher(Searcher):
    """An Optuna sampler behind nb360's ask/tell; `sampler` is a sampler class taking `seed=`;
    `num_objectives` > 1 makes the study multi-objective."""

    multi_objective = True

    def __init__(self, rng: RngLike = 0, sampler=None, num_objectives: int = 1, **sampler_options):
        try:
            import optuna
        except ImportError:
            raise ValueError(f"{type(self).__name__} runs Optuna's samplers: pip install optuna "
                             "(or the nb360[optuna] extra)") from None
        super().__init__(rng)
        optuna.logging.set_verbosity(optuna.logging.WARNING)  # one INFO line per trial otherwise
        sampler = sampler or optuna.samplers.TPESampler
        seed = int(self.rng.integers(2**31 - 1))
        self.study = optuna.create_study(directions=["minimize"] * num_objectives,
                                         sampler=sampler(seed=seed, **sampler_options))
        self._asked: defaultdict[Arch, deque] = defaultdict(deque)  # trials awaiting their score, per arch

    def ask(self) -> Arch:
        trial = self.study.ask()
        arch = Arch(tuple(OPS.index(trial.suggest_categorical(key, OPS)) for key in EDGE_KEYS))
        self._asked[arch].append(trial)
        return arch

    def tell(self, arch: Arch, score: float, budget: int | None = None) -> None:
        import optuna

        if not self._asked[arch]:
            raise ValueError(f"{arch} was not asked by this searcher (or its score was told already)")
        trial = self._asked[arch].popleft()
        scores = as_scores(score)
        if not all(math.isfinite(s) for s in scores):
            self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            self.study.tell(trial, list(scores))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({type(self.study.sampler).__name__})"


class OptunaTPE(OptunaSearcher):
    """Optuna's TPESampler with its defaults."""

    def __init__(self, rng: RngLike = 0, num_objectives: int = 1):
        super().__init__(rng, num_objectives=num_objectives)


class OptunaNSGA2(OptunaSearcher):
    """Optuna's NSGAIISampler (a genetic algorithm) with its defaults."""

    def __init__(self, rng: RngLike = 0, num_objectives: int = 1):
        import optuna

        super().__init__(rng, sampler=optuna.samplers.NSGAIISampler, num_objectives=num_objectives)
