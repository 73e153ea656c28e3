"""Search on Ray Tune: nb360 searchers (and Tune's own) over real training or a table, on a laptop or a cluster.

Pieces, each usable alone:

- `search_space()`: the NB201 cell as a Tune search space, six categorical edges (`EDGE_KEYS`), so
  that Tune's own searchers (Optuna, HyperOpt) can propose cells; `config_to_arch` reads a cell
  back from any trial's config.
- `NB360Search`: a `ray.tune.search.Searcher` around any nb360 `Searcher`: Tune's `suggest` is
  `ask_trial`, `on_trial_complete` is `tell` with the trial's last validation score (`math.inf` for
  a trial that failed, after its retries).
- `train_trial`: the function trainable that builds the cell's network for a task and trains it
  with `nb360.train.fit`, reporting every epoch with `ray.tune.report`, so that a scheduler such as
  ASHA can stop it early. (`ray.train.report` raises inside a Tune trial since Ray 2.x's Train v2,
  see ray-project/ray#49454; `ray.tune.report` is the Tune API.) The task's data travel once
  through the object store with `tune.with_parameters`, never through the config, so cluster
  nodes need no data files.
- `table_trial`: the same reports looked up in a table instead of trained, to measure what Tune
  costs per trial against the in-process runner (`nb360.search.runner`).
- `search_task` / `search_table`: run algorithms x seeds on Tune (joining a cluster with
  `address`, or starting a local Ray) and return one row per trial, in the columns of the tabular
  runner's trials.csv plus Tune's own (`TUNE_COLUMNS`); `write_outputs` writes trials.csv,
  best.json and, for tables, regret.png.

Failure policy: `tune.FailureConfig(max_failures)` retries a trial whose worker or node died, from
scratch (trials are short and keep no checkpoint, so nothing has to be shared between nodes). Every
trial is accounted for: finished, stopped early by the scheduler, or failed after its retries;
a run that loses one raises.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import pickle
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np
from ray import tune
from ray.tune.search import Searcher as TuneSearcher
from tqdm.auto import tqdm

from nb360.search import Algo, make_searcher, searcher_parameters
from nb360.search.base import Searcher, Trial
from nb360.search.report import best_archs, plot_regret
from nb360.search.runner import COLUMNS, algo_name, proxy_column, search_rngs
from nb360.search.space import index_of
from nb360.spaces.nb201 import EDGE_KEYS, OPS, Arch, ArchLike

if TYPE_CHECKING:  # torch is imported by the trials that train, not by this module
    from nb360.data.task import Task

# Config key of a multi-fidelity searcher's budget: the epochs this trial trains for.
EPOCHS_KEY = "epochs"
# What trials report and every searcher minimises: the validation error (never the test score).
METRIC = "val_metric"
# Ray Tune's own searchers, by the names `--algo` takes.
TUNE_SEARCHERS = ("optuna", "hyperopt")
SCHEDULERS = ("fifo", "asha")
# Columns of trials.csv beyond the tabular runner's: how the trial ended (finished, stopped early by
# the scheduler, failed after its retries), how often it was retried, the wall-clock seconds since
# the search started when it ended, Tune's trial id and, for a failed trial, its error.
TUNE_COLUMNS = ("status", "failures", "wall_seconds", "trial_id", "error")
_OP_ID = {op: i for i, op in enumerate(OPS)}
_NAN = float("nan")


# ---- the NB201 cell as a Tune config ---------------------------------------------------------
def search_space() -> dict[str, Any]:
    """Six categorical edges over the five NB201 operations, for Tune's own searchers."""
    return {key: tune.choice(list(OPS)) for key in EDGE_KEYS}


def arch_to_config(arch: ArchLike) -> dict[str, str]:
    """A cell as a Tune config: edge key -> operation name."""
    return dict(zip(EDGE_KEYS, Arch.parse(arch).op_names))


def config_to_arch(config: dict) -> Arch:
    """The cell of a trial's config (other keys, such as the epochs, are ignored)."""
    missing = [key for key in EDGE_KEYS if key not in config]
    if missing:
        raise ValueError(f"a trial config needs the six NB201 edges {', '.join(EDGE_KEYS)}; "
                         f"missing {', '.join(missing)} in {config!r}")
    unknown = {key: config[key] for key in EDGE_KEYS if config[key] not in _OP_ID}
    if unknown:
        raise ValueError(f"unknown NB201 operation(s) {unknown!r}; known: {', '.join(OPS)}")
    return Arch(tuple(_OP_ID[config[key]] for key in EDGE_KEYS))


# ---- an nb360 searcher as a Tune searcher ------------------------------------------------------
class NB360Search(TuneSearcher):
    """Wraps an nb360 `Searcher` for `tune.TuneConfig(search_alg=...)`.

    `suggest` calls `ask_trial`: the config holds the cell's six edges and, for a multi-fidelity
    searcher's trial, `EPOCHS_KEY`. `on_trial_complete` tells the trial's last reported `metric`
    (the validation error at its last epoch), with the asked budget, or with the epochs trained if a
    scheduler stopped the trial before that (of a budget of `max_epochs` when none was asked); a
    trial that failed after its retries, or reported no finite score, is told `math.inf`, as the
    interface asks. Only minimisation is meaningful.
    """

    def __init__(self, searcher: Searcher, max_epochs: int, metric: str = METRIC, mode: str = "min"):
        if mode not in (None, "min"):
            raise ValueError(f"nb360 searchers minimise their scores; mode must be 'min', got {mode!r}")
        super().__init__(metric=metric, mode=mode)
        # not `self.searcher`: Tune takes an object with that attribute for a wrapper of a Tune
        # searcher (ConcurrencyLimiter, Repeater) and descends into it when saving
        self.algorithm = searcher
        self.max_epochs = max_epochs
        self._asked: dict[str, Trial] = {}

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec) -> bool:
        """Tune passes the TuneConfig's metric and mode here, but only when the Tuner has a
        param_space (hence the default metric); the config stays ours to fill."""
        if mode not in (None, "min"):
            raise ValueError(f"nb360 searchers minimise their scores; mode must be 'min', got {mode!r}")
        self._metric = metric or self._metric
        self._mode = "min"
        return True

    def suggest(self, trial_id: str) -> dict:
        trial = self.algorithm.ask_trial()
        self._asked[trial_id] = trial
        config: dict[str, Any] = arch_to_config(trial.arch)
        if trial.budget is not None:
            config[EPOCHS_KEY] = int(trial.budget)
        return config

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        trial = self._asked.pop(trial_id)
        score, budget = math.inf, trial.budget
        if not error and result:
            value = result.get(self.metric, _NAN)
            if value is not None and math.isfinite(value):
                score = float(value)
            # Tune marks a result "done" whether the trial returned or a scheduler stopped it
            trained = result.get("epoch")
            if trained is not None and trained < (trial.budget or self.max_epochs):
                budget = int(trained)
        self.algorithm.tell(trial.arch, score, budget)

    def save(self, checkpoint_path: str) -> None:
        """Tune saves its searcher with each experiment checkpoint."""
        with open(checkpoint_path, "wb") as f:
            pickle.dump((self.algorithm, self._asked), f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as f:
            self.algorithm, self._asked = pickle.load(f)


# ---- trainables -------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrainProtocol:
    """How every trial of a search trains: network size, optimiser, epochs, seed, device."""

    C: int
    N: int
    epochs: int
    batch_size: int
    lr: float
    seed: int = 0
    device: str = "cpu"
    threads: int = 1


class _BudgetSpent(Exception):
    """Leaves `fit` once a multi-fidelity trial has trained its budget of epochs."""


def train_trial(config: dict, task: Task, protocol: TrainProtocol) -> None:
    """Tune function trainable: train the config's cell on `task` and report every epoch.

    A trial with `EPOCHS_KEY` stops after that many epochs of the full protocol's schedule (the
    learning rate follows the cosine over `protocol.epochs`), so that its score is the one a full
    run has at that epoch, as a table's curve gives it and as ASHA's early stopping leaves it.
    Reports carry the records of `nb360.train.fit` (epoch, val_metric, test_metric,
    train_seconds, ...); searchers see `METRIC` only.
    """
    import torch

    from nb360.spaces.network import build
    from nb360.train import fit, seed_everything

    torch.set_num_threads(protocol.threads)
    arch = config_to_arch(config)
    budget = int(config.get(EPOCHS_KEY, protocol.epochs))
    if not 1 <= budget <= protocol.epochs:
        raise ValueError(f"a trial asked for {budget} epochs; the protocol has 1..{protocol.epochs}")

    def report(record: dict) -> None:
        tune.report(dict(record))
        if record["epoch"] >= budget:
            raise _BudgetSpent

    seed_everything(protocol.seed)
    model = build(arch, task.spec, protocol.C, protocol.N)
    try:
        fit(model, task.splits, task.loss, task.metric, epochs=protocol.epochs, batch_size=protocol.batch_size,
            lr=protocol.lr, seed=protocol.seed, callback=report, device=protocol.device, progress=False)
    except _BudgetSpent:
        pass


@dataclass(frozen=True)
class TableCurves:
    """A table's per-epoch curves as (archs, epochs) arrays, mean over seeds (NaN: no run), for
    `table_trial`: plain arrays, which the object store hands to trials without copying."""

    val: np.ndarray
    test: np.ndarray
    seconds: np.ndarray

    @classmethod
    def from_benchmark(cls, benchmark) -> TableCurves:
        def mean_curves(metric: str) -> np.ndarray:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # archs without a run stay NaN
                return np.nanmean(benchmark.curves(metric), axis=1)

        return cls(mean_curves("val_metric"), mean_curves("test_metric"), mean_curves("train_seconds"))

    @property
    def epochs(self) -> int:
        return self.val.shape[1]


def table_trial(config: dict, curves: TableCurves) -> None:
    """Tune function trainable that trains nothing: it reports the config's cell's table curves
    epoch by epoch (the mean over the table's seeds, so the same cell always scores the same), as
    `train_trial` reports a real run; `EPOCHS_KEY` stops it early as there."""
    index = index_of(config_to_arch(config))
    budget = int(config.get(EPOCHS_KEY, curves.epochs))
    if not 1 <= budget <= curves.epochs:
        raise ValueError(f"a trial asked for {budget} epochs; the table has 1..{curves.epochs}")
    val, test, seconds = curves.val[index], curves.test[index], curves.seconds[index]
    for e in range(budget):
        tune.report({"epoch": e + 1, METRIC: float(val[e]), "test_metric": float(test[e]),
                     "train_seconds": float(seconds[e])})


# ---- recording every trial ---------------------------------------------------------------------
class TrialRecorder(tune.Callback):
    """One row per trial as it ends (finished, stopped early or failed after its retries), in the
    order trials end, whichever searcher proposed them."""

    def __init__(self, max_epochs: int, progress: bool = True, label: str = ""):
        self.max_epochs = max_epochs
        self.rows: list[dict] = []
        self.progress, self.label = progress, label
        self._start = time.perf_counter()
        self._bar = None

    def setup(self, stop=None, num_samples: int | None = None, total_num_samples: int | None = None, **info) -> None:
        # the bar is made here, not in __init__: Tune pickles its callbacks first, and a bar holds
        # the terminal's stream
        self._bar = tqdm(total=total_num_samples, unit="trial", desc=self.label, disable=not self.progress,
                         dynamic_ncols=True)

    def on_trial_complete(self, iteration: int, trials: list, trial, **info) -> None:
        self._record(trial, failed=False)

    def on_trial_error(self, iteration: int, trials: list, trial, **info) -> None:
        self._record(trial, failed=True)

    def _record(self, trial, failed: bool) -> None:
        result = trial.last_result or {}
        arch = config_to_arch(trial.config)
        epochs = int(result.get("epoch", 0))
        if failed:
            status = "failed"
        else:
            status = "finished" if epochs >= int(trial.config.get(EPOCHS_KEY, self.max_epochs)) else "stopped"
        self.rows.append({
            "arch": str(arch), "index": index_of(arch), "epochs": epochs,
            "val": _NAN if failed else float(result.get(METRIC, _NAN)),
            "test": float(result.get("test_metric", _NAN)), "train_seconds": float(result.get("train_seconds", 0.0)),
            "status": status, "failures": int(trial.num_failures), "wall_seconds": time.perf_counter() - self._start,
            "trial_id": trial.trial_id, "error": _error_line(trial) if failed else "",
        })
        if self._bar is not None:
            self._bar.update()
            self._bar.set_postfix(failed=sum(r["status"] == "failed" for r in self.rows))

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _error_line(trial) -> str:
    """The last line of a failed trial's error file (the exception), for trials.csv."""
    path = trial.error_file
    if not path or not Path(path).is_file():
        return "failed"
    lines = [line.strip() for line in Path(path).read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1][:300] if lines else "failed"


# ---- one search on Tune ----------------------------------------------------------------------
def tune_searcher(algo: Algo, seed: int, context: dict) -> tuple[TuneSearcher, dict]:
    """(Tune search algorithm, param_space) for `algo`: an nb360 searcher (a registered name or a
    class) wrapped in `NB360Search`, seeded as the tabular runner seeds it, or one of Tune's own
    (`TUNE_SEARCHERS`) over `search_space()`. `context` goes to nb360 constructors that name it
    (`max_epochs`, `proxy`, options)."""
    if algo == "optuna":
        from ray.tune.search.optuna import OptunaSearch

        return OptunaSearch(seed=seed), search_space()
    if algo == "hyperopt":
        if importlib.util.find_spec("hyperopt") is None:
            raise ValueError("--algo hyperopt needs the hyperopt package (pip install hyperopt)")
        from ray.tune.search.hyperopt import HyperOptSearch

        return HyperOptSearch(random_state_seed=seed), search_space()
    if "proxy" in searcher_parameters(algo) and context.get("proxy") is None:
        raise ValueError(f"{algo} starts from zero-cost proxy scores: give proxy= (search_table reads them "
                         "from the table)")
    searcher_rng, _ = search_rngs(seed)
    return NB360Search(make_searcher(algo, searcher_rng, **context), context["max_epochs"]), {}


def make_scheduler(name: str, max_epochs: int):
    """None for FIFO (every trial runs its full budget), or ASHA over epochs (Li et al., MLSys
    2020) with Tune's defaults (grace period 1, reduction factor 4) up to `max_epochs`."""
    if name == "fifo":
        return None
    if name == "asha":
        from ray.tune.schedulers import ASHAScheduler

        return ASHAScheduler(time_attr="training_iteration", max_t=max_epochs, grace_period=1)
    raise ValueError(f"unknown scheduler {name!r}; expected one of {', '.join(SCHEDULERS)}")


def run_tune(trainable: Callable, algo: Algo, trials: int, max_epochs: int, seed: int = 0,
             scheduler: str = "fifo", max_failures: int = 2, storage: str | os.PathLike | None = None,
             context: dict | None = None, progress: bool = True) -> list[dict]:
    """One search of `trials` trials of `trainable` on the connected Ray cluster; the recorder's
    rows, in the order trials ended. Raises if Tune lost track of a trial."""
    if trials < 1 or max_failures < 0:
        raise ValueError(f"trials must be >= 1 and max_failures >= 0, got {trials} and {max_failures}")
    name = algo_name(algo)
    search_alg, param_space = tune_searcher(algo, seed, {"max_epochs": max_epochs, **(context or {})})
    recorder = TrialRecorder(max_epochs, progress, label=f"{name} seed {seed}")
    tuner = tune.Tuner(
        trainable,
        param_space=param_space,
        tune_config=tune.TuneConfig(metric=METRIC, mode="min", search_alg=search_alg,
                                    scheduler=make_scheduler(scheduler, max_epochs), num_samples=trials,
                                    reuse_actors=True, trial_dirname_creator=_trial_dirname),
        run_config=tune.RunConfig(name=f"{name}-seed{seed}-{time.strftime('%Y%m%d-%H%M%S')}",
                                  storage_path=None if storage is None else str(Path(storage).resolve()),
                                  failure_config=tune.FailureConfig(max_failures=max_failures),
                                  callbacks=[recorder], verbose=0),
    )
    try:
        grid = tuner.fit()
    finally:
        recorder.close()
    failed = sum(row["status"] == "failed" for row in recorder.rows)
    if len(grid) != trials or len(recorder.rows) != trials or failed != grid.num_errors:
        raise RuntimeError(f"{name} seed {seed}: Tune ran {len(grid)} trials ({grid.num_errors} errors), "
                           f"{len(recorder.rows)} were recorded ({failed} failed); {trials} were asked")
    return recorder.rows


def _trial_dirname(trial) -> str:
    """Short trial folders: the default puts the whole config (six edges) in the name."""
    return trial.trial_id


# ---- searches: real training, or a table -----------------------------------------------------
def search_task(task: str | Task, algos: Sequence[Algo], seeds: Sequence[int], trials: int, epochs: int = 12,
                C: int = 16, N: int = 5, batch_size: int | None = None, lr: float | None = None,
                resolution: int | None = None, data_root: str | os.PathLike | None = None, scheduler: str = "fifo",
                address: str | None = None, num_cpus: int | None = None, cpus_per_trial: int = 1,
                gpus_per_trial: float | None = None, max_failures: int = 2, storage: str | os.PathLike | None = None,
                train_seed: int = 0, proxy: np.ndarray | None = None, progress: bool = True):
    """Each algorithm for each seed, `trials` trainings of `epochs` on `task`, on Ray Tune.

    The task (a name, loaded here once, or a `Task` already built, e.g. one relabelled by a weak
    teacher) is handed to the trials through the object store. Ray: an
    initialised connection is used as it is; else `address` joins a running cluster ("auto" or
    host:port) and no address starts a local one with `num_cpus` CPUs (shut down at the end).
    Each trial holds `cpus_per_trial` CPUs (and trains on as many threads) and `gpus_per_trial`
    GPUs (default 1 if this machine has CUDA, else 0). Every trial trains with `train_seed`.
    Returns one row per trial (`COLUMNS` + `TUNE_COLUMNS`): test is the trial's own test score,
    sim_seconds the training seconds spent so far, regret NaN (no table to measure it against).
    """
    import torch

    from nb360.data import load_task

    if isinstance(task, str):
        loaded = load_task(task, data_root, **({} if resolution is None else {"resolution": resolution}))
    elif resolution is not None or data_root is not None:
        raise ValueError("resolution and data_root load a task by name; a Task object is used as it is")
    else:
        loaded = task
    if gpus_per_trial is None:
        gpus_per_trial = 1 if torch.cuda.is_available() else 0
    protocol = TrainProtocol(C=C, N=N, epochs=epochs, batch_size=batch_size or loaded.batch_size,
                             lr=loaded.lr if lr is None else lr, seed=train_seed,
                             device="cuda" if gpus_per_trial > 0 else "cpu", threads=cpus_per_trial)
    if min(C, N, epochs, protocol.batch_size, cpus_per_trial) < 1 or protocol.lr <= 0:
        raise ValueError(f"C, N, epochs, batch_size and cpus_per_trial must be >= 1 and lr > 0, got {protocol}")

    trainable = tune.with_resources(tune.with_parameters(train_trial, task=loaded, protocol=protocol),
                                    {"cpu": cpus_per_trial, "gpu": gpus_per_trial})
    return _search(trainable, algos, seeds, trials, max_epochs=epochs, scheduler=scheduler, address=address,
                   num_cpus=num_cpus, max_failures=max_failures, storage=storage,
                   context={} if proxy is None else {"proxy": proxy}, final_test=None, progress=progress)


def search_table(benchmark, algos: Sequence[Algo], seeds: Sequence[int], trials: int, scheduler: str = "fifo",
                 address: str | None = None, num_cpus: int | None = None, max_failures: int = 2,
                 storage: str | os.PathLike | None = None, proxy: str | np.ndarray | None = "synflow",
                 progress: bool = True):
    """Each algorithm for each seed, `trials` table look-ups on Ray Tune (`table_trial`): the
    tabular runner's search, through Tune's machinery, to measure what that machinery costs.
    test and regret are the table's (final test score, mean over seeds, as the runner reports them);
    sim_seconds are the table's training seconds. `proxy` (a table column) feeds zc-re / zc-ls."""
    curves = TableCurves.from_benchmark(benchmark)
    test = benchmark.final("test_metric")
    if not np.isfinite(test).any():
        raise ValueError(f"{benchmark.path}: no finished run has a test score; regret cannot be measured")
    context = {}
    if isinstance(proxy, str) and any(a not in TUNE_SEARCHERS and "proxy" in searcher_parameters(a) for a in algos):
        context["proxy"] = proxy_column(benchmark, proxy)
    elif proxy is not None and not isinstance(proxy, str):
        context["proxy"] = proxy

    trainable = tune.with_resources(tune.with_parameters(table_trial, curves=curves), {"cpu": 1})
    return _search(trainable, algos, seeds, trials, max_epochs=curves.epochs, scheduler=scheduler, address=address,
                   num_cpus=num_cpus, max_failures=max_failures, storage=storage, context=context,
                   final_test=test, progress=progress)


def _search(trainable: Callable, algos: Sequence[Algo], seeds: Sequence[int], trials: int, *, max_epochs: int,
            scheduler: str, address: str | None, num_cpus: int | None, max_failures: int,
            storage: str | os.PathLike | None, context: dict, final_test: np.ndarray | None, progress: bool):
    """Connect to Ray, run every (algo, seed), disconnect if connected here; one DataFrame.
    (`tune.with_parameters` puts its objects in the object store once Ray is up.)"""
    import pandas as pd

    from nb360.table.build import ray_session  # joins or starts Ray as the table builder does

    make_scheduler(scheduler, max_epochs)  # bad input fails before Ray starts
    for algo in algos:
        if algo not in TUNE_SEARCHERS:
            searcher_parameters(algo)  # an unknown name raises here
    if address is not None and num_cpus is not None:
        raise ValueError("num_cpus sets the size of a local Ray instance; a cluster at an address has its own")
    with ray_session(address, num_cpus):
        frames = []
        for algo in algos:
            for seed in seeds:
                rows = run_tune(trainable, algo, trials, max_epochs, seed=seed, scheduler=scheduler,
                                max_failures=max_failures, storage=storage, context=context, progress=progress)
                frames.append(_frame(rows, algo_name(algo), seed, final_test))
        return pd.concat(frames, ignore_index=True)


def _frame(rows: list[dict], algo: str, seed: int, final_test: np.ndarray | None):
    """The recorder's rows as trials.csv rows: trial numbers in the order trials ended, training
    seconds summed, and with a table the incumbent's test regret (the tabular runner's columns)."""
    import pandas as pd

    frame = pd.DataFrame(rows)
    frame.insert(0, "algo", algo)
    frame.insert(1, "seed", seed)
    frame.insert(2, "trial", np.arange(1, len(frame) + 1))
    frame["sim_seconds"] = frame.pop("train_seconds").cumsum()
    if final_test is None:
        frame["regret"] = _NAN
    else:
        frame["test"] = final_test[frame["index"].to_numpy()]
        best_test = float(np.nanmin(final_test))
        regret, best_val = [], math.inf
        incumbent_regret = _NAN
        for index, val in zip(frame["index"], frame["val"]):
            if val < best_val:
                best_val, incumbent_regret = val, float(final_test[index]) - best_test
            regret.append(incumbent_regret)
        frame["regret"] = regret
    return frame[list(COLUMNS) + list(TUNE_COLUMNS)]


# ---- outputs ----------------------------------------------------------------------------------
def write_outputs(trials, out: str | os.PathLike, title: str = "", val_pick: float | None = None) -> dict[str, Path]:
    """trials.csv (the tabular runner's columns, then `TUNE_COLUMNS`), best.json (the incumbent
    per algorithm and seed; unknown numbers as null) and, when there is a regret to plot (a table
    search), regret.png with `val_pick` as in `nb360.search.report.plot_regret` (a table trial
    reports the mean over seeds, which is what `validation_pick_regret` ranks by). Returns the
    paths written."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"trials": out / "trials.csv", "best": out / "best.json"}
    trials.to_csv(paths["trials"], index=False, columns=list(COLUMNS) + list(TUNE_COLUMNS))
    paths["best"].write_text(json.dumps(_finite_or_none(best_archs(trials)), indent=2) + "\n")
    if np.isfinite(trials["regret"].to_numpy(dtype=float)).any():
        paths["regret"] = out / "regret.png"
        plot_regret(trials, paths["regret"], title, val_pick=val_pick)
    return paths


def summarize(trials, title: str, seconds: float) -> str:
    """What `nb360 search --backend ray` prints: trial counts, seconds per trial in Tune, and per
    algorithm the mean over seeds of the incumbent's validation and test scores and, where a table measures it,
    the final regret."""
    searches = trials.groupby(["algo", "seed"])["wall_seconds"]
    tune_seconds = float(searches.max().sum())
    # after each search's first trial, which also starts the trial workers
    later = float((searches.max() - searches.min()).sum()) / max(1, len(trials) - searches.ngroups)
    status = trials["status"].value_counts()
    has_regret = bool(trials["regret"].notna().any())  # trials trained on a task have no table to measure it
    lines = [f"{title}: {len(trials)} trials on Ray Tune in {seconds:.1f} s with Ray's start; in Tune "
             f"{tune_seconds:.1f} s, {tune_seconds / len(trials):.3f} s per trial ({later:.3f} s after the first). "
             f"{status.get('finished', 0)} finished, {status.get('stopped', 0)} stopped early, "
             f"{status.get('failed', 0)} failed; {int(trials['failures'].sum())} retries",
             f"{'algo':<10} {'seeds':>5} {'best val':>10} {'its test':>10}" + (f" {'regret':>9}" if has_regret else "")]
    for algo, rows in trials.groupby("algo", sort=False):
        best = [(b["val"], b["test"], b["regret"]) for b in best_archs(rows)[algo].values() if b is not None]
        val, test, regret = np.array(best, dtype=float).reshape(-1, 3).T
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # no seed scored
            lines.append(f"{algo:<10} {rows['seed'].nunique():>5} {np.nanmean(val):>10.5f} {np.nanmean(test):>10.5f}"
                         + (f" {np.nanmean(regret):>9.5f}" if has_regret else ""))
    return "\n".join(lines)


def _finite_or_none(value):
    """NaN and inf as None, so that best.json is strict JSON."""
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
