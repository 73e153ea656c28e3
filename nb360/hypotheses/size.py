"""size: are bigger networks better?

For every table, the Spearman correlation of the final test score with the parameters and with the
FLOPs of the network the table trained (its `params` and `flops` columns), over iso classes; a
negative correlation means bigger is better. The Pareto front of (params, score), both to be
minimised, lists the classes no smaller-or-equal network beats. From the cost file
(`nb360.table.cost_file`, exact counts for every task's network at NAS-Bench-360's size), the
spread of params and FLOPs over the 15,625 cells on each of the ten tasks.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from nb360.hypotheses.common import TASK_TABLES, Report, TableLike, by_class, figure, fmt, label, load_tables, start
from nb360.table import cost_file
from nb360.table.pareto import nondominated
from nb360.table.benchmark import arch_strings

NAME = "size"
QUESTION = "Are bigger networks better?"
DEFAULT_TABLES = TASK_TABLES
DEFAULT_COSTS = "nb201-costs"
NO_RELATION = 0.1  # |Spearman| below this: the answer says size does not matter


def spearman(a: np.ndarray, b: np.ndarray) -> tuple[float, int]:
    both = np.isfinite(a) & np.isfinite(b)
    n = int(both.sum())
    if n < 3 or np.ptp(a[both]) == 0 or np.ptp(b[both]) == 0:
        return np.nan, n
    return float(stats.spearmanr(a[both], b[both]).statistic), n


def table_costs(table, costs: dict | None) -> tuple[np.ndarray, np.ndarray, str]:
    """(params, flops, where from) per arch: the table's own columns, or, for a table without
    them, the cost file's counts for its task."""
    params, flops = (table.df[c].to_numpy(dtype=float) for c in ("params", "flops"))
    if np.isfinite(params).any():
        return params, flops, "table"
    if costs and table.task in costs:
        return costs[table.task]["params"].astype(float), costs[table.task]["flops"].astype(float), "cost file"
    raise ValueError(f"{table.path}: no params in the table, and no cost file entry for task {table.task!r} "
                     f"to fall back on")


def run(out: str | Path, tables: Sequence[TableLike] = DEFAULT_TABLES, costs: str | os.PathLike | None = DEFAULT_COSTS
        ) -> Report:
    """`costs`: a cost file (shipped name or path), or None to leave the ten tasks out."""
    out = start(out)
    loaded = load_tables(tables, NAME)
    cost_data = cost_file.read(costs) if costs is not None else None
    rows, fronts, points, notes = [], [], {}, []
    for table in loaded:
        params, flops, source = table_costs(table, cost_data)
        if source != "table":
            notes.append(f"`{label(table)}` has no costs of its own: its params and FLOPs are the cost file's counts "
                         f"for {table.task} at NAS-Bench-360's size, not those of the network it trained.")
        rows_of_class = table.class_rows()
        score, p, f = (by_class(v, rows_of_class) for v in (table.final("test_metric"), params, flops))
        rho_params, n = spearman(p, score)
        rho_flops, _ = spearman(f, score)
        both = np.flatnonzero(np.isfinite(p) & np.isfinite(score))
        front = both[nondominated(np.c_[p[both], score[both]])]
        front = front[np.lexsort((score[front], p[front]))]  # by size
        rows.append({"table": label(table), "n": n, "costs_from": source, "spearman_params": rho_params,
                     "spearman_flops": rho_flops, "pareto_size": len(front)})
        indices = rows_of_class[front]
        fronts.append(pd.DataFrame({"table": label(table), "index": indices,
                                    "arch": [arch_strings()[i] for i in indices],
                                    "params": p[front], "flops": f[front], "test_metric": score[front]}))
        points[label(table)] = (p, f, score, front)
    frames = {"size": pd.DataFrame(rows), "pareto": pd.concat(fronts, ignore_index=True)}
    figures = [out / "size.png"]
    plot_tables(points, figures[0])
    if cost_data is not None:
        frames["task_costs"] = spread(cost_data)
        figures.append(out / "task_costs.png")
        plot_tasks(cost_data, figures[1])
    notes.insert(0, "Final test score against the costs of the network each table trained, one point per iso class "
                    "(its first scored member). Negative Spearman: bigger is better.")
    return Report(NAME, QUESTION, out, loaded, frames, figures, answer(frames), notes=notes).write()


def spread(costs: dict[str, dict[str, np.ndarray]]) -> pd.DataFrame:
    """Min, median and max of params and FLOPs over all cells, per task of the cost file."""
    rows = []
    for task, columns in costs.items():
        row = {"task": task}
        for name, values in columns.items():
            row.update({f"{name}_min": int(values.min()), f"{name}_median": float(np.median(values)),
                        f"{name}_max": int(values.max())})
        rows.append(row)
    return pd.DataFrame(rows)


def answer(frames: dict[str, pd.DataFrame]) -> str:
    sentences = []
    for row in frames["size"].itertuples():
        rho = row.spearman_params
        verdict = ("not enough classes scored to say" if not np.isfinite(rho) else
                   "size hardly matters" if abs(rho) < NO_RELATION else
                   "bigger networks are better" if rho < 0 else "bigger networks are worse")
        front = frames["pareto"][frames["pareto"]["table"] == row.table]
        sentences.append(
            f"On `{row.table}` the Spearman correlation of the final test score with params is {fmt(rho)} and "
            f"with FLOPs {fmt(row.spearman_flops)} over {row.n:,} classes: {verdict}. Its Pareto front has "
            f"{row.pareto_size} classes"
            + (f", from {fmt(front['params'].min())} params (score {fmt(front['test_metric'].iloc[0])}) to "
               f"{fmt(front['params'].max())} (score {fmt(front['test_metric'].iloc[-1])})." if len(front) else "."))
    if "task_costs" in frames:
        t = frames["task_costs"]
        largest, smallest = t.loc[t["params_median"].idxmax()], t.loc[t["params_median"].idxmin()]
        sentences.append(
            f"Across the {len(t)} tasks of the cost file, the median cell has from {fmt(smallest['params_median'])} "
            f"params ({smallest['task']}) to {fmt(largest['params_median'])} ({largest['task']}); FLOPs of the median "
            f"cell range from {fmt(t['flops_median'].min())} to {fmt(t['flops_median'].max())}, and within a task the "
            f"largest cell has up to {fmt((t['params_max'] / t['params_min']).max())} times the params of the "
            f"smallest.")
    return " ".join(sentences)


def plot_tables(points: dict, path: Path) -> None:
    """Score against params and FLOPs per table, the Pareto front (in params) marked."""
    title = "final test score against network size"
    with figure(path, ncols=len(points), nrows=2, size=(4.4, 3.5), title=title) as (_, axes):
        for k, (name, (params, flops, score, front)) in enumerate(points.items()):
            for ax, size, xlabel in ((axes[0, k], params, "params"), (axes[1, k], flops, "FLOPs (multiply-adds)")):
                ax.scatter(size, score, s=3, alpha=0.3, label="iso classes")
                ax.set(xscale="log", xlabel=xlabel, ylabel="final test score", title=name)
                ax.grid(alpha=0.3)
            axes[0, k].step(params[front], score[front], where="post", color="C3", label="Pareto front")
            axes[0, k].legend(fontsize=7)


def plot_tasks(costs: dict[str, dict[str, np.ndarray]], path: Path) -> None:
    """Params and FLOPs of all cells per task (box plots, log scale)."""
    tasks = list(costs)
    with figure(path, ncols=2, size=(0.6 * len(tasks) + 3, 3.8), title="cost of the 15,625 cells per task "
                                                                      "(NAS-Bench-360's network size)") as (_, axes):
        for ax, name in zip(axes[0], ("params", "flops")):
            ax.boxplot([costs[t][name] for t in tasks], whis=(0, 100))
            ax.set_xticks(range(1, len(tasks) + 1), tasks, rotation=40, ha="right")
            ax.set(yscale="log", ylabel=name)
            ax.grid(axis="y", alpha=0.3)
