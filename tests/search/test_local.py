import numpy as np

from nb360.search.local import LocalSearch
from nb360.search.space import neighbor_table
from nb360.spaces.nb201 import NUM_ARCHS, Arch


def test_first_improvement_moves_restarts_and_never_repeats():
    rng = np.random.default_rng(0)
    landscape = rng.permutation(NUM_ARCHS).astype(float)  # rugged: many local optima
    s = LocalSearch(rng=1, num_init=5)
    asked = []
    for step in range(3000):
        arch = s.ask()
        asked.append(arch.index)
        before = s.current
        s.tell(arch, landscape[arch.index])
        if step >= 5 and before is not None and arch.index in neighbor_table()[before[1]]:
            # a neighbour replaces the current arch exactly when it is better
            assert (s.current[1] == arch.index) == (landscape[arch.index] < before[0])
    assert len(asked) == len(set(asked))  # an evaluated arch is never asked again
    # restarts happened: some asked archs are neither start samples nor neighbours of an earlier one
    table = neighbor_table()
    seen, jumps = set(asked[:5]), 0
    for i in asked[5:]:
        jumps += not any(j in seen for j in table[i])
        seen.add(i)
    assert jumps > 10


def test_a_local_optimum_is_recognised():
    """Around a known optimum with every neighbour worse, LS tries all 24 neighbours, then restarts."""
    centre = Arch.from_index(123)
    s = LocalSearch(rng=0, initial=[centre], num_init=1)
    assert s.ask() == centre
    s.tell(centre, 0.0)
    neighbours = [s.ask() for _ in range(24)]
    assert sorted(a.index for a in neighbours) == sorted(neighbor_table()[123].tolist())
    for a in neighbours:
        s.tell(a, 1.0)
    restart = s.ask()
    assert s.current is None and restart.index not in neighbor_table()[123] and restart != centre


def test_beats_random_search_on_a_smooth_table(final_regrets):
    rs, ls = final_regrets("rs"), final_regrets("ls")
    assert ls.mean() < 0.5 * rs.mean(), (ls.mean(), rs.mean())
    assert (ls < rs).sum() >= 14
