"""Random search: every architecture drawn uniformly, with replacement.

Bergstra & Bengio, "Random Search for Hyper-Parameter Optimization", JMLR 2012; the NAS baseline of
NAS-Bench-201 / NATS-Bench (AutoDL-Projects exps/NATS-algos/random_wo_share.py), which also draws
with replacement and keeps the best validation score.
"""

from __future__ import annotations

from nb360.search.base import RngLike, Searcher
from nb360.search.space import all_archs, UniformStream
from nb360.spaces.nb201 import NUM_ARCHS, Arch


class RandomSearch(Searcher):
    """Uniform sampling over the 15,625 cells; learns nothing from scores, so it serves a
    multi-objective search as well (NAS-Bench-201's baseline there too)."""

    multi_objective = True

    def __init__(self, rng: RngLike = 0):
        super().__init__(rng)
        self._uniform = UniformStream(self.rng)
        self._archs = all_archs()

    def ask(self) -> Arch:
        return self._archs[self._uniform.integer(NUM_ARCHS)]
