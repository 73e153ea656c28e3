"""How fast is an nb360 table against NATS-Bench's own API, on the same numbers?

    python scripts/bench/table_query.py --epochs 12 --seeds 2 --queries 10000

Writes all 15,625 archs with synthetic numbers in NATS-Bench's format (the benchmark file and the
fast-mode archive, tests/table/nats_fixture.py), imports the file into an nb360 table, then measures
each contender in a fresh process: load time (`nats_bench.create(..., 'tss', fast_mode, verbose=False)`
vs `Benchmark.load`), the time of `--queries` random queries of the final test score
(`get_more_info(i, dataset, hp=hp, is_random=False)` vs `Benchmark.query(i)`, both the mean over
seeds), peak resident memory above the process's footprint before loading, and, for nb360, the
time to build `Benchmark.df`; and NATS-Bench's own calls on nb360's NATS-Bench API over the table
(`nb360.compat.nats`), against NATS-Bench's. Needs `pip install nats_bench`. About three minutes
on two cores.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "table"))  # the NATS-format writer shared with the tests

from nats_fixture import synthetic_nats, write_nats_archive, write_nats_file

from nb360.spaces.nb201 import NUM_ARCHS
from nb360.table.nats import import_nats

CONTENDERS = {
    "nats-file": "NATS-Bench fast_mode=False",
    "nats-archive": "NATS-Bench fast_mode=True",
    "nb360": "nb360 Benchmark",
    "nb360-nats": "nb360 NATS-Bench API",
}


def _status_mb(field: str) -> float:
    """A memory field of /proc/self/status (Linux) in MB: VmRSS now, VmHWM the peak. VmHWM belongs
    to this process's address space, unlike ru_maxrss, which keeps the parent's peak across exec."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def measure(kind: str, path: str, dataset: str, hp: str, queries: int, seed: int) -> dict:
    """Runs in a fresh process: load, then `queries` random final-test-score queries."""
    indices = [int(i) for i in np.random.default_rng(seed).integers(NUM_ARCHS, size=queries)]
    if kind == "nb360":
        import pandas  # noqa: F401  (imported before timing: b.df measures building the frame)

        from nb360.table.benchmark import Benchmark

        def load():
            return Benchmark.load(path)

        def score(b, i):
            return b.query(i)["test_metric"]
    else:  # NATS-Bench's calls, on NATS-Bench's API or on nb360's over the imported table
        if kind == "nb360-nats":
            from nb360.compat.nats import create

            def load():
                return create(path, "tss")
        else:
            import nats_bench

            def load():
                return nats_bench.create(path, "tss", fast_mode=kind == "nats-archive", verbose=False)

        def score(api, i):
            return (100.0 - api.get_more_info(i, dataset, hp=hp, is_random=False)["test-accuracy"]) / 100.0

    before = _status_mb("VmRSS")
    start = time.perf_counter()
    bench = load()
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    total = sum(score(bench, i) for i in indices)
    query_s = time.perf_counter() - start
    result = {"load_s": load_s, "query_s": query_s, "checksum": total,
              "peak_mb": _status_mb("VmHWM") - before}
    if kind == "nb360":
        start = time.perf_counter()
        rows = len(bench.df)
        result.update(df_s=time.perf_counter() - start, df_rows=rows)
    return result


def run_contender(kind: str, path: Path, args: argparse.Namespace) -> dict:
    command = [sys.executable, __file__, "--measure", kind, str(path), "--dataset", args.dataset,
               "--epochs", str(args.epochs), "--queries", str(args.queries), "--query-seed", str(args.query_seed)]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def write_sources(workdir: Path, args: argparse.Namespace) -> tuple[Path, Path, Path, float]:
    """The NATS benchmark file, its archive and the imported table; the import's seconds."""
    hp = str(args.epochs)
    print(f"writing {NUM_ARCHS} archs x {args.seeds} seeds x {args.epochs} epochs ({args.dataset}) in NATS format ...")
    data = synthetic_nats(range(NUM_ARCHS), (args.dataset,), seeds=tuple(777 + 111 * k for k in range(args.seeds)),
                          epochs=args.epochs, hp=hp)
    file = write_nats_file(data, workdir / "NATS-tss-v1_0-synth.pickle.pbz2")
    archive = write_nats_archive(data, workdir / "NATS-tss-v1_0-synth-simple")
    del data
    start = time.perf_counter()
    table = import_nats(file, args.dataset, workdir / "table.h5", hp=hp, overwrite=True, progress=False)
    return file, archive, table, time.perf_counter() - start


def report(results: dict[str, dict], import_s: float, table: Path, args: argparse.Namespace) -> None:
    nb = results["nb360"]
    print(f"\nimport_nats (file -> table): {import_s:.1f} s; table {table.stat().st_size / 2**20:.1f} MB")
    print(f"{args.queries} queries of the final test score (mean over seeds); load and queries in a fresh process\n")
    # Benchmark.load defers reading the columns to the first query, as fast_mode defers per-arch
    # files: the "load + queries" columns compare the whole job.
    print(f"{'':27} {'load s':>8} {'queries s':>10} {'us/query':>9} {'load+q s':>9} {'peak MB':>8} "
          f"{'load x':>7} {'query x':>8} {'load+q x':>9} {'memory x':>9}")
    for kind, label in CONTENDERS.items():
        r = results[kind]
        total, nb_total = r["load_s"] + r["query_s"], nb["load_s"] + nb["query_s"]
        print(f"{label:27} {r['load_s']:>8.3f} {r['query_s']:>10.3f} {1e6 * r['query_s'] / args.queries:>9.1f} "
              f"{total:>9.3f} {r['peak_mb']:>8.1f} {r['load_s'] / nb['load_s']:>6.1f}x "
              f"{r['query_s'] / nb['query_s']:>7.1f}x {total / nb_total:>8.1f}x "
              f"{r['peak_mb'] / max(nb['peak_mb'], 1e-9):>8.1f}x")
    compat, nats = results["nb360-nats"], results["nats-file"]
    print(f"\nNATS-Bench's get_more_info on nb360's API against NATS-Bench's own (fast_mode=False): "
          f"{nats['query_s'] / compat['query_s']:.1f}x per query, {nats['load_s'] / compat['load_s']:.1f}x load, "
          f"{nats['peak_mb'] / max(compat['peak_mb'], 1e-9):.1f}x less memory")
    print(f"Benchmark.df ({nb['df_rows']} rows): {nb['df_s']:.3f} s")
    sums = {kind: r["checksum"] for kind, r in results.items()}
    agree = np.allclose(list(sums.values()), sums["nb360"], rtol=1e-5)
    print(f"same answers (sum of the {args.queries} scores): {agree} {sums}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=12, help="epochs per run (also the hp key)")
    parser.add_argument("--seeds", type=int, default=2, help="seeds per arch")
    parser.add_argument("--dataset", default="cifar100", help="NATS dataset name written and queried")
    parser.add_argument("--queries", type=int, default=10_000)
    parser.add_argument("--query-seed", type=int, default=0, help="seed of the random query indices")
    parser.add_argument("--workdir", type=Path, help="keep the files here (default: a temporary folder)")
    parser.add_argument("--measure", nargs=2, metavar=("KIND", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        kind, path = args.measure
        print(json.dumps(measure(kind, path, args.dataset, str(args.epochs), args.queries, args.query_seed)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        file, archive, table, import_s = write_sources(workdir, args)
        paths = {"nats-file": file, "nats-archive": archive, "nb360": table, "nb360-nats": table}
        results = {kind: run_contender(kind, paths[kind], args) for kind in CONTENDERS}
        report(results, import_s, table, args)


if __name__ == "__main__":
    main()
