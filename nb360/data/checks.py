"""Checks shared by the task loaders: a file is there, and it holds what the published format says.

Every error names the file, the field, what was found and what was expected, on one line (the CLI
prints it as is). A missing file is a ``FileNotFoundError`` that also names the directory searched
and where NAS-Bench-360 publishes the file; a file in another format is a ``ValueError``. Nothing is
ever silently reshaped or cast to fit.

Pickled data (gzip pickles, ``.npy`` files of object arrays) is read with a restricted unpickler that
rebuilds numpy arrays and plain Python containers only, so a data file cannot run code.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any, BinaryIO, Mapping, Sequence

import numpy as np

# Where the NAS-Bench-360 README and download_datasets.sh point for the task files (the README adds
# that the files now live on a shared drive, "Resources", with the same names).
PUBLISHED_BASE = "https://pde-xd.s3.amazonaws.com"

# numpy dtype kinds, in words for the messages.
_KINDS = {"b": "bool", "i": "signed integer", "u": "unsigned integer", "f": "floating point",
          "U": "unicode string", "S": "byte string", "O": "object"}
INTEGER, REAL = "iu", "iuf"

# A dimension of an expected shape: a size, or a name that is free the first time it is seen and must
# then match ("N" for the number of samples of a split).
Dim = int | str


def published_url(path: str) -> str:
    """The NAS-Bench-360 download address of a file (``path`` relative to its bucket)."""
    return f"{PUBLISHED_BASE}/{path}"


def require_file(root: Path, name: str, task: str, where: str) -> Path:
    """``root / name``, which must be a file; else a FileNotFoundError naming the file, the directory
    searched (absolute) and ``where`` NAS-Bench-360 publishes it."""
    path = root / name
    if not path.is_file():
        raise FileNotFoundError(
            f"{task}: {name} not found in {Path(root).expanduser().resolve()}; NAS-Bench-360 publishes it at {where} "
            f"(or write a small stand-in in the same format with `nb360 data fake {task} --data-root {root}`)"
        )
    return path


def require_keys(obj: Any, keys: Sequence[str], path: Path, field: str = "") -> Mapping:
    """``obj`` must be a mapping with (at least) ``keys``; ``field`` names where it sits in the file."""
    where = f"field {field!r}" if field else "the top level"
    if not isinstance(obj, Mapping):
        raise ValueError(f"{path}: {where} is a {type(obj).__name__}, expected a dict with keys {list(keys)}")
    missing = [k for k in keys if k not in obj]
    if missing:
        found = sorted(map(str, obj))
        name = repr(f"{field}.{missing[0]}" if field else missing[0])
        raise ValueError(f"{path}: field {name} is missing; found keys {found}, expected {list(keys)}")
    return obj


def check_array(array: Any, path: Path, field: str, shape: Sequence[Dim], dtype: str | type,
                dims: dict[str, tuple[int, str]] | None = None) -> np.ndarray:
    """``array`` must be a numpy array of the expected ``shape`` and ``dtype``: a string of numpy dtype
    kinds (e.g. ``REAL``, any integer or floating type) or a numpy type to match exactly (``np.uint8``).

    Named dimensions are bound in ``dims`` (name -> (size, field that fixed it)): pass the same dict for
    the fields of one split, so that e.g. the labels must have as many rows as the images.
    """
    if not isinstance(array, np.ndarray):
        raise ValueError(f"{path}: field {field!r} is a {type(array).__name__}, expected a numpy array of shape "
                         f"{_shape_text(shape)}")
    dims = {} if dims is None else dims
    ok = array.ndim == len(shape)
    for size, want in zip(array.shape, shape):
        if isinstance(want, str) and want in dims:
            want = dims[want][0]
        ok = ok and (isinstance(want, str) or size == want)
    if not ok:
        bound = [f"{name} = {dims[name][0]} as in {dims[name][1]!r}"
                 for name in shape if isinstance(name, str) and name in dims]
        note = f" with {', '.join(bound)}" if bound else ""
        raise ValueError(f"{path}: field {field!r} has shape {tuple(array.shape)}, expected {_shape_text(shape)}{note}")
    exact = not isinstance(dtype, str)
    if (array.dtype != np.dtype(dtype)) if exact else (array.dtype.kind not in dtype):
        expected = np.dtype(dtype).name if exact else _kinds_text(dtype)
        raise ValueError(f"{path}: field {field!r} has dtype {array.dtype}, expected {expected}")
    if array.dtype.kind in "fc":
        bad = int(array.size - np.count_nonzero(np.isfinite(array)))
        if bad:
            rows = np.flatnonzero(~np.isfinite(array).reshape(len(array), -1).all(axis=1)) if array.ndim else [0]
            raise ValueError(f"{path}: field {field!r} has {bad} non-finite values (NaN or inf) in {len(rows)} rows "
                             f"(the first: {rows[0]}); expected finite numbers")
    for size, want in zip(array.shape, shape):
        if isinstance(want, str):
            dims.setdefault(want, (size, field))
    return array


def check_labels(array: Any, path: Path, field: str, low: int, high: int,
                 dims: dict[str, tuple[int, str]] | None = None) -> np.ndarray:
    """Class labels, shape (N,), in [low, high], as int64. Integer types, and floats that hold whole
    numbers (some published files store labels as floats; NAS-Bench-360's loaders cast them), are
    accepted; a float that is not a whole number is refused with the first such row."""
    labels = check_array(array, path, field, ("N",), REAL, dims)
    if labels.dtype.kind == "f":
        fractional = ~np.isfinite(labels) | (labels != np.round(labels))
        if fractional.any():
            i = int(np.argmax(fractional))
            raise ValueError(f"{path}: field {field!r} holds floats that are not whole numbers (row {i}: {labels[i]!r}; "
                             f"{int(fractional.sum())} rows), expected integer class labels")
    return check_range(labels, path, field, low, high).astype(np.int64)


def check_range(values: np.ndarray, path: Path, field: str, low: int, high: int) -> np.ndarray:
    """Integer labels must lie in [low, high]; the message gives the range found."""
    if values.size and (values.min() < low or values.max() > high):
        raise ValueError(f"{path}: field {field!r} has values in [{values.min()}, {values.max()}], expected "
                         f"integers in [{low}, {high}]")
    return values


def check_nonconstant_rows(rows: np.ndarray | Sequence[np.ndarray], path: Path, field: str) -> None:
    """Rows that are z-scored one by one (NAS-Bench-360's per-series normalisation) must be finite and
    vary; a constant row would become NaN. ``rows``: a 2-D array, or a sequence of 1-D arrays."""
    if isinstance(rows, np.ndarray) and rows.ndim == 2:
        finite, spread = np.isfinite(rows).all(axis=1), np.ptp(rows, axis=1) if rows.size else np.zeros(len(rows))
    else:
        finite = np.array([np.isfinite(r).all() for r in rows], dtype=bool)
        spread = np.array([np.ptp(r) if np.size(r) else 0 for r in rows])
    if not finite.all():
        i = int(np.argmin(finite))
        raise ValueError(f"{path}: field {field!r} row {i} has non-finite values, expected finite numbers")
    if np.any(spread == 0):
        i = int(np.argmax(spread == 0))
        raise ValueError(f"{path}: field {field!r} row {i} is constant, expected a varying series (each row is "
                         "z-scored on its own)")


def load_npy(path: Path, opener=open) -> Any:
    """An ``.npy`` file: a numeric array with ``np.load``, an object array (e.g. a dict saved with
    ``np.save``) through the restricted unpickler. A 0-d object array gives its element. ``opener``
    (path, mode) -> binary file reads it from elsewhere, e.g. a member of an archive."""
    try:
        with opener(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read_header = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
            if version not in read_header:
                raise ValueError(f"unsupported .npy version {version}")
            shape, fortran, dtype = read_header[version](f)
            if not dtype.hasobject:
                f.seek(0)
                return np.load(f, allow_pickle=False)
            array = restricted_load(f, path)
    except (ValueError, OSError, EOFError) as error:
        raise ValueError(f"{path}: not an .npy file that numpy can read ({error})") from None
    if not isinstance(array, np.ndarray) or array.shape != shape:
        raise ValueError(f"{path}: the pickled payload does not match the .npy header (shape {shape})")
    return array[()] if array.shape == () else array


class _DataUnpickler(pickle.Unpickler):
    """Rebuilds numpy arrays, dtypes and scalars and plain containers; any other global is refused."""

    _ALLOWED = {
        (module, name)
        for core in ("numpy.core", "numpy._core")
        for module, name in ((f"{core}.multiarray", "_reconstruct"), (f"{core}.multiarray", "scalar"),
                             (f"{core}.numeric", "_frombuffer"))
    } | {("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"), ("builtins", "bytearray")}

    def __init__(self, file: BinaryIO, origin: Path, encoding: str):
        super().__init__(file, encoding=encoding)
        self.origin = origin

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise ValueError(f"{self.origin}: refusing to load {module}.{name}: a data file holds arrays and plain "
                             "containers only; this pickle would run other code")
        return super().find_class(module, name)

    def persistent_load(self, pid: Any) -> Any:
        raise ValueError(f"{self.origin}: refusing a persistent id: not plain data")


def restricted_load(file: BinaryIO, origin: Path, encoding: str = "latin1") -> Any:
    """Unpickle numpy arrays and plain containers from an open binary file (``latin1``: Python 2 pickles
    of numpy arrays read as they do with ``np.load(..., encoding="latin1")``)."""
    try:
        return _DataUnpickler(file, origin, encoding).load()
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, IndexError, TypeError) as error:
        raise ValueError(f"{origin}: not a pickle of numpy arrays ({type(error).__name__}: {error})") from None


def load_pickle(path: Path, opener=open) -> Any:
    """A (possibly compressed: ``opener=gzip.open``) pickle of arrays and plain containers."""
    try:
        with opener(path, "rb") as f:
            return restricted_load(f, path)
    except (OSError, EOFError) as error:  # gzip.BadGzipFile is an OSError
        raise ValueError(f"{path}: cannot be read ({error})") from None


def atomic_write(path: Path, write) -> None:
    """Call ``write(binary_file)`` on a temporary file next to ``path`` and rename it into place, so a
    half-written data file never exists under its published name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        with open(temporary, "wb") as handle:
            write(handle)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _shape_text(shape: Sequence[Dim]) -> str:
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


def _kinds_text(kinds: str) -> str:
    return " or ".join(_KINDS[k] for k in kinds)
