"""The interoperability section of docs/search.md: nb360's searchers against Syne Tune's and Optuna's.

    python scripts/interop_comparison.py [--seeds 20] [--trainings 100]

Every searcher gets the same simulated training time on each shipped table (`--trainings` times the
table's mean training time of one cell, about that many full trainings) and one worker, for
`--seeds` seeds:
- nb360's own searchers and Optuna's samplers (`optuna-tpe`, `optuna-nsga2`, through
  `nb360.compat.optuna`) on nb360's tabular runner (`run_many`, what `nb360 search --time-budget` runs);
- Syne Tune's schedulers on the table as a Syne Tune blackbox (`nb360.compat.syne_tune`) through its
  simulated backend (`UserBlackboxBackend`, `SimulatorCallback`), with its own seeds.
Regret, for all alike: the table's final test score (mean over seeds) of the incumbent, the cell with
the lowest validation score any evaluation reported, minus the table's best. Mean with its 95% t
interval, and the difference to nb360's random search with its 95% Welch interval and one-sided
p-value. Syne Tune's blackbox holds the seeds every cell has (all of the shipped tables' seeds), of
which Syne Tune's backend draws one per trial; nb360's runner draws one of a cell's finished runs.
Numbers: docs/search/interop.csv. The section between
the `<!-- interop:begin -->` markers is rewritten.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from doc_section import write_section

from nb360 import __version__
from nb360.cli.options import positive
from nb360.compat.syne_tune import ELAPSED_TIME, FIDELITY, VALID_ERROR, blackbox, result_arch
from nb360.search.runner import run_many
from nb360.stats import difference_ci, mean_ci
from nb360.table.benchmark import Benchmark
from nb360.table.manifest import TASK_TABLES

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "search.md"
CSV = ROOT / "docs" / "search" / "interop.csv"
NB360 = ("rs", "re", "ls", "hb", "optuna-tpe", "optuna-nsga2")  # BANANAS: see the quality section above
SYNE_TUNE = ("RandomSearch", "REA", "TPE", "BORE", "ASHA", "BOHB")
TUNER_SLEEP = 0.01  # simulated seconds per tuner loop


def nb360_regrets(bench: Benchmark, seeds: int, budget: float, workers: int) -> pd.DataFrame:
    trials = run_many(bench, NB360, range(seeds), time_budget=budget, workers=workers)
    last = trials.groupby(["algo", "seed"], sort=False).tail(1)
    library = {a: "Optuna" if a.startswith("optuna") else "nb360" for a in NB360}
    return pd.DataFrame({"algo": last["algo"], "library": last["algo"].map(library), "seed": last["seed"],
                         "regret": last["regret"], "evaluations": trials.groupby(["algo", "seed"], sort=False).size().values})


def syne_tune_regret(bench: Benchmark, bb, scheduler: str, seed: int, budget: float) -> tuple[float, int]:
    """(regret, evaluations) of one Syne Tune run on one worker for `budget` simulated seconds."""
    from syne_tune import StoppingCriterion, Tuner
    from syne_tune.backend.simulator_backend.simulator_callback import SimulatorCallback
    from syne_tune.blackbox_repository.simulated_tabular_backend import UserBlackboxBackend
    from syne_tune.optimizer import baselines

    options = {"RandomSearch": dict(metrics=[VALID_ERROR])}.get(scheduler, dict(metric=VALID_ERROR))
    if scheduler in ("ASHA", "BOHB"):
        options.update(time_attr=FIDELITY, max_t=bench.epochs)
    # the simulated clock also advances by a tuner sleep per loop (5 s by default, a real tuner's polling):
    # nearly nothing here, so that every library's budget goes to training
    backend = UserBlackboxBackend(blackbox=bb, elapsed_time_attr=ELAPSED_TIME, tuner_sleep_time=TUNER_SLEEP)
    tuner = Tuner(trial_backend=backend,
                  scheduler=getattr(baselines, scheduler)(bb.configuration_space, random_seed=seed, **options),
                  stop_criterion=StoppingCriterion(max_wallclock_time=budget), n_workers=1, sleep_time=0,
                  callbacks=[SimulatorCallback()], save_tuner=False, print_update_interval=10**9,
                  tuner_name=f"{scheduler.lower()}-{seed}")
    tuner.run()
    results = pd.read_csv(Path(tuner.tuner_path) / "results.csv.zip")
    best = results.loc[results[VALID_ERROR].idxmin()]
    return bench.regret(result_arch(best)), int(len(results.groupby("trial_id")))


def syne_tune_regrets(bench: Benchmark, seeds: int, budget: float) -> pd.DataFrame:
    import logging

    logging.getLogger("syne_tune").setLevel(logging.WARNING)
    bb = blackbox(bench)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["SYNETUNE_FOLDER"] = tmp
        for scheduler in SYNE_TUNE:
            for seed in range(seeds):
                regret, evaluations = syne_tune_regret(bench, bb, scheduler, seed, budget)
                rows.append({"algo": scheduler, "library": "Syne Tune", "seed": seed, "regret": regret,
                             "evaluations": evaluations})
    return pd.DataFrame(rows)


def summary(regrets: pd.DataFrame) -> pd.DataFrame:
    rs = regrets[(regrets["algo"] == "rs")]["regret"]
    rows = []
    for (library, algo), group in regrets.groupby(["library", "algo"], sort=False):
        m, d = mean_ci(group["regret"]), difference_ci(group["regret"], rs)
        rows.append({"library": library, "algo": algo, "seeds": m["n"], "mean": m["mean"], "ci95": m["ci95"],
                     "evaluations": group["evaluations"].mean(), "diff_vs_rs": d["diff"], "diff_ci95": d["ci95"],
                     "p_lower": d["p_less"]})
    return pd.DataFrame(rows).sort_values("mean", kind="stable")


def lines(bench: Benchmark, table: pd.DataFrame, budget: float, per_training: float) -> list[str]:
    out = ["", f"#### `{bench.path.stem}`: {budget:,.0f} simulated s ({budget / per_training:.0f} mean trainings)", "",
           "| library | algorithm | regret | vs nb360 rs (p) | evaluations |", "|---|---|---|---|---|"]
    for r in table.itertuples():
        versus = "" if (r.library, r.algo) == ("nb360", "rs") else \
            f"{r.diff_vs_rs:+.4f} ± {r.diff_ci95:.4f} ({r.p_lower:.2g})"
        out.append(f"| {r.library} | {r.algo} | {r.mean:.4f} ± {r.ci95:.4f} | {versus} | {r.evaluations:.0f} |")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", default=",".join(TASK_TABLES), help="comma-separated table names or paths")
    parser.add_argument("--seeds", type=positive, default=20, help="seeds of every searcher (default 20)")
    parser.add_argument("--trainings", type=positive, default=100,
                        help="budget: this many times the table's mean training time of one cell (default 100)")
    parser.add_argument("--workers", type=positive, default=1, help="processes for nb360's searches (default 1)")
    args = parser.parse_args()
    start = time.time()
    sections, frames = [], []
    for name in args.tables.split(","):
        bench = Benchmark.load(name)
        per_training = float(np.nanmean(bench.final("train_seconds")))
        budget = args.trainings * per_training
        regrets = pd.concat([nb360_regrets(bench, args.seeds, budget, args.workers),
                             syne_tune_regrets(bench, args.seeds, budget)], ignore_index=True)
        table = summary(regrets)
        frames.append(table.assign(table=bench.path.stem, budget_seconds=budget))
        sections += lines(bench, table, budget, per_training)
    CSV.parent.mkdir(parents=True, exist_ok=True)
    pd.concat(frames).to_csv(CSV, index=False, float_format="%.6g")
    intro = [f"Generated by `python scripts/interop_comparison.py --seeds {args.seeds} --trainings {args.trainings}` "
             f"(nb360 {__version__}) in {time.time() - start:.0f} s on {platform.processor() or platform.machine()}; "
             f"numbers in `docs/search/interop.csv`. Every searcher gets the same simulated training time on one "
             f"worker. nb360's searchers and Optuna's samplers (through `nb360.compat.optuna`) run on nb360's "
             f"tabular runner; Syne Tune's schedulers on the table as a Syne Tune blackbox "
             f"(`nb360.compat.syne_tune`) through Syne Tune's simulated backend, its tuner's polling charged "
             f"{TUNER_SLEEP} s a loop (Syne Tune's default, 5 s, would eat half of a budget of 5-s trainings). "
             f"Regret: the table's final test "
             f"score of the cell with the lowest validation score any evaluation reported, minus the table's best; "
             f"mean ± 95% t interval over {args.seeds} seeds; `vs nb360 rs`: difference of means ± 95% Welch "
             f"interval (one-sided p that it is lower). `evaluations`: trainings started (Syne Tune: trials, of "
             f"which ASHA and BOHB stop most early; nb360: queries, hb's at their own epochs)."]
    write_section(DOC, "interop", intro + sections)


if __name__ == "__main__":
    main()
