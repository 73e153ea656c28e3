"""How fast is the Darcy flow generator? Solver time per sample, and generate() throughput.

    python scripts/bench/darcy_generate.py --samples 3 --workers 2

Prints, for each grid size s, the median seconds per sample (assembly + solve of one thresholded
Gaussian random field) of the three solvers of ``nb360.data.darcy.solve`` and the speed-ups over
scipy's sparse LU; then the wall time of ``generate`` (421 -> 85, both files) with one worker and
with ``--workers``. Runs in about a minute on two cores with the defaults.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import numpy as np

from nb360.data import darcy


def seconds_per_solve(s: int, solver: str, samples: int) -> float:
    """Median over ``samples`` different coefficient fields (the same fields for every solver)."""
    times = []
    for seed in range(samples):
        coeff = darcy.threshold(darcy.gaussian_random_field(s, np.random.default_rng(seed)))
        start = time.perf_counter()
        darcy.solve(coeff, solver)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def solver_table(sizes: list[int], samples: int) -> None:
    darcy.solve(np.ones((9, 9)), "amg")  # import pyamg and warm caches outside the timings
    print(f"seconds per sample, median of {samples} (assembly + solve, s x s nodes)")
    print(f"{'s':>5} {'direct':>9} {'amg':>9} {'spectral':>9} {'direct/amg':>11} {'direct/spectral':>16}")
    for s in sizes:
        direct, amg, spectral = (seconds_per_solve(s, solver, samples) for solver in ("direct", "amg", "spectral"))
        print(f"{s:>5} {direct:>9.3f} {amg:>9.3f} {spectral:>9.3f} {direct / amg:>10.1f}x {direct / spectral:>15.1f}x")


def generate_seconds(n: int, workers: int, solver_resolution: int, resolution: int) -> float:
    """Wall time of generate() writing both files of n samples into a fresh directory."""
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        darcy.generate(out, n, resolution, solver_resolution, workers=workers, progress=False)
        return time.perf_counter() - start


def generate_table(n: int, workers: int, solver_resolution: int, resolution: int) -> None:
    print(f"\ngenerate(): {solver_resolution} -> {resolution}, 2 files x {n} samples, default solver")
    print(f"{'workers':>7} {'wall s':>8} {'s/sample':>9} {'samples/s':>10} {'speed-up':>9}")
    serial = generate_seconds(n, 1, solver_resolution, resolution)
    for count in sorted({1, workers}):
        wall = serial if count == 1 else generate_seconds(n, count, solver_resolution, resolution)
        print(f"{count:>7} {wall:>8.2f} {wall / (2 * n):>9.3f} {2 * n / wall:>10.2f} {serial / wall:>8.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=3, help="coefficient fields timed per solver and size")
    parser.add_argument("--sizes", type=int, nargs="+", default=[85, 141, 421], help="grid sizes s")
    parser.add_argument("--workers", type=int, default=2, help="processes for the generate() row")
    parser.add_argument("--gen-samples", type=int, default=8, help="samples per file in the generate() rows")
    parser.add_argument("--solver-resolution", type=int, default=darcy.PUBLISHED_RESOLUTION)
    parser.add_argument("--resolution", type=int, default=85)
    args = parser.parse_args()
    solver_table(args.sizes, args.samples)
    generate_table(args.gen_samples, args.workers, args.solver_resolution, args.resolution)


if __name__ == "__main__":
    main()
