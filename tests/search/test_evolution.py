import pytest

from nb360.search.evolution import RegularizedEvolution
from nb360.spaces.nb201 import Arch


def test_population_ages_and_children_are_mutations_of_tournament_winners():
    s = RegularizedEvolution(rng=0)  # NATS-Bench defaults
    assert (s.population_size, s.sample_size) == (10, 3)
    score = {}
    for step in range(200):
        arch = s.ask()
        if step >= 10:
            members = {Arch.from_index(i) for _, i in s.population}
            assert any(sum(x != y for x, y in zip(arch.ops, m.ops)) == 1 for m in members)
        score[arch] = float(sum(arch.ops))  # fewer, "smaller" operations score better
        s.tell(arch, score[arch])
        assert len(s.population) == min(step + 1, 10)
    # the last population entries are the last ten told, oldest first
    assert [i for _, i in s.population][-1] == arch.index
    assert min(score.values()) <= 1.0  # evolution walks down this easy landscape


def test_tournament_picks_the_best_of_the_sample():
    archs = [Arch.from_index(i) for i in (10, 20, 30, 40)]
    s = RegularizedEvolution(rng=0, population_size=4, sample_size=50, initial=archs)  # 50 draws see everyone
    for a, score in zip(archs, (0.5, 0.1, 0.9, 0.3)):
        assert s.ask() == a
        s.tell(a, score)
    for _ in range(30):
        child = s.ask()
        assert sum(x != y for x, y in zip(child.ops, archs[1].ops)) == 1


def test_initial_population_and_options():
    start = [Arch.from_index(i) for i in range(10)]
    s = RegularizedEvolution(rng=0, initial=start)
    assert [s.ask() for _ in range(10)] == start
    with pytest.raises(ValueError, match="must be >= 1"):
        RegularizedEvolution(rng=0, population_size=0)
    naslib = RegularizedEvolution(rng=0, population_size=30, sample_size=10)
    assert len({naslib.ask() for _ in range(30)}) > 25  # the first 30 are random


def test_beats_random_search_on_a_smooth_table(final_regrets):
    rs, re, re_naslib = final_regrets("rs"), final_regrets("re"), final_regrets("re", population_size=30, sample_size=10)
    assert re.mean() < 0.5 * rs.mean(), (re.mean(), rs.mean())
    assert (re < rs).sum() >= 14
    assert re_naslib.mean() < rs.mean()
