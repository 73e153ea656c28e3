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
from itertools import combinations
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from nb360.hypotheses.common import Report, TableLike, agree, figure, fmt, has_validation, label, load_tables, start
from nb360.stats import mean_ci

NAME = "search-consistency"
QUESTION = "Does an algorithm's ranking on one task predict its ranking on another?"
DEFAULT_TABLES = ("nb201-darcyflow-mini", "nb201-digits-mini")
DEFAULT_ALGOS = ("rs", "re", "ls", "reinforce", "bananas")
BUDGET = 100  # queries per search, as `nb360 search` defaults
SEEDS = 10
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
    return frame


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
    regrets = pd.concat([per_algo(final_regrets(t)).assign(table=label(b)) for b, t in zip(loaded, runs)])
    regrets = regrets[["table", "algo", "searches", "with_regret", "mean_regret", "ci95", "median_regret", "rank"]]
    pairs = pair_agreement(regrets)
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


def pair_agreement(regrets: pd.DataFrame) -> pd.DataFrame:
    """For every pair of tables, agreement of the algorithms' mean regrets (those both ran)."""
    means = regrets.pivot(index="algo", columns="table", values="mean_regret")
    tables = list(dict.fromkeys(regrets["table"]))
    rows = []
    for a, b in combinations(tables, 2):
        # top fraction just under 1/algos: the top set is the single best algorithm
        numbers = agree(means[a].to_numpy(), means[b].to_numpy(), top=0.99 / len(means))
        rows.append({"table": a, "other": b, "algos": numbers["n"], "spearman": numbers["spearman"],
                     "kendall": numbers["kendall"], "same_best": numbers["top_overlap"],
                     "regret_of_pick": numbers["regret_of_pick"]})
    return pd.DataFrame(rows)


def answer(regrets: pd.DataFrame, pairs: pd.DataFrame) -> str:
    best = [f"`{table}`: {rows.loc[rows['mean_regret'].idxmin(), 'algo']}" for table, rows in
            regrets.dropna(subset=["mean_regret"]).groupby("table", sort=False)]
    sentences = [f"The best algorithm by mean final regret is, per table, {'; '.join(best) or 'none (no regrets)'}."]
    for row in pairs.itertuples():
        if not np.isfinite(row.spearman):
            sentences.append(f"`{row.table}` and `{row.other}` share fewer than 3 algorithms with a regret: "
                             f"no ranking to compare.")
            continue
        sentences.append(
            f"Between `{row.table}` and `{row.other}` the algorithms' rankings agree with Spearman {fmt(row.spearman)} "
            f"(Kendall {fmt(row.kendall)}, {row.algos} algorithms); the best algorithm is "
            f"{'the same' if row.same_best == 1 else 'different'}, and using `{row.table}`'s best on "
            f"`{row.other}` costs {fmt(row.regret_of_pick)} of extra mean regret.")
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
