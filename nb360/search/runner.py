"""The in-process tabular runner: a searcher against a table, in simulated training time.

Each query is one simulated training run, with `Benchmark.simulate`'s semantics: the asked arch,
trained for the asked number of epochs (a multi-fidelity searcher's budget; else the table's
full length), gives the validation score and the cumulative training seconds at that epoch of one
seed's run, drawn at random (a fresh training run, as NATS-Bench's `simulate_train_eval` draws
one with `is_random=True`). The seed is drawn among the runs the table has for that arch; an arch
without a finished run scores NaN (told to the searcher as inf) and costs no time, or, with
`unscored="skip"`, is not a query at all: the searcher is told nothing and asked again, as if the
space held only the scored cells (a partial table searched for what it has; see `UNSCORED`).
Every query is charged in full, from scratch, as NATS-Bench charges it. The search stops after `queries` queries
or once the simulated clock has reached `time_budget` seconds (the query that crosses it counts, as
in NATS-Bench's loops `while total_time < time_budget`), whichever comes first.

The searcher is told validation scores only. Test scores are for the record: `regret` is the test
score (final epoch, mean over seeds) of the incumbent, the arch with the lowest validation score
seen so far, minus the table's best test score.

With `objectives` (the validation error and one or two costs; `nb360.search.objectives`), a
multi-objective search: the searcher is told a tuple per query, error first, and each query also
records the observed costs and the hypervolume regret of the front found so far (`hv_regret`).
Only searchers with `multi_objective = True` take tuples.

Speed: the table is read once into per-epoch Python lists (no pandas, no h5py, no NumPy scalars in
the loop), and the loop does a dict lookup, a list lookup and the searcher's own work per query.
"""

from __future__ import annotations

import math
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Collection, Sequence

import numpy as np

from nb360.interrupts import raise_if_interrupted
from nb360.search import Algo, make_searcher, searcher_class, searcher_parameters
from nb360.search.base import Searcher
from nb360.search.objectives import FoundFront, FrontScorer, check as check_objectives
from nb360.search.space import UniformStream, all_archs, index_by_arch
from nb360.table.benchmark import Benchmark

COLUMNS = ("algo", "seed", "trial", "arch", "index", "epochs", "val", "test", "sim_seconds", "regret")
HV_REGRET = "hv_regret"  # the last column of a multi-objective search, after its costs (`columns`)
# What an ask of a cell without a finished run is: "fail", a query told inf (NATS-Bench's reading
# of a failed run), or "skip", no query (nothing told, asked again). On a partial table "fail"
# lets unscored cells take queries and, in regularized evolution, population places, which hides
# what the algorithm does on a complete table; "skip" needs a searcher that does not wait for
# every result it asked for, so successive halving and Hyperband refuse it.
UNSCORED = ("fail", "skip")
# Asks in a row that "skip" passes over before it gives up: a searcher confined to unscored cells
# (a nearly empty table, or a proxy warm start that only knows unscored ones) would never end.
MAX_SKIPS = 100_000
_NAN = float("nan")


class TabularSimulator:
    """A table prepared for simulation: for every epoch asked so far, each arch's finished runs as
    (validation score, training seconds) pairs, and each arch's final test score.

    With `constraints` ({column: upper bound}, e.g. {"flops": 2e7}; `nb360.table.pareto`), a
    constrained search: a cell outside them is one the search may not deploy, so it has no run to
    draw (an ask of it is a failure or skipped, as `unscored` says, and costs no time: its costs are
    known before training), it can never be the incumbent, and regret is measured against the best
    cell within them.

    With `objectives` (`nb360.search.objectives.check`), `scorer` scores the fronts that searches
    find among the same cells."""

    def __init__(self, benchmark: Benchmark, constraints: dict[str, float] | None = None,
                 objectives: Sequence[str] | None = None):
        from nb360.table import pareto

        self.benchmark = benchmark
        self.epochs = benchmark.epochs
        self.constraints = dict(constraints or {})
        self._allowed = pareto.allowed(benchmark.df, self.constraints)
        test = np.where(self._allowed, benchmark.final("test_metric"), np.nan)
        if not np.isfinite(test).any():
            raise ValueError(f"{benchmark.path}: no finished run has a test score"
                             + (f" among the cells within {self.constraints}" if self.constraints else "")
                             + "; regret cannot be measured")
        self.test: list[float] = test.tolist()
        self.best_test = float(np.nanmin(test))
        self._runs: dict[int, list[list[tuple[float, float]]]] = {}
        self.scorer = FrontScorer(benchmark, objectives, self._allowed) if objectives else None

    def runs(self, epochs: int) -> list[list[tuple[float, float]]]:
        """For each official index, the (val, seconds) of every finished run after `epochs`."""
        if epochs not in self._runs:
            if not 1 <= epochs <= self.epochs:
                raise ValueError(f"a trial asked for {epochs} epochs; the table {self.benchmark.path} has 1..{self.epochs}")
            val = self.benchmark.at_epoch("val_metric", epochs).tolist()
            seconds = np.nan_to_num(self.benchmark.at_epoch("train_seconds", epochs), nan=0.0).tolist()
            self._runs[epochs] = [[(v, s) for v, s in zip(vs, ss) if v == v] if ok else []
                                  for vs, ss, ok in zip(val, seconds, self._allowed.tolist())]
        return self._runs[epochs]


@dataclass
class Trace:
    """One search's queries, column by column (the rows of trials.csv without algo, seed, arch)."""

    index: list[int] = field(default_factory=list)
    epochs: list[int] = field(default_factory=list)
    val: list[float] = field(default_factory=list)
    test: list[float] = field(default_factory=list)
    sim_seconds: list[float] = field(default_factory=list)
    regret: list[float] = field(default_factory=list)
    costs: list[tuple[float, ...]] = field(default_factory=list)  # multi-objective: observed costs per query
    hv_regret: list[float] = field(default_factory=list)  # multi-objective: of the front found so far

    def __len__(self) -> int:
        return len(self.index)


def _check_unscored(unscored: str, cls: type[Searcher], name: str) -> None:
    """Refuse an unknown `unscored`, and "skip" for a searcher that waits for every result."""
    if unscored not in UNSCORED:
        raise ValueError(f"unscored must be one of {', '.join(UNSCORED)}, got {unscored!r}")
    if unscored == "skip" and cls.multi_fidelity:
        raise ValueError(f"{name} waits for every result it asked for; it cannot skip unscored cells "
                         "(search a partial table with them as failures: unscored='fail')")


def columns(objectives: Sequence[str] | None = None) -> list[str]:
    """The columns of trials.csv: `COLUMNS`, and for a multi-objective search its costs and `HV_REGRET`."""
    return [*COLUMNS, *objectives[1:], HV_REGRET] if objectives else list(COLUMNS)


def _check_objectives(objectives: Sequence[str] | None, cls, name: str) -> None:
    """Refuse a single-objective searcher in a multi-objective search."""
    if objectives and not getattr(cls, "multi_objective", False):
        from nb360.search import SEARCHERS, searcher_class

        able = [n for n in SEARCHERS if getattr(searcher_class(n), "multi_objective", False)]
        raise ValueError(f"{name} minimises one score; a search on {','.join(objectives)} needs a multi-objective "
                         f"searcher: {', '.join(able)}")


def run(searcher: Searcher, sim: TabularSimulator, rng: np.random.Generator, queries: int | None = None,
        time_budget: float | None = None, unscored: str = "fail") -> Trace:
    """Run `searcher` against the table until `queries` queries or `time_budget` simulated seconds;
    asks of cells without a run as `unscored` says (see `UNSCORED`)."""
    _check_unscored(unscored, type(searcher), repr(searcher))
    trace = Trace()
    if queries is None and time_budget is None:
        raise ValueError("give a budget: a number of queries, a time budget in simulated seconds, or both")
    if (queries is not None and queries < 1) or (time_budget is not None and not time_budget > 0):
        raise ValueError(f"budgets must be positive, got queries={queries}, time_budget={time_budget}")
    if time_budget is not None and not np.isfinite(sim.benchmark.at_epoch("train_seconds")).any():
        raise ValueError(f"{sim.benchmark.path}: no training times in this table; use a budget in queries")
    max_queries = math.inf if queries is None else queries
    max_seconds = math.inf if time_budget is None else time_budget
    scorer = sim.scorer
    if scorer is not None:
        _check_objectives(scorer.objectives, type(searcher), repr(searcher))
        found = FoundFront(scorer)
        observe, costs, hv_regrets = scorer.observed, trace.costs, trace.hv_regret
    ask, tell = searcher.ask_trial, searcher.tell
    lookup, test, best_test, full = index_by_arch(), sim.test, sim.best_test, sim.epochs
    runs_by_epochs: dict[int, list] = {}
    draw = UniformStream(rng).uniform
    indices, epochs_col, vals, tests, clocks, regrets = (trace.index, trace.epochs, trace.val, trace.test,
                                                         trace.sim_seconds, trace.regret)
    best_val, regret, clock, n, skipped = math.inf, _NAN, 0.0, 0, 0
    skip = unscored == "skip"
    while n < max_queries and clock < max_seconds:
        trial = ask()
        arch, budget = trial.arch, trial.budget
        try:
            index = lookup[arch]
        except (KeyError, TypeError):
            raise ValueError(f"{searcher!r} asked for {arch!r}; a searcher asks for nb360 Arch values") from None
        epochs = full if budget is None else budget
        runs = runs_by_epochs.get(epochs)
        if runs is None:
            runs = runs_by_epochs[epochs] = sim.runs(epochs)
        seeds = runs[index]
        if seeds:
            val, seconds = seeds[0] if len(seeds) == 1 else seeds[int(draw() * len(seeds))]
            skipped = 0
        elif skip:
            skipped += 1
            if skipped >= MAX_SKIPS:
                raise ValueError(f"{searcher!r} asked {MAX_SKIPS:,} cells in a row that {sim.benchmark.path} has no "
                                 f"run of; with unscored='skip' a search needs scored cells within its reach")
            continue
        else:
            val, seconds = _NAN, 0.0
        clock += seconds
        if scorer is None:
            tell(arch, val if val == val else math.inf, budget)
        else:
            observed = observe(index, val if val == val else math.inf, seconds if val == val else _NAN)
            tell(arch, observed, budget)
            found.add(index, observed)
            costs.append(observed[1:])
            hv_regrets.append(found.regret)
        if val < best_val:
            best_val, regret = val, test[index] - best_test
        n += 1
        indices.append(index)
        epochs_col.append(epochs)
        vals.append(val)
        tests.append(test[index])
        clocks.append(clock)
        regrets.append(regret)
    return trace


def search_rngs(seed: int) -> tuple[np.random.Generator, np.random.Generator]:
    """Independent generators for the searcher and for the simulated training runs of one seed,
    so that the same searcher seed sees the same draws whatever the other one does."""
    searcher_seq, sim_seq = np.random.SeedSequence(seed).spawn(2)
    return np.random.default_rng(searcher_seq), np.random.default_rng(sim_seq)


def proxy_column(benchmark: Benchmark, name: str) -> np.ndarray:
    """A zero-cost proxy column of the table (higher is better), or params / flops as the trivial
    baselines."""
    df = benchmark.df
    for column in (f"proxy_{name}", name if name in ("params", "flops") else None):
        if column in df.columns:
            values = df[column].to_numpy(dtype=np.float64)
            if not np.isfinite(values).any():
                raise ValueError(f"{benchmark.path}: column {column!r} has no values")
            return values
    known = [c.removeprefix("proxy_") for c in df.columns if c.startswith("proxy_")] + ["params", "flops"]
    raise ValueError(f"{benchmark.path}: no proxy {name!r}; this table has: {', '.join(known)}")


def run_search(benchmark: Benchmark, algo: Algo, seed: int, queries: int | None = None,
               time_budget: float | None = None, proxy: str | np.ndarray | Callable | None = None,
               sim: TabularSimulator | None = None, unscored: str = "fail",
               constraints: dict[str, float] | None = None, objectives: Sequence[str] | None = None,
               **options) -> Trace:
    """Run `algo` (a registered name such as "re", or a Searcher class) for one seed. `proxy` (a
    table column name, an array or a function) is given to the algorithms that take one (zc-re,
    zc-ls); `unscored`: see `UNSCORED`; `constraints` and `objectives`: see `TabularSimulator` (or
    give a `sim` made with them); `options` go to the algorithm's constructor (e.g.
    population_size=50)."""
    sim = sim or TabularSimulator(benchmark, constraints, objectives)
    searcher_rng, sim_rng = search_rngs(seed)
    context = dict(options, max_epochs=benchmark.epochs)
    if sim.scorer is not None:
        context["num_objectives"] = len(sim.scorer.objectives)
    if "proxy" in searcher_parameters(algo):
        context["proxy"] = proxy_column(benchmark, proxy) if isinstance(proxy, str) else proxy
    searcher = make_searcher(algo, searcher_rng, **context)
    return run(searcher, sim, sim_rng, queries=queries, time_budget=time_budget, unscored=unscored)


def run_many(benchmark: Benchmark, algos: Sequence[Algo], seeds: Sequence[int], queries: int | None = None,
             time_budget: float | None = None, proxy: str | np.ndarray | Callable | None = None,
             progress: bool = True, workers: int = 1, unscored: str = "fail",
             done: Collection[tuple[str, int]] = (), on_search: Callable | None = None,
             constraints: dict[str, float] | None = None, objectives: Sequence[str] | None = None):
    """Every algorithm for every seed: a DataFrame with the columns of `columns(objectives)`, one
    row per query (`unscored`: see `UNSCORED`).

    `done` names (algorithm, seed) searches already made, which are left out (a resumed job);
    `on_search(frame)` receives each search's rows as soon as it finishes, in job order, so a
    caller can keep them before the rest are done.

    `constraints` makes every search a constrained one, `objectives` a multi-objective one
    (`TabularSimulator`).

    `workers` > 1 runs the searches in that many processes, each opening the table file once; the
    result is the same as with one (every search has its own seeds), only sooner where searches
    cost real time (BANANAS trains its predictors). Algorithms and proxy functions then travel to
    the processes by pickle: registered names, or classes and functions that can be imported."""
    import pandas as pd
    from tqdm.auto import tqdm

    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    # bad input fails before any work: an unknown name, a proxy the table lacks, a searcher that
    # cannot skip
    if objectives:
        objectives = check_objectives(objectives)
    for algo in algos:
        _check_unscored(unscored, searcher_class(algo), str(algo))
        _check_objectives(objectives, searcher_class(algo), str(algo))
    if isinstance(proxy, str) and any("proxy" in searcher_parameters(algo) for algo in algos):
        proxy = proxy_column(benchmark, proxy)
    strings = [str(a) for a in all_archs()]
    frames = []
    done = {(str(algo), int(seed)) for algo, seed in done}
    jobs = [(algo, seed, queries, time_budget, unscored) for algo in algos for seed in seeds
            if (algo_name(algo), int(seed)) not in done]
    names = columns(objectives)
    with _searches(benchmark, proxy, max(1, min(workers, len(jobs))), constraints, objectives) as search:
        for (algo, seed, *_), trace in tqdm(zip(jobs, search(jobs)), total=len(jobs), desc="search", unit="run",
                                              disable=not progress):
            frame = {
                "algo": algo_name(algo), "seed": seed,
                "trial": np.arange(1, len(trace) + 1), "arch": [strings[i] for i in trace.index], "index": trace.index,
                "epochs": trace.epochs, "val": trace.val, "test": trace.test, "sim_seconds": trace.sim_seconds,
                "regret": trace.regret,
            }
            if objectives:
                costs = np.array(trace.costs, dtype=float).reshape(len(trace), len(objectives) - 1)
                frame.update({name: costs[:, j] for j, name in enumerate(objectives[1:])})
                frame[HV_REGRET] = trace.hv_regret
            frames.append(pd.DataFrame(frame, columns=names))
            if on_search is not None:
                on_search(frames[-1])
            raise_if_interrupted()  # after the finished search is handed on, so that it is kept
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=names)


def algo_name(algo: Algo) -> str:
    """A registered name as given, a Searcher class by its class name: how trials.csv names it."""
    return algo if isinstance(algo, str) else algo.__name__


@contextmanager
def _searches(benchmark: Benchmark, proxy, workers: int, constraints: dict[str, float] | None = None,
              objectives: Sequence[str] | None = None):
    """A function from (algo, seed, queries, time_budget, unscored) jobs to their traces, in job order: in
    this process, or in `workers` fresh ones (spawned: a forked copy of a process that has
    imported torch can hang)."""
    if workers == 1:
        sim = TabularSimulator(benchmark, constraints, objectives)
        yield lambda jobs: (run_search(benchmark, algo, seed, queries=q, time_budget=t, proxy=proxy, sim=sim,
                                       unscored=u) for algo, seed, q, t, u in jobs)
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker,
                             initargs=(str(benchmark.path), proxy, constraints, objectives)) as pool:
        yield lambda jobs: pool.map(_worker_search, jobs)


_WORKER: dict = {}  # a search process's table, simulator and proxy, set up once by `_start_worker`


def _start_worker(path: str, proxy, constraints: dict[str, float] | None, objectives: Sequence[str] | None) -> None:
    benchmark = Benchmark(Path(path))  # verified by the caller's `Benchmark.load`
    _WORKER.update(benchmark=benchmark, sim=TabularSimulator(benchmark, constraints, objectives), proxy=proxy)


def _worker_search(job: tuple) -> Trace:
    algo, seed, queries, time_budget, unscored = job
    return run_search(_WORKER["benchmark"], algo, seed, queries=queries, time_budget=time_budget,
                      proxy=_WORKER["proxy"], sim=_WORKER["sim"], unscored=unscored)
