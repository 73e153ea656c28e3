import shutil

import numpy as np
import pandas as pd
import pytest

from nb360.hypotheses.common import (Report, agree, at_epoch, by_class, caveats, fmt, load_tables,
                                     markdown_table)
from nb360.spaces.nb201 import iso_class_ids, iso_class_representatives
from nb360.table import manifest
from nb360.table.benchmark import Benchmark


def test_by_class_reads_each_class_at_its_smallest_scored_member(partial):
    rows, scores, iso, classes = partial.class_rows(), partial.final("test_metric"), iso_class_ids(), iso_class_representatives()
    assert len(rows) == len(classes) == 6466
    for k in np.random.default_rng(0).choice(6466, 300, replace=False):
        members = np.flatnonzero(iso == classes[k])
        scored = members[np.isfinite(scores[members])]
        assert rows[k] == (scored.min() if len(scored) else -1)
    values = by_class(scores, rows)
    assert np.isnan(values[rows < 0]).all() and (values[rows >= 0] == scores[rows[rows >= 0]]).all()


def test_at_epoch_is_the_mean_over_seeds_that_have_it(nats_cifar):
    values = np.asarray(nats_cifar.at_epoch("val_metric", 3), dtype=float)[:, 0]
    np.testing.assert_array_equal(at_epoch(nats_cifar, "val_metric", 3), values)


def test_agree_reports_n_instead_of_failing_on_too_few_rows():
    out = agree(np.array([1.0, np.nan, 3.0]), np.array([1.0, 2.0, np.nan]))
    assert out["n"] == 1 and np.isnan(out["spearman"]) and np.isnan(out["regret_of_pick"])
    assert agree(np.arange(5.0), np.arange(5.0))["spearman"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match=r"in \(0, 1\]"):
        agree(np.arange(5.0), np.arange(5.0), top=2.0)


def test_caveats_say_partial_reduced_no_validation_and_recorded_fidelity(tmp_path, partial, nats_darcy):
    text = " ".join(caveats(partial))
    assert "partial: 6," in text and "reduced protocol (C=4, N=1, 1 epochs" in text
    assert "no validation scores" not in text
    text = " ".join(caveats(nats_darcy))
    assert "no validation scores" in text and "reduced protocol (12 epochs;" in text  # C=16, N=5: only epochs
    # a table listed in a manifest with a measured fidelity and seed agreement: the caveats quote them
    copy = shutil.copy(partial.path, tmp_path / "listed.h5")
    manifest.write(tmp_path, {"listed.h5": {
        "sha256": manifest.sha256(copy),
        "fidelity": {"against": "hifi.h5", "spearman": 0.8123456, "independent_seed": {"seed": 1, "spearman": 0.7}},
        "seed_agreement": {"seeds": [0, 1], "n": 1818, "spearman": 0.7422}}})
    text = caveats(Benchmark.load(copy))
    assert "`listed`'s manifest records its fidelity: against=hifi.h5, spearman=0.8123, " \
           "independent_seed=(seed=1, spearman=0.7)" in text
    assert "`listed`'s manifest records the agreement of its seeds: seeds=[0, 1], n=1818, spearman=0.7422" in text


def test_load_tables_checks_count_and_names(partial):
    assert load_tables([partial.path], "q")[0].path == partial.path
    with pytest.raises(ValueError, match="unknown table 'no-such-table'"):
        load_tables(["no-such-table"], "q")


def test_numbers_as_text():
    assert [fmt(v) for v in (3, 123456, 0.123456, float("nan"), float("-inf"), True, 10950.0, 12.0, 1234.5)] == \
        ["3", "123,456", "0.1235", "n/a", "-inf", "True", "10,950", "12", "1234"]
    frame = pd.DataFrame({"a": range(5), "b": np.linspace(0, 1, 5)})
    text = markdown_table(frame, max_rows=3)
    assert text.splitlines()[:3] == ["| a | b |", "|---|---|", "| 0 | 0 |"] and "(2 more rows in the CSV)" in text


def test_csvs_keep_twelve_digits_so_machines_write_the_same_file(tmp_path):
    # two values that differ in the last bits only, as two BLAS builds give them
    a, b = 0.5869024233034636, 0.586902423303464
    for value in (a, b):
        Report("q", "Q?", tmp_path, [], {"numbers": pd.DataFrame({"x": [value, 1 / 3, 12.0]})}, [], "answer").write()
        assert (tmp_path / "numbers.csv").read_text() == "x\n0.586902423303\n0.333333333333\n12\n"
