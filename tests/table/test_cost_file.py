import pytest

from nb360.spaces.costs import costs
from nb360.spaces.nb201 import Arch
from nb360.spaces.network import Spec
from nb360.table import cost_file
from nb360.table.benchmark import available
from nb360.table.schema import create


def test_costs_of_every_cell_per_task_match_direct_counts(tmp_path, monkeypatch):
    out = cost_file.write(tmp_path / "nb201-costs.h5", tasks=["darcyflow", "digits"], C=4, N=1, progress=False)
    table = cost_file.read(out)
    assert sorted(table) == ["darcyflow", "digits"]
    for task, spec in (("darcyflow", Spec("dense2d", 3, (85, 85), 1)), ("digits", Spec("classify2d", 1, (8, 8), 10))):
        assert table[task]["params"].shape == table[task]["flops"].shape == (15625,)
        for index in (0, 1, 4321, 15624):
            direct = costs(Arch.from_index(index), spec, C=4, N=1)
            assert (table[task]["params"][index], table[task]["flops"][index]) == (direct.params, direct.flops)

    # an existing cost file is kept unless replacing is asked for
    before = out.read_bytes()
    with pytest.raises(FileExistsError, match="a cost file is already there"):
        cost_file.write(out, tasks=["digits"], C=4, N=1, progress=False)
    assert out.read_bytes() == before
    assert sorted(cost_file.read(cost_file.write(out, tasks=["digits"], C=4, N=1, progress=False, overwrite=True))) == ["digits"]

    # beside tables, the cost file is not offered as a table
    create(tmp_path / "t.h5", task="x", metric="m", seeds=[0], epochs=1, protocol={}, provenance={})
    monkeypatch.setenv("NB360_TABLES", str(tmp_path))
    assert "t" in available() and "nb201-costs" not in available()


def test_a_table_is_not_a_cost_file(tmp_path):
    path = create(tmp_path / "t.h5", task="x", metric="m", seeds=[0], epochs=1, protocol={}, provenance={})
    with pytest.raises(ValueError, match="not an nb201 cost file"):
        cost_file.read(path)


def test_the_ten_nb360_tasks_exclude_extra_cards():
    names = cost_file.nb360_tasks()
    assert "darcyflow" in names and "digits" not in names
