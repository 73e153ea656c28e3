"""`nb201-costs.h5`: exact params and FLOPs of all 15,625 cells for the network of every task.

Trained tables hold the costs of the network they trained (often a reduced width and depth); this
file holds them at NAS-Bench-360's size (C=16, N=5) with each task's own input and output, so a
researcher can ask about model size on every task without training anything. Counts come from
`nb360.spaces.costs.table_costs` (exact: per-edge additivity checked against direct counts).

Layout::

    /                  attrs: content = "nb201-costs", space, num_archs, C, N, nb360_version
    /<task>/params     int64 (A,)   trainable parameters, official index order
    /<task>/flops      int64 (A,)   multiply-adds for one input
    /<task>            attrs: kind, in_channels, in_shape, out_size (the network spec)

Reading needs h5py and numpy only; writing builds networks, so it imports torch.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import h5py
import numpy as np

from nb360 import cards
from nb360.spaces.nb201 import NUM_ARCHS

CONTENT = "nb201-costs"
_COMPRESSION = {"compression": "gzip", "compression_opts": 4, "shuffle": True}


def nb360_tasks() -> list[str]:
    """The task cards of NAS-Bench-360's ten tasks (cards marked as extra are left out)."""
    return [name for name in cards.names("tasks") if cards.load("tasks", name).get("benchmark", "nb360") == "nb360"]


def write(out: str | os.PathLike, tasks: Sequence[str] | None = None, C: int = 16, N: int = 5,
          progress: bool = True, overwrite: bool = False) -> Path:
    """Count the costs of every cell for each task's network and write them to `out` (an existing
    file is refused unless `overwrite`)."""
    from tqdm import tqdm

    from nb360 import __version__
    from nb360.spaces.costs import table_costs
    from nb360.spaces.network import Spec

    out = Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out}: a cost file is already there; choose another --out or pass --overwrite")
    tasks = list(tasks) if tasks is not None else nb360_tasks()
    tmp = out.with_name(f".{out.name}.tmp")
    out.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(tmp, "w") as f:
        f.attrs.update(content=CONTENT, space="nb201", num_archs=NUM_ARCHS, C=C, N=N, nb360_version=__version__)
        for name in tqdm(tasks, desc="costs", unit="task", disable=not progress):
            card = cards.load("tasks", name)
            spec = Spec(card["kind"], card["in_channels"], tuple(card["in_shape"]), card["out_size"])
            params, flops = table_costs(spec, C, N)
            group = f.create_group(name)
            group.attrs.update(kind=spec.kind, in_channels=spec.in_channels, in_shape=list(spec.in_shape),
                               out_size=spec.out_size)
            group.create_dataset("params", data=params.astype(np.int64), **_COMPRESSION)
            group.create_dataset("flops", data=flops.astype(np.int64), **_COMPRESSION)
    os.replace(tmp, out)
    return out


def read(name_or_path: str | os.PathLike = "nb201-costs") -> dict[str, dict[str, np.ndarray]]:
    """{task: {"params": (A,), "flops": (A,)}} from a cost file: the shipped one by default (checked
    against the manifest like a shipped table), or any path."""
    from nb360.table import manifest
    from nb360.table.benchmark import resolve

    path = resolve(name_or_path)
    manifest.verify(path)
    with h5py.File(path, "r") as f:
        if f.attrs.get("content") != CONTENT:
            raise ValueError(f"{path}: not an nb201 cost file (attribute content={f.attrs.get('content')!r}, "
                             f"expected {CONTENT!r})")
        return {task: {name: f[task][name][()] for name in ("params", "flops")} for task in f}
