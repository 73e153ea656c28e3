"""The quality section of docs/search.md: every number there is written by this script.

    python scripts/search_quality.py --data-root DATA   # everything (DATA: one folder holding the files of
                                                        # every table's task; links to them will do)
    python scripts/search_quality.py --oneshot-seeds 0  # the tabular searches only (a few CPU-minutes)

1. Tabular searches: each algorithm for `--seeds` seeds and 300 queries on every shipped table with
   validation scores, through the in-process runner (`run_many`, what `nb360 search` runs). Regret
   after 100 and 300 queries: mean with its 95% t interval, rank, and the difference to random
   search with its 95% Welch interval and one-sided p-value (`nb360.search.report.regret_at`).
   Figures: docs/search/regret-TABLE.png; numbers: docs/search/quality.csv.
2. One-shot: DARTS and GDAS on each table's own task, data and network (`nb360 oneshot --table`),
   `--oneshot-epochs` supernet epochs (NATS-Bench's 100), `--oneshot-seeds` seeds, the derived cells
   looked up. The runs are resumable and kept in docs/search/oneshot/TABLE/ (a rerun only looks
   them up again, in the table as it is then).

The section of docs/search.md between the `<!-- quality:begin -->` markers is rewritten.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from doc_section import write_section

from nb360 import __version__
from nb360.cli.options import non_negative, positive
from nb360.search.oneshot_runs import FILES, run_oneshot_many, summarize
from nb360.search.report import plot_regret, regret_at, validation_pick_regret
from nb360.search.runner import proxy_column, run_many
from nb360.spaces.nb201 import NUM_ARCHS
from nb360.table.benchmark import Benchmark
from nb360.table.build import table_task
from nb360.table.manifest import TASK_TABLES

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "search.md"
OUT = ROOT / "docs" / "search"
ALGOS = ("rs", "re", "bananas", "ls", "reinforce", "sh", "hb", "zc-re")
QUERIES = (100, 300)
PROXY = "synflow"  # zc-re's proxy: the warm-start paper's choice, not the best one on these tables (that would peek)
ONESHOT = ("darts", "gdas")


def describe(bench: Benchmark) -> str:
    p = bench.protocol
    scored = int(np.isfinite(bench.final()).sum())
    shape = p.get("resolution", [])
    grid = f"{shape[0]} points" if len(shape) == 1 else "x".join(map(str, shape))  # Burgers' line, Darcy's square
    network = f"C={p.get('C')}, N={p.get('N')}" + (f", {grid}" if grid else "")
    return (f"`{bench.path.stem}` ({bench.task}, {bench.metric}; {network}, {bench.epochs} epochs, seeds "
            f"{','.join(map(str, bench.seeds))}): {scored:,} of {NUM_ARCHS:,} cells scored")


def fmt(mean: float, half: float, digits: int = 4) -> str:
    if not np.isfinite(mean):
        return "n/a"
    return f"{mean:.{digits}f} ± {half:.{digits}f}" if np.isfinite(half) else f"{mean:.{digits}f}"


def tabular(bench: Benchmark, seeds: int, workers: int) -> tuple[pd.DataFrame, list[str]]:
    algos, notes = list(ALGOS), []
    try:
        proxy_column(bench, PROXY)
    except ValueError:
        algos.remove("zc-re")
        notes.append(f"zc-re left out: the table has no `{PROXY}` proxy column yet (`nb360 proxies --table ...`).")
    trials = run_many(bench, algos, range(seeds), queries=max(QUERIES), proxy=PROXY, workers=workers)
    plot_regret(trials, OUT / f"regret-{bench.path.stem}.png",
                title=f"{bench.path.stem}: {max(QUERIES)} queries, {seeds} seeds (median, inter-quartile range)",
                val_pick=validation_pick_regret(bench))
    return regret_at(trials, QUERIES).assign(table=bench.path.stem), notes


def tabular_lines(bench: Benchmark, stats: pd.DataFrame, seeds: int) -> list[str]:
    at = {q: stats[stats["queries"] == q].set_index("algo") for q in QUERIES}
    order = list(at[max(QUERIES)].index)
    head = "| algo | " + " | ".join(f"regret @{q} | vs rs @{q} (p)" for q in QUERIES) + f" | rank @{max(QUERIES)} |"
    lines = [head, "|---" * (2 + 2 * len(QUERIES)) + "|"]
    for algo in order:
        cells = []
        for q in QUERIES:
            row = at[q].loc[algo]
            versus = "" if algo == "rs" else f"{fmt(row['diff_vs_rs'], row['diff_ci95'])} ({row['p_lower']:.2g})"
            cells += [fmt(row["mean"], row["ci95"]), versus]
        lines.append(f"| {algo} | " + " | ".join(cells) + f" | {int(at[max(QUERIES)].loc[algo, 'rank'])} |")
    verdicts = []
    for algo in ("re", "bananas"):
        for q in QUERIES:
            row = at[q].loc[algo]
            below = row["diff_vs_rs"] + row["diff_ci95"] < 0
            verdicts.append(f"{algo} @{q}: {'below rs' if below else 'not shown below rs'} "
                            f"(difference {row['diff_vs_rs']:+.4f}, one-sided p {row['p_lower']:.2g})")
    val_pick = validation_pick_regret(bench)
    rs_last = at[max(QUERIES)].loc["rs", "mean"]
    return ["", f"#### {describe(bench)}", "", *lines, "",
            "Against random search, with the 95% interval of the difference excluding zero: " +
            "; ".join(verdicts) + ".", "",
            f"Where a better optimizer ends: the cell with the best validation score in the whole table (mean over "
            f"its runs) has a test regret of {val_pick:.4f}. A search that finds it keeps it, so an algorithm that "
            f"optimizes validation faster converges to that regret, not to zero; random search is at "
            f"{rs_last:.4f} after {max(QUERIES)} queries, {rs_last - val_pick:+.4f} from it.", "",
            f"![regret on {bench.path.stem}](search/regret-{bench.path.stem}.png)"]


def oneshot(bench: Benchmark, seeds: int, epochs: int, data_root: str | None) -> pd.DataFrame:
    task, C, N, protocol = table_task(bench.path, data_root)
    runs = run_oneshot_many(task, ONESHOT, range(seeds), OUT / "oneshot" / bench.path.stem, epochs=epochs, C=C, N=N,
                            batch_size=protocol.get("batch_size"), table=bench)
    return summarize(runs).assign(table=bench.path.stem)


def oneshot_lines(summary: pd.DataFrame, stats: pd.DataFrame, epochs: int) -> list[str]:
    lines = ["| table | method | runs | scored | mean regret | median regret | rs @100 | search s (CPU) | derived cells |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in summary.itertuples():
        rs = stats[(stats["table"] == row.table) & (stats["algo"] == "rs") & (stats["queries"] == 100)].iloc[0]
        cells = row.cells.replace("|", "\\|")
        lines.append(f"| `{row.table}` | {row.method} | {row.runs} | {row.scored} | {fmt(row.mean_regret, np.nan)} | "
                     f"{fmt(row.median_regret, np.nan)} | {fmt(rs['mean'], rs['ci95'])} | {row.search_seconds:.0f} | "
                     f"{cells} |")
    figures = [f"![one-shot on {t}](search/oneshot/{t}/{FILES['figure']}) "
               f"![alphas on {t}](search/oneshot/{t}/{FILES['alphas_figure']})" for t in dict.fromkeys(summary["table"])]
    return ["", f"One-shot searches, {epochs} supernet epochs each, on the table's own task, data and network; the "
                f"derived cell (argmax of alpha) looked up in the table (`scored`: how many of those cells the table "
                f"has a score for; the cells derived after every epoch were trained into the shipped tables ahead of "
                f"the build's order, see docs/tables.md). `rs @100`: random search's mean regret after 100 queries, "
                f"for scale.", "",
            *lines, "", *figures]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", default=",".join(TASK_TABLES), help="comma-separated table names or paths")
    parser.add_argument("--seeds", type=positive, default=20, help="seeds of each tabular search (default 20)")
    parser.add_argument("--oneshot-seeds", type=non_negative, default=3, help="seeds of each one-shot method (0: none)")
    parser.add_argument("--oneshot-epochs", type=positive, default=100, help="supernet epochs (default 100)")
    parser.add_argument("--data-root", default=None, help="one folder holding the files of every table's task (generated ones: nb360 data generate TASK)")
    parser.add_argument("--workers", type=positive, default=1,
                        help="processes for the tabular searches (default 1; the numbers do not depend on it)")
    args = parser.parse_args()
    torch.set_num_threads(1)  # tiny networks: one thread is fastest, and the machine is shared
    OUT.mkdir(parents=True, exist_ok=True)
    start = time.time()
    benches = [Benchmark.load(t) for t in args.tables.split(",")]
    stats, lines, notes = [], [], []
    for bench in benches:
        table_stats, table_notes = tabular(bench, args.seeds, args.workers)
        stats.append(table_stats)
        notes += [f"`{bench.path.stem}`: {n}" for n in table_notes]
        lines += tabular_lines(bench, table_stats, args.seeds)
    stats = pd.concat(stats, ignore_index=True)
    stats.to_csv(OUT / "quality.csv", index=False, float_format="%.6g")
    if args.oneshot_seeds:
        summary = pd.concat([oneshot(b, args.oneshot_seeds, args.oneshot_epochs, args.data_root) for b in benches])
        summary.to_csv(OUT / "oneshot.csv", index=False, float_format="%.6g")
        lines += oneshot_lines(summary, stats, args.oneshot_epochs)
    command = (f"python scripts/search_quality.py --seeds {args.seeds} --oneshot-seeds {args.oneshot_seeds} "
               f"--oneshot-epochs {args.oneshot_epochs} --workers {args.workers}")
    hifi = Benchmark.load("nb201-darcyflow-hifi-sample")
    intro = [f"Generated by `{command}` (nb360 {__version__}) in {time.time() - start:.0f} s (wall) on "
             f"{platform.processor() or platform.machine()}, {args.workers} process(es) of one thread; numbers in "
             f"`docs/search/quality.csv`. "
             f"Regret: the test score of the incumbent (best by validation) minus the table's best, in the table's "
             f"metric, mean ± 95% t interval over {args.seeds} seeds; `vs rs`: difference of means to random search "
             f"± its 95% Welch interval, and in brackets the one-sided p-value that the algorithm's mean is lower. "
             f"zc-re ranks 3,000 random cells by `{PROXY}`. A table still being built gives provisional numbers: "
             f"its unscored cells answer NaN, cost a query and no time. The other shipped tables are not searched: "
             f"`nb201-darcyflow-hifi-sample` holds {int((hifi.class_rows() >= 0).sum())} iso classes (a fidelity "
             f"sample), `nb201-costs` no scores."]
    write_section(DOC, "quality", intro + [f"- {n}" for n in notes] + lines)


if __name__ == "__main__":
    main()
