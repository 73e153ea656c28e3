"""operations: which operations matter where?

An additive model (ANOVA's main-effects model) of the final test score on the
one-hot encoding of the six edges' operations (`Arch.onehot`): score = b + sum over edges of
effect[edge, op], fitted by least squares (NumPy) on every scored cell. Effects are centred on
each edge (they sum to 0 over the five operations), so effect[e, o] < 0 means operation o on edge e
lowers the error relative to that edge's average. An edge's share is the variance of its fitted
contribution over the cells divided by the variance of the score (eta squared; on a complete
table the shares add up to the model's R^2). Beside the model, the score distribution by how many
edges carry each operation (0..6), and the Spearman correlation of that count with the score.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from nb360.hypotheses.common import TASK_TABLES, Report, TableLike, figure, fmt, label, load_tables, start
from nb360.search.space import op_table
from nb360.spaces.nb201 import EDGES, NUM_EDGES, NUM_OPS, OPS

NAME = "operations"
QUESTION = "Which operations matter where?"
DEFAULT_TABLES = TASK_TABLES
EDGE_NAMES = tuple(f"{frm}->{to}" for to, frm in EDGES)  # node j -> node i, in NB201's string order


def onehot(ops: np.ndarray) -> np.ndarray:
    """(n, 30) the flattened `Arch.onehot` of cells given as (n, 6) operation indices."""
    out = np.zeros((len(ops), NUM_EDGES, NUM_OPS))
    out[np.arange(len(ops))[:, None], np.arange(NUM_EDGES)[None, :], ops] = 1.0
    return out.reshape(len(ops), -1)


def fit_effects(ops: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """(effects (6, 5) centred per edge, shares (6,), R^2) of the additive model."""
    x = np.hstack([np.ones((len(ops), 1)), onehot(ops)])
    beta = np.linalg.lstsq(x, scores, rcond=None)[0]  # minimum-norm: the one-hot blocks are collinear
    effects = beta[1:].reshape(NUM_EDGES, NUM_OPS)
    effects = effects - effects.mean(axis=1, keepdims=True)  # identifiable, whatever lstsq chose
    total = scores.var()
    contributions = effects[np.arange(NUM_EDGES)[None, :], ops]  # (n, 6)
    shares = contributions.var(axis=0) / total if total > 0 else np.full(NUM_EDGES, np.nan)
    r2 = 1.0 - ((scores - x @ beta) ** 2).mean() / total if total > 0 else np.nan
    return effects, shares, float(r2)


def op_counts(ops: np.ndarray, scores: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score quantiles by the number of edges carrying each operation, and Spearman(count, score)."""
    rows, correlations = [], []
    for o, op in enumerate(OPS):
        count = (ops == o).sum(axis=1)
        for c in range(NUM_EDGES + 1):
            s = scores[count == c]
            if len(s):
                q25, median, q75 = np.quantile(s, [0.25, 0.5, 0.75])
                rows.append({"op": op, "count": c, "n": len(s), "mean": s.mean(), "median": median,
                             "q25": q25, "q75": q75})
        rho = stats.spearmanr(count, scores).statistic if len(scores) >= 3 and count.std() > 0 else np.nan
        correlations.append({"op": op, "n": len(scores), "count_spearman": float(rho)})
    return pd.DataFrame(rows), pd.DataFrame(correlations)


def run(out: str | Path, tables: Sequence[TableLike] = DEFAULT_TABLES) -> Report:
    out = start(out)
    loaded = load_tables(tables, NAME)
    effects, edges, ops_rows, counts = [], [], [], []
    for table in loaded:
        scores = table.final("test_metric")
        scored = np.flatnonzero(np.isfinite(scores))
        if len(scored) < 2:
            raise ValueError(f"{table.path}: {NAME} needs scored cells; this table scores {len(scored)}")
        ops, s = op_table()[scored], scores[scored]
        effect, shares, r2 = fit_effects(ops, s)
        name = label(table)
        effects += [{"table": name, "edge": EDGE_NAMES[e], "op": OPS[o], "effect": effect[e, o]}
                    for e in range(NUM_EDGES) for o in range(NUM_OPS)]
        edges += [{"table": name, "edge": EDGE_NAMES[e], "n": len(s), "share": shares[e],
                   "best_op": OPS[int(effect[e].argmin())], "best_effect": effect[e].min(),
                   "worst_op": OPS[int(effect[e].argmax())], "worst_effect": effect[e].max(), "model_r2": r2}
                  for e in range(NUM_EDGES)]
        count_rows, correlation_rows = op_counts(ops, s)
        counts.append(count_rows.assign(table=name))
        ops_rows.append(correlation_rows.assign(table=name))
    frames = {"edges": pd.DataFrame(edges), "effects": pd.DataFrame(effects),
              "ops": pd.concat(ops_rows)[["table", "op", "n", "count_spearman"]],
              "op_counts": pd.concat(counts)[["table", "op", "count", "n", "mean", "median", "q25", "q75"]]}
    figures = [out / "operation_effects.png", out / "op_counts.png"]
    plot_effects(frames["effects"], figures[0])
    plot_counts(frames["op_counts"], figures[1])
    notes = ["Final test scores of every scored cell (the one-hot encoding tells members of an iso class apart); "
             "effects are in the table's metric, negative = lower error than the edge's average."]
    return Report(NAME, QUESTION, out, loaded, frames, figures, answer(frames), notes=notes,
                  shown=("edges", "ops")).write()


def answer(frames: dict[str, pd.DataFrame]) -> str:
    sentences = []
    for table, edges in frames["edges"].groupby("table", sort=False):
        top = edges.loc[edges["share"].idxmax()]
        ops = frames["ops"][frames["ops"]["table"] == table].dropna(subset=["count_spearman"])
        helps = ops.loc[ops["count_spearman"].idxmin()] if len(ops) else None
        hurts = ops.loc[ops["count_spearman"].idxmax()] if len(ops) else None
        sentences.append(
            f"On `{table}` the additive model explains R^2 = {fmt(top['model_r2'])} of the score's variance over "
            f"{top['n']:,} cells; edge {top['edge']} matters most (share {fmt(top['share'])}: {top['best_op']} is best "
            f"there, {fmt(top['best_effect'])}, and {top['worst_op']} worst, +{fmt(top['worst_effect'])})"
            + (f"; more {helps['op']} edges go with lower error (Spearman of its count with the score "
               f"{fmt(helps['count_spearman'])}), more {hurts['op']} edges with higher "
               f"({fmt(hurts['count_spearman'])})."
               if helps is not None else "."))
    return " ".join(sentences)


def plot_effects(effects: pd.DataFrame, path: Path) -> None:
    """Heat map edges x operations of the centred effects, one panel per table."""
    tables = list(dict.fromkeys(effects["table"]))
    title = "operation effects on the final test score (centred per edge; negative = better)"
    with figure(path, ncols=len(tables), size=(5.0, 3.6), title=title) as (fig, axes):
        for ax, table in zip(axes[0], tables):
            grid = effects[effects["table"] == table].pivot(index="edge", columns="op", values="effect")
            grid = grid.loc[list(EDGE_NAMES), list(OPS)]
            limit = np.nanmax(np.abs(grid.to_numpy())) or 1.0
            image = ax.imshow(grid.to_numpy(), cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
            ax.set_xticks(range(NUM_OPS), [op.replace("nor_", "") for op in OPS], rotation=30, ha="right")
            ax.set_yticks(range(NUM_EDGES), [f"edge {e}" for e in EDGE_NAMES])
            ax.set_title(table)
            for (i, j), value in np.ndenumerate(grid.to_numpy()):
                ax.text(j, i, fmt(value), ha="center", va="center", fontsize=7)
            fig.colorbar(image, ax=ax)


def plot_counts(counts: pd.DataFrame, path: Path) -> None:
    """Median (and inter-quartile band) of the score against the count of each operation."""
    tables = list(dict.fromkeys(counts["table"]))
    title = "score by number of edges carrying each operation"
    with figure(path, ncols=len(tables), size=(4.6, 3.6), title=title) as (_, axes):
        for ax, table in zip(axes[0], tables):
            for op, rows in counts[counts["table"] == table].groupby("op", sort=False):
                line, = ax.plot(rows["count"], rows["median"], marker="o", label=op)
                ax.fill_between(rows["count"], rows["q25"], rows["q75"], color=line.get_color(), alpha=0.15,
                                linewidth=0)
            ax.set(xlabel="edges with the operation", ylabel="final test score (median, IQR)", title=table)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
