import numpy as np

from nb360.search.random import RandomSearch
from nb360.search.space import op_table


def test_uniform_over_cells_and_reproducible():
    s = RandomSearch(rng=5)
    indices = [s.ask().index for _ in range(20000)]
    assert indices[:50] == [RandomSearch(rng=5).ask().index for _ in range(1)] + indices[1:50]
    assert [a.index for a in RandomSearch(rng=5).ask_batch(100)] == indices[:100]
    assert indices[:100] != [a.index for a in RandomSearch(rng=6).ask_batch(100)]
    ops = op_table()[indices]  # every edge sees every operation about 1/5 of the time
    freq = np.stack([np.bincount(ops[:, e], minlength=5) for e in range(6)]) / len(indices)
    assert np.abs(freq - 0.2).max() < 0.015
    assert len(set(indices)) > 11000  # with replacement: ~11,800 distinct of 20,000 draws expected


def test_random_search_ignores_scores():
    a, b = RandomSearch(rng=1), RandomSearch(rng=1)
    for _ in range(20):
        arch = a.ask()
        a.tell(arch, 0.0)
        b.ask()
    assert a.ask() == b.ask()
