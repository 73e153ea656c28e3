import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "table"))  # nats_fixture, shared with the table tests

from nats_fixture import synthetic_nats, write_nats_file  # noqa: E402
from synthetic_table import write_table  # noqa: E402

from nb360.table.benchmark import Benchmark  # noqa: E402
from nb360.table.nats import import_nats  # noqa: E402

NATS_INDICES = list(range(0, 15625, 50))  # 313 archs with runs, the rest missing
NATS_SINGLE_SEED = set(NATS_INDICES[::7])  # these ran seed 777 only


@pytest.fixture(scope="session")
def synthetic_path(tmp_path_factory):
    """All 15,625 cells, 4 epochs, 2 seeds, a smooth landscape (tests/search/synthetic_table.py)."""
    return write_table(tmp_path_factory.mktemp("synthetic") / "synthetic.h5")


@pytest.fixture(scope="session")
def synthetic(synthetic_path):
    return Benchmark.load(synthetic_path)


@pytest.fixture(scope="session")
def nats(tmp_path_factory):
    """A partial table imported from a NATS-Bench-format file (cifar10-valid, hp 12, seeds 777/888)."""
    folder = tmp_path_factory.mktemp("nats")
    data = synthetic_nats(NATS_INDICES, ("cifar10-valid",), (777, 888), 12, "12", seed=3, single_seed=NATS_SINGLE_SEED)
    source = write_nats_file(data, folder / "NATS-tss-v1_0-search.pickle.pbz2")
    return Benchmark.load(import_nats(source, task="cifar10-valid", out=folder / "nats.h5", hp="12", progress=False))


@pytest.fixture(scope="session")
def final_regrets(synthetic):
    """final_regrets(algo, seeds, queries, **options) -> (seeds,) final regrets on the synthetic
    table (cached: several tests compare against the same random search runs)."""
    import numpy as np

    from nb360.search.runner import TabularSimulator, run_search

    sim, cache = TabularSimulator(synthetic), {}

    def final(algo, seeds=range(20), queries=100, **options):
        key = (algo, tuple(seeds), queries, tuple(sorted(options.items())))
        try:
            hash(key)
        except TypeError:  # an array option: not cached
            key = object()
        if key not in cache:
            cache[key] = np.array([run_search(synthetic, algo, s, queries=queries, sim=sim, **options).regret[-1]
                                   for s in seeds])
        return cache[key]

    return final
