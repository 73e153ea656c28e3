"""A task: its splits, loss, metric, network spec and batch size, assembled from its card.

Each task is a TOML card in `tasks/` (shapes, files, metric, batch size, source); the card's
`loader` names the data module that reads its files. Files are looked up under a data root:
the `data_root` argument, else `$NB360_DATA`, else `~/.nb360/data`.
"""

from __future__ import annotations

import importlib
import inspect
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from nb360 import cards

DEFAULT_DATA_ROOT = Path("~/.nb360/data")


def resolve_data_root(data_root: str | os.PathLike | None) -> Path:
    """The folder that task files are read from (and generated data written to)."""
    if data_root is not None:
        return Path(data_root).expanduser()
    return Path(os.environ.get("NB360_DATA") or DEFAULT_DATA_ROOT).expanduser()


@dataclass
class Task:
    name: str
    card: dict
    splits: "Splits"  # noqa: F821 - nb360.train.Splits, imported lazily to keep torch off this import
    loss: Callable
    metric: Callable
    spec: "Spec"  # noqa: F821 - nb360.spaces.network.Spec
    batch_size: int

    @property
    def train(self):
        return self.splits.train

    @property
    def val(self):
        return self.splits.val

    @property
    def test(self):
        return self.splits.test

    @property
    def lr(self) -> float:
        """The learning rate to train with: the card's `lr` where NAS-Bench-360 trains the task with
        its own, else NB201's (`nb360.train.LR`)."""
        from nb360.train import LR

        return float(self.card.get("lr", LR))

    @property
    def metric_name(self) -> str:
        return self.card["metric"]

    @classmethod
    def from_card(cls, card: dict, splits: "Splits", loss: Callable, metric: Callable) -> "Task":  # noqa: F821
        """A task whose network spec (kind, channels, shape, outputs) and batch size are the card's."""
        from nb360.spaces.network import Spec

        spec = Spec(card["kind"], card["in_channels"], tuple(card["in_shape"]), card["out_size"])
        return cls(card["name"], card, splits, loss, metric, spec, card["batch_size"])


def load_task(name: str, data_root: str | os.PathLike | None = None, **options) -> Task:
    """Load task `name` from the files under the data root; `options` go to the task's loader
    (e.g. `resolution=` for darcyflow)."""
    card = cards.load("tasks", name)
    module = importlib.import_module(f"nb360.data.{card['loader']}")
    accepted = inspect.signature(module.make_task).parameters
    unknown = sorted(set(options) - set(list(accepted)[2:]))
    if unknown:
        takes = ", ".join(list(accepted)[2:]) or "none"
        raise ValueError(f"task {name!r} takes no option {', '.join(unknown)} (its options: {takes})")
    return module.make_task(card, resolve_data_root(data_root), **options)


def task_status(data_root: str | os.PathLike | None = None) -> list[dict]:
    """One row per task card: shapes, metric, and whether its files are under the data root."""
    root = resolve_data_root(data_root)
    rows = []
    for name in cards.names("tasks"):
        card = cards.load("tasks", name)
        found = all(any(root.glob(pattern)) for pattern in card["files"])
        rows.append({
            "name": name,
            "nb360": card.get("benchmark", "nb360") == "nb360",
            "kind": card["kind"],
            "input": "x".join(str(d) for d in [card["in_channels"], *card["in_shape"]]),
            "output": str(card["out_size"]),
            "metric": card["metric"],
            "files": "found" if found else "missing: " + ", ".join(card["files"]),
        })
    return rows
