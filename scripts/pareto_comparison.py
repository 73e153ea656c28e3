"""The multi-objective section of docs/search.md: error against cost, searched on the shipped tables.

    python scripts/pareto_comparison.py [--seeds 20] [--queries 300] [--objectives val_metric,flops]

Every multi-objective searcher (`MULTI`) runs `--seeds` seeds of `--queries` queries on each shipped
table with nb360's tabular runner (what `nb360 search --objectives` runs). Each search is scored by
the hypervolume regret of the front it found (`nb360.search.objectives`: its queried cells that no
other beats on validation error and cost, scored on test, against the table's true test front),
reported after 100 and 300 queries: mean with its 95% t interval, and the difference to random
search with its 95% Welch interval and one-sided p-value (`nb360.search.report.regret_at`). Figures
(hypervolume regret against queries and simulated time, and the median seed's front against the
true one) go to docs/search/pareto-TABLE.png, numbers to docs/search/pareto.csv; the section
between the `<!-- pareto:begin -->` markers is rewritten.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd
from doc_section import write_section

from nb360 import __version__
from nb360.cli.options import positive
from nb360.search.objectives import FrontScorer, check
from nb360.search.report import found_front, plot_regret, regret_at
from nb360.search.runner import run_many
from nb360.table.benchmark import Benchmark
from nb360.table.manifest import TASK_TABLES

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "search.md"
OUT = ROOT / "docs" / "search"
MULTI = ("rs", "mo-re", "mo-bananas", "optuna-tpe", "optuna-nsga2")
QUERIES = (100, 300)


def compare(bench: Benchmark, objectives: list[str], seeds: int, queries: int, workers: int) -> pd.DataFrame:
    trials = run_many(bench, MULTI, range(seeds), queries=queries, workers=workers, objectives=objectives)
    true_front = bench.pareto(["test_metric", *objectives[1:]])
    plot_regret(trials, OUT / f"pareto-{bench.path.stem}.png", true_front=true_front,
                title=f"{bench.task} ({bench.path.stem}): {','.join(objectives)}, {seeds} seeds; "
                      f"true front {len(true_front)} classes")
    budgets = sorted({q for q in QUERIES if q <= queries} | {queries})  # a shorter search is reported at its end
    table = regret_at(trials, budgets).assign(table=bench.path.stem, front_classes=len(true_front))
    return table.merge(validation_regret(bench, trials, objectives, budgets), on=["algo", "queries"])


def validation_regret(bench: Benchmark, trials: pd.DataFrame, objectives: list[str], budgets: list[int]) -> pd.DataFrame:
    """Mean hypervolume regret of each search's found front scored on validation (the table's mean
    over seeds) against the validation front: how well a search did at what it could see."""
    scorer = FrontScorer(bench, objectives, np.ones(len(bench.df), dtype=bool), error="val_metric")
    rows = []
    for (algo, _), run in trials.groupby(["algo", "seed"], sort=False):
        for q in budgets:
            rows.append({"algo": algo, "queries": q,
                         "val_hv_regret": scorer.regret(found_front(run[run["trial"] <= q], objectives)["index"])})
    return pd.DataFrame(rows).groupby(["algo", "queries"], as_index=False)["val_hv_regret"].mean()


def lines(bench: Benchmark, table: pd.DataFrame) -> list[str]:
    out = ["", f"#### `{bench.path.stem}` ({bench.task}, {bench.metric}): true front of "
               f"{int(table['front_classes'].iloc[0])} classes", "",
           f"![hypervolume regret and fronts](search/pareto-{bench.path.stem}.png)", "",
           "| queries | algorithm | hypervolume regret | vs rs (p lower) | median | rank | on validation |",
           "|---|---|---|---|---|---|---|"]
    for r in table.itertuples():
        versus = "" if r.algo == "rs" else f"{r.diff_vs_rs:+.4f} ± {r.diff_ci95:.4f} ({r.p_lower:.2g})"
        out.append(f"| {r.queries} | {r.algo} | {r.mean:.4f} ± {r.ci95:.4f} | {versus} | {r.median:.4f} | "
                   f"{r.rank:.0f} | {r.val_hv_regret:.4f} |")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", default=",".join(TASK_TABLES), help="comma-separated table names or paths")
    parser.add_argument("--seeds", type=positive, default=20, help="seeds of every searcher (default 20)")
    parser.add_argument("--queries", type=positive, default=max(QUERIES), help="queries per search (default 300)")
    parser.add_argument("--objectives", default="val_metric,flops", help="what the searches minimise")
    parser.add_argument("--workers", type=positive, default=1, help="processes running the searches (default 1)")
    args = parser.parse_args()
    objectives = check(args.objectives.split(","))
    start = time.time()
    sections, frames = [], []
    for name in args.tables.split(","):
        bench = Benchmark.load(name)
        table = compare(bench, objectives, args.seeds, args.queries, args.workers)
        frames.append(table)
        sections += lines(bench, table)
    pd.concat(frames).to_csv(OUT / "pareto.csv", index=False, float_format="%.6g")
    intro = [f"Generated by `python scripts/pareto_comparison.py --seeds {args.seeds} --queries {args.queries} "
             f"--objectives {','.join(objectives)}` (nb360 {__version__}) in {time.time() - start:.0f} s on "
             f"{platform.processor() or platform.machine()}; numbers in `docs/search/pareto.csv`. Hypervolume "
             f"regret of the found front (0: the whole true front; 1: nothing), mean ± 95% t interval over "
             f"{args.seeds} seeds; `vs rs`: difference of means ± 95% Welch interval (one-sided p that it is "
             f"lower); rank 1 = lowest mean at that budget. `on validation`: the mean hypervolume regret of the "
             f"same fronts scored on validation (the table's mean over seeds) against the validation front, what "
             f"a search can see: where it is small for random search already, an optimizer has little to gain, "
             f"and test differences come from which validation-optimal cells do well on test."]
    write_section(DOC, "pareto", intro + sections)


if __name__ == "__main__":
    main()
