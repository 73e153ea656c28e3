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


SPLITS = ("search", "final")


def load_task(name: str, data_root: str | os.PathLike | None = None, splits: str = "search", **options) -> Task:
    """Load task `name` from the files under the data root; `options` go to the task's loader
    (e.g. `resolution=` for darcyflow).

    `splits="search"`: train / validation / test as NAS-Bench-360's search runs use them.
    `splits="final"`: as its final (`*_retrain`) runs do, training on train and validation together
    (NinaPro: 2,638 + 659 = 3,297 samples), no validation set, the same test set; normalisers fitted
    on the search training split are kept."""
    if splits not in SPLITS:
        raise ValueError(f"splits={splits!r}: expected one of {', '.join(SPLITS)}")
    card = cards.load("tasks", name)
    module = importlib.import_module(f"nb360.data.{card['loader']}")
    unknown = sorted(set(options) - set(task_options(name)))
    if unknown:
        takes = ", ".join(task_options(name)) or "none"
        raise ValueError(f"task {name!r} takes no option {', '.join(unknown)} (its options: {takes})")
    task = module.make_task(card, task_root(card, resolve_data_root(data_root)), **options)
    if splits == "final":
        task = _final_splits(task)
    return task


def _final_splits(task: Task) -> Task:
    from dataclasses import replace

    from torch.utils.data import ConcatDataset

    if task.val is None:
        raise ValueError(f"task {task.name!r} has no validation split to train on")
    return replace(task, splits=task.splits._replace(train=ConcatDataset([task.train, task.val]), val=None))


def task_options(name: str) -> list[str]:
    """The options a task's loader takes beyond (card, data root), e.g. darcyflow's resolution and test_size."""
    card = cards.load("tasks", name)
    module = importlib.import_module(f"nb360.data.{card['loader']}")
    return list(inspect.signature(module.make_task).parameters)[2:]


def task_root(card: dict, root: Path) -> Path:
    """The folder a task's files are read from: the data root itself (every task's files side by
    side), or the task's own folder in it as NAS-Bench-360's `download_datasets.sh` lays them out
    (`root/ninapro/...`, `root/cifar-100/cifar-100-python/...`; the card's `download_folder`) when
    the files are there and not in the root."""
    folder = card.get("download_folder")
    if folder and not _has_files(card, root) and _has_files(card, root / folder):
        return root / folder
    return root


def _has_files(card: dict, root: Path) -> bool:
    return bool(card["files"]) and root.is_dir() and all(any(root.glob(pattern)) for pattern in card["files"])


def task_status(data_root: str | os.PathLike | None = None) -> list[dict]:
    """One row per task card: shapes, metric, and whether its files are under the data root."""
    root = resolve_data_root(data_root)
    rows = []
    for name in cards.names("tasks"):
        card = cards.load("tasks", name)
        folder = task_root(card, root)
        found = all(any(folder.glob(pattern)) for pattern in card["files"])
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
