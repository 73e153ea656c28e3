"""One-shot searches for several methods and seeds, written as they finish: what `nb360 oneshot`
runs and writes.

Each (method, seed) is one `search_oneshot` run. Its row goes to `oneshot.csv` and its per-epoch
records to `epochs.csv` the moment it finishes, and its alphas to `alphas.npz`, so an interrupted
call loses at most the run in progress: the same call again skips the (method, seed) pairs already
in `oneshot.csv` with the same settings (a row with other settings is an error, not mixed in).

Against a table, the cell derived after every epoch is looked up too (`table_regret` in
`epochs.csv`), which shows how the derived cell's quality moves as the supernet trains; a
figure, `oneshot.png`, draws that per method and seed next to the supernet's validation score, and
`alphas.png` the operation probabilities (softmax of alpha) of each edge over the epochs of each
method's first seed.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from nb360.data.task import Task
from nb360.figures import figure
from nb360.search.oneshot import search_oneshot
from nb360.spaces.nb201 import EDGES, NUM_EDGES, OPS
from nb360.table.benchmark import Benchmark
from nb360.train import REVISION as TRAIN_REVISION

ROW_COLUMNS = ("method", "seed", "epochs", "order", "settings", "arch", "index", "source", "val", "test", "regret",
               "search_seconds")
FILES = {"runs": "oneshot.csv", "epochs": "epochs.csv", "alphas": "alphas.npz", "figure": "oneshot.png",
         "alphas_figure": "alphas.png"}


def run_oneshot_many(task: Task, methods: Sequence[str], seeds: Sequence[int], out: str | Path, epochs: int,
                     C: int, N: int, batch_size: int | None = None, table: Benchmark | None = None,
                     train_epochs: int | None = None, order: int = 1, device: str | None = None,
                     progress: bool = True) -> pd.DataFrame:
    """Every method with every seed (`search_oneshot` with these settings) into `out`; returns
    the rows of `oneshot.csv`, old and new. `table` scores derived cells by lookup; without it each is
    trained for `train_epochs` (default `epochs`)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    settings = json.dumps({"task": task.name, "C": C, "N": N, "batch_size": batch_size or task.batch_size,
                           "train_epochs": None if table is not None else train_epochs,
                           "table": table.path.name if table is not None else None,
                           "revision": TRAIN_REVISION}, sort_keys=True)
    done = _done(out / FILES["runs"], epochs, order, settings)
    for method in methods:
        for seed in seeds:
            if (method, int(seed)) in done:
                continue
            result = search_oneshot(task, method, epochs=epochs, C=C, N=N, batch_size=batch_size, seed=int(seed),
                                    table=table, device=device, progress=progress, train_epochs=train_epochs,
                                    order=order)
            row = {"method": method, "seed": int(seed), "epochs": epochs, "order": order, "settings": settings,
                   "arch": str(result.arch), "index": result.arch.index, "source": result.source,
                   "val": result.val_metric, "test": result.test_metric, "regret": result.regret,
                   "search_seconds": result.search_seconds}
            records = pd.DataFrame(result.records).assign(method=method, seed=int(seed))
            _append(out / FILES["epochs"], records)
            _save_alphas(out / FILES["alphas"], f"{method}-{seed}", result.alphas)
            _append(out / FILES["runs"], pd.DataFrame([row], columns=list(ROW_COLUMNS)))
    runs, records = pd.read_csv(out / FILES["runs"]), pd.read_csv(out / FILES["epochs"])
    if table is not None:  # runs from an earlier call may predate runs the table has gained since
        runs, records = look_up(runs, records, table)
        runs.to_csv(out / FILES["runs"], index=False)
        records.to_csv(out / FILES["epochs"], index=False)
    plot_oneshot(runs, records, out / FILES["figure"])
    plot_alphas(out / FILES["alphas"], runs, out / FILES["alphas_figure"])
    return runs


def look_up(runs: pd.DataFrame, records: pd.DataFrame, table: Benchmark) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The table's scores of each run's derived cell (val, test, regret) and of the cell derived
    after each epoch (`table_regret`), as the table holds them now (a search depends only on its
    seed and settings, the lookup on the table, which a build may still be filling)."""
    runs, records = runs.copy(), records.copy()
    rows = [table.query(arch) for arch in runs["arch"]]
    runs["val"] = [r["val_metric"] for r in rows]
    runs["test"] = [r["test_metric"] for r in rows]
    runs["regret"] = [table.regret(arch) for arch in runs["arch"]]
    records["table_regret"] = [table.regret(arch) for arch in records["arch"]]
    return runs, records


def _done(path: Path, epochs: int, order: int, settings: str) -> set[tuple[str, int]]:
    """(method, seed) pairs `path` already holds with these settings; other settings are refused."""
    if not path.is_file():
        return set()
    runs = pd.read_csv(path)
    missing = [c for c in ROW_COLUMNS if c not in runs.columns]
    if missing:
        raise ValueError(f"{path}: not a one-shot results file (missing columns {', '.join(missing)})")
    other = runs[(runs["epochs"] != epochs) | (runs["order"] != order) | (runs["settings"] != settings)]
    if len(other):
        row = other.iloc[0]
        raise ValueError(f"{path}: holds runs with other settings (epochs {row['epochs']}, order {row['order']}, "
                         f"{row['settings']}; this call: epochs {epochs}, order {order}, {settings}); "
                         f"write to another --out folder")
    return {(m, int(s)) for m, s in zip(runs["method"], runs["seed"])}


def _append(path: Path, rows: pd.DataFrame) -> None:
    rows.to_csv(path, mode="a", header=not path.is_file(), index=False)


def _save_alphas(path: Path, key: str, alphas: np.ndarray) -> None:
    """Add one run's (epochs + 1, 6, 5) alphas to the archive (rewritten whole: it stays small)."""
    saved = dict(np.load(path)) if path.is_file() else {}
    saved[key] = alphas
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **saved)
    tmp.replace(path)


def summarize(runs: pd.DataFrame) -> pd.DataFrame:
    """Per method: runs, how many derived cells have a test score and its mean, the mean and median
    of the finite regrets (looked-up cells), mean search seconds, and each derived cell with how
    often it was found."""
    rows = []
    for method, group in runs.groupby("method", sort=False):
        regret, test = (group[c].to_numpy(dtype=float) for c in ("regret", "test"))
        finite = regret[np.isfinite(regret)]
        counts = group["arch"].value_counts()
        rows.append({"method": method, "runs": len(group), "scored": int(np.isfinite(test).sum()),
                     "mean_test": np.nanmean(test) if np.isfinite(test).any() else math.nan,
                     "mean_regret": finite.mean() if len(finite) else math.nan,
                     "median_regret": np.median(finite) if len(finite) else math.nan,
                     "search_seconds": group["search_seconds"].mean(),
                     "cells": "; ".join(f"{arch} x{n}" for arch, n in counts.items())})
    return pd.DataFrame(rows)


def plot_oneshot(runs: pd.DataFrame, epochs: pd.DataFrame, path: Path) -> None:
    """Left: the table regret of the cell derived after each epoch (when looked up), one line per
    seed, a colour per method. Right: the supernet's validation score."""
    looked_up = "table_regret" in epochs.columns and epochs["table_regret"].notna().any()
    panels = [("table_regret", "test regret of the derived cell")] if looked_up else []
    panels.append(("val_metric", "supernet validation score"))
    title = f"one-shot search: {', '.join(dict.fromkeys(runs['method']))}, {runs['seed'].nunique()} seeds"
    with figure(path, ncols=len(panels), size=(5.2, 3.8), title=title) as (_, axes):
        for ax, (column, label) in zip(axes[0], panels):
            for i, (method, group) in enumerate(epochs.groupby("method", sort=False)):
                for j, (_, run) in enumerate(group.groupby("seed", sort=True)):
                    ax.plot(run["epoch"], run[column], color=f"C{i}", alpha=0.7, label=method if j == 0 else None)
            ax.set(xlabel="supernet epoch", ylabel=label)
            ax.grid(alpha=0.3)
            ax.legend()


def plot_alphas(alphas_path: Path, runs: pd.DataFrame, path: Path) -> None:
    """Softmax of alpha per edge over the epochs of each method's first seed: a row per method."""
    saved = np.load(alphas_path)
    firsts = [(m, int(g["seed"].min())) for m, g in runs.groupby("method", sort=False)]
    with figure(path, ncols=NUM_EDGES, nrows=len(firsts), size=(2.6, 2.4)) as (_, axes):
        for row, (method, seed) in zip(axes, firsts):
            alphas = saved[f"{method}-{seed}"]
            probs = np.exp(alphas - alphas.max(axis=-1, keepdims=True))
            probs /= probs.sum(axis=-1, keepdims=True)
            for edge, ax in enumerate(row):
                for k, op in enumerate(OPS):
                    ax.plot(probs[:, edge, k], color=f"C{k}", label=op)
                to, frm = EDGES[edge]
                ax.set_title(f"{method} seed {seed}: edge {frm}->{to}", fontsize=8)
                ax.set_xlabel("epoch")
        axes[0][0].set_ylabel("softmax(alpha)")
        axes[0][-1].legend(fontsize=7)
