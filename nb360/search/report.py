"""What `nb360 search` writes: trials.csv, regret.png and best.json, from the runner's DataFrame
(one row per query, columns `nb360.search.runner.columns`).

A multi-objective search (its trials carry the `hv_regret` column, after its costs) is scored by
hypervolume regret wherever a single-objective one is scored by the incumbent's regret; best.json
then holds each search's found front, and regret.png a third panel with the fronts against the
table's true one."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np

from nb360.figures import figure
from nb360.search.runner import HV_REGRET, columns
from nb360.stats import difference_ci, mean_ci


def write_outputs(trials, out: str | Path, title: str = "", val_pick: float | None = None,
                  true_front=None) -> dict[str, Path]:
    """Write the three outputs into `out` (created if needed); returns their paths. `val_pick`:
    see `plot_regret`; `true_front`: a multi-objective search's, see `plot_regret`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"trials": out / "trials.csv", "regret": out / "regret.png", "best": out / "best.json"}
    objectives = objectives_of(trials)
    trials.to_csv(paths["trials"], index=False, columns=columns(objectives))
    best = found_fronts(trials) if objectives else best_archs(trials)
    paths["best"].write_text(json.dumps(best, indent=2) + "\n")
    plot_regret(trials, paths["regret"], title, val_pick=val_pick, true_front=true_front)
    return paths


def objectives_of(trials) -> list[str]:
    """The objectives of a multi-objective search's trials (validation error, then its costs), or
    [] for a single-objective one."""
    if HV_REGRET not in trials.columns:
        return []
    return ["val_metric", *trials.columns[list(trials.columns).index("regret") + 1:list(trials.columns).index(HV_REGRET)]]


def score_column(trials) -> str:
    """What a search's trials are scored by: `hv_regret` for a multi-objective search, else `regret`."""
    return HV_REGRET if HV_REGRET in trials.columns else "regret"


def found_front(run, objectives: Sequence[str]):
    """The rows of one search's queries that no other query beats on every observed objective
    (validation error and costs; one row per set of equal values, the first): what the search
    found, as `nb360.search.objectives.FoundFront` kept it during the search."""
    from nb360.table.pareto import nondominated

    columns = ["val", *objectives[1:]]
    scored = run[np.isfinite(run[columns].to_numpy(dtype=float)).all(axis=1)].drop_duplicates(columns)
    if scored.empty:
        return scored
    return scored[nondominated(scored[columns].to_numpy(dtype=float))].sort_values("val", kind="stable")


def found_fronts(trials) -> dict[str, dict[str, dict]]:
    """For each algorithm and seed of a multi-objective search, the front it found (cells with
    their validation and test errors and costs, best validation first) and its final hypervolume
    regret."""
    objectives = objectives_of(trials)
    fronts: dict[str, dict[str, dict]] = {}
    for (algo, seed), run in trials.groupby(["algo", "seed"], sort=False):
        rows = found_front(run, objectives)
        fronts.setdefault(algo, {})[str(seed)] = {
            "hv_regret": float(run[HV_REGRET].iloc[-1]),
            "front": [{"arch": r["arch"], "index": int(r["index"]), "trial": int(r["trial"]), "val": float(r["val"]),
                       "test": float(r["test"]), **{c: float(r[c]) for c in objectives[1:]}}
                      for r in rows.to_dict("records")],
        }
    return fronts


def summary_lines(trials) -> list[str]:
    """Per algorithm: the final test regret's (hypervolume regret's, for a multi-objective search)
    mean with its 95% interval over seeds, and the
    difference to random search (when it ran) with its 95% Welch interval and the one-sided p-value
    that the algorithm's mean is lower; then the mean simulated hours of a search."""
    column = score_column(trials)
    final = trials.groupby(["algo", "seed"], sort=False).last().groupby("algo", sort=False)
    rs = final.get_group("rs")[column].to_numpy() if "rs" in final.groups else None
    name = "mean HV regret ± 95%" if column == HV_REGRET else "mean regret ± 95%"
    lines = [f"{'algo':<10} {'seeds':>5} {name:>22} {'vs rs ± 95% (p lower)':>32} {'sim hours':>9}"]
    for algo, rows in final:
        regret = rows[column].to_numpy()
        m = mean_ci(regret)
        versus = ""
        if rs is not None and algo != "rs":
            d = difference_ci(regret, rs)
            versus = f"{d['diff']:+.5f} ± {d['ci95']:.5f} (p {d['p_less']:.2g})"
        lines.append(f"{algo:<10} {len(regret):>5} {m['mean']:>11.5f} ± {m['ci95']:<8.5f} {versus:>32} "
                     f"{rows['sim_seconds'].mean() / 3600:>9.2f}")
    return lines


def validation_pick_regret(benchmark) -> float:
    """The test regret of the table's best cell by final validation score (mean over its runs).

    Searches select by validation, so one that finds that cell keeps it: this, not zero, is the
    regret a better optimizer converges to, and the gap between it and random search's regret is
    all that any algorithm can gain on the table (on a table with noisy validation scores it is
    small)."""
    return benchmark.regret(benchmark.best("val_metric")[0])


def best_archs(trials) -> dict[str, dict[str, dict | None]]:
    """For each algorithm and seed, the incumbent at the end of the search: the arch with the
    lowest validation score (the first such query), with its scores; None if nothing scored."""
    best: dict[str, dict[str, dict | None]] = {}
    for (algo, seed), run in trials.groupby(["algo", "seed"], sort=False):
        scored = run[np.isfinite(run["val"].to_numpy())]
        if scored.empty:
            best.setdefault(algo, {})[str(seed)] = None
            continue
        row = scored.loc[scored["val"].idxmin()]
        best.setdefault(algo, {})[str(seed)] = {
            "arch": row["arch"], "index": int(row["index"]), "trial": int(row["trial"]), "epochs": int(row["epochs"]),
            "val": float(row["val"]), "test": float(row["test"]), "regret": float(run["regret"].iloc[-1]),
        }
    return best


def regret_curves(trials, algo: str, x: str, grid: np.ndarray) -> np.ndarray:
    """(seeds, len(grid)) the incumbent's regret (hypervolume regret for a multi-objective search)
    of each seed's search after `x` (trial or sim_seconds) reached each grid value; NaN before the
    first scored query and after the end of the longest search."""
    curves, column = [], score_column(trials)
    for _, run in trials[trials["algo"] == algo].groupby("seed", sort=True):
        xs, regret = run[x].to_numpy(dtype=float), run[column].to_numpy(dtype=float)
        last = np.searchsorted(xs, grid, side="right") - 1  # the last query at or before each grid point
        curves.append(np.where(last >= 0, regret[np.maximum(last, 0)], np.nan))
    curves = np.array(curves)
    # past the longest of these searches there is nothing to show (a search that ended earlier
    # keeps its final incumbent until then)
    curves[:, grid > trials.loc[trials["algo"] == algo, x].max()] = np.nan
    return curves


def regret_at(trials, queries: Sequence[int], baseline: str | None = "rs"):
    """Each algorithm's regret (`score_column`) after each number of `queries` over its seeds: mean with its 95%
    t interval, median, rank among the algorithms at that budget (1 = lowest mean), and against
    `baseline` (if it ran): the difference of means with its 95% Welch interval and the one-sided
    p-value that the algorithm's mean is lower. Seeds whose search met no scored cell by then (a
    partial table) are left out (`n` counts the rest). One row per (algo, queries)."""
    import pandas as pd

    grid = np.asarray(queries, dtype=float)
    regrets = {algo: regret_curves(trials, algo, "trial", grid) for algo in trials["algo"].unique()}
    rows = []
    for algo, curves in regrets.items():
        for j, q in enumerate(queries):
            summary = mean_ci(curves[:, j])
            row = {"algo": algo, "queries": int(q), "n": summary["n"], "mean": summary["mean"],
                   "ci95": summary["ci95"], "median": float(np.nanmedian(curves[:, j])) if summary["n"] else np.nan}
            if baseline in regrets:
                versus = difference_ci(curves[:, j], regrets[baseline][:, j])
                row.update({"diff_vs_" + baseline: versus["diff"], "diff_ci95": versus["ci95"],
                            "p_lower": versus["p_less"]})
            rows.append(row)
    frame = pd.DataFrame(rows)
    frame["rank"] = frame.groupby("queries")["mean"].rank(method="min")
    return frame.sort_values(["queries", "rank"], kind="stable").reset_index(drop=True)


def plot_regret(trials, path: str | Path, title: str = "", val_pick: float | None = None, true_front=None) -> None:
    """Median and inter-quartile band of regret against queries and against simulated time,
    one line per algorithm. The regret axis is logarithmic above `regret_axis`'s threshold and
    linear from 0 to it (a search that found the best cell sits at 0): the algorithms differ by
    factors, late in a search, not by offsets. Regret is never negative, so the axis starts at 0.
    `val_pick` (`validation_pick_regret` of the table) is drawn as a dashed line. The legend sits
    below the panels, off the curves.

    A multi-objective search plots hypervolume regret, and with `true_front` (the table's front,
    `Benchmark.pareto` on the reported objectives) a third panel: error against the first cost,
    the true front and, per algorithm, the front found by its median seed (by final hypervolume
    regret), scored on test."""
    grids = {"trial": np.arange(1, int(trials["trial"].max()) + 1),
             "sim_seconds": np.linspace(0.0, float(trials["sim_seconds"].max()), 300)}
    objectives = objectives_of(trials)
    panels = 3 if objectives and true_front is not None else 2
    ylabel = "hypervolume regret of the found front" if objectives else "test regret of the incumbent"
    with figure(Path(path), ncols=panels, size=(5.5, 4.0),
                title=title or "regret: median and inter-quartile range over seeds") as (fig, axes):
        for ax, (x, grid) in zip(axes[0], grids.items()):
            for algo in trials["algo"].unique():
                curves = regret_curves(trials, algo, x, grid)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns before any score
                    q25, median, q75 = np.nanpercentile(curves, [25, 50, 75], axis=0)
                line, = ax.plot(grid, median, label=f"{algo} ({len(curves)} seeds)")
                ax.fill_between(grid, q25, q75, color=line.get_color(), alpha=0.2, linewidth=0)
            if val_pick is not None:
                ax.axhline(val_pick, color="0.3", linestyle="--", linewidth=1, label="best cell by validation")
            threshold = regret_axis(trials[score_column(trials)].to_numpy(dtype=np.float64))
            if threshold is not None:
                ax.set_yscale("symlog", linthresh=threshold, linscale=0.4)
            ax.set_ylim(bottom=0)
            ax.set_xlabel("queries" if x == "trial" else "simulated training time (s)")
            ax.set_ylabel(ylabel)
            ax.grid(alpha=0.3)
        if panels == 3:
            _plot_fronts(axes[0, 2], trials, objectives, true_front)
        handles, labels = axes[0, 0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncol=min(len(labels), 4), frameon=False)


def regret_axis(regret: np.ndarray) -> float | None:
    """The linear-to-log threshold of a regret axis: the power of ten at or below the 5th percentile
    of the positive regrets (None if there are none). Below it the axis is linear down to 0; taking
    a low percentile rather than the smallest value keeps a single tiny regret from squeezing every
    decade above it, and 0 and the threshold's tick labels apart."""
    positive = regret[np.isfinite(regret) & (regret > 0)]
    if not positive.size:
        return None
    return float(10.0 ** np.floor(np.log10(np.percentile(positive, 5))))


def _plot_fronts(ax, trials, objectives: Sequence[str], true_front) -> None:
    """Test error against the first cost: the table's true front, and each algorithm's front found
    by its median seed (by final hypervolume regret)."""
    cost = objectives[1]
    true_front = true_front.sort_values(cost, kind="stable")  # a staircase from the cheapest cell
    ax.step(true_front[cost], true_front["test_metric"], where="post", color="black", linewidth=1.2,
            label=f"true front ({len(true_front)} classes)")
    for algo, runs in trials.groupby("algo", sort=False):
        final = runs.groupby("seed")[HV_REGRET].last().sort_values(kind="stable")
        seed = final.index[(len(final) - 1) // 2]
        front = found_front(runs[runs["seed"] == seed], objectives)
        ax.scatter(front[cost], front["test"], s=14, alpha=0.8, label=f"{algo}: median seed's front")
    ax.set_xscale("log")
    ax.legend(fontsize="small", frameon=False)
    ax.set_xlabel(cost + " (log scale)")
    ax.set_ylabel("test error")
    ax.grid(alpha=0.3)
