"""Runs per hour of `nb360 precompute` as the working tree has it against a baseline revision, side by side.

Every arm builds the same table (the first `--classes` iso classes of the fixed selection, seed 0, on
the same Darcy data) in a process of its own, with its own local Ray instance of `--workers` CPUs,
warmed up first (workers started, data loaded: the rate of a long build, not of Ray's start). The arms:
  baseline   the builder of revision `--baseline` (a `git archive` of it, imported instead of this tree);
  now        this tree's builder, every epoch tested (the baseline's protocol);
  now, K     this tree's builder with `--test-every K` (the test split scored every K epochs and after
             the last; validation, final scores and table size unchanged).
The arms take turns `--repeats` times, so a neighbour's load falls on all of them, and each reports its
fastest build. A change that alters numerics must not alter what the table says beyond seed noise:
the last lines compare the final test scores of the baseline's table and this tree's (Spearman over
classes, largest difference); for scale, the seed-to-seed Spearman of the Darcy protocol is in
docs/tables.md.

    python scripts/bench/table_build.py [--baseline 088fc62] [--classes 24] [--epochs 10] [--test-every 5]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from nb360.data import darcy
from nb360.table.benchmark import Benchmark

REPO = Path(__file__).resolve().parents[2]

# Run in each arm's own process, with that arm's nb360 first on the path; prints one JSON line.
ARM = r"""
import json, sys, time
import ray
import nb360
from nb360.table.build import precompute

a = json.loads(sys.argv[1])
ray.init(num_cpus=a["workers"], include_dashboard=False, log_to_driver=False)
common = dict(epochs=a["epochs"], seeds=[0], C=a["C"], N=a["N"], batch_size=a["batch_size"],
              resolution=a["resolution"], test_size=a["test_size"], data_root=a["data_root"], progress=False,
              **({"test_every": a["test_every"]} if a["test_every"] > 1 else {}))
precompute("darcyflow", a["out"] + ".warmup.h5", archs=2 * a["workers"], **common)
start = time.perf_counter()
summary = precompute("darcyflow", a["out"], archs=a["classes"], **common)
print(json.dumps({"seconds": time.perf_counter() - start, "done": summary["done"], "nb360": nb360.__file__}))
"""


def baseline_tree(revision: str, into: Path) -> Path:
    """The package and cards of `revision`, unpacked under `into`."""
    archive = subprocess.run(["git", "-C", str(REPO), "archive", revision, "nb360", "tasks", "search_spaces"],
                             check=True, capture_output=True).stdout
    into.mkdir()
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def run_arm(source: Path, settings: dict) -> dict:
    env = {**os.environ, "PYTHONPATH": str(source)}
    done = subprocess.run([sys.executable, "-c", ARM, json.dumps(settings)], cwd=source, env=env, check=True,
                          capture_output=True, text=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if not result["nb360"].startswith(str(source)):
        raise RuntimeError(f"the arm imported {result['nb360']}, not the nb360 under {source}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="088fc62", help="the revision to compare with (default: 088fc62, "
                                                               "the builder before AvgPool3 and --test-every)")
    parser.add_argument("--classes", type=int, default=24)
    parser.add_argument("--resolution", type=int, default=15)
    parser.add_argument("--samples", type=int, default=300, help="Darcy samples per file")
    parser.add_argument("--test-size", type=int, default=300)
    parser.add_argument("--C", type=int, default=4)
    parser.add_argument("--N", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--test-every", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        darcy.generate(root / "data", n=args.samples, resolution=args.resolution,
                       solver_resolution=2 * args.resolution - 1, progress=False)
        arms = {"baseline": (baseline_tree(args.baseline, root / "baseline"), 1), "now": (REPO, 1),
                f"now, {args.test_every}": (REPO, args.test_every)}
        print(f"darcyflow {args.resolution}x{args.resolution}, {args.samples} samples per file, test {args.test_size}, "
              f"C={args.C} N={args.N}, {args.epochs} epochs, batch {args.batch_size}, {args.classes} iso classes, "
              f"seed 0, {args.workers} workers; baseline {args.baseline}; fastest of {args.repeats}")
        best: dict[str, dict] = {}
        for repeat in range(args.repeats):
            for name, (source, test_every) in arms.items():
                out = root / f"{name.replace(', ', '-')}-{repeat}.h5"
                settings = {"workers": args.workers, "epochs": args.epochs, "C": args.C, "N": args.N,
                            "batch_size": args.batch_size, "resolution": args.resolution,
                            "test_size": args.test_size, "data_root": str(root / "data"), "test_every": test_every,
                            "classes": args.classes, "out": str(out)}
                result = {**run_arm(source, settings), "table": out}
                if name not in best or result["seconds"] < best[name]["seconds"]:
                    best[name] = result
        print(f"{'builder':<12} {'runs':>5} {'seconds':>8} {'runs/hour':>10} {'vs baseline':>12}")
        base_rate = best["baseline"]["done"] / best["baseline"]["seconds"]
        for name, result in best.items():
            rate = result["done"] / result["seconds"]
            print(f"{name:<12} {result['done']:>5} {result['seconds']:>8.1f} {3600 * rate:>10.0f} "
                  f"{rate / base_rate:>11.2f}x")
        tables = {name: Benchmark(result["table"]) for name, result in best.items()}
        rows = tables["baseline"].class_rows()
        rows = rows[rows >= 0]  # one row per trained class
        scores = {name: table.final("test_metric")[rows] for name, table in tables.items()}
        for name in list(arms)[1:]:
            rho = spearmanr(scores["baseline"], scores[name]).statistic
            gap = np.abs(scores["baseline"] - scores[name])
            print(f"final test, {name} against baseline: Spearman {rho:.3f} over {len(rows)} classes, "
                  f"largest difference {gap.max():.2e}, median {np.median(gap):.2e}")


if __name__ == "__main__":
    main()
