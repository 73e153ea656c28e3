"""How many simulated trials per second do in-process searches run, and how long does the command take?

    python scripts/bench/search_speed.py [--table PATH] [--queries 100000]

Contenders, on the same table:
- nb360: `nb360.search.runner.run` with `RandomSearch` and `RegularizedEvolution` (population 10,
  tournament 3), everything a search does included (ask, table lookup, a seed's run drawn, tell,
  incumbent and regret bookkeeping, the trace);
- a straightforward loop over a dict-based table like NASLib's (its NB201 data is a dict keyed
  by arch string, `nb201_data[arch_str][dataset][metric]`): random archs drawn as `Arch` values,
  looked up by string, NATS-Bench's regularized evolution loop (`random.choice(list(population))`
  tournaments, `Arch.mutate`), the same bookkeeping.
Rates are trials per second of CPU time (the machine may be shared), for one long search of
`--queries` queries and for 1,000 searches of 100 queries
(the usual case, where the setup of a searcher counts too). Then the wall time of the full command
`nb360 search --algo <all> --budget 100 --seeds 10` on the table, in a fresh process.

Without `--table`, the table is the complete synthetic one of tests/search/synthetic_table.py
(12 epochs, 2 seeds), written to a temporary folder. A partial table is faster (a missing arch is
cheap) and not representative.
"""

from __future__ import annotations

import argparse
import math
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "search"))  # the synthetic table shared with the tests

from synthetic_table import write_table

from nb360.search import SEARCHERS
from nb360.search.evolution import RegularizedEvolution
from nb360.search.random import RandomSearch
from nb360.search.runner import TabularSimulator, run
from nb360.spaces.nb201 import Arch
from nb360.table.benchmark import Benchmark


def dict_table(bench: Benchmark) -> tuple[dict[str, dict], float]:
    """NASLib-style data: arch string -> per-seed final validation scores, training seconds, and
    the final test score (mean over seeds); and the best test score."""
    val, seconds = bench.at_epoch("val_metric"), bench.at_epoch("train_seconds")
    test = bench.final("test_metric")
    data = {str(a): {"val": val[i].tolist(), "seconds": seconds[i].tolist(), "test": float(test[i])}
            for i, a in enumerate(Arch.all())}
    return data, float(np.nanmin(test))


def dict_search(data: dict, best_test: float, algo: str, queries: int, seed: int) -> list[float]:
    """The straightforward loop: random search or NATS-Bench's regularized evolution."""
    rng, py = np.random.default_rng(seed), random.Random(seed)
    population: deque = deque()
    best_val, clock, regrets = math.inf, 0.0, []
    for n in range(queries):
        if algo == "rs" or n < 10:
            arch = Arch.random(rng)
        else:
            parent = min((py.choice(list(population)) for _ in range(3)), key=lambda m: m[0])
            arch = parent[1].mutate(rng)
        row = data[str(arch)]
        s = py.randrange(len(row["val"]))
        val = row["val"][s]
        clock += row["seconds"][s]
        if algo == "re":
            population.append((val, arch))
            if len(population) > 10:
                population.popleft()
        if val < best_val:
            best_val, incumbent_test = val, row["test"]
        regrets.append(incumbent_test - best_test)
    return regrets


def nb360_search(sim: TabularSimulator, algo: str, queries: int, seed: int) -> list[float]:
    searcher = RandomSearch(seed) if algo == "rs" else RegularizedEvolution(seed)
    return run(searcher, sim, np.random.default_rng(seed + 1), queries=queries).regret


def trials_per_second(search, algo: str, queries: int, searches: int) -> float:
    """Per second of this process's CPU time: the machine may be shared, and wall time would then
    measure the neighbours too."""
    start = time.process_time()
    for seed in range(searches):
        search(algo, queries, seed)
    return queries * searches / (time.process_time() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--table", default=None, help="a table path (default: a synthetic complete table)")
    parser.add_argument("--queries", type=int, default=100_000, help="length of the long search")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        table = Path(args.table) if args.table else write_table(Path(tmp) / "synthetic.h5", epochs=12)
        bench = Benchmark.load(table)
        start = time.perf_counter()
        sim = TabularSimulator(bench)
        sim.runs(bench.epochs)
        nb360_setup = time.perf_counter() - start
        start = time.perf_counter()
        data, best_test = dict_table(bench)
        dict_setup = time.perf_counter() - start
        contenders = {
            "nb360 runner": lambda algo, q, seed: nb360_search(sim, algo, q, seed),
            "dict loop (NASLib-style)": lambda algo, q, seed: dict_search(data, best_test, algo, q, seed),
        }
        setup = {"nb360 runner": nb360_setup, "dict loop (NASLib-style)": dict_setup}
        print(f"table: {table} ({bench.completeness()['archs_with_a_run']}/15625 archs with runs, "
              f"{len(bench.seeds)} seeds)")
        print(f"{'contender':<26} {'setup s':>8} {'RS 1x' + str(args.queries):>14} {'RE 1x' + str(args.queries):>14} "
              f"{'RS 1000x100':>12} {'RE 1000x100':>12}   (trials per CPU second)")
        for name, search in contenders.items():
            search("rs", 1000, 0)  # warm caches
            rates = [trials_per_second(search, algo, q, n) for q, n in ((args.queries, 1), (100, 1000))
                     for algo in ("rs", "re")]
            print(f"{name:<26} {setup[name]:>8.2f} {rates[0]:>14,.0f} {rates[1]:>14,.0f} {rates[2]:>12,.0f} "
                  f"{rates[3]:>12,.0f}")

        algos = ",".join(SEARCHERS)
        proxy = "quality" if not args.table else "synflow"
        command = [sys.executable, "-m", "nb360.cli", "search", "--algo", algos, "--table", str(table),
                   "--budget", "100", "--seeds", "10", "--proxy", proxy, "--out", str(Path(tmp) / "out")]
        start, cpu_start = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
        result = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
        wall, cpu_end = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN)
        if result.returncode != 0:
            raise SystemExit(result.stderr)
        cpu = cpu_end.ru_utime + cpu_end.ru_stime - cpu_start.ru_utime - cpu_start.ru_stime
        print(f"\n`nb360 search --algo {algos} --budget 100 --seeds 10`: {wall:.1f} s wall, {cpu:.1f} s CPU "
              f"(process start, table load, searches, CSV, PNG, JSON)")
        print(result.stdout)


if __name__ == "__main__":
    main()
