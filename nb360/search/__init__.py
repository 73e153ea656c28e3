"""Search: one ask/tell interface (`Searcher`), the algorithms, and the in-process tabular runner.

`SEARCHERS` maps the names used on the command line to the classes, as "module:Class" (a module of
this package, or a full dotted path for code elsewhere), resolved on first use so that listing
them imports nothing heavy (a predictor-based searcher may need torch).
"""

from __future__ import annotations

import inspect
from importlib import import_module
from typing import Callable

from nb360.search.base import RngLike, Searcher, Trial, make_rng

SEARCHERS: dict[str, str] = {
    "rs": "random:RandomSearch",
    "re": "evolution:RegularizedEvolution",
    "ls": "local:LocalSearch",
    "reinforce": "reinforce:Reinforce",
    "sh": "halving:SuccessiveHalving",
    "hb": "halving:Hyperband",
    "zc-re": "warm_start:ZeroCostEvolution",
    "zc-ls": "warm_start:ZeroCostLocalSearch",
    # predictor-based
    "bananas": "bananas:Bananas",
    # multi-objective (error and costs; rs and the Optuna samplers take several objectives as well)
    "mo-re": "pareto_evolution:ParetoEvolution",
    "mo-bananas": "bananas:ScalarizedBananas",
    # Optuna's samplers through its ask/tell (nb360.compat.optuna; needs optuna)
    "optuna-tpe": "nb360.compat.optuna:OptunaTPE",
    "optuna-nsga2": "nb360.compat.optuna:OptunaNSGA2",
}

Algo = str | Callable[..., Searcher]  # a registered name, or a Searcher class (or factory)

__all__ = ["SEARCHERS", "Algo", "RngLike", "Searcher", "Trial", "make_rng", "make_searcher", "searcher_class",
           "searcher_parameters"]


def searcher_class(algo: Algo) -> Callable[..., Searcher]:
    """The class registered under a name (e.g. "re"); a class or factory is returned as is."""
    if callable(algo):
        return algo
    if algo not in SEARCHERS:
        raise ValueError(f"unknown search algorithm {algo!r}; known: {', '.join(SEARCHERS)}")
    module, name = SEARCHERS[algo].split(":")
    return getattr(import_module(module if "." in module else f"nb360.search.{module}"), name)


def searcher_parameters(algo: Algo) -> set[str]:
    """The keywords the constructor of `algo` takes."""
    cls = searcher_class(algo)
    return set(inspect.signature(cls.__init__ if inspect.isclass(cls) else cls).parameters) - {"self"}


def make_searcher(algo: Algo, rng: RngLike, **context) -> Searcher:
    """An instance of `algo`. `context` holds what an evaluator knows (`max_epochs`, `proxy`, ...)
    and options; each constructor receives the keywords it names and nothing else, so a searcher
    that does not ask for something never sees it."""
    accepted = searcher_parameters(algo)
    return searcher_class(algo)(rng=rng, **{k: v for k, v in context.items() if k in accepted})
