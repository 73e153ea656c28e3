"""Pareto-ranked regularized evolution: aging evolution whose tournament compares members by
Pareto rank, then crowding distance, over the error and costs it was told.

Regularized evolution (Real et al., AAAI 2019; `nb360.search.evolution`) keeps the most recent
`population_size` evaluations and mutates the winner of a tournament of `sample_size` members.
With several objectives there is no single best member, so the tournament is NSGA-II's
(Deb et al., "A fast and elitist multiobjective genetic algorithm: NSGA-II", IEEE TEC 2002):
the lower non-dominated rank within the population wins, and among equal ranks the larger
crowding distance (members alone in their stretch of the front, extremes first). Parents are
mutated along one edge, as in RE; members die by age, as in RE, which keeps the search moving
along the front instead of freezing on an elite.

Defaults: the tournament of NATS-Bench's RE (3), and a population of 20, twice RE's, because a
population has to hold a front rather than one incumbent. An evaluation that failed (error inf)
ranks behind every member with a score.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from nb360.search.base import RngLike, Searcher, as_scores
from nb360.search.space import NUM_NEIGHBORS, UniformStream, all_archs, index_of, neighbor_lists
from nb360.spaces.nb201 import NUM_ARCHS, Arch


def crowding_distances(points: np.ndarray) -> np.ndarray:
    """NSGA-II's crowding distance of each point (rows x objectives) within its front: the sum over
    objectives of the normalised gap between its two neighbours; inf at the ends."""
    n, k = points.shape
    distance = np.zeros(n)
    if n <= 2:
        return np.full(n, np.inf)
    for j in range(k):
        order = np.argsort(points[:, j], kind="stable")
        values = points[order, j]
        span = values[-1] - values[0]
        distance[order[[0, -1]]] = np.inf
        if span > 0:
            distance[order[1:-1]] += (values[2:] - values[:-2]) / span
    return distance


def tournament_keys(points: np.ndarray) -> np.ndarray:
    """(n,) a sort key per member, lower wins: Pareto rank first, then larger crowding distance;
    members with an infinite or NaN error rank last."""
    import moocore

    points = np.asarray(points, dtype=float)
    scored = np.isfinite(points).all(axis=1)
    rank = np.full(len(points), np.inf)
    crowding = np.zeros(len(points))
    if scored.any():
        rank[scored] = moocore.pareto_rank(points[scored])
        for r in np.unique(rank[scored]):
            members = np.flatnonzero(rank == r)
            crowding[members] = crowding_distances(points[members])
    # rank dominates: crowding distances are finite or inf, mapped into [0, 1) to break ties only
    return rank + 1.0 / (2.0 + crowding)


class ParetoEvolution(Searcher):
    """Aging evolution with NSGA-II's tournament, on official indices. The first
    `population_size` asks are random, as are asks made before any result was told."""

    multi_objective = True

    def __init__(self, rng: RngLike = 0, population_size: int = 20, sample_size: int = 3):
        super().__init__(rng)
        if population_size < 1 or sample_size < 1:
            raise ValueError(f"population_size and sample_size must be >= 1, got {population_size}, {sample_size}")
        self.population_size = population_size
        self.sample_size = sample_size
        self.population: deque[tuple[tuple[float, ...], int]] = deque()  # (scores, index), oldest first
        self._keys: np.ndarray | None = None  # tournament keys of the population, None when stale
        self._asked = 0
        self._uniform = UniformStream(self.rng)
        self._archs = all_archs()
        self._neighbors = neighbor_lists()

    def ask(self) -> Arch:
        self._asked += 1
        if self._asked <= self.population_size or not self.population:
            return self._archs[self._uniform.integer(NUM_ARCHS)]
        if self._keys is None:
            self._keys = tournament_keys(np.array([scores for scores, _ in self.population]))
        draw, size = self._uniform.integer, len(self.population)
        parent = min((draw(size) for _ in range(self.sample_size)), key=self._keys.__getitem__)
        return self._archs[self._neighbors[self.population[parent][1]][draw(NUM_NEIGHBORS)]]

    def tell(self, arch: Arch, score, budget: int | None = None) -> None:
        self.population.append((as_scores(score), index_of(arch)))
        if len(self.population) > self.population_size:
            self.population.popleft()
        self._keys = None

    def __repr__(self) -> str:
        return f"ParetoEvolution(population_size={self.population_size}, sample_size={self.sample_size})"
