"""What the two PDE tasks made by FNO's generators (Darcy Flow, Burgers) share: their MATLAB files,
FNO's pointwise normaliser and the task built from them.

FNO publishes its data sets as ``.mat`` files, some MATLAB v5 (``scipy.io.loadmat``), some v7.3
(HDF5); its ``MatReader`` reads both, and so does ``read_fields``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np
import scipy.io
import torch
from torch import nn
from torch.utils.data import Dataset

if TYPE_CHECKING:
    from nb360.data.task import Task


def write_mat(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """A compressed MATLAB v5 file, what ``scipy.io.loadmat`` reads (the published Darcy files are
    compressed too: 1.6 GB each for more than 2.9 GB of arrays).

    Written under a temporary name and renamed, so a partially written ``.mat`` never exists.
    """
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        with open(temporary, "wb") as handle:
            scipy.io.savemat(handle, arrays, do_compression=True)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def settings_path(path: Path) -> Path:
    """``<file>.json``: the settings a generated file was made with (a published file has none)."""
    return path.with_name(path.name + ".json")


def write_settings(path: Path, settings: dict) -> None:
    settings_path(path).write_text(json.dumps(settings, indent=1) + "\n")


def check_settings(path: Path, settings: dict, unnamed: Sequence[str] = ()) -> None:
    """Refuses a generated file that was made with other ``settings`` than these, naming the ones that
    differ (those in ``unnamed``, derived from the named ones, are compared but not named); a file
    with no settings beside it (a published one) passes."""
    saved = settings_path(path)
    if not saved.exists():
        return
    found = json.loads(saved.read_text())
    differ = [k for k, v in settings.items() if found.get(k) != v]
    if differ:
        named = [f"{k} {found.get(k)!r} there, {settings[k]!r} now" for k in differ if k not in unnamed]
        raise ValueError(f"{path} was generated with other settings ({'; '.join(named)}); move it away or "
                         "choose another --data-root")


def check_finished(path: Path, fields: Sequence[str], shape: tuple[int, ...], meaning: str, settings: dict,
                   unnamed: Sequence[str] = ()) -> None:
    """Accepts an existing generated file only if it is what the generator would write now: its
    ``fields`` of ``shape`` (see ``read_fields``) and its ``settings`` (see ``check_settings``).
    Never overwrites it: anything else is refused, naming what differs."""
    try:
        read_fields(path, fields, shape, meaning)
    except ValueError as error:
        raise ValueError(f"{error}. Refusing to overwrite {path}: move it away or choose another directory") from None
    check_settings(path, settings, unnamed)


def read_fields(path: Path, fields: Sequence[str], shape: tuple[int, ...], meaning: str) -> dict[str, np.ndarray]:
    """``fields`` of the MAT file ``path``, each checked to be a finite floating array of ``shape``
    (``meaning`` names its axes in the error). MATLAB v7.3 files (HDF5) are read as FNO's and
    NAS-Bench-360's ``MatReader`` reads them: with h5py, every array's axes reversed (HDF5 stores
    MATLAB's column-major arrays transposed)."""
    try:
        data = scipy.io.loadmat(path, variable_names=list(fields))
        present = lambda: sorted(name for name, _, _ in scipy.io.whosmat(path))  # noqa: E731
    except NotImplementedError:  # scipy's answer to v7.3: "Please use HDF reader for matlab v7.3 files"
        data, present = _load_v73(path, fields)
    except Exception as error:  # loadmat on arbitrary bytes fails in many ways; all mean "not a MAT file"
        raise ValueError(f"{path}: not a MAT file that scipy.io.loadmat can read ({type(error).__name__}: {error})") from None
    for field in fields:
        if field not in data:
            raise ValueError(f"{path}: field {field!r} is missing; found fields {present()}, expected {list(fields)}")
        array = data[field]
        if array.shape != shape:
            raise ValueError(f"{path}: field {field!r} has shape {array.shape}, expected {shape} ({meaning})")
        if array.dtype not in (np.float64, np.float32):
            raise ValueError(f"{path}: field {field!r} has dtype {array.dtype}, expected float64 (or float32)")
        bad = int(array.size - np.isfinite(array).sum())
        if bad:
            samples = np.flatnonzero(~np.isfinite(array).reshape(len(array), -1).all(axis=1))
            raise ValueError(f"{path}: field {field!r} has {bad} non-finite values (NaN or inf) in {len(samples)} "
                             f"samples (the first: {samples[0]}); expected finite numbers")
    return data


def _load_v73(path: Path, fields: Sequence[str]) -> tuple[dict[str, np.ndarray], Callable[[], list[str]]]:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            names = sorted(f.keys())
            data = {name: np.transpose(f[name][()]) for name in fields if name in f}
    except OSError as error:
        raise ValueError(f"{path}: a MATLAB v7.3 (HDF5) file that h5py cannot read ({error})") from None
    return data, lambda: names


class UnitGaussianNormalizer(nn.Module):
    """FNO's pointwise Gaussian normaliser: per-point mean and std over the training samples.

    Same arithmetic as FNO's and NAS-Bench-360's ``UnitGaussianNormalizer`` (unbiased std, eps added
    to the std), as a module whose statistics are buffers, so ``.to(device)`` moves them and
    ``state_dict`` saves them.
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, x: torch.Tensor, eps: float = 1e-5):
        super().__init__()
        self.register_buffer("mean", x.mean(0))
        self.register_buffer("std", x.std(0))
        self.eps = eps

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / (self.std + self.eps)

    def decode(self, x: torch.Tensor) -> torch.Tensor:
        return x * (self.std + self.eps) + self.mean


def relative_l2_task(card: dict, splits: tuple[Dataset, Dataset, Dataset, UnitGaussianNormalizer],
                     in_shape: tuple[int, ...]) -> Task:
    """A field-to-field ``Task`` from a loader's ``(train, val, test, y_normalizer)``: relative L2 as
    loss and metric, measured in physical units through the targets' normaliser, as FNO and
    NAS-Bench-360 train and evaluate; ``in_shape`` is the grid the splits were loaded at."""
    from nb360.data.task import Task  # imported here: pool workers import this module and need none of these
    from nb360.metrics import RelativeL2
    from nb360.spaces.network import Spec
    from nb360.train import Splits

    train, val, test, y_normalizer = splits
    relative_l2 = RelativeL2(y_normalizer)
    spec = Spec(card["kind"], card["in_channels"], tuple(in_shape), card["out_size"])
    return Task(card["name"], card, Splits(train, val, test), relative_l2, relative_l2, spec, card["batch_size"])
