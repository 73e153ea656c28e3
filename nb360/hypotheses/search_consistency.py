"""search-consistency: does an algorithm's ranking on one task predict its ranking on another?

Each search algorithm runs for several seeds on every table, through the in-process tabular runner
(`nb360.search.runner.run_many`, what `nb360 search` runs), or its `trials.csv` files are read
(one per table, as `nb360 search --out DIR` writes them). The final test regret of each search
(the regret of its incumbent after the last query) gives, per table, each algorithm's mean regret
with a 95% confidence interval over seeds (Student t) and its rank among the algorithms; for every
pair of tables, `nb360.table.compare.agreement` of the algorithms' mean regrets: Spearman and
Kendall over the algorithms, whether the best algorithm is the same (`same_best`), and the regret
on the second table of the first table's best algorithm (`regret_of_pick`).
"""

from __future__ import annotations

import os
import warnings
from itertools import combinations
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from nb360.hypotheses.common import (TASK_TABLES, Report, TableLike, agree, figure, fmt, has_validation, label,
                                     load_tables, start)
from nb360.stats import difference_ci, mean_ci

NAME = "search-consistency"
QUESTION = "Does an algorithm's ranking on one task predict its ranking on another?"
DEFAULT_TABLES = TASK_TABLES
DEFAULT_ALGOS = ("rs", "re", "ls", "reinforce", "bananas")
BUDGET = 100  # queries per search, as `nb360 search` defaults
SEEDS = 30  # enough that the intervals, not the CPU's BLAS kernel, decide the verdicts
TRIALS_COLUMNS = ("algo", "seed", "trial", "regret")


def read_trials(path: str | os.PathLike) -> pd.DataFrame:
    """A `trials.csv` (or a folder holding one), checked for the columns used here."""
    path = Path(path)
    if path.is_dir():
        path = path / "trials.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no trials file (give trials.csv files written by `nb360 search --out DIR`)")
    trials = pd.read_csv(path)
    missing = [c for c in TRIALS_COLUMNS if c not in trials.columns]
    if missing:
        raise ValueError(f"{path}: trials need the columns {', '.join(TRIALS_COLUMNS)}; missing {', '.join(missing)} "
                         f"(found {', '.join(trials.columns)})")
    return trials


def search(table, algos: Sequence[str], budget: int, seeds: int) -> pd.DataFrame:
    """Every algorithm for seeds 0..seeds-1 on `table`, `budget` queries each."""
    from nb360.search.runner import run_many

    if not has_validation(table):
        raise ValueError(f"{table.path}: no validation scores, and a search never sees test scores; "
                         f"give trials.csv files from elsewhere (trials=...) or leave this table out")
    return run_many(table, list(algos), range(seeds), queries=budget)


def final_regrets(trials: pd.DataFrame) -> pd.DataFrame:
    """(algo, seed, regret): the regret after the last query of every search, algorithms in the
    order they first appear."""
    last = trials.groupby(["algo", "seed"], sort=False)["trial"].idxmax()
    return trials.loc[last, ["algo", "seed", "regret"]].reset_index(drop=True)


def per_algo(final: pd.DataFrame) -> pd.DataFrame:
    """Mean, 95% t-interval half-width, median and rank (1 = lowest mean) of each algorithm's final
    regret, over its searches that found a scored cell (`with_regret` of `searches`)."""
    rows = []
    for algo, group in final.groupby("algo", sort=False):
        regret = group["regret"].to_numpy(dtype=float)
        summary = mean_ci(regret)  # NaN regrets (the search met no scored cell, a partial table) left out
        finite = regret[np.isfinite(regret)]
        rows.append({"algo": algo, "searches": len(regret), "with_regret": summary["n"],
                     "mean_regret": summary["mean"], "ci95": summary["ci95"],
                     "median_regret": np.median(finite) if len(finite) else np.nan})
    frame = pd.DataFrame(rows)
    frame["rank"] = frame["mean_regret"].rank(method="min")
    frame["tied_best"] = tied_best(final, frame)
    return frame


def tied_best(final: pd.DataFrame, frame: pd.DataFrame) -> list[bool]:
    """Per algorithm: is its mean final regret within the 95% Welch interval of the difference to
    the best algorithm's (so that the seeds run cannot tell it from the best)?"""
    if frame["mean_regret"].isna().all():
        return [False] * len(frame)
    best = frame.loc[frame["mean_regret"].idxmin(), "algo"]
    regret = {algo: group["regret"].to_numpy(dtype=float) for algo, group in final.groupby("algo", sort=False)}
    tied = []
    for algo in frame["algo"]:
        d = difference_ci(regret[best], regret[algo])
        tied.append(bool(algo == best or not abs(d["diff"]) > d["ci95"]))  # a NaN interval cannot separate them
    return tied


def run(out: str | Path, tables: Sequence[TableLike] = DEFAULT_TABLES, algos: Sequence[str] = DEFAULT_ALGOS,
        budget: int = BUDGET, seeds: int = SEEDS, trials: Sequence[str | os.PathLike] | None = None) -> Report:
    """`trials`: one trials.csv (or folder) per table, in the same order, read instead of searching
    (the algorithms, budget and seeds are then the files')."""
    out = start(out)
    loaded = load_tables(tables, NAME, minimum=2)
    if trials is not None and len(trials) != len(loaded):
        raise ValueError(f"{NAME}: give one trials file per table: {len(loaded)} tables, {len(trials)} trials files")
    runs = ([read_trials(p) for p in trials] if trials is not None
            else [search(table, algos, budget, seeds) for table in loaded])
    finals = {label(b): final_regrets(t) for b, t in zip(loaded, runs)}
    regrets = pd.concat([per_algo(final).assign(table=name) for name, final in finals.items()])
    regrets = regrets[["table", "algo", "searches", "with_regret", "mean_regret", "ci95", "median_regret", "rank",
                       "tied_best"]]
    pairs = pair_agreement(regrets, finals)
    figure_path = out / "search_consistency.png"
    plot(regrets, figure_path)
    source = ("read from " + ", ".join(f"`{p}`" for p in trials)) if trials is not None else \
        f"run here: {budget} queries per search, seeds 0..{seeds - 1}, `nb360.search.runner.run_many`"
    notes = [f"Searches {source}. Regret: final test score of the incumbent (best by validation) minus the table's "
             f"best; each table's own metric, so compare ranks across tables, not regrets."]
    empty = int((regrets["searches"] - regrets["with_regret"]).sum())
    if empty:
        notes.append(f"{empty} searches met no scored cell (partial tables) and are left out of the means.")
    return Report(NAME, QUESTION, out, loaded, {"regret": regrets, "agreement": pairs}, [figure_path],
                  answer(regrets, pairs), notes=notes).write()


BOOTSTRAP = 1000  # resamples of the seeds for the interval of a ranking agreement
BOOTSTRAP_SEED = 0


def pair_agreement(regrets: pd.DataFrame, finals: dict[str, pd.DataFrame] | None = None) -> pd.DataFrame:
    """For every pair of tables, agreement of the algorithms' mean regrets (those both ran), and,
    with `finals` (each table's final regrets per search), a 95% bootstrap interval of the Spearman
    correlation (the seeds of every algorithm resampled on both tables) and whether the two tables'
    sets of algorithms tied with the best (`tied_best`) overlap."""
    means = regrets.pivot(index="algo", columns="table", values="mean_regret")
    tied = regrets.pivot(index="algo", columns="table", values="tied_best").fillna(False).astype(bool)
    tables = list(dict.fromkeys(regrets["table"]))
    rows = []
    for a, b in combinations(tables, 2):
        # top fraction just under 1/algos: the top set is the single best algorithm
        numbers = agree(means[a].to_numpy(), means[b].to_numpy(), top=0.99 / len(means))
        low, high = spearman_interval(finals[a], finals[b], list(means.index)) if finals else (np.nan, np.nan)
        rows.append({"table": a, "other": b, "algos": numbers["n"], "spearman": numbers["spearman"],
                     "spearman_lo": low, "spearman_hi": high, "kendall": numbers["kendall"],
                     "same_best": numbers["top_overlap"], "tied_best_overlap": bool((tied[a] & tied[b]).any()),
                     "regret_of_pick": numbers["regret_of_pick"]})
    return pd.DataFrame(rows)


def spearman_interval(first: pd.DataFrame, second: pd.DataFrame, algos: list[str]) -> tuple[float, float]:
    """95% percentile bootstrap interval of the Spearman correlation of the algorithms' mean final
    regrets on two tables, resampling each algorithm's searches (seeds) on each table."""
    from scipy import stats

    def samples(final: pd.DataFrame) -> list[np.ndarray]:
        groups = {algo: g["regret"].to_numpy(dtype=float) for algo, g in final.groupby("algo")}
        return [groups[a][np.isfinite(groups[a])] if a in groups else np.array([]) for a in algos]

    one, two = samples(first), samples(second)
    usable = [i for i in range(len(algos)) if len(one[i]) and len(two[i])]
    if len(usable) < 3:
        return np.nan, np.nan
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    rhos = []
    for _ in range(BOOTSTRAP):
        x = [rng.choice(one[i], len(one[i])).mean() for i in usable]
        y = [rng.choice(two[i], len(two[i])).mean() for i in usable]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a resample with tied means: no correlation, left out
            rho = stats.spearmanr(x, y).statistic
        if np.isfinite(rho):
            rhos.append(rho)
    return (float(np.percentile(rhos, 2.5)), float(np.percentile(rhos, 97.5))) if rhos else (np.nan, np.nan)


def answer(regrets: pd.DataFrame, pairs: pd.DataFrame) -> str:
    """The answer, with no verdict the intervals do not allow: the best algorithm is named with those
    tied with it, a ranking agreement with its bootstrap interval."""
    best = []
    for table, rows in regrets.dropna(subset=["mean_regret"]).groupby("table", sort=False):
        top = rows.loc[rows["mean_regret"].idxmin(), "algo"]
        ties = [a for a in rows.loc[rows["tied_best"], "algo"] if a != top]
        best.append(f"`{table}`: {top}" + (f" (tied within the 95% intervals: {', '.join(ties)})" if ties else
                                           " (ahead of every other beyond the 95% intervals)"))
    sentences = [f"The best algorithm by mean final regret is, per table, {'; '.join(best) or 'none (no regrets)'}."]
    for row in pairs.itertuples():
        if not np.isfinite(row.spearman):
            sentences.append(f"`{row.table}` and `{row.other}` share fewer than 3 algorithms with a regret: "
                             f"no ranking to compare.")
            continue
        interval = f" [95% bootstrap interval {fmt(row.spearman_lo)}, {fmt(row.spearman_hi)}]" \
            if np.isfinite(row.spearman_lo) else ""
        if np.isfinite(row.spearman_lo):
            verdict = ("so the rankings agree" if row.spearman_lo > 0 else
                       "so they disagree" if row.spearman_hi < 0 else
                       "an interval that includes 0: the seeds run do not tell whether the rankings agree")
        else:
            verdict = "no interval (too few searches to resample)"
        if row.same_best == 1:
            best_text = "the best algorithm is the same"
        elif row.tied_best_overlap:
            best_text = ("the best algorithm by mean differs, but the algorithms tied with the best overlap, "
                         "so the seeds run do not show that the best differs")
        else:
            best_text = "the best algorithm is different, beyond the 95% intervals"
        sentences.append(
            f"Between `{row.table}` and `{row.other}` the algorithms' rankings agree with Spearman {fmt(row.spearman)}"
            f"{interval}, {verdict} (Kendall {fmt(row.kendall)}, {row.algos} algorithms); {best_text}, and using "
            f"`{row.table}`'s best on `{row.other}` costs {fmt(row.regret_of_pick)} of extra mean regret.")
    return " ".join(sentences)


def plot(regrets: pd.DataFrame, path: Path) -> None:
    """Mean final regret with its 95% interval, per algorithm, one panel per table."""
    tables = list(dict.fromkeys(regrets["table"]))
    title = "final test regret (mean, 95% CI over seeds)"
    with figure(path, ncols=len(tables), size=(4.2, 3.6), title=title) as (_, axes):
        for ax, table in zip(axes[0], tables):
            rows = regrets[regrets["table"] == table]
            x = np.arange(len(rows))
            ax.bar(x, rows["mean_regret"], yerr=rows["ci95"].fillna(0.0), capsize=3, color=[f"C{i}" for i in x])
            ax.set_xticks(x, rows["algo"], rotation=30, ha="right")
            ax.set(ylabel="final test regret", title=table)
            ax.grid(axis="y", alpha=0.3)
