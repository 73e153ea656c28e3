"""An nb360 table as a Syne Tune tabular blackbox, so Syne Tune's schedulers run on it in simulated time.

`blackbox(table)` is a `syne_tune.blackbox_repository.BlackboxTabular` laid out as Syne Tune's own
NAS-Bench-201 blackbox (its `conversion_scripts/scripts/nasbench201_import.py`):
- configuration space: the six edges, categorical over the five operations (`edge_<to>_<from>`,
  the keys nb360's Ray Tune and Optuna adapters use); one row per cell, in official index order;
- fidelity: `epoch`, 1 to the table's epochs;
- seeds: the table's seeds that every cell has a finished run of (a simulated trial draws one);
- objectives (all lower is better): `metric_valid_error` and `metric_test_error` (the table's
  metric; NaN after an epoch a `test_every` protocol did not test), `metric_train_error`,
  `metric_runtime` (training seconds of that epoch), `metric_elapsed_time` (training seconds up to
  it, what the simulator charges), `metric_params`, `metric_flops`.

Searches then run with `UserBlackboxBackend(blackbox, elapsed_time_attr=ELAPSED_TIME)` and Syne Tune's
`SimulatorCallback` (docs/interop.md); `result_arch(row)` is the cell of a row of their results. Needs the `nb360[syne-tune]` extra: syne-tune and
huggingface_hub, which its blackbox module imports (nothing is downloaded).
"""

from __future__ import annotations

import os

import numpy as np

from nb360.spaces.nb201 import EDGE_KEYS, NUM_ARCHS, OPS, Arch
from nb360.table.benchmark import Benchmark

FIDELITY = "epoch"
VALID_ERROR, TEST_ERROR, ELAPSED_TIME = "metric_valid_error", "metric_test_error", "metric_elapsed_time"
# objective -> table curve; the time and cost objectives are derived below
CURVE_OBJECTIVES = {VALID_ERROR: "val_metric", TEST_ERROR: "test_metric", "metric_train_error": "train_metric"}
OBJECTIVES = (*CURVE_OBJECTIVES, "metric_runtime", ELAPSED_TIME, "metric_params", "metric_flops")


def result_arch(row) -> Arch:
    """The cell of a row of a Syne Tune run's results (its `config_edge_<to>_<from>` columns)."""
    return Arch(tuple(OPS.index(row[f"config_{key}"]) for key in EDGE_KEYS))


def blackbox(table: Benchmark | str | os.PathLike):
    """The table as a Syne Tune `BlackboxTabular` (see the module's docstring)."""
    try:
        import pandas as pd
        from syne_tune.blackbox_repository.blackbox_tabular import BlackboxTabular
        from syne_tune.config_space import choice, randint
    except ImportError as error:
        raise ValueError(f"a Syne Tune blackbox needs syne-tune and huggingface_hub (pip install "
                         f"'nb360[syne-tune]'): {error}") from None
    bench = table if isinstance(table, Benchmark) else Benchmark.load(table)
    finished = np.isfinite(bench.at_epoch("train_loss"))  # (A, S)
    complete = [col for col in range(len(bench.seeds)) if finished[:, col].all()]
    if not complete:
        raise ValueError(f"{bench.path}: no seed has a finished run of every cell ({finished.sum(axis=0).tolist()} "
                         f"of {NUM_ARCHS} for seeds {bench.seeds}); a tabular blackbox needs every cell")
    values = np.full((NUM_ARCHS, len(complete), bench.epochs, len(OBJECTIVES)), np.nan, dtype=np.float32)
    for k, name in enumerate(OBJECTIVES):
        if name in CURVE_OBJECTIVES:
            values[..., k] = bench.curves(CURVE_OBJECTIVES[name])[:, complete]
    elapsed = bench.curves("train_seconds")[:, complete]
    values[..., OBJECTIVES.index(ELAPSED_TIME)] = elapsed
    values[..., OBJECTIVES.index("metric_runtime")] = np.diff(elapsed, axis=-1, prepend=0.0)
    costs = bench.df
    values[..., OBJECTIVES.index("metric_params")] = costs["params"].to_numpy()[:, None, None]
    values[..., OBJECTIVES.index("metric_flops")] = costs["flops"].to_numpy()[:, None, None]
    hyperparameters = pd.DataFrame([a.op_names for a in Arch.all()], columns=list(EDGE_KEYS))
    return BlackboxTabular(
        hyperparameters=hyperparameters,
        configuration_space={key: choice(list(OPS)) for key in EDGE_KEYS},
        fidelity_space={FIDELITY: randint(lower=1, upper=bench.epochs)},
        objectives_evaluations=values,
        fidelity_values=np.arange(1, bench.epochs + 1),
        objectives_names=list(OBJECTIVES),
    )
