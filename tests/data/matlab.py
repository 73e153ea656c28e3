"""MATLAB v7.3 files as MATLAB writes them, for the loaders of FNO's data sets (Darcy Flow, Burgers)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_v73(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """A MATLAB v7.3 file as MATLAB writes one: HDF5 behind a 512-byte MAT header, each array stored
    with its axes reversed (MATLAB is column-major)."""
    import h5py

    with h5py.File(path, "w", userblock_size=512) as f:
        for name, array in arrays.items():
            f[name] = np.ascontiguousarray(np.transpose(array))
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 .".ljust(116)
    with path.open("r+b") as f:
        f.write(header + b"\0" * 8 + b"\x00\x02" + b"IM")
