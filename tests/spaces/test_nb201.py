import random

import numpy as np
import pytest

from nb360.spaces import nb201
from nb360.spaces.nb201 import Arch

OPS = ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"]
INDEX0 = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"


def official_strings() -> list[str]:
    """NB201's recipe, written out independently of the package: the generator's enumeration
    (`CellStructure.gen_all`: node by node, the last edge of a node fastest, later nodes fastest)
    shuffled with random.seed(88)."""

    def combinations(n_inputs):
        combs = [[]]
        for source in range(n_inputs):
            combs = [c + [(op, source)] for c in combs for op in OPS]
        return combs

    archs = [[tuple(c)] for c in combinations(1)]
    for node in (2, 3):
        archs = [prev + [tuple(c)] for prev in archs for c in combinations(node)]
    strings = ["+".join("|" + "|".join(f"{op}~{i}" for op, i in node) + "|" for node in a) for a in archs]
    random.seed(88)
    random.shuffle(strings)
    return strings


def test_official_index_matches_recipe():
    strings = official_strings()
    assert strings[0] == INDEX0
    assert [str(a) for a in Arch.all()] == strings
    for i in (0, 1, 777, 15624):
        assert Arch.from_str(strings[i]).index == i
        assert str(Arch.from_index(i)) == strings[i]


def test_string_round_trip_all():
    for a in Arch.all():
        assert Arch.from_str(str(a)) == a
        assert Arch.from_code(a.code) == a


@pytest.mark.parametrize(
    "bad, token",
    [
        ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_9x9~1|+|none~0|none~1|none~2|", "nor_conv_9x9"),
        ("|nor_conv_3x3~0|+|nor_conv_3x3~0|none~0|+|none~0|none~1|none~2|", "none~0"),
        ("|nor_conv_3x3~0|+|nor_conv_3x3~0|+|none~0|none~1|none~2|", "|nor_conv_3x3~0|"),
        ("|nor_conv_3x3~0|+|nor_conv_3x3~0|none~1|", "found 2"),
        ("|nor_conv_3x3 0|+|none~0|none~1|+|none~0|none~1|none~2|", "nor_conv_3x3 0"),
        ("nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|", "nor_conv_3x3~0|"),
    ],
)
def test_malformed_strings_name_the_token(bad, token):
    with pytest.raises(ValueError, match=None) as info:
        Arch.from_str(bad)
    assert token in str(info.value)


@pytest.mark.parametrize("bad", [-1, 15625, 2.0, True, "x"])
def test_bad_index(bad):
    with pytest.raises(ValueError):
        Arch.from_index(bad)


def test_parse_accepts_all_forms():
    a = Arch.from_index(42)
    assert Arch.parse(a) is a
    assert Arch.parse(42) == a == Arch.parse("42") == Arch.parse(str(a)) == Arch.parse(np.int64(42))


def test_immutable_and_hashable():
    a = Arch.from_index(3)
    with pytest.raises(AttributeError):
        a.ops = (0,) * 6
    assert len({a, Arch.from_str(str(a)), Arch.from_index(4)}) == 2


def unique_str(a: Arch) -> str:
    """NB201's Structure.to_unique_str(consider_zero=True), on the string form."""
    nodes = {0: "0"}
    for i, node in enumerate(str(a).split("+"), start=1):
        terms = []
        for token in node.strip("|").split("|"):
            op, src = token.split("~")
            x = nodes[int(src)]
            if op == "none" or x == "#":
                terms.append("#")
            elif op == "skip_connect":
                terms.append(x)
            else:
                terms.append(f"({x})@{op}")
        nodes[i] = "+".join(sorted(terms))
    return nodes[3]


def test_iso_classes():
    archs = Arch.all()
    reps = {a.iso_class() for a in archs}
    assert len(reps) == 6466
    ids = nb201.iso_class_ids()
    assert len(set(ids.tolist())) == 6466
    by_key: dict[str, int] = {}
    for a in archs:
        key = unique_str(a)
        rep = a.iso_class()
        # same class <=> same NB201 key; the representative is the member with the smallest index
        assert by_key.setdefault(key, rep.index) == rep.index
        assert rep.index <= a.index and unique_str(rep) == key
        assert ids[a.index] == rep.index
    groups = list(nb201.iter_iso_classes())
    assert len(groups) == 6466 and sum(len(m) for _, m in groups) == 15625


def test_isomorphic_examples():
    # what node 1 and node 2 compute is dead when no edge carries it to the output
    a = Arch.from_str("|nor_conv_3x3~0|+|nor_conv_1x1~0|nor_conv_3x3~1|+|skip_connect~0|none~1|none~2|")
    b = Arch.from_str("|avg_pool_3x3~0|+|nor_conv_3x3~0|none~1|+|skip_connect~0|none~1|none~2|")
    c = Arch.from_str("|avg_pool_3x3~0|+|nor_conv_3x3~0|none~1|+|nor_conv_1x1~0|none~1|none~2|")
    assert a.iso_class() == b.iso_class() != c.iso_class()
    # skip_connect passes its input through: conv(x) via a skip equals conv(x) directly
    d = Arch.from_str("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|skip_connect~1|none~2|")
    e = Arch.from_str("|skip_connect~0|+|none~0|none~1|+|none~0|nor_conv_3x3~1|none~2|")
    assert d.iso_class() == e.iso_class()


def test_degenerate():
    assert Arch.from_str("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|").is_degenerate()
    assert Arch.from_str("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|nor_conv_3x3~2|").is_degenerate()
    assert not Arch.from_str("|nor_conv_3x3~0|+|none~0|skip_connect~1|+|none~0|none~1|nor_conv_3x3~2|").is_degenerate()
    assert not Arch.from_str("|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|").is_degenerate()
    # a degenerate cell's class holds only degenerate cells
    for rep, members in nb201.iter_iso_classes():
        assert len({m.is_degenerate() for m in members}) == 1


def test_neighbors_and_mutation():
    rng = np.random.default_rng(0)
    a = Arch.random(rng)
    nbrs = a.neighbors()
    assert len(nbrs) == len(set(nbrs)) == 24 and a not in nbrs
    assert all(sum(x != y for x, y in zip(a.ops, n.ops)) == 1 for n in nbrs)
    seen = {a.mutate(rng) for _ in range(2000)}
    assert seen == set(nbrs)


def test_random_is_seeded_and_covers_ops():
    draws = [Arch.random(np.random.default_rng(7)) for _ in range(3)]
    assert draws[0] == draws[1] == draws[2]
    rng = np.random.default_rng(1)
    counts = np.bincount(np.concatenate([Arch.random(rng).ops for _ in range(5000)]), minlength=5)
    assert counts.min() > 0.17 * 30000 and counts.max() < 0.23 * 30000


def test_encodings():
    a = Arch.from_str("|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|none~1|nor_conv_1x1~2|")
    oh = a.onehot()
    assert oh.shape == (6, 5) and (oh.sum(1) == 1).all() and oh[0, 3] == 1 and oh[1, 0] == 1
    path = a.path_encoding()
    # live paths: 0->3 (pool), 0->1->2->3 (conv3, skip, conv1); the two through `none` are dropped
    assert path.shape == (84,) and path.sum() == 2
    # isomorphic cells share path encodings
    b = Arch.from_str("|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|none~1|nor_conv_1x1~2|")
    assert (a.path_encoding() == b.path_encoding()).all()
    adj, labels = a.adjacency()
    assert adj.shape == (8, 8) and labels[0] == "input" and labels[-1] == "output"
    assert labels[1:7] == list(a.op_names)
    assert np.triu(adj, 1).sum() == adj.sum()  # a DAG in topological order
    assert adj[0].sum() == 3 and adj[:, 7].sum() == 3


def test_path_encoding_distinguishes_classes_mostly():
    codes = {}
    for rep, _ in nb201.iter_iso_classes():
        codes.setdefault(rep.path_encoding().tobytes(), []).append(rep)
    # the path encoding is lossy (it forgets which branch a path takes) but separates most classes
    assert len(codes) > 0.5 * 6466
