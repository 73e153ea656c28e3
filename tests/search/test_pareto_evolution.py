"""Pareto-ranked regularized evolution and the scalarised BANANAS."""

import numpy as np
import pytest

from nb360.search.bananas import ScalarizedBananas
from nb360.search.pareto_evolution import ParetoEvolution, crowding_distances, tournament_keys
from nb360.search.space import index_of


def test_tournament_keys_rank_by_front_then_crowding():
    points = np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5], [0.6, 0.6], [np.inf, 0.0], [0.45, 0.7]])
    keys = tournament_keys(points)
    # first front: 0, 1, 2, 5; 3 is dominated by 2; 4 failed (inf error) ranks last
    assert max(keys[[0, 1, 2, 5]]) < keys[3] < keys[4]
    # within the first front, the ends (infinite crowding) beat interior points
    assert max(keys[[0, 1]]) < min(keys[[2, 5]])
    assert np.all(np.isinf(crowding_distances(points[[0, 1]])))


def test_crowding_distance_of_an_evenly_spread_front():
    points = np.array([[0.0, 1.0], [0.25, 0.75], [0.5, 0.5], [1.0, 0.0]])
    d = crowding_distances(points)
    assert np.isinf(d[[0, 3]]).all()
    assert d[1] == pytest.approx(0.5 + 0.5) and d[2] == pytest.approx(0.75 + 0.75)


def test_parents_are_tournament_winners_and_children_their_neighbours():
    # a tournament of 60 draws from 4 members meets the one that beats all others on both
    # objectives (missing it: (3/4)^60, about 3e-8), so every child is a one-edge mutation of it
    searcher = ParetoEvolution(0, population_size=4, sample_size=60)
    first = [searcher.ask() for _ in range(4)]
    for k, arch in enumerate(first):
        searcher.tell(arch, (0.1, 1.0) if k == 2 else (0.5 + k, 2.0 + k))
    for _ in range(3):
        child = searcher.ask()
        assert child in first[2].neighbors()


def test_a_single_score_is_searched_alone():
    searcher = ParetoEvolution(1, population_size=3)
    for _ in range(10):
        arch = searcher.ask()
        searcher.tell(arch, 0.5)
    assert all(len(scores) == 1 for scores, _ in searcher.population)


def test_scalarized_bananas_learns_from_tuples_and_never_asks_a_class_twice():
    searcher = ScalarizedBananas(0, num_init=5, k=3, num_ensemble=2, num_candidates=20, epochs=5)
    asked = []
    for _ in range(14):
        arch = searcher.ask()
        asked.append(arch.iso_class())
        index = index_of(arch)
        searcher.tell(arch, (float(index % 97) / 97, 1e4 + index))
    assert len(set(asked)) == len(asked)
    assert len(searcher.told) == 14
    searcher.tell(searcher.ask(), (float("inf"), 1e4))  # a failure is not a training target
    assert len(searcher.told) == 14
