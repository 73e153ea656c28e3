import os
import subprocess
import sys

import h5py
import numpy as np
import pytest

from nb360.spaces.nb201 import Arch, iso_class_ids, iso_class_representatives
from nb360.table.benchmark import Benchmark, available
from nb360.table.schema import CURVES, DONE, FAILED, MISSING, TableReplacedError, TableWriter, add_seeds, create


def records(epochs, base, seconds_per_epoch=2.0):
    """Fit-style records whose values encode (base, epoch) so every lookup can be checked."""
    return [
        {"train_loss": base + e, "train_metric": base + e + 0.25, "val_metric": base + e + 0.5,
         "test_metric": base + e + 0.75, "train_seconds": seconds_per_epoch * (e + 1)}
        for e in range(epochs)
    ]


@pytest.fixture
def table(tmp_path):
    path = create(tmp_path / "t.h5", task="darcyflow", metric="relative_l2", seeds=[0, 7], epochs=3,
                  protocol={"C": 4, "N": 1}, provenance={"command": "test"})
    with TableWriter(path) as w:
        w.write_run([0, 1], 0, records(3, 10.0))  # two members of one class share a run
        w.write_run([0, 1], 7, records(3, 20.0))
        w.write_run(5, 0, records(3, 1.0))
        w.write_run(6, 7, records(2, 3.0))  # a run of fewer epochs than the protocol
        w.write_failure(9, 0, "RuntimeError: out of memory")
        params = np.arange(15625, dtype=float)
        w.set_costs(params=params, flops=2 * params)
        w.set_proxy("synflow", -params)
    return path


def test_schema_fields_and_missing_values(table):
    with h5py.File(table) as f:
        assert f.attrs["schema_version"] == 1 and f.attrs["metric_direction"] == "min"
        assert f["curves/val_metric"].shape == (15625, 2, 3) and f["curves/val_metric"].dtype == np.float32
        assert np.isnan(f["curves/test_metric"][2]).all()  # never 0 for missing
        assert np.isnan(f["archs/latency_ms"][()]).all()
        assert (f["archs/iso_class"][()] == iso_class_ids()).all()
        status = f["runs/status"][()]
        assert status[0].tolist() == [DONE, DONE] and status[6].tolist() == [MISSING, DONE]
        assert status[9, 0] == FAILED and (status == FAILED).sum() == 1


def test_create_refuses_to_overwrite_and_bad_input(table, tmp_path):
    with pytest.raises(FileExistsError):
        create(table, task="x", metric="m", seeds=[0], epochs=1, protocol={}, provenance={})
    with pytest.raises(ValueError, match="distinct seeds"):
        create(tmp_path / "u.h5", task="x", metric="m", seeds=[0, 0], epochs=1, protocol={}, provenance={})
    with TableWriter(table) as w:
        with pytest.raises(ValueError, match="seed 3 is not one of"):
            w.write_run(0, 3, records(3, 0.0))
        with pytest.raises(ValueError, match="1 to 3 epochs"):
            w.write_run(0, 0, records(4, 0.0))
        with pytest.raises(ValueError, match="shape \\(15625,\\)"):
            w.set_costs(params=np.zeros(3))


def test_add_seeds_widens_every_seed_column_and_keeps_the_rest(table):
    before = Benchmark.load(table)
    old_curves = {name: np.array(before.curves(name)) for name in CURVES}  # read now: a Benchmark reads curves lazily
    assert add_seeds(table, [7, 0]) == [] and Benchmark.load(table).seeds == [0, 7]  # nothing to add
    assert add_seeds(table, [0, 3, 3, 2]) == [3, 2]
    after = Benchmark.load(table)
    assert after.seeds == [0, 7, 3, 2] and after.protocol == {**before.protocol, "seeds": [0, 7, 3, 2]}
    for name in CURVES:
        curves = after.curves(name)
        np.testing.assert_array_equal(curves[:, :2], old_curves[name])
        assert curves.shape == (15625, 4, 3) and np.isnan(curves[:, 2:]).all()
    assert after.failures() == before.failures() == [(9, 0, "RuntimeError: out of memory")]
    np.testing.assert_array_equal(after.df["proxy_synflow"], before.df["proxy_synflow"])
    np.testing.assert_array_equal(after.df["flops"], before.df["flops"])
    assert after.provenance == before.provenance and list(table.parent.iterdir()) == [table]  # no temporary left
    with TableWriter(table) as w:  # the new columns take runs like any other
        w.write_run(5, 2, records(3, 4.0))
    assert Benchmark.load(table).query(5, seed=2)["test_metric"] == 4.0 + 2 + 0.75


def test_not_a_table(tmp_path):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f["x"] = 1
    with pytest.raises(ValueError, match="not an nb360 table"):
        Benchmark.load(path)


def test_query_final_epoch_seed_average_and_costs(table):
    b = Benchmark.load(table)
    q = b.query(0)
    assert q["epoch"] == 3 and q["val_metric"] == pytest.approx((12.5 + 22.5) / 2)
    assert q["test_metric"] == pytest.approx((12.75 + 22.75) / 2)
    assert q["train_seconds"] == pytest.approx(6.0) and q["params"] == 0 and q["runs_done"] == 2
    assert b.query(1, seed=7)["val_metric"] == pytest.approx(22.5)
    assert b.query(Arch.from_index(1), epoch=1, seed=0)["train_loss"] == pytest.approx(10.0)
    assert b.query(str(Arch.from_index(5)))["proxy_synflow"] == -5
    assert np.isnan(b.query(2)["val_metric"])  # no run: NaN, not 0
    assert np.isnan(b.query(6)["val_metric"])  # its only run stopped before the last epoch
    assert b.query(6, epoch=2)["val_metric"] == pytest.approx(4.5)
    with pytest.raises(ValueError, match="1..3"):
        b.query(0, epoch=4)
    with pytest.raises(ValueError, match="seeds are \\[0, 7\\]"):
        b.query(0, seed=1)


def test_curve(table):
    b = Benchmark.load(table)
    np.testing.assert_allclose(b.curve(0, "val_metric", seed=0), [10.5, 11.5, 12.5])
    np.testing.assert_allclose(b.curve(0, "test_metric"), [15.75, 16.75, 17.75])
    with pytest.raises(ValueError, match="unknown curve"):
        b.curve(0, "accuracy")


def test_simulate_sees_validation_only(table):
    b = Benchmark.load(table)
    score, seconds = b.simulate(5, epochs=2, seed=0)
    assert (score, seconds) == (pytest.approx(2.5), pytest.approx(4.0))
    assert b.simulate(0) == (pytest.approx(17.5), pytest.approx(6.0))
    draws = {b.simulate(0, rng=np.random.default_rng(s))[0] for s in range(20)}
    assert draws == {12.5, 22.5}  # one seed's run each time (exact in float32), both seeds drawn


def test_simulate_draws_among_the_runs_the_table_has(table):
    """A partial table: a seed not trained yet (or a run that stopped early) is not drawn."""
    b = Benchmark.load(table)
    rng = np.random.default_rng(0)
    assert {b.simulate(5, rng=rng) for _ in range(20)} == {(3.5, 6.0)}  # seed 0's run only (exact in float32)
    assert {b.simulate(6, epochs=2, rng=rng)[0] for _ in range(20)} == {4.5}  # seed 7's run only
    assert all(np.isnan(b.simulate(i, rng=rng)[0]) for i in (2, 6))  # no run, or none reached the last epoch


def test_simulate_refuses_tables_without_validation(tmp_path):
    path = create(tmp_path / "t.h5", task="t", metric="m", seeds=[0], epochs=1, protocol={}, provenance={})
    with TableWriter(path) as w:
        w.write_run(0, 0, [{"train_loss": 1, "train_metric": 1, "val_metric": float("nan"),
                            "test_metric": 0.5, "train_seconds": 1}])
    b = Benchmark.load(path)
    assert b.query(0)["test_metric"] == 0.5
    with pytest.raises(ValueError, match="never uses test scores"):
        b.simulate(0)


def test_best_regret_df_and_completeness(table):
    b = Benchmark.load(table)
    best, value = b.best("test_metric")
    assert best.index == 5 and value == pytest.approx(3.75)
    assert b.regret(0) == pytest.approx(17.75 - 3.75) and b.regret(5) == 0
    df = b.df
    assert df.shape[0] == 15625 and list(df.index[:2]) == [0, 1]
    assert {"arch", "iso_class", "params", "flops", "latency_ms", *CURVES, "proxy_synflow", "runs_done"} <= set(df.columns)
    assert df.loc[5, "test_metric"] == pytest.approx(3.75) and np.isnan(df.loc[2, "test_metric"])
    assert df.loc[5, "arch"] == str(Arch.from_index(5))
    assert b.completeness() == {"runs": 31250, "done": 6, "failed": 1, "archs_with_a_run": 4,
                                "done_per_seed": {0: 3, 7: 3}}
    assert b.failures() == [(9, 0, "RuntimeError: out of memory")]
    assert len(b.archs()) == 15625 and (b.iso_classes() == iso_class_ids()).all()


def test_class_rows_name_the_smallest_scored_member_of_each_class(tmp_path):
    iso, classes = iso_class_ids(), iso_class_representatives()
    assert len(classes) == 6466 and (np.diff(classes) > 0).all() and (iso[classes] == classes).all()
    zero, three = np.flatnonzero(iso == 0)[:3], np.flatnonzero(iso == 3)[:3]  # two classes, 3+ members each
    path = create(tmp_path / "t.h5", task="darcyflow", metric="relative_l2", seeds=[0], epochs=2, protocol={},
                  provenance={"command": "test"})
    with TableWriter(path) as w:
        w.write_run([zero[2], zero[1]], 0, records(2, 1.0))  # members trained apart, as in NATS-Bench files
        w.write_run(three[2], 0, records(1, 2.0))  # stopped after 1 of 2 epochs: no final score
        w.write_failure(three[0], 0, "RuntimeError: out of memory")
    rows = Benchmark.load(path).class_rows()
    assert rows.dtype == np.int64 and len(rows) == 6466
    assert rows[0] == zero[1] and (rows[1:] == -1).all()
def test_load_by_name(table, monkeypatch):
    monkeypatch.setenv("NB360_TABLES", str(table.parent))
    assert "t" in available()
    assert Benchmark.load("t").path == table
    with pytest.raises(ValueError, match="unknown table 'nope'; available: .*t"):
        Benchmark.load("nope")


def test_query_side_does_not_import_torch():
    code = "import sys; from nb360 import Benchmark; import nb360.table.benchmark; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_bulk_writes_equal_single_writes(tmp_path):
    runs = [([0, 1], 0, records(3, 10.0)), (5, 7, records(2, 1.0)), (9, 0, records(3, 4.0))]
    paths = []
    for name, bulk in (("single.h5", False), ("bulk.h5", True)):
        path = create(tmp_path / name, task="t", metric="m", seeds=[0, 7], epochs=3, protocol={}, provenance={})
        with TableWriter(path) as w:
            w.write_failure(9, 0, "first attempt failed")
            if bulk:
                w.write_runs(runs)
            else:
                for indices, seed, recs in runs:
                    w.write_run(indices, seed, recs)
        paths.append(path)
    with h5py.File(paths[0]) as a, h5py.File(paths[1]) as b:
        for name in CURVES:
            np.testing.assert_array_equal(a["curves"][name][()], b["curves"][name][()])
        np.testing.assert_array_equal(a["runs/status"][()], b["runs/status"][()])
        assert b["runs/status"][9, 0] == DONE and b["runs/error"][9, 0] in (b"", "")
        assert (b["runs/status"][()] == DONE).sum() == 4


def test_at_epoch_gives_whole_read_only_columns(table):
    b = Benchmark.load(table)
    final, first = b.at_epoch("val_metric"), b.at_epoch("val_metric", 1)
    assert final.shape == first.shape == (15625, 2) and not final.flags.writeable
    assert final[0].tolist() == [12.5, 22.5] and first[0].tolist() == [10.5, 20.5]
    assert np.isnan(final[6, 0]) and np.isnan(final[6, 1]) and first[6, 1] == 3.5  # a 2-epoch run has no epoch 3
    assert b.at_epoch("train_seconds", 2)[5, 0] == 4.0
    with pytest.raises(ValueError, match="unknown curve"):
        b.at_epoch("accuracy")
    with pytest.raises(ValueError, match="epoch must be in 1..3"):
        b.at_epoch("val_metric", 4)


def test_a_writer_whose_file_is_replaced_saves_what_it_wrote_and_stops(table, tmp_path):
    """As `git stash` or `git checkout` does to a table a build is writing: a new file at the path."""
    before = table.read_bytes()
    with TableWriter(table) as w:
        w.write_run(20, 0, records(3, 5.0))
        replacement = tmp_path / "other.h5"
        replacement.write_bytes(before)
        os.replace(replacement, table)
        with pytest.raises(TableReplacedError, match="was replaced or removed") as error:
            w.write_run(21, 0, records(3, 6.0))
    saved = table.with_name(f"t.written-{os.getpid()}.h5")
    assert str(saved) in str(error.value)
    assert table.read_bytes() == before  # the replacement is left alone
    kept = Benchmark.load(saved)  # both runs, the one written after the replacement too
    assert kept.query(20, seed=0)["val_metric"] == pytest.approx(7.5)
    assert kept.query(21, seed=0)["val_metric"] == pytest.approx(8.5)
    assert kept.completeness()["done"] == 8
