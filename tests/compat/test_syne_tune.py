"""An nb360 table as a Syne Tune blackbox: the table's numbers, and Syne Tune's schedulers running on
it in simulated time through its own simulator backend."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from synthetic_table import write_table

from nb360.compat.syne_tune import ELAPSED_TIME, FIDELITY, OBJECTIVES, TEST_ERROR, VALID_ERROR, blackbox, result_arch
from nb360.spaces.nb201 import EDGE_KEYS, NUM_ARCHS, Arch
from nb360.table.benchmark import Benchmark
from nb360.table.manifest import DEFAULT_TABLE


@pytest.fixture(scope="module")
def bench():
    return Benchmark.load(DEFAULT_TABLE)


@pytest.fixture(scope="module")
def bb(bench, syne_tune):
    return blackbox(bench)


def config(index: int) -> dict:
    return dict(zip(EDGE_KEYS, Arch.from_index(index).op_names))


def test_the_blackbox_holds_the_tables_numbers(bench, bb):
    complete = [s for s, n in bench.completeness()["done_per_seed"].items() if n == NUM_ARCHS]
    assert bb.num_seeds == len(complete) >= 1
    assert list(bb.objectives_names) == list(OBJECTIVES)
    assert list(bb.fidelity_values) == list(range(1, bench.epochs + 1))
    for index in (0, 123, 9999, 15624):
        for epoch in (1, 4, bench.epochs):
            for k, seed in enumerate(complete):
                got = bb.objective_function(config(index), fidelity={FIDELITY: epoch}, seed=k)
                row = bench.query(index, epoch=epoch, seed=seed)
                before = bench.query(index, epoch=epoch - 1, seed=seed)["train_seconds"] if epoch > 1 else 0.0
                expected = {VALID_ERROR: row["val_metric"], TEST_ERROR: row["test_metric"],
                            "metric_train_error": row["train_metric"], ELAPSED_TIME: row["train_seconds"],
                            "metric_runtime": row["train_seconds"] - before, "metric_params": row["params"],
                            "metric_flops": row["flops"]}
                # a --test-every protocol leaves the test score of a skipped epoch NaN, in both
                assert got == pytest.approx(expected, rel=1e-5, nan_ok=True)


def test_a_table_without_a_complete_seed_is_refused(tmp_path, syne_tune):
    partial = Benchmark(write_table(tmp_path / "partial.h5", epochs=2, seeds=(0,), missing=3))
    with pytest.raises(ValueError, match=r"no seed has a finished run of every cell \(\[15622\]"):
        blackbox(partial)


@pytest.mark.parametrize("scheduler", ["ASHA", "RandomSearch", "REA"])
def test_syne_tunes_schedulers_run_on_it_in_simulated_time(bench, bb, scheduler, tmp_path, monkeypatch):
    from syne_tune import StoppingCriterion, Tuner
    from syne_tune.backend.simulator_backend.simulator_callback import SimulatorCallback
    from syne_tune.blackbox_repository.simulated_tabular_backend import UserBlackboxBackend
    from syne_tune.optimizer import baselines

    monkeypatch.setenv("SYNETUNE_FOLDER", str(tmp_path))
    kwargs = {"ASHA": dict(metric=VALID_ERROR, time_attr=FIDELITY, max_t=bench.epochs),
              "RandomSearch": dict(metrics=[VALID_ERROR]), "REA": dict(metric=VALID_ERROR)}[scheduler]
    budget = 300.0  # simulated seconds of training
    tuner = Tuner(trial_backend=UserBlackboxBackend(blackbox=bb, elapsed_time_attr=ELAPSED_TIME),
                  scheduler=getattr(baselines, scheduler)(bb.configuration_space, random_seed=0, **kwargs),
                  stop_criterion=StoppingCriterion(max_wallclock_time=budget), n_workers=4, sleep_time=0,
                  callbacks=[SimulatorCallback()], save_tuner=False)
    tuner.run()
    results = pd.read_csv(Path(tuner.tuner_path) / "results.csv.zip")
    assert results["trial_id"].nunique() > 20
    assert results["st_tuner_time"].max() <= budget * 1.2  # simulated, not waited for
    # Syne Tune draws one of the blackbox's seeds per trial: every row of a trial holds one
    # complete seed's numbers of its cell at its epoch
    complete = [s for s, n in bench.completeness()["done_per_seed"].items() if n == NUM_ARCHS]
    for _, trial in results.groupby("trial_id"):
        arch = result_arch(trial.iloc[0])
        matching = [seed for seed in complete
                    if all(row.metric_valid_error == pytest.approx(expected["val_metric"], rel=1e-5)
                           and row.metric_elapsed_time == pytest.approx(expected["train_seconds"], rel=1e-5)
                           for row in trial.itertuples()
                           for expected in [bench.query(arch, epoch=int(row.epoch), seed=seed)])]
        assert matching, trial
    if scheduler == "ASHA":  # stops most trials early: many end before the last epoch
        last = results.groupby("trial_id")["epoch"].max()
        assert (last < bench.epochs).mean() > 0.5
