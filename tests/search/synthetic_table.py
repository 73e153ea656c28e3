"""A complete table of all 15,625 cells with synthetic but structured numbers, for the search tests
and scripts/bench/search_speed.py.

Not a stand-in for a real table: it exercises the runner and lets the tests check behaviour that
depends on the landscape. The final error of a cell is a sum of per-edge, per-operation effects
plus a small pairwise interaction (a smooth landscape, where neighbours score alike, as in NB201's
real tables), curves decay towards it over the epochs with seed noise, the test score is the
validation score plus a small independent offset (so the two can be told apart), and training
time grows with the number of convolutions.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nb360.search.space import op_table
from nb360.spaces.nb201 import NUM_ARCHS, NUM_EDGES, NUM_OPS
from nb360.table.schema import TableWriter, create


def quality(seed: int = 0) -> np.ndarray:
    """(A,) the noiseless final error of every cell."""
    rng = np.random.default_rng(seed)
    ops = op_table()
    effects = rng.uniform(0.0, 0.05, size=(NUM_EDGES, NUM_OPS))
    pair = rng.uniform(0.0, 0.01, size=(NUM_OPS, NUM_OPS))
    q = 0.05 + effects[np.arange(NUM_EDGES), ops].sum(axis=1)
    return q + pair[ops[:, 0], ops[:, 5]] + pair[ops[:, 2], ops[:, 3]]


def write_table(path: str | Path, epochs: int = 4, seeds: tuple[int, ...] = (0, 1), noise: float = 0.002,
                missing: int = 0, seed: int = 0) -> Path:
    """Write the table; `missing` archs (chosen at random) get no run at all."""
    rng = np.random.default_rng(seed + 1)
    q = quality(seed)
    ops = op_table()
    seconds_per_epoch = 1.0 + 2.0 * np.isin(ops, (2, 3)).sum(axis=1)  # convolutions cost time
    test_offset = rng.normal(0.0, 0.003, NUM_ARCHS)
    skip = set(rng.choice(NUM_ARCHS, size=missing, replace=False).tolist()) if missing else set()
    path = create(path, task="synthetic", metric="error", seeds=list(seeds), epochs=epochs,
                  protocol={"synthetic": True}, provenance={"command": "tests/search/synthetic_table.py"})
    e = np.arange(1, epochs + 1)
    runs = []
    for s in seeds:
        val = q[:, None] + 0.2 * np.exp(-e[None, :]) + rng.normal(0.0, noise, (NUM_ARCHS, epochs))
        for i in range(NUM_ARCHS):
            if i in skip:
                continue
            records = [{"train_loss": val[i, k], "train_metric": val[i, k] - 0.01, "val_metric": val[i, k],
                        "test_metric": val[i, k] + test_offset[i], "train_seconds": seconds_per_epoch[i] * (k + 1)}
                       for k in range(epochs)]
            runs.append((i, s, records))
    with TableWriter(path) as w:
        w.write_runs(runs)
        w.set_proxy("quality", -q + rng.normal(0.0, 0.01, NUM_ARCHS))  # higher is better, and informative
    return path
