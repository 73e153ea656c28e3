"""locality: is the space locally smooth, as local search and regularized evolution assume?

Three measures, after Ying et al., "NAS-Bench-101" (ICML 2019, section 5.2) and White et al.,
"Local search is state of the art for NAS benchmarks" (UAI 2021), on the final test score of every
scored cell (all 15,625 rows: the space as a search walks it):

- score against edit distance: for each distance d = 1..6 (edges whose operation differs), pairs at
  exactly that distance are drawn (a uniformly drawn scored cell, d distinct edges, a different
  operation on each) and the Pearson correlation of their two scores and their mean absolute
  difference are reported; the Spearman correlation of d with |difference| over all pairs sums it up;
- random-walk autocorrelation: the Pearson correlation of the scores k steps apart on a random walk
  (each step: one edge gets another operation), for lags k = 1..`max_lag`;
- local optima: cells with no strictly better-scoring neighbour among their 24 one-edge neighbours.

Partial tables: pairs and walk steps count where both cells are scored; a cell's neighbourhood is
the neighbours the table scores, which makes a cell with few scored neighbours more likely to look
like an optimum. The same measure on the same cells with the scores shuffled between iso classes
(`shuffle_classes`: no locality at all) is reported beside it, so the comparison stays fair; on a
complete table the neighbourhood is the full one.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from nb360.hypotheses.common import TASK_TABLES, Report, TableLike, figure, fmt, label, load_tables, start
from nb360.search.space import neighbor_table, op_table
from nb360.spaces.nb201 import NUM_ARCHS, NUM_EDGES, NUM_OPS

NAME = "locality"
QUESTION = "Is the space locally smooth (what local search and regularized evolution rely on)?"
DEFAULT_TABLES = TASK_TABLES
PAIRS = 20_000  # pairs drawn per distance
WALK = 50_000  # steps of the random walk
MAX_LAG = 8


_PLACES = NUM_OPS ** np.arange(NUM_EDGES - 1, -1, -1)  # operations read as a base-5 number


@cache
def _index_of_code() -> np.ndarray:
    index = np.empty(NUM_ARCHS, dtype=np.int64)
    index[op_table() @ _PLACES] = np.arange(NUM_ARCHS)
    return index


def index_of_ops(ops: np.ndarray) -> np.ndarray:
    """Official indices of cells given as (n, 6) operation indices (rows of `op_table()`)."""
    return _index_of_code()[ops @ _PLACES]


def pairs_at_distance(scores: np.ndarray, distance: int, n: int, rng: np.random.Generator
                      ) -> tuple[np.ndarray, np.ndarray]:
    """(first, second) official indices of up to `n` pairs exactly `distance` edges apart, both
    scored: a scored cell drawn uniformly, `distance` distinct edges, each a uniformly drawn other
    operation (pairs whose second cell is not scored are dropped)."""
    scored = np.flatnonzero(np.isfinite(scores))
    first = rng.choice(scored, size=n)
    ops = op_table()[first].copy()
    edges = np.argsort(rng.random((n, NUM_EDGES)), axis=1)[:, :distance]  # distinct edges per pair
    rows = np.arange(n)[:, None]
    shift = rng.integers(1, NUM_OPS, size=(n, distance))  # 1..4: a different operation, uniformly
    ops[rows, edges] = (ops[rows, edges] + shift) % NUM_OPS
    second = index_of_ops(ops)
    keep = np.isfinite(scores[second])
    return first[keep], second[keep]


def distance_numbers(scores: np.ndarray, rng: np.random.Generator, n: int = PAIRS) -> tuple[pd.DataFrame, float]:
    """Per distance: pairs, score correlation, mean |difference|; and Spearman(d, |difference|)."""
    rows, all_d, all_diff = [], [], []
    for d in range(1, NUM_EDGES + 1):
        a, b = pairs_at_distance(scores, d, n, rng)
        sa, sb = scores[a], scores[b]
        rows.append({"distance": d, "pairs": len(a), "score_correlation": pearson(sa, sb),
                     "mean_abs_difference": float(np.abs(sa - sb).mean()) if len(a) else np.nan})
        all_d.append(np.full(len(a), d))
        all_diff.append(np.abs(sa - sb))
    d, diff = np.concatenate(all_d), np.concatenate(all_diff)
    rho = float(stats.spearmanr(d, diff).statistic) if len(d) >= 3 and diff.std() > 0 else np.nan
    return pd.DataFrame(rows), rho


def random_walk(steps: int, rng: np.random.Generator) -> np.ndarray:
    """Official indices visited by a random walk of `steps` steps from a uniform cell (each step:
    one of the 24 neighbours, uniformly)."""
    neighbours = neighbor_table()
    choice = rng.integers(neighbours.shape[1], size=steps)
    walk = np.empty(steps + 1, dtype=np.int64)
    walk[0] = rng.integers(NUM_ARCHS)
    for t in range(steps):
        walk[t + 1] = neighbours[walk[t], choice[t]]
    return walk


def autocorrelation(scores: np.ndarray, walk: np.ndarray, max_lag: int) -> pd.DataFrame:
    """Pearson correlation of the walk's scores `lag` steps apart, over steps where both are scored."""
    s = scores[walk]
    rows = []
    for lag in range(1, max_lag + 1):
        a, b = s[:-lag], s[lag:]
        both = np.isfinite(a) & np.isfinite(b)
        rows.append({"lag": lag, "pairs": int(both.sum()), "autocorrelation": pearson(a[both], b[both])})
    return pd.DataFrame(rows)


def local_optima(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(is a local optimum, number of scored neighbours) for every cell; a cell with a score and at
    least one scored neighbour is an optimum when no scored neighbour scores strictly lower."""
    neighbours = scores[neighbor_table()]  # (A, 24)
    scored = np.isfinite(neighbours)
    best = np.where(scored, neighbours, np.inf).min(axis=1)
    counted = np.isfinite(scores) & scored.any(axis=1)
    return counted & ~(best < scores), np.where(counted, scored.sum(axis=1), 0)


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation, NaN for fewer than 3 pairs or a constant side."""
    if len(a) < 3 or np.std(a) == 0 or np.std(b) == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def shuffle_classes(scores: np.ndarray, iso: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The null model of no locality: the scored iso classes' mean scores permuted among them, each
    cell keeping its deviation from its class mean. Shuffling cells instead would break the ties
    inside a class (members of a class are often neighbours and share one run), and the plateaus
    they form, which belong to the space, would then count against the table."""
    finite = np.flatnonzero(np.isfinite(scores))
    _, member_of = np.unique(iso[finite], return_inverse=True)
    means = np.bincount(member_of, scores[finite]) / np.bincount(member_of)
    out = scores.copy()
    out[finite] = rng.permutation(means)[member_of] + (scores[finite] - means[member_of])
    return out


def table_numbers(scores: np.ndarray, iso: np.ndarray, rng: np.random.Generator, pairs: int, walk_steps: int,
                  max_lag: int) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    distance, rho = distance_numbers(scores, rng, pairs)
    walk = autocorrelation(scores, random_walk(walk_steps, rng), max_lag)
    optimum, counted_neighbours = local_optima(scores)
    counted = counted_neighbours > 0
    shuffled_optimum, _ = local_optima(shuffle_classes(scores, iso, rng))
    summary = {
        "scored": int(np.isfinite(scores).sum()), "spearman_distance_vs_difference": rho,
        "autocorrelation_lag1": float(walk["autocorrelation"].iloc[0]),
        "cells_counted": int(counted.sum()),
        "median_scored_neighbours": float(np.median(counted_neighbours[counted])) if counted.any() else np.nan,
        "local_optima": int(optimum.sum()),
        "local_optima_fraction": float(optimum.sum() / counted.sum()) if counted.any() else np.nan,
        "shuffled_local_optima_fraction": float(shuffled_optimum.sum() / counted.sum()) if counted.any() else np.nan,
    }
    return summary, distance, walk


def run(out: str | Path, tables: Sequence[TableLike] = DEFAULT_TABLES, seed: int = 0, pairs: int = PAIRS,
        walk_steps: int = WALK, max_lag: int = MAX_LAG) -> Report:
    out = start(out)
    loaded = load_tables(tables, NAME)
    summaries, distances, walks = [], [], []
    for k, table in enumerate(loaded):
        scores = table.final("test_metric")
        if np.isfinite(scores).sum() < 2:
            raise ValueError(f"{table.path}: {NAME} needs scored cells; this table scores {np.isfinite(scores).sum()}")
        rng = np.random.default_rng([seed, k])  # a stream per table: its numbers do not depend on later tables
        summary, distance, walk = table_numbers(scores, table.iso_classes(), rng, pairs, walk_steps, max_lag)
        summaries.append({"table": label(table), **summary})
        distances.append(distance.assign(table=label(table)))
        walks.append(walk.assign(table=label(table)))
    frames = {"locality": pd.DataFrame(summaries),
              "distance": pd.concat(distances)[["table", *distances[0].columns[:-1]]],
              "autocorrelation": pd.concat(walks)[["table", *walks[0].columns[:-1]]]}
    figure_path = out / "locality.png"
    plot(frames, figure_path)
    notes = [f"Final test scores of every cell (not one per iso class: a search walks cells). Seed {seed}; "
             f"{pairs:,} pairs drawn per distance, a {walk_steps:,}-step walk."]
    return Report(NAME, QUESTION, out, loaded, frames, [figure_path], answer(frames), notes=notes).write()


def answer(frames: dict[str, pd.DataFrame]) -> str:
    sentences = []
    for row in frames["locality"].itertuples():
        distance = frames["distance"][frames["distance"]["table"] == row.table]
        near, far = distance["score_correlation"].iloc[0], distance["score_correlation"].iloc[-1]
        smooth = row.local_optima_fraction < row.shuffled_local_optima_fraction and near > far
        sentences.append(
            f"On `{row.table}` ({row.scored:,} cells scored) scores of neighbours correlate at {fmt(near)} "
            f"(at distance 6: {fmt(far)}; Spearman of distance with |difference| "
            f"{fmt(row.spearman_distance_vs_difference)}), "
            f"the random walk's lag-1 autocorrelation is {fmt(row.autocorrelation_lag1)}, and "
            f"{fmt(row.local_optima_fraction * 100)}% of cells are local optima ({row.local_optima:,} cells; "
            f"with the scores shuffled between classes: {fmt(row.shuffled_local_optima_fraction * 100)}%, median "
            f"{fmt(row.median_scored_neighbours)} scored neighbours): the space is "
            f"{'locally smooth' if smooth else 'not locally smooth'} there.")
    return " ".join(sentences)


def plot(frames: dict[str, pd.DataFrame], path: Path) -> None:
    with figure(path, ncols=3, size=(4.2, 3.6), title="locality of the final test score") as (_, axes):
        ax_d, ax_w, ax_o = axes[0]
        for table, rows in frames["distance"].groupby("table", sort=False):
            ax_d.plot(rows["distance"], rows["score_correlation"], marker="o", label=table)
        for table, rows in frames["autocorrelation"].groupby("table", sort=False):
            ax_w.plot(rows["lag"], rows["autocorrelation"], marker="o", label=table)
        summary = frames["locality"]
        x = np.arange(len(summary))
        ax_o.bar(x - 0.2, summary["local_optima_fraction"], 0.4, label="table")
        ax_o.bar(x + 0.2, summary["shuffled_local_optima_fraction"], 0.4, label="scores shuffled between classes")
        ax_o.set_xticks(x, summary["table"], rotation=20, ha="right")
        ax_d.set(xlabel="edit distance (edges)", ylabel="correlation of the two scores")
        ax_w.set(xlabel="random-walk lag (steps)", ylabel="autocorrelation")
        ax_o.set(ylabel="fraction of local optima")
        for ax in (ax_d, ax_w, ax_o):
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
