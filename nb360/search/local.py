"""Local search: first-improvement hill climbing over the 24 one-edge neighbours, with restarts.

White, Nolen, Bhatt, Chen & Hutter, "Exploring the Loss Landscape in Neural Architecture Search",
UAI 2021, and NASLib (naslib/optimizers/discrete/ls/optimizer.py): evaluate `num_init` random
archs (NASLib's default 10), climb from the best, restart from a random arch at a local optimum.
NASLib evaluates a whole neighbourhood before moving (best improvement); here the climb moves as
soon as a neighbour scores better (first improvement, neighbours in random order), which spends
fewer queries per step on the smooth NB201 landscape. Archs already evaluated are not asked again
during the search: their score is known.
"""

from __future__ import annotations

from typing import Iterable

from nb360.search.base import RngLike, Searcher
from nb360.search.space import UniformStream, all_archs, index_of, neighbor_table
from nb360.spaces.nb201 import NUM_ARCHS, Arch, ArchLike


class LocalSearch(Searcher):
    """First-improvement local search with random restarts (`initial` replaces the random start
    sample, e.g. for a zero-cost warm start)."""

    def __init__(self, rng: RngLike = 0, num_init: int = 10, initial: Iterable[ArchLike] = ()):
        super().__init__(rng)
        self._initial = [index_of(Arch.parse(a)) for a in initial][::-1]  # popped from the end
        self.num_init = max(num_init, len(self._initial))
        if self.num_init < 1:
            raise ValueError(f"num_init must be >= 1, got {num_init}")
        self.current: tuple[float, int] | None = None  # (score, index) the climb stands on
        self._asked_init = 0
        self._queue: list[int] = []  # neighbours of `current` still to try, popped from the end
        self._seen: set[int] = set()
        self._uniform = UniformStream(self.rng)
        self._archs = all_archs()
        self._neighbors = neighbor_table()

    def ask(self) -> Arch:
        return self._archs[self._next_index()]

    def _next_index(self) -> int:
        if self._asked_init < self.num_init:
            self._asked_init += 1
            return self._mark(self._initial.pop() if self._initial else self._random())
        while self._queue:
            index = self._queue.pop()
            if index not in self._seen:
                return self._mark(index)
        # a local optimum (every neighbour tried, none better): restart; the new arch's score,
        # when told, becomes the start of the next climb
        self.current = None
        return self._mark(self._random())

    def tell(self, arch: Arch, score: float, budget: int | None = None) -> None:
        if self.current is None or score < self.current[0]:
            index = index_of(arch)
            self.current = (score, index)
            self._queue = self.rng.permutation(self._neighbors[index]).tolist()

    def _random(self) -> int:
        """A random arch not evaluated yet (any arch once all have been)."""
        while True:
            index = self._uniform.integer(NUM_ARCHS)
            if index not in self._seen or len(self._seen) == NUM_ARCHS:
                return index

    def _mark(self, index: int) -> int:
        self._seen.add(index)
        return index

    def __repr__(self) -> str:
        return f"LocalSearch(num_init={self.num_init})"
