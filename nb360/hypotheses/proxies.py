"""proxies: do zero-cost proxies work beyond vision?

Zero-cost proxies were proposed and tested on image classification (Abdelfattah et al., ICLR 2021;
Mellor et al., ICML 2021); NAS-Bench-360 asks whether such shortcuts hold on diverse tasks. For
every table and every proxy column it holds (`/proxies/<name>`, written by `nb360 proxies`), plus
the table's params and FLOPs as the trivial baselines, this scores the proxy against the final test
score over the iso classes both have: Spearman and Kendall correlation, the top-10% hit rate (the
fraction of the truly best 10% that the proxy also puts in its best 10%), and the regret of the
cell the proxy ranks best.

Direction: proxies are stored as the literature defines them, higher predicting a better network
(`nb360.proxy_names.PROXY_DIRECTION`); they are turned into the tables' lower-is-better convention
before any comparison, so a positive Spearman means the proxy works. A column unknown to
`PROXY_DIRECTION` is taken as higher-is-better, as the search runner takes it, and marked so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from nb360.hypotheses.common import (TASK_TABLES, TOP, Report, TableLike, agree, by_class, figure, fmt, label,
                                     load_tables, start)
from nb360.proxy_names import PROXY_DIRECTION, to_lower_is_better

NAME = "proxies"
QUESTION = "Do zero-cost proxies work beyond vision?"
DEFAULT_TABLES = TASK_TABLES
BASELINES = ("params", "flops")  # cost columns of every table: "bigger is better" as a proxy
WORKS = 0.5  # the generated answer calls a proxy useful on a table from this Spearman up


def raw_columns(table) -> dict[str, np.ndarray]:
    """Every proxy column of the table, then its params and FLOPs (unless a proxy column of that
    name exists), leaving out columns with no finite value."""
    df = table.df
    columns = {c.removeprefix("proxy_"): df[c].to_numpy(dtype=float) for c in df.columns if c.startswith("proxy_")}
    for name in BASELINES:
        columns.setdefault(name, df[name].to_numpy(dtype=float))
    return {name: values for name, values in columns.items() if np.isfinite(values).any()}


def lower_is_better(name: str, values: np.ndarray) -> tuple[np.ndarray, str]:
    """(values in the tables' convention, as an order: ranks, NaN kept), and the direction used.

    Ranks, because some proxies are -inf by definition (synflow and zen of a cell with no path from
    input to output): as values they would be dropped as non-finite, as ranks they stay the worst,
    which is what they predict. Rank correlations and top-k sets do not change under ranking."""
    if name in PROXY_DIRECTION:
        converted, direction = to_lower_is_better(name, values), PROXY_DIRECTION[name]
    else:
        converted, direction = -np.asarray(values, dtype=float), "max (assumed)"
    return pd.Series(converted).rank(method="average").to_numpy(), direction


def run(out: str | Path, tables: Sequence[TableLike] = DEFAULT_TABLES, top: float = TOP) -> Report:
    out = start(out)
    loaded = load_tables(tables, NAME)
    rows = []
    for table in loaded:
        rows_of_class = table.class_rows()
        test = by_class(table.final("test_metric"), rows_of_class)
        for name, raw in raw_columns(table).items():
            order, direction = lower_is_better(name, raw)
            rows.append({"table": label(table), "proxy": name, "direction": direction, "baseline": name in BASELINES,
                         **agree(by_class(order, rows_of_class), test, top)})
    if not rows:
        raise ValueError(f"{NAME}: none of the tables has a proxy or cost column to score "
                         f"({', '.join(str(t.path) for t in loaded)}); compute proxies with `nb360 proxies --table T`")
    scores = pd.DataFrame(rows)
    figure_path = out / "proxies.png"
    plot(scores, figure_path, top)
    notes = [f"Scores are final test scores against the proxy, one per iso class (n counts classes with both); "
             f"top_overlap is the top-{top:.0%} hit rate (chance: {top:.2g}); a positive Spearman means the proxy "
             f"ranks cells as training does."]
    return Report(NAME, QUESTION, out, loaded, {"proxies": scores}, [figure_path], answer(scores, top),
                  notes=notes).write()


def answer(scores: pd.DataFrame, top: float) -> str:
    sentences = []
    for table, rows in scores.groupby("table", sort=False):
        rows = rows.dropna(subset=["spearman"])
        if rows.empty:
            sentences.append(f"On `{table}` no proxy has 3 classes scored alongside the test score yet.")
            continue
        best = rows.loc[rows["spearman"].idxmax()]
        baseline = rows[rows["baseline"]]["spearman"].max()
        proxies = rows[~rows["baseline"]]
        useful = proxies[proxies["spearman"] >= WORKS]["proxy"].tolist()
        beat = proxies[proxies["spearman"] > baseline]["proxy"].tolist() if np.isfinite(baseline) else []
        sentences.append(
            f"On `{table}` the best-correlated column is {best['proxy']} (Spearman {fmt(best['spearman'])}, "
            f"top-{top:.0%} hit rate {fmt(best['top_overlap'])}, n={best['n']}); the best size baseline reaches "
            f"{fmt(baseline)}; "
            + (f"{len(proxies)} zero-cost proxies were scored, {len(useful)} reach Spearman >= {WORKS} "
               f"({', '.join(useful) or 'none'}) and {len(beat)} beat the size baseline ({', '.join(beat) or 'none'})."
               if len(proxies) else "the table holds no zero-cost proxy columns, only the size baselines."))
    return " ".join(sentences)


def plot(scores: pd.DataFrame, path: Path, top: float) -> None:
    """Spearman and top-k hit rate of every proxy, one bar per table."""
    tables = list(dict.fromkeys(scores["table"]))
    names = list(dict.fromkeys(scores["proxy"]))
    width = 0.8 / len(tables)
    panels = (("spearman", "Spearman"), ("top_overlap", f"top-{top:.0%} hit rate"))
    with figure(path, nrows=2, size=(max(6.0, 0.7 * len(names) + 2), 3.2),
                title="zero-cost proxies against the final test score") as (_, axes):
        for ax, (column, ylabel) in zip(axes[:, 0], panels):
            for k, table in enumerate(tables):
                rows = scores[scores["table"] == table].set_index("proxy").reindex(names)
                ax.bar(np.arange(len(names)) + (k - (len(tables) - 1) / 2) * width, rows[column].to_numpy(dtype=float),
                       width, label=table)
            ax.axhline(top if column == "top_overlap" else 0.0, color="grey", linewidth=0.8, linestyle="--")
            ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
            ax.set_ylabel(ylabel)
            ax.grid(axis="y", alpha=0.3)
        axes[0, 0].legend(fontsize=8)
