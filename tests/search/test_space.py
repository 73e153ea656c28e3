import numpy as np
import pytest

from nb360.search.space import UniformStream, all_archs, index_of, neighbor_table, op_table
from nb360.spaces.nb201 import NUM_ARCHS, Arch


def test_tables_agree_with_arch():
    archs = all_archs()
    assert len(archs) == NUM_ARCHS and archs[0] == Arch.from_index(0) and archs[15624] == Arch.from_index(15624)
    rng = np.random.default_rng(0)
    table, ops = neighbor_table(), op_table()
    assert table.shape == (NUM_ARCHS, 24) and ops.shape == (NUM_ARCHS, 6)
    for i in rng.integers(NUM_ARCHS, size=200).tolist():
        assert [archs[j] for j in table[i]] == archs[i].neighbors()
        assert tuple(ops[i]) == archs[i].ops and index_of(archs[i]) == archs[i].index == i


def test_neighbour_relation_is_symmetric_and_one_edge():
    table, ops = neighbor_table(), op_table()
    rows = np.repeat(np.arange(NUM_ARCHS), 24)
    cols = table.ravel()
    assert ((ops[rows] != ops[cols]).sum(axis=1) == 1).all()
    pairs = set(zip(rows.tolist(), cols.tolist()))
    assert all((j, i) in pairs for i, j in list(pairs)[:5000])
    assert not table.flags.writeable


def test_index_of_rejects_non_archs():
    with pytest.raises(ValueError, match="expected an nb360 Arch"):
        index_of("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")


def test_uniform_stream_is_seeded_and_in_range():
    a, b = UniformStream(np.random.default_rng(3), block=7), UniformStream(np.random.default_rng(3), block=7)
    draws = [a.integer(5) for _ in range(5000)]
    assert draws == [b.integer(5) for _ in range(5000)]
    counts = np.bincount(draws, minlength=5)
    assert set(draws) == {0, 1, 2, 3, 4} and counts.min() > 900
