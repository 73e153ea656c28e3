"""The NB201 space as integer tables, so that searchers work on official indices at NumPy speed.

`Arch` is the public value; inside a search, an official index (int) is cheaper: `all_archs()[i]` and
`index_of(arch)` cross the edge in well under a microsecond (`Arch.index` costs ~10 us), and
`neighbor_table()[i]` lists the 24 one-edge neighbours (`Arch.neighbors` costs ~80 us and builds
24 objects). Everything here is built once, vectorised, and cached for the process.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from nb360.spaces.nb201 import NUM_ARCHS, NUM_EDGES, NUM_OPS, Arch

NUM_NEIGHBORS = NUM_EDGES * (NUM_OPS - 1)


@cache
def all_archs() -> tuple[Arch, ...]:
    """All cells in official index order: `all_archs()[i]` is `Arch.from_index(i)`."""
    return tuple(Arch.all())


@cache
def index_by_arch() -> dict[Arch, int]:
    """Arch -> official index, as a dict (an `Arch` hashes its 6-tuple): for hot loops."""
    return {a: i for i, a in enumerate(all_archs())}


def index_of(arch: Arch) -> int:
    """Official index of an Arch through `index_by_arch`, not `Arch.index`."""
    try:
        return index_by_arch()[arch]
    except KeyError:
        raise ValueError(f"expected an nb360 Arch, got {arch!r}") from None


_PLACES = NUM_OPS ** np.arange(NUM_EDGES - 1, -1, -1)  # base-5 place values, edge 0 first


@cache
def op_table() -> np.ndarray:
    """(15625, 6) int64: the operation index on each edge, rows in official index order."""
    table = np.array([a.ops for a in all_archs()], dtype=np.int64)
    table.setflags(write=False)
    return table


@cache
def neighbor_table() -> np.ndarray:
    """(15625, 24) int32: official indices of the neighbours of each cell, in `Arch.neighbors`
    order (edge by edge, operations increasing, the current one skipped)."""
    digits = op_table()  # (A, 6)
    codes = digits @ _PLACES  # generator positions (base-5 numbers, edge 0 first)
    index_of_code = np.empty(NUM_ARCHS, dtype=np.int64)
    index_of_code[codes] = np.arange(NUM_ARCHS)
    k = np.arange(NUM_OPS - 1)  # the k-th other operation is k, or k + 1 once past the current one
    new_ops = k[None, None, :] + (k[None, None, :] >= digits[:, :, None])  # (A, 6, 4)
    new_codes = codes[:, None, None] + (new_ops - digits[:, :, None]) * _PLACES[None, :, None]
    table = index_of_code[new_codes.reshape(NUM_ARCHS, NUM_NEIGHBORS)].astype(np.int32)
    table.setflags(write=False)
    return table


@cache
def neighbor_lists() -> list[list[int]]:
    """`neighbor_table()` as Python lists, which index faster in a loop; shared, do not modify."""
    return neighbor_table().tolist()


class UniformStream:
    """Uniform draws from a Generator, fetched in blocks: one `integer(n)` costs a list pop
    instead of a `Generator.integers` call (~2.5 us), which would dominate a tabular search.
    Blocks start small (a short search needs a few hundred draws) and double up to `block`.
    Deterministic for a seeded Generator."""

    def __init__(self, rng: np.random.Generator, block: int = 4096):
        self.rng = rng
        self.block = block
        self._next_block = min(256, block)
        self._buffer: list[float] = []

    def uniform(self) -> float:
        if not self._buffer:
            self._buffer = self.rng.random(self._next_block).tolist()
            self._next_block = min(2 * self._next_block, self.block)
        return self._buffer.pop()

    def integer(self, n: int) -> int:
        """An int uniformly in [0, n)."""
        return int(self.uniform() * n)
