"""rank-transfer: do architecture rankings transfer across tasks?

NAS-Bench-360's headline finding is that they do not across diverse tasks (Tu et al., NeurIPS 2022
Datasets and Benchmarks, section 4: the best NB201 cells of CIFAR-100 are far from the best on its
other tasks). For every ordered pair of tables (source, target) this computes, over the iso classes
both score, `nb360.table.compare.agreement` of their final test scores (Spearman, Kendall, top-10%
overlap, and the target regret of the source's best cell), the same correlations among the cells in
the source's top 10% only (does the source order its good cells as the target does?), and where the
source's best cell ranks on the target.
"""

from __future__ import annotations

from itertools import permutations
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from nb360.hypotheses.common import (TASK_TABLES, TOP, Report, TableLike, agree, by_class, figure, fmt, label,
                                     load_tables, start)

NAME = "rank-transfer"
QUESTION = "Do architecture rankings transfer across tasks?"
DEFAULT_TABLES = TASK_TABLES
# Thresholds of the generated answer, on the mean Spearman over pairs.
STRONG, WEAK = 0.8, 0.5


def class_scores(table) -> np.ndarray:
    """(classes,) final test score of every iso class, NaN where the table has none."""
    return by_class(table.final("test_metric"), table.class_rows())


def pair_rows(source: np.ndarray, target: np.ndarray, top: float) -> dict:
    """The numbers of one (source, target) pair of per-class scores."""
    numbers = agree(source, target, top)
    both = np.isfinite(source) & np.isfinite(target)
    s, t = source[both], target[both]
    if len(s) >= 3:
        in_top = s <= np.quantile(s, top)  # the source's best `top` fraction (ties included)
        among_top = agree(s[in_top], t[in_top], top)
        pick = t[np.argmin(s)]
        pick_rank = float((t < pick).mean())  # the fraction of cells the target scores better than the pick
    else:
        among_top, pick_rank = agree(s, t, top), np.nan
    return {**numbers, "top_n": among_top["n"], "top_spearman": among_top["spearman"],
            "top_kendall": among_top["kendall"], "pick_rank_fraction": pick_rank}


def run(out: str | Path, tables: Sequence[TableLike] = DEFAULT_TABLES, top: float = TOP) -> Report:
    out = start(out)
    loaded = load_tables(tables, NAME, minimum=2)
    scores = {label(b): class_scores(b) for b in loaded}
    rows = [{"source": s, "target": t, **pair_rows(scores[s], scores[t], top)} for s, t in permutations(scores, 2)]
    pairs = pd.DataFrame(rows)
    figures = [out / "rank_transfer.png", out / "spearman_matrix.png"]
    plot_pairs(scores, figures[0])
    plot_matrix(pairs, list(scores), figures[1])
    return Report(NAME, QUESTION, out, loaded, {"rank_transfer": pairs}, figures, answer(pairs, top),
                  notes=[f"Scores are final test scores, one per iso class (n counts classes scored by both tables); "
                         f"top = the best {top:.0%} of the classes both score."]).write()


def answer(pairs: pd.DataFrame, top: float) -> str:
    """The paragraph that answers the question from the numbers."""
    valid = pairs.dropna(subset=["spearman"])
    if valid.empty:
        return "No pair of tables scores 3 or more iso classes in common yet, so nothing can be said."
    mean = valid["spearman"].mean()
    verdict = ("transfer well" if mean >= STRONG else "transfer partly" if mean >= WEAK else "do not transfer")
    worst = valid.loc[valid["pick_rank_fraction"].idxmax()]
    return (f"Over {len(valid)} ordered pairs of tables, the Spearman correlation of final test scores ranges from "
            f"{fmt(valid['spearman'].min())} to {fmt(valid['spearman'].max())} (mean {fmt(mean)}; Kendall mean "
            f"{fmt(valid['kendall'].mean())}), and among the source's top {top:.0%} it averages "
            f"{fmt(valid['top_spearman'].mean())}. The top-{top:.0%} sets overlap by "
            f"{fmt(valid['top_overlap'].mean())} on average (chance: {top:.2g}). The worst transfer of a best cell "
            f"is from `{worst['source']}` to `{worst['target']}`: it ranks behind "
            f"{fmt(worst['pick_rank_fraction'] * 100)}% of the target's classes (regret "
            f"{fmt(worst['regret_of_pick'])}). By the mean Spearman (>= {STRONG}: well, >= {WEAK}: partly), "
            f"rankings on these tables {verdict}.")


def plot_pairs(scores: dict[str, np.ndarray], path: Path) -> None:
    """Rank against rank for every unordered pair of tables (percentiles among the shared classes)."""
    pairs = [(a, b) for i, a in enumerate(scores) for b in list(scores)[i + 1:]]
    with figure(path, ncols=len(pairs), size=(4.2, 4.0), title="ranks of iso classes (0 = best)") as (_, axes):
        for ax, (a, b) in zip(axes[0], pairs):
            both = np.isfinite(scores[a]) & np.isfinite(scores[b])
            ra, rb = (pd.Series(scores[x][both]).rank(pct=True).to_numpy() for x in (a, b))
            ax.scatter(ra, rb, s=3, alpha=0.4)
            ax.set(xlabel=f"{a} rank", ylabel=f"{b} rank", title=f"n={both.sum()}", xlim=(0, 1), ylim=(0, 1))
            ax.set_aspect("equal")


def plot_matrix(pairs: pd.DataFrame, names: list[str], path: Path) -> None:
    """Spearman of every pair (symmetric), as a heat map."""
    matrix = np.eye(len(names))
    for row in pairs.itertuples():
        matrix[names.index(row.source), names.index(row.target)] = row.spearman
    size = (1.4 * len(names) + 3, 1.2 * len(names) + 2.5)
    with figure(path, size=size, title="Spearman, final test scores") as (fig, axes):
        ax = axes[0, 0]
        image = ax.imshow(matrix, vmin=-1, vmax=1, cmap="RdBu")
        ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
        ax.set_yticks(range(len(names)), names)
        for (i, j), value in np.ndenumerate(matrix):
            ax.text(j, i, fmt(value), ha="center", va="center", fontsize=9)
        fig.colorbar(image, ax=ax)
