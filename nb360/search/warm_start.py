"""Zero-cost warm start: rank a large random pool by a proxy, start the search from the best.

Abdelfattah, Mehrotra, Dudziak & Lane, "Zero-Cost Proxies for Lightweight NAS", ICLR 2021, §5
"zero-cost warmup" (SamsungLabs/zero-cost-nas notebooks/nas_examples.ipynb): score 3,000 random
archs with a proxy (synflow there) at no training cost, and seed aging evolution's population with
the top-ranked ones. `zc-re` does exactly that (the top `population_size` become the initial
population); `zc-ls` makes the top `num_init` the start sample of local search, so the climb starts
from the best of them.

The proxy is either an array of one score per official index (a table's /proxies column, or its
params / flops as trivial baselines) or a function Arch -> score, called on the pool only.
Higher proxy scores are better, as the proxies are defined; NaN ranks last. The proxy never
costs queries or simulated time: it is a property of the untrained network.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from nb360.search.base import RngLike, make_rng
from nb360.search.evolution import RegularizedEvolution
from nb360.search.local import LocalSearch
from nb360.search.space import all_archs
from nb360.spaces.nb201 import NUM_ARCHS, Arch

Proxy = np.ndarray | Callable[[Arch], float]
POOL_SIZE = 3000


def top_by_proxy(proxy: Proxy | None, k: int, rng: np.random.Generator, pool_size: int = POOL_SIZE) -> list[int]:
    """Official indices of the `k` best of `pool_size` distinct random archs by `proxy`, best first."""
    if proxy is None:
        raise ValueError("a zero-cost warm start needs a proxy: an array of one score per arch "
                         "(e.g. a table's proxy column) or a function Arch -> score")
    if not 1 <= k <= pool_size <= NUM_ARCHS:
        raise ValueError(f"need 1 <= k <= pool_size <= {NUM_ARCHS}, got k={k}, pool_size={pool_size}")
    pool = rng.choice(NUM_ARCHS, size=pool_size, replace=False)
    if callable(proxy):
        archs = all_archs()
        scores = np.array([proxy(archs[i]) for i in pool], dtype=np.float64)
    else:
        proxy = np.asarray(proxy, dtype=np.float64)
        if proxy.shape != (NUM_ARCHS,):
            raise ValueError(f"a proxy array has one score per arch, shape ({NUM_ARCHS},), got {proxy.shape}")
        scores = proxy[pool]
    if not np.isfinite(scores).any():
        raise ValueError("the proxy has no finite score on the sampled pool")
    order = np.argsort(np.where(np.isfinite(scores), -scores, np.inf), kind="stable")
    return pool[order[:k]].tolist()


class ZeroCostEvolution(RegularizedEvolution):
    """Regularized evolution whose initial population is the proxy's top of a random pool."""

    def __init__(self, rng: RngLike = 0, proxy: Proxy | None = None, pool_size: int = POOL_SIZE,
                 population_size: int = 10, sample_size: int = 3):
        rng = make_rng(rng)
        initial = top_by_proxy(proxy, population_size, rng, pool_size)
        super().__init__(rng, population_size=population_size, sample_size=sample_size, initial=initial)


class ZeroCostLocalSearch(LocalSearch):
    """Local search started from the proxy's top of a random pool."""

    def __init__(self, rng: RngLike = 0, proxy: Proxy | None = None, pool_size: int = POOL_SIZE, num_init: int = 10):
        rng = make_rng(rng)
        super().__init__(rng, num_init=num_init, initial=top_by_proxy(proxy, num_init, rng, pool_size))
