"""pareto: what does the error-cost front look like, and does it carry across seeds and tasks?

Per table, over iso classes (one row each, its first scored member), the Pareto front of final test
error against the FLOPs of the network the table trained (both minimised; `nb360.table.pareto`):
- its shape: how many classes sit on it, and how much of the best cell's FLOPs the cheapest cell
  within 1%, 5% and 10% of the best error needs (the price of the last bit of error);
- its reliability: the fronts computed from two seeds' scores alone, over the classes both scored,
  compared by their overlap (Jaccard) and by the hypervolume regret of the first seed's front
  scored with the second seed's errors (0: the same front);
- its operations: the share of each operation among the front cells' edges against its share over
  all classes (a ratio above 1: the operation is over-represented on the front);
- across tables: where one table's front cells rank by error on another table (percentile among
  the classes both score; a front that carries across tasks sits near 0).
From the cost file, for the ten tasks' networks at NAS-Bench-360's size: how alike the same cells'
FLOPs rank across tasks (Spearman over the iso classes, per pair of tasks), and the overlap of the
cheapest 10% of cells. (The `size` question lists the front in parameters; this one is FLOPs,
what a deployment pays per input.)
"""

from __future__ import annotations

import os
from itertools import combinations
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from nb360.hypotheses.common import (TASK_TABLES, TOP, Report, TableLike, by_class, figure, fmt, label, load_tables,
                                     start)
from nb360.hypotheses.size import table_costs
from nb360.search.space import op_table
from nb360.spaces.nb201 import OPS, iso_class_representatives
from nb360.table import cost_file
from nb360.table.pareto import Scale, hypervolume, nondominated

NAME = "pareto"
QUESTION = "What does the error-cost front look like, and does it carry across seeds and tasks?"
DEFAULT_TABLES = TASK_TABLES
DEFAULT_COSTS = "nb201-costs"
TOLERANCES = (0.01, 0.05, 0.10)  # relative error above the best cell's


def front_of(cost: np.ndarray, error: np.ndarray) -> np.ndarray:
    """Positions of the classes on the (cost, error) front, cheapest first; NaN rows are left out."""
    scored = np.flatnonzero(np.isfinite(cost) & np.isfinite(error))
    if not len(scored):
        return scored
    front = scored[nondominated(np.c_[cost[scored], error[scored]])]
    return front[np.lexsort((error[front], cost[front]))]


def shape(cost: np.ndarray, error: np.ndarray, front: np.ndarray) -> dict:
    """The front's size and what the last bit of error costs: for each tolerance, the FLOPs share
    of the best cell that the cheapest cell within that much relative error needs."""
    best = front[np.argmin(error[front])]
    row = {"front_size": len(front), "best_error": error[best], "best_flops": cost[best],
           "cheapest_flops": cost[front[0]], "cheapest_error": error[front[0]]}
    for tol in TOLERANCES:
        within = front[error[front] <= error[best] + tol * abs(error[best])]
        row[f"flops_share_{tol * 100:.0f}pct"] = cost[within].min() / cost[best]
    return row


def seed_fronts(cost: np.ndarray, per_seed: np.ndarray) -> dict:
    """The fronts of the first two seeds' errors over the classes both scored: Jaccard overlap and
    the hypervolume regret of seed A's front scored on seed B's errors."""
    if per_seed.shape[1] < 2:
        return {"seed_classes": 0, "seed_jaccard": np.nan, "seed_hv_regret": np.nan}
    a, b = per_seed[:, 0], per_seed[:, 1]
    both = np.isfinite(cost) & np.isfinite(a) & np.isfinite(b)
    if both.sum() < 3:
        return {"seed_classes": int(both.sum()), "seed_jaccard": np.nan, "seed_hv_regret": np.nan}
    a, b, c = (np.where(both, v, np.nan) for v in (a, b, cost))
    front_a, front_b = set(front_of(c, a).tolist()), set(front_of(c, b).tolist())
    positions = np.flatnonzero(both)
    scale = Scale(np.c_[b[positions], c[positions]], ["test_metric", "flops"])
    on_b = [scale(np.c_[b[list(f)], c[list(f)]]) for f in (front_a, front_b)]
    return {"seed_classes": int(both.sum()), "seed_jaccard": len(front_a & front_b) / len(front_a | front_b),
            "seed_hv_regret": 1.0 - hypervolume(on_b[0]) / hypervolume(on_b[1])}


def operation_shares(rows: np.ndarray, front: np.ndarray) -> pd.DataFrame:
    """Per operation: its share of the edges of the front cells and of all classes' cells."""
    ops = op_table()
    scored = rows[rows >= 0]
    on_front = ops[rows[front]].ravel()
    everywhere = ops[scored].ravel()
    front_share = np.bincount(on_front, minlength=len(OPS)) / len(on_front)
    all_share = np.bincount(everywhere, minlength=len(OPS)) / len(everywhere)
    return pd.DataFrame({"op": OPS, "front_share": front_share, "all_share": all_share,
                         "ratio": front_share / all_share})


def percentile_rank(error: np.ndarray) -> np.ndarray:
    """(classes,) each scored class's rank by error as a fraction in [0, 1] (0: the best), NaN elsewhere."""
    out = np.full(len(error), np.nan)
    scored = np.isfinite(error)
    if scored.sum() > 1:
        out[scored] = (stats.rankdata(error[scored]) - 1) / (scored.sum() - 1)
    return out


def task_flops(costs: dict[str, dict[str, np.ndarray]]) -> pd.DataFrame:
    """Per pair of the cost file's tasks: Spearman of the iso classes' FLOPs, and the overlap of the
    cheapest `TOP` fraction of classes."""
    reps = iso_class_representatives()
    flops = {task: columns["flops"][reps].astype(float) for task, columns in costs.items()}
    k = max(1, int(round(TOP * len(reps))))
    rows = []
    for a, b in combinations(flops, 2):
        cheap_a = set(np.argsort(flops[a], kind="stable")[:k].tolist())
        cheap_b = set(np.argsort(flops[b], kind="stable")[:k].tolist())
        rows.append({"task_a": a, "task_b": b, "spearman": float(stats.spearmanr(flops[a], flops[b]).statistic),
                     "cheapest_overlap": len(cheap_a & cheap_b) / k})
    return pd.DataFrame(rows)


def run(out: str | Path, tables: Sequence[TableLike] = DEFAULT_TABLES,
        costs: str | os.PathLike | None = DEFAULT_COSTS) -> Report:
    """`costs`: a cost file (shipped name or path), or None to leave the ten tasks out."""
    out = start(out)
    loaded = load_tables(tables, NAME)
    cost_data = cost_file.read(costs) if costs is not None else None
    shapes, operations, fronts, by_table, notes = [], [], [], {}, []
    for table in loaded:
        _, flops, source = table_costs(table, cost_data)
        if source != "table":
            notes.append(f"`{label(table)}` has no FLOPs of its own: its front uses the cost file's counts for "
                         f"{table.task} at NAS-Bench-360's size, not those of the network it trained.")
        rows = table.class_rows()
        cost, error = by_class(flops, rows), by_class(table.final("test_metric"), rows)
        per_seed = np.stack([by_class(column, rows) for column in np.asarray(table.at_epoch("test_metric")).T], axis=1)
        front = front_of(cost, error)
        if not len(front):
            raise ValueError(f"{table.path}: no class has both a final test score and FLOPs; no front")
        shapes.append({"table": label(table), "classes": int(np.isfinite(error).sum()), **shape(cost, error, front),
                       **seed_fronts(cost, per_seed)})
        operations.append(operation_shares(rows, front).assign(table=label(table)))
        fronts.append(pd.DataFrame({"table": label(table), "index": rows[front], "flops": cost[front],
                                    "test_metric": error[front]}))
        by_table[label(table)] = (cost, error, front)
    frames = {"shape": pd.DataFrame(shapes), "operations": pd.concat(operations, ignore_index=True)[
        ["table", "op", "front_share", "all_share", "ratio"]], "fronts": pd.concat(fronts, ignore_index=True)}
    transfer = []
    for a, b in ((a, b) for a in by_table for b in by_table if a != b):
        _, error_a, front_a = by_table[a]
        _, error_b, _ = by_table[b]
        ranks = percentile_rank(np.where(np.isfinite(error_a), error_b, np.nan))[front_a]
        ranks = ranks[np.isfinite(ranks)]
        transfer.append({"front_of": a, "ranked_on": b, "front_cells": len(ranks),
                         "median_percentile": float(np.median(ranks)) if len(ranks) else np.nan,
                         "share_in_top_10pct": float(np.mean(ranks <= TOP)) if len(ranks) else np.nan})
    if transfer:
        frames["transfer"] = pd.DataFrame(transfer)
    figures = [out / "fronts.png", out / "operations.png"]
    plot_fronts(by_table, figures[0])
    plot_operations(frames["operations"], figures[1])
    if cost_data is not None:
        frames["task_flops"] = task_flops(cost_data)
        figures.append(out / "task_flops.png")
        plot_task_flops(frames["task_flops"], figures[-1])
    notes.insert(0, "One point per iso class (its first scored member): final test error (mean over seeds) against "
                    "the FLOPs of the network the table trained. Seed agreement: the fronts of seed 0's and seed 1's "
                    "errors alone, over the classes both seeds scored (`seed_classes`).")
    return Report(NAME, QUESTION, out, loaded, frames, figures, answer(frames), notes=notes,
                  shown=[s for s in ("shape", "operations", "transfer", "task_flops") if s in frames]).write()


def answer(frames: dict[str, pd.DataFrame]) -> str:
    sentences = []
    for row in frames["shape"].itertuples():
        ops = frames["operations"][frames["operations"]["table"] == row.table].sort_values("ratio")
        seeds = (f"Two seeds alone give fronts that share {fmt(row.seed_jaccard)} of their classes (Jaccard), and seed "
                 f"0's front, scored on seed 1, has hypervolume regret {fmt(row.seed_hv_regret)} over "
                 f"{row.seed_classes:,} classes" if row.seed_classes >= 3 else
                 "Its seeds cannot be compared (fewer than three classes scored by two seeds)")
        sentences.append(
            f"On `{row.table}` the error-FLOPs front holds {row.front_size} of {row.classes:,} classes; the best cell "
            f"(error {fmt(row.best_error)}) costs {fmt(row.best_flops)} FLOPs, and the cheapest cell within 1% of its "
            f"error needs {row.flops_share_1pct:.0%} of that, within 5% {row.flops_share_5pct:.0%}, within 10% "
            f"{row.flops_share_10pct:.0%}. {seeds}. On the front, {ops['op'].iloc[-1]} is the most over-represented "
            f"operation ({fmt(ops['ratio'].iloc[-1])} times its share over all classes) and {ops['op'].iloc[0]} the "
            f"least ({fmt(ops['ratio'].iloc[0])}).")
    if "transfer" in frames:
        for row in frames["transfer"].itertuples():
            sentences.append(f"The {row.front_cells} front cells of `{row.front_of}` sit at a median percentile of "
                             f"{fmt(row.median_percentile)} by error on `{row.ranked_on}` ({fmt(row.share_in_top_10pct)} "
                             f"of them in its best 10%).")
    if "task_flops" in frames:
        t = frames["task_flops"]
        low, high = t.loc[t["spearman"].idxmin()], t.loc[t["spearman"].idxmax()]
        sentences.append(
            f"Across the cost file's tasks, the same cells' FLOPs rank alike from Spearman {fmt(low['spearman'])} "
            f"({low['task_a']} vs {low['task_b']}) to {fmt(high['spearman'])} ({high['task_a']} vs {high['task_b']}), "
            f"median {fmt(t['spearman'].median())}; the cheapest 10% of cells overlap by {fmt(t['cheapest_overlap'].min())} "
            f"to {fmt(t['cheapest_overlap'].max())} between two tasks.")
    return " ".join(sentences)


def plot_fronts(points: dict, path: Path) -> None:
    """Error against FLOPs per table, every class and the front."""
    with figure(path, ncols=len(points), size=(4.6, 3.6), title="final test error against FLOPs, per iso class") \
            as (_, axes):
        for ax, (name, (cost, error, front)) in zip(axes[0], points.items()):
            ax.scatter(cost, error, s=3, alpha=0.25, label="iso classes")
            ax.step(cost[front], error[front], where="post", color="C3", label=f"front ({len(front)} classes)")
            ax.set(xscale="log", xlabel="FLOPs (multiply-adds)", ylabel="final test error", title=name)
            ax.legend(fontsize=7)
            ax.grid(alpha=0.3)


def plot_operations(shares: pd.DataFrame, path: Path) -> None:
    """Per table, each operation's share of the front's edges over its share of all classes' edges."""
    tables = list(shares["table"].unique())
    with figure(path, size=(1.2 * len(OPS) + 2, 3.6), title="operations on the front (share / share over all classes)") \
            as (_, axes):
        ax, width = axes[0, 0], 0.8 / len(tables)
        for k, table in enumerate(tables):
            rows = shares[shares["table"] == table]
            ax.bar(np.arange(len(OPS)) + k * width, rows["ratio"], width=width, label=table)
        ax.axhline(1.0, color="0.3", linewidth=1)
        ax.set_xticks(np.arange(len(OPS)) + 0.4 - width / 2, OPS, rotation=20)
        ax.set(ylabel="over-representation on the front")
        ax.legend(fontsize=7)
        ax.grid(axis="y", alpha=0.3)


def plot_task_flops(pairs: pd.DataFrame, path: Path) -> None:
    """The Spearman correlation of FLOPs between every two tasks, as a matrix."""
    tasks = list(dict.fromkeys([*pairs["task_a"], *pairs["task_b"]]))
    matrix = np.eye(len(tasks))
    for row in pairs.itertuples():
        i, j = tasks.index(row.task_a), tasks.index(row.task_b)
        matrix[i, j] = matrix[j, i] = row.spearman
    with figure(path, size=(0.55 * len(tasks) + 3, 0.5 * len(tasks) + 2.5),
                title="FLOPs ranks across tasks (Spearman over iso classes)") as (fig, axes):
        ax = axes[0, 0]
        image = ax.imshow(matrix, vmin=-1, vmax=1, cmap="RdBu_r")
        ax.set_xticks(range(len(tasks)), tasks, rotation=45, ha="right")
        ax.set_yticks(range(len(tasks)), tasks)
        for i in range(len(tasks)):
            for j in range(len(tasks)):
                ax.text(j, i, f"{matrix[i, j]:.2f}", ha="center", va="center", fontsize=7)
        fig.colorbar(image, ax=ax, shrink=0.8)
