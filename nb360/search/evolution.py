"""Regularized (aging) evolution.

Real et al., "Regularized Evolution for Image Classifier Architecture Search", AAAI 2019,
Algorithm 1: a population of the most recent `population_size` evaluations; each new arch is a
one-edge mutation of the best of `sample_size` members drawn at random (with replacement, as in
NATS-Bench's exps/NATS-algos/regularized_ea.py), and the oldest member dies.

Defaults are NATS-Bench's (Dong et al., TPAMI 2021; run-all.sh: `--ea_population 10
--ea_sample_size 3`). NASLib's benchmark configs use a larger population with tournament 10
(naslib/defaults/nb201_defaults.yaml: population 30, sample 10); pass `population_size` and
`sample_size` for those, e.g. `RegularizedEvolution(rng, population_size=50, sample_size=10)`.
"""

from __future__ import annotations

from collections import deque
from typing import Iterable

from nb360.search.base import RngLike, Searcher
from nb360.search.space import NUM_NEIGHBORS, UniformStream, all_archs, index_of, neighbor_lists
from nb360.spaces.nb201 import NUM_ARCHS, Arch, ArchLike

class RegularizedEvolution(Searcher):
    """Aging evolution on official indices.

    The first `population_size` asks are random (or `initial`, e.g. a zero-cost warm start). An
    ask made before any result has been told is random too, so batched asks never block.
    """

    def __init__(self, rng: RngLike = 0, population_size: int = 10, sample_size: int = 3,
                 initial: Iterable[ArchLike] = ()):
        super().__init__(rng)
        if population_size < 1 or sample_size < 1:
            raise ValueError(f"population_size and sample_size must be >= 1, got {population_size}, {sample_size}")
        self.population_size = population_size
        self.sample_size = sample_size
        self.population: deque[tuple[float, int]] = deque()  # (score, index), oldest first
        self._initial = [index_of(Arch.parse(a)) for a in initial][::-1]  # popped from the end
        self._asked_initial = 0
        self._uniform = UniformStream(self.rng)
        self._archs = all_archs()
        self._neighbors = neighbor_lists()

    def ask(self) -> Arch:
        return self._archs[self._next_index()]

    def _next_index(self) -> int:
        if self._asked_initial < self.population_size or not self.population:
            self._asked_initial += 1
            return self._initial.pop() if self._initial else self._uniform.integer(NUM_ARCHS)
        population, draw = self.population, self._uniform.integer
        size = len(population)
        parent = min(population[draw(size)] for _ in range(self.sample_size))[1]
        return self._neighbors[parent][draw(NUM_NEIGHBORS)]

    def tell(self, arch: Arch, score: float, budget: int | None = None) -> None:
        self.population.append((score, index_of(arch)))
        if len(self.population) > self.population_size:
            self.population.popleft()

    def __repr__(self) -> str:
        return f"RegularizedEvolution(population_size={self.population_size}, sample_size={self.sample_size})"
