"""fidelity: can short training stand in for long training?

Multi-fidelity searches (successive halving, Hyperband, BOHB) and every reduced-protocol table bet
that a ranking made cheaply predicts the ranking after full training. Two comparisons, over iso
classes (one row per class, the same as the other questions):

- within a table: the ranking after epoch e (by validation score, the signal a search sees; by
  test score on tables without validation scores) against the table's own final test ranking;
- across tables: the first table (the cheaper protocol, e.g. the mini table) after each of its
  epochs against the final test ranking of each other table (a higher-fidelity protocol on the same
  task, e.g. its high-fidelity sample), plus final test against final test.

Besides `nb360.table.compare.agreement`'s numbers, `retention` asks the successive-halving
question directly: of the truly best `top` fraction (by the target), how many survive a cut that
keeps the best 1/eta by the signal (eta as `nb360.search.halving.SuccessiveHalving` uses). Cuts
are called safe from the earliest epoch after which retention stays at `SAFE` (90%) or more.
"""

from __future__ import annotations

import inspect
import math
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from nb360.hypotheses.common import (TASK_TABLES, TOP, Report, TableLike, agree, at_epoch, by_class, figure, fmt,
                                     has_validation, label, load_tables, start)
from nb360.search.halving import SuccessiveHalving

NAME = "fidelity"
QUESTION = "Can short training stand in for long training?"
# The Darcy table judged against the high-fidelity sample of its cells, retrained with a seed no task
# table uses: the seed fixes the batch order, so a sample sharing a seed shares noise and agrees more.
DEFAULT_TABLES = (TASK_TABLES[0], "nb201-darcyflow-hifi-sample-seed2")
ETA = inspect.signature(SuccessiveHalving).parameters["eta"].default  # the searcher's own default (3)
SAFE = 0.9


def retention(signal: np.ndarray, target: np.ndarray, top: float, eta: int) -> float:
    """The fraction of the target's best ceil(top * n) classes that rank among the signal's best
    max(1, n // eta), over the n classes both score (NaN below 3)."""
    both = np.isfinite(signal) & np.isfinite(target)
    n = int(both.sum())
    if n < 3:
        return math.nan
    best = set(np.argsort(target[both], kind="stable")[: max(1, math.ceil(top * n))])
    kept = set(np.argsort(signal[both], kind="stable")[: max(1, n // eta)])
    return len(best & kept) / len(best)


def signal_metric(table) -> str:
    return "val_metric" if has_validation(table) else "test_metric"


def compare(table, target, top: float, eta: int) -> list[dict]:
    """One row per epoch of `table`: its signal after that epoch against `target`'s final test
    (comparison "within" a table or "across" two); across two tables whose signal is validation,
    also final test against final test (comparison "final")."""
    target_scores = by_class(target.final("test_metric"), target.class_rows())
    rows_of_class, metric = table.class_rows(), signal_metric(table)
    comparison = "within" if table is target else "across"

    def row(comparison: str, signal: str, epoch: int, values: np.ndarray) -> dict:
        values = by_class(values, rows_of_class)
        return {"table": label(table), "target": label(target), "comparison": comparison, "signal": signal,
                "epoch": epoch, "epoch_fraction": epoch / table.epochs, **agree(values, target_scores, top),
                "retention": retention(values, target_scores, top, eta)}

    rows = [row(comparison, metric, e, at_epoch(table, metric, e)) for e in range(1, table.epochs + 1)]
    if comparison == "across" and metric != "test_metric":  # else the last "across" row is this one
        rows.append(row("final", "test_metric", table.epochs, table.final("test_metric")))
    return rows


def run(out: str | Path, tables: Sequence[TableLike] = DEFAULT_TABLES, top: float = TOP, eta: int = ETA) -> Report:
    out = start(out)
    loaded = load_tables(tables, NAME)
    if eta < 2:
        raise ValueError(f"{NAME}: eta (the halving rate) must be >= 2, got {eta}")
    rows = [row for table in loaded for row in compare(table, table, top, eta)]
    rows += [row for target in loaded[1:] for row in compare(loaded[0], target, top, eta)]
    epochs = pd.DataFrame(rows)
    safe = safe_epochs(epochs)
    figure_path = out / "fidelity.png"
    plot(epochs, loaded, figure_path, top, eta)
    notes = [f"One row per iso class; retention: the share of the target's best {top:.0%} that survive keeping "
             f"the signal's best 1/{eta} (successive halving with eta={eta}); a cut is safe from retention >= {SAFE}. "
             f"Cross-table rows compare the first table, `{label(loaded[0])}`, with each other one."]
    return Report(NAME, QUESTION, out, loaded, {"fidelity": epochs, "safe_epochs": safe}, [figure_path],
                  answer(safe, top, eta), notes=notes, shown=("safe_epochs", "fidelity")).write()


def safe_epochs(epochs: pd.DataFrame) -> pd.DataFrame:
    """For every (table, target, comparison): the earliest epoch from which every cut is safe (NaN
    if none), and the numbers after the first and the last epoch."""
    rows = []
    for (table, target, comparison), group in epochs.groupby(["table", "target", "comparison"], sort=False):
        group = group.sort_values("epoch")
        # safe from the earliest epoch after which retention never drops below SAFE again
        unsafe = group["epoch"][~(group["retention"] >= SAFE)]
        safe = group[group["epoch"] > (unsafe.max() if len(unsafe) else 0)]
        first, last = group.iloc[0], group.iloc[-1]
        rows.append({"table": table, "target": target, "comparison": comparison, "signal": last["signal"],
                     "epochs": int(last["epoch"]), "n": int(last["n"]),
                     "first_safe_epoch": int(safe["epoch"].iloc[0]) if len(safe) else np.nan,
                     "spearman_epoch1": first["spearman"], "spearman_last": last["spearman"],
                     "retention_epoch1": first["retention"], "retention_last": last["retention"]})
    return pd.DataFrame(rows)


def answer(safe: pd.DataFrame, top: float, eta: int) -> str:
    sentences = []
    for row in safe.itertuples():
        if row.comparison == "final":
            sentences.append(f"The final test rankings of `{row.table}` and `{row.target}` agree with Spearman "
                             f"{fmt(row.spearman_last)} over {row.n} classes, and {fmt(row.retention_last * 100)}% of "
                             f"`{row.target}`'s best {top:.0%} are in `{row.table}`'s best 1/{eta}.")
            continue
        where = "its own final test ranking" if row.comparison == "within" else f"`{row.target}`'s final test ranking"
        when = (f"a 1/{eta} cut is safe (retention >= {SAFE}) from epoch {int(row.first_safe_epoch)} of {row.epochs}"
                if np.isfinite(row.first_safe_epoch) else
                f"no epoch of {row.epochs} makes a 1/{eta} cut safe (retention >= {SAFE})")
        sentences.append(f"`{row.table}`'s {row.signal.replace('_metric', '')} ranking predicts {where} with Spearman "
                         f"{fmt(row.spearman_epoch1)} after epoch 1 and {fmt(row.spearman_last)} after epoch "
                         f"{row.epochs} "
                         f"(n={row.n}); {when}.")
    return " ".join(sentences) or "No comparison has 3 classes scored by both sides yet."


def plot(epochs: pd.DataFrame, tables: list, path: Path, top: float, eta: int) -> None:
    """Spearman and retention against the fraction of training done; and, for each higher-fidelity
    table, final test against final test."""
    curves = epochs[epochs["comparison"] != "final"]
    ncols = 2 + len(tables) - 1
    with figure(path, ncols=ncols, size=(4.3, 3.6), title="short against long training") as (_, axes):
        for (table, target), rows in curves.groupby(["table", "target"], sort=False):
            name = table if table == target else f"{table} -> {target}"
            axes[0, 0].plot(rows["epoch_fraction"], rows["spearman"], marker="o", label=name)
            axes[0, 1].plot(rows["epoch_fraction"], rows["retention"], marker="o", label=name)
        axes[0, 0].set(xlabel="epochs trained / protocol epochs", ylabel="Spearman with final test")
        axes[0, 1].axhline(SAFE, color="grey", linestyle="--", linewidth=0.8)
        axes[0, 1].set(xlabel="epochs trained / protocol epochs", ylabel=f"best {top:.0%} kept by a 1/{eta} cut",
                       ylim=(-0.02, 1.02))
        for ax in axes[0, :2]:
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
        low = by_class(tables[0].final("test_metric"), tables[0].class_rows())
        for ax, high_table in zip(axes[0, 2:], tables[1:]):
            high = by_class(high_table.final("test_metric"), high_table.class_rows())
            both = np.isfinite(low) & np.isfinite(high)
            ax.scatter(low[both], high[both], s=8, alpha=0.6)
            ax.set(xlabel=f"{label(tables[0])} final test", ylabel=f"{label(high_table)} final test",
                   title=f"n={both.sum()}")
            ax.grid(alpha=0.3)
