"""What the `nb360 w2s` commands write: report.json and report.png for runs on a task, and the
CSV + PNG pairs of the synthetic and the pattern-source experiments. Means come with 95% confidence intervals over seeds
(Student's t; NaN with fewer than two seeds)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

from nb360.figures import figure
from nb360.stats import mean_ci

ROLES = ("weak", "w2s", "ceiling")
DENSITY_COLUMNS = ("density", "seed", "weak_acc", "w2s_acc", "ceiling_acc", "pgr")
DETECTION_COLUMNS = ("density", "seed", "overlap_precision", "overlap_recall", "overlap_f1", "labels_acc")


def summarize(reports: Sequence[dict]) -> dict:
    """Test errors of the three roles and PGR over the runs (one per seed)."""
    return {key: mean_ci([r[key] for r in reports]) for key in (*ROLES, "pgr")}


def write_report(out: str | Path, reports: Sequence[dict], extra: dict | None = None) -> dict[str, Path]:
    """report.json (every run, the summary, `extra`) and report.png (bars: mean test error of weak,
    w2s and ceiling; points: the seeds) in `out`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary = summarize(reports)
    first = reports[0]
    document = {"task": first["task"], "metric": first["metric"], "teacher": first["teacher"],
                "student": first["student"], "seeds": [r["seed"] for r in reports], "summary": summary,
                **(extra or {}), "runs": list(reports)}
    paths = {"json": out / "report.json", "png": out / "report.png"}
    paths["json"].write_text(json.dumps(document, indent=2) + "\n")
    p = summary["pgr"]
    with figure(paths["png"], size=(5, 4), title=f"{first['task']}: PGR {p['mean']:.2f} ± {p['ci95']:.2f} "
                f"({len(reports)} seeds)") as (_, axes):
        ax = axes[0, 0]
        _bars_with_points(ax, [summary[role]["values"] for role in ROLES],
                          ["weak teacher", "weak-to-strong", "strong ceiling"])
        ax.set_ylabel(f"test {first['metric']} (lower is better)")
    return paths


def write_synthetic(out: str | Path, sweep, selection) -> dict[str, Path]:
    """density.csv/png (accuracies and PGR against overlap density), detection.csv/png (overlap
    precision, recall, F1 against density) and selection.csv/png (overlap density bought by each
    source-selection policy), from `nb360.w2s.synthetic.density_sweep` and `source_selection`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {name: out / f"{name}.csv" for name in ("density", "detection", "selection")}
    sweep.to_csv(paths["density"], columns=list(DENSITY_COLUMNS), index=False)
    sweep.to_csv(paths["detection"], columns=list(DETECTION_COLUMNS), index=False)
    selection.to_csv(paths["selection"], index=False)
    by_density = sweep.groupby("density")
    with figure(out / "density.png", ncols=2, size=(5, 4)) as (_, axes):
        acc, gain = axes[0]
        for name in ("weak", "w2s", "ceiling"):
            _line(acc, by_density[f"{name}_acc"], name)
        _line(gain, by_density["pgr"], "PGR")
        acc.set(xlabel="overlap density", ylabel="test accuracy", title="accuracy against overlap density")
        gain.set(xlabel="overlap density", ylabel="performance gap recovered", title="PGR against overlap density")
    with figure(out / "detection.png", size=(5, 4)) as (_, axes):
        ax = axes[0, 0]
        for name in ("precision", "recall", "f1"):
            _line(ax, by_density[f"overlap_{name}"], name)
        ax.set(xlabel="overlap density", ylabel="overlap detection", ylim=(0, 1.05), title="detected overlap points")
    with figure(out / "selection.png", size=(5, 4)) as (_, axes):
        policies = list(dict.fromkeys(selection["policy"]))
        _bars_with_points(axes[0, 0], [selection.loc[selection["policy"] == policy, "true_density"].to_numpy()
                                       for policy in policies], policies)
        axes[0, 0].set(ylabel="true overlap density of the points bought", title="source selection")
    paths.update({f"{name}_png": out / f"{name}.png" for name in ("density", "detection", "selection")})
    return paths


def write_sources(out: str | Path, sources, selection) -> dict[str, Path]:
    """sources.csv (one row per seed and source, `nb360.w2s.sources.run_sources`), selection.csv (per
    seed and policy; single-label tasks) and sources.png: PGR against the source's overlap density,
    and for single-label tasks the detected overlap density against the true one."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"sources": out / "sources.csv", "png": out / "sources.png"}
    sources.to_csv(paths["sources"], index=False)
    if len(selection):
        paths["selection"] = out / "selection.csv"
        selection.to_csv(paths["selection"], index=False)
    detected = "detected_overlap_student" in sources
    by_density = sources.groupby("density")
    with figure(paths["png"], ncols=2 if detected else 1, size=(5, 4)) as (_, axes):
        _line(axes[0, 0], by_density["pgr"], "PGR")
        axes[0, 0].axhline(0, color="0.3", linewidth=1)
        axes[0, 0].set(xlabel="overlap density of the source", ylabel="PGR (test, equal thirds of the kinds)",
                       title="PGR against overlap density")
        if detected:
            for name in ("student", "inputs"):
                _line(axes[0, 1], by_density[f"detected_overlap_{name}"], f"detected ({name})")
            axes[0, 1].plot([0, 1], [0, 1], color="0.5", linestyle=":", label="true")
            axes[0, 1].legend()
            axes[0, 1].set(xlabel="overlap density of the source", ylabel="detected overlap density",
                           title="overlap detection")
    return paths


def _line(ax, grouped, label: str) -> None:
    """Mean over seeds with a 95% interval band, legend and grid."""
    x, stats = zip(*((key, mean_ci(list(values))) for key, values in grouped))
    mean = np.array([s["mean"] for s in stats])
    half = np.nan_to_num(np.array([s["ci95"] for s in stats]))
    line, = ax.plot(x, mean, marker="o", label=label)
    ax.fill_between(x, mean - half, mean + half, color=line.get_color(), alpha=0.2, linewidth=0)
    ax.legend()
    ax.grid(alpha=0.3)


def _bars_with_points(ax, groups: Sequence[Sequence[float]], labels: Sequence[str]) -> None:
    """One bar per group at its mean, with the group's values (the seeds) as points over it."""
    for i, values in enumerate(groups):
        values = np.asarray(values, dtype=float)
        ax.bar(i, values.mean(), color=f"C{i}", alpha=0.6)
        ax.scatter(np.full(len(values), i) + np.linspace(-0.15, 0.15, len(values)), values, color="k", s=12, zorder=3)
    ax.set_xticks(range(len(labels)), labels)
