"""Throughput of `nb360.table.build.precompute` with 1 and 2 Ray workers on a tiny Darcy protocol.

Each worker count builds the same table (the first `--classes` iso classes of the fixed selection,
one seed) twice:
  cold: precompute starts and stops its own local Ray instance (what one command costs);
  warm: Ray and its workers are already up and hold the data (the rate of a long build).
Reported per hour: iso-class trainings, and architectures covered (every member of a class gets
its representative's run). Each figure is the fastest of `--repeats` builds: on a shared machine
the slower ones measure the neighbours.

    python scripts/bench/table_build.py [--classes 24] [--resolution 17] [--samples 64] [--workers 1,2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import ray

from nb360.data import darcy
from nb360.table.build import precompute


def build(out: Path, data_root: Path, args: argparse.Namespace, classes: int, **ray_options) -> dict:
    return precompute("darcyflow", out, epochs=args.epochs, seeds=[0], archs=classes, C=args.C, N=args.N,
                      batch_size=args.batch_size, resolution=args.resolution, data_root=data_root,
                      progress=False, **ray_options)


def fastest(run, repeats: int) -> tuple[dict, float]:
    """(summary, seconds) of the fastest of `repeats` calls of run(r), r the repeat's number."""
    results = []
    for r in range(repeats):
        start = time.perf_counter()
        summary = run(r)
        results.append((summary, time.perf_counter() - start))
    return min(results, key=lambda result: result[1])


def row(workers: int, mode: str, summary: dict, seconds: float) -> str:
    per_hour = 3600 / seconds
    return (f"{workers:>7} {mode:<5} {summary['done']:>9} {summary['archs']:>6} {seconds:>9.1f} "
            f"{summary['done'] * per_hour:>17.0f} {summary['archs'] * per_hour:>14.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", type=int, default=24)
    parser.add_argument("--resolution", type=int, default=17)
    parser.add_argument("--samples", type=int, default=64, help="Darcy samples per file")
    parser.add_argument("--C", type=int, default=4)
    parser.add_argument("--N", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        darcy.generate(root, n=args.samples, resolution=args.resolution, solver_resolution=2 * args.resolution - 1,
                       progress=False)
        print(f"darcyflow {args.resolution}x{args.resolution}, {args.samples} samples, C={args.C} N={args.N}, "
              f"{args.epochs} epochs, batch {args.batch_size}, {args.classes} iso classes, 1 seed")
        print(f"{'workers':>7} {'mode':<5} {'trainings':>9} {'archs':>6} {'seconds':>9} "
              f"{'trainings/hour':>17} {'archs/hour':>14}")
        for workers in (int(w) for w in args.workers.split(",")):
            cold = fastest(lambda r: build(root / f"cold-{workers}-{r}.h5", root, args, args.classes,
                                           num_cpus=workers), args.repeats)
            print(row(workers, "cold", *cold), flush=True)

            ray.init(num_cpus=workers, include_dashboard=False)
            try:
                build(root / f"warmup-{workers}.h5", root, args, 2 * workers)  # start workers, load the data
                warm = fastest(lambda r: build(root / f"warm-{workers}-{r}.h5", root, args, args.classes),
                               args.repeats)
                print(row(workers, "warm", *warm), flush=True)
            finally:
                ray.shutdown()


if __name__ == "__main__":
    main()
