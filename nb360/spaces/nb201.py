"""The NAS-Bench-201 cell space: 15,625 cells of 6 edges, 5 operations each.

An `Arch` is an immutable value for one cell. It speaks NB201's string form
(`|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`) and NATS-Bench's official index, so that official tables,
NAS-Bench-360's published files and ours line up row for row.

Two numberings appear here:
- the *generator position* ("code"): the place of a cell in the order NB201's generator enumerates
  them, i.e. the six operation indices read as a base-5 number, edge 0 most significant;
- the *official index*: that list shuffled with `random.seed(88)`, as NAS-Bench-201 did. The
  permutation ships as data (`search_spaces/nb201_index.txt`) and is loaded once.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Iterator, Union

import numpy as np

from nb360 import cards

_CARD = cards.load("search_spaces", "nb201")
OPS: tuple[str, ...] = tuple(_CARD["operations"])
EDGES: tuple[tuple[int, int], ...] = tuple((int(t), int(f)) for t, f in _CARD["edges"])
# The six edges as parameters of config-based optimizers (Ray Tune, Optuna), in string order.
EDGE_KEYS: tuple[str, ...] = tuple(f"edge_{to}_{source}" for to, source in EDGES)
NUM_NODES: int = int(_CARD["nodes"])
NUM_EDGES = len(EDGES)
NUM_OPS = len(OPS)
NUM_ARCHS = NUM_OPS**NUM_EDGES
_OP_ID = {op: i for i, op in enumerate(OPS)}
_NONE = _OP_ID["none"]
_SKIP = _OP_ID["skip_connect"]
# Place values of the base-5 generator position, edge 0 most significant.
_PLACES = NUM_OPS ** np.arange(NUM_EDGES - 1, -1, -1)
# Input->output paths as edge lists, for the path encoding.
_PATHS = ((3,), (0, 4), (1, 5), (0, 2, 5))
_PATH_OPS = tuple(i for i in range(NUM_OPS) if i != _NONE)
_PATH_OFFSETS = {1: 0, 2: len(_PATH_OPS), 3: len(_PATH_OPS) + len(_PATH_OPS) ** 2}
PATH_ENCODING_SIZE = sum(len(_PATH_OPS) ** n for n in (1, 2, 3))

ArchLike = Union["Arch", str, int]


@dataclass(frozen=True, slots=True)
class Arch:
    """One NB201 cell: the operation index of each of the six edges, in NB201's string order."""

    ops: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.ops) != NUM_EDGES or not all(isinstance(o, int) and 0 <= o < NUM_OPS for o in self.ops):
            raise ValueError(f"an NB201 cell has {NUM_EDGES} operation indices in [0, {NUM_OPS}), got {self.ops!r}")

    # ---- construction -------------------------------------------------------------------
    @staticmethod
    def from_str(s: str) -> Arch:
        """Parse NB201's string form; a malformed string raises ValueError naming the bad token."""
        if not isinstance(s, str):
            raise ValueError(f"an NB201 architecture string is a str, got {type(s).__name__}")
        nodes = s.strip().split("+")
        if len(nodes) != NUM_NODES - 1:
            raise ValueError(
                f"{s!r}: expected {NUM_NODES - 1} nodes separated by '+', found {len(nodes)}"
            )
        ops: list[int] = []
        for node, part in enumerate(nodes, start=1):
            if len(part) < 2 or part[0] != "|" or part[-1] != "|":
                raise ValueError(f"{s!r}: node {node} token {part!r} must look like '|op~0|...|'")
            tokens = part[1:-1].split("|")
            if len(tokens) != node:
                raise ValueError(f"{s!r}: node {node} token {part!r} must have {node} edges, has {len(tokens)}")
            for source, token in enumerate(tokens):
                op, sep, src = token.partition("~")
                if not sep:
                    raise ValueError(f"{s!r}: token {token!r} must look like 'op~input'")
                if op not in _OP_ID:
                    raise ValueError(f"{s!r}: unknown operation {op!r} in token {token!r}; known: {', '.join(OPS)}")
                if src != str(source):
                    raise ValueError(
                        f"{s!r}: token {token!r} of node {node} must read from node {source}, not {src!r}"
                    )
                ops.append(_OP_ID[op])
        return Arch(tuple(ops))

    @staticmethod
    def from_index(index: int) -> Arch:
        """The cell with this official NATS-Bench / NAS-Bench-201 index."""
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise ValueError(f"an official index is an integer, got {type(index).__name__}")
        if not 0 <= index < NUM_ARCHS:
            raise ValueError(f"official index {index} out of range [0, {NUM_ARCHS})")
        return _by_index()[int(index)]

    @staticmethod
    def from_code(code: int) -> Arch:
        """The cell at this position of NB201's generator order (base-5 digits, edge 0 first)."""
        if not 0 <= code < NUM_ARCHS:
            raise ValueError(f"generator position {code} out of range [0, {NUM_ARCHS})")
        return _by_code()[int(code)]

    @staticmethod
    def parse(value: ArchLike) -> Arch:
        """An `Arch`, an NB201 string or an official index (int or a string of digits)."""
        if isinstance(value, Arch):
            return value
        if isinstance(value, str) and value.strip().isdigit():
            return Arch.from_index(int(value))
        if isinstance(value, str):
            return Arch.from_str(value)
        return Arch.from_index(value)

    @staticmethod
    def random(rng: np.random.Generator) -> Arch:
        """A cell drawn uniformly from the 15,625."""
        return Arch.from_code(int(rng.integers(NUM_ARCHS)))

    @staticmethod
    def all() -> list[Arch]:
        """All 15,625 cells in official index order."""
        return list(_by_index())

    # ---- identity -----------------------------------------------------------------------
    def __str__(self) -> str:
        parts, e = [], 0
        for node in range(1, NUM_NODES):
            tokens = [f"{OPS[self.ops[e + j]]}~{j}" for j in range(node)]
            parts.append("|" + "|".join(tokens) + "|")
            e += node
        return "+".join(parts)

    def __repr__(self) -> str:
        return f"Arch('{self}')"

    @property
    def code(self) -> int:
        """Position in NB201's generator order."""
        return int(np.dot(self.ops, _PLACES))

    @property
    def index(self) -> int:
        """The official NATS-Bench / NAS-Bench-201 index."""
        return int(_index_of_code()[self.code])

    @property
    def op_names(self) -> tuple[str, ...]:
        return tuple(OPS[o] for o in self.ops)

    # ---- structure ----------------------------------------------------------------------
    def iso_class(self) -> Arch:
        """Canonical member of this cell's isomorphism class (the member with the smallest index).

        NB201's semantics (`Structure.to_unique_str(consider_zero=True)`): `none` edges and
        everything fed only by them vanish, `skip_connect` passes its input through, and the inputs
        of a node are an unordered sum. The 15,625 cells fall into 6,466 classes.
        """
        return Arch.from_code(int(_iso_rep_code()[self.code]))

    def is_degenerate(self) -> bool:
        """True when no path of non-`none` edges joins the input to the output."""
        reached = {0}
        for (to, frm), op in zip(EDGES, self.ops):
            if op != _NONE and frm in reached:
                reached.add(to)
        return NUM_NODES - 1 not in reached

    def neighbors(self) -> list[Arch]:
        """The 24 cells that differ from this one in exactly one edge."""
        return [self._with(e, op) for e in range(NUM_EDGES) for op in range(NUM_OPS) if op != self.ops[e]]

    def mutate(self, rng: np.random.Generator) -> Arch:
        """A uniformly drawn neighbour: one random edge gets a different operation."""
        edge = int(rng.integers(NUM_EDGES))
        op = int(rng.integers(NUM_OPS - 1))
        return self._with(edge, op + (op >= self.ops[edge]))

    def _with(self, edge: int, op: int) -> Arch:
        ops = list(self.ops)
        ops[edge] = op
        return Arch(tuple(ops))

    # ---- encodings for predictors ---------------------------------------------------------
    def onehot(self) -> np.ndarray:
        """(6, 5) one-hot of the operation on each edge, float32."""
        out = np.zeros((NUM_EDGES, NUM_OPS), dtype=np.float32)
        out[np.arange(NUM_EDGES), self.ops] = 1.0
        return out

    def path_encoding(self) -> np.ndarray:
        """BANANAS-style path encoding (White et al., AAAI 2021), float32 of length 84.

        One feature per sequence of operations along an input->output path (lengths 1 to 3 over
        the four non-`none` operations). A path through a `none` edge carries nothing and is left
        out, so isomorphic cells that differ only in dead edges encode alike.
        """
        out = np.zeros(PATH_ENCODING_SIZE, dtype=np.float32)
        width = len(_PATH_OPS)
        for path in _PATHS:
            ops = [self.ops[e] for e in path]
            if _NONE in ops:
                continue
            pos = sum(_PATH_OPS.index(o) * width**k for k, o in enumerate(ops))
            out[_PATH_OFFSETS[len(path)] + pos] = 1.0
        return out

    def adjacency(self) -> tuple[np.ndarray, list[str]]:
        """Operations-on-nodes DAG (NAS-Bench-101 style): an 8x8 uint8 adjacency and 8 labels.

        Node 0 is the input, nodes 1-6 the edge operations in string order, node 7 the output.
        """
        n = NUM_EDGES + 2
        adj = np.zeros((n, n), dtype=np.uint8)
        for e, (_, frm) in enumerate(EDGES):
            feeders = [0] if frm == 0 else [k + 1 for k, (to, _) in enumerate(EDGES) if to == frm]
            adj[feeders, e + 1] = 1
        adj[[k + 1 for k, (to, _) in enumerate(EDGES) if to == NUM_NODES - 1], n - 1] = 1
        return adj, ["input", *self.op_names, "output"]


def iso_class_ids() -> np.ndarray:
    """For every official index, the official index of its class representative (int32)."""
    return _index_of_code()[_iso_rep_code()[_code_of_index()]]


@cache
def iso_class_representatives() -> np.ndarray:
    """The official indices of the 6,466 class representatives, increasing: the order in which
    per-class arrays list the classes."""
    return np.unique(iso_class_ids())


def _unique_str(ops: tuple[int, ...]) -> str:
    """NB201's `to_unique_str(consider_zero=True)`: a key shared by isomorphic cells."""
    nodes = ["0"]
    e = 0
    for node in range(1, NUM_NODES):
        terms = []
        for source in range(node):
            op, x = ops[e], nodes[source]
            e += 1
            if op == _NONE or x == "#":
                terms.append("#")
            elif op == _SKIP:
                terms.append(x)
            else:
                terms.append(f"({x})@{OPS[op]}")
        nodes.append("+".join(sorted(terms)))
    return nodes[-1]


@cache
def _code_of_index() -> np.ndarray:
    codes = np.loadtxt(cards.data_file("search_spaces", _CARD["index_file"]), dtype=np.int64, comments="#")
    if codes.shape != (NUM_ARCHS,) or not np.array_equal(np.sort(codes), np.arange(NUM_ARCHS)):
        raise ValueError(f"{_CARD['index_file']}: expected a permutation of 0..{NUM_ARCHS - 1}, one per line")
    return codes


@cache
def _index_of_code() -> np.ndarray:
    inverse = np.empty(NUM_ARCHS, dtype=np.int64)
    inverse[_code_of_index()] = np.arange(NUM_ARCHS)
    return inverse


@cache
def _by_code() -> tuple[Arch, ...]:
    digits = (np.arange(NUM_ARCHS)[:, None] // _PLACES) % NUM_OPS
    return tuple(Arch(tuple(int(d) for d in row)) for row in digits)


@cache
def _by_index() -> tuple[Arch, ...]:
    by_code = _by_code()
    return tuple(by_code[c] for c in _code_of_index())


@cache
def _iso_rep_code() -> np.ndarray:
    """For every generator position, the position of its class representative."""
    index = _index_of_code()
    rep_of_key: dict[str, int] = {}
    keys = [_unique_str(a.ops) for a in _by_code()]
    for code in np.argsort(index):  # smallest official index first: it becomes the representative
        rep_of_key.setdefault(keys[code], int(code))
    return np.array([rep_of_key[k] for k in keys], dtype=np.int64)


def iter_iso_classes() -> Iterator[tuple[Arch, list[Arch]]]:
    """Each class representative with its members, representatives in official index order."""
    rep_codes = _iso_rep_code()
    members: dict[int, list[Arch]] = {}
    for a in _by_index():
        members.setdefault(int(rep_codes[a.code]), []).append(a)
    for rep_code, group in members.items():
        yield Arch.from_code(rep_code), group
