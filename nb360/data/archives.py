"""Reading members of the published zip and tar archives in place, and writing archives of that layout.

NAS-Bench-360 ships FSD50K (``audio.zip``), PSICOV (``protein.zip``) and Cosmic
(``deepCR.ACS-WFC.{train,test}.tar``) as archives and unpacks them before training. The loaders here
read the members they need straight from the archive instead (both formats allow random access by
member), so the data root holds exactly the published files.
"""

from __future__ import annotations

import io
import os
import tarfile
import zipfile
from pathlib import Path
from typing import BinaryIO, Mapping

import numpy as np

from nb360.data import checks


class Archive:
    """Random access to the members of a zip or (uncompressed or compressed) tar file, by name.

    Member names are normalised to forward slashes without a leading ``./``. The file is opened
    lazily and again in each process, so an ``Archive`` held by a dataset works in DataLoader workers.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self._pid: int | None = None
        self._handle: zipfile.ZipFile | tarfile.TarFile | None = None
        self._members: dict[str, object] = {}
        self._open()

    def _open(self) -> None:
        try:
            if zipfile.is_zipfile(self.path):
                handle: zipfile.ZipFile | tarfile.TarFile = zipfile.ZipFile(self.path)
                members = {_normalise(info.filename): info for info in handle.infolist() if not info.is_dir()}
            else:
                handle = tarfile.open(self.path)
                members = {_normalise(info.name): info for info in handle.getmembers() if info.isfile()}
        except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError) as error:
            raise ValueError(f"{self.path}: not a zip or tar archive that can be read ({error})") from None
        self._handle, self._members, self._pid = handle, members, os.getpid()

    def __getstate__(self) -> dict:
        return {"path": self.path}  # a worker process reopens the file

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["path"])

    def names(self) -> list[str]:
        return list(self._members)

    def __contains__(self, name: str) -> bool:
        return name in self._members

    def read(self, name: str) -> bytes:
        """The bytes of member ``name``; a ValueError naming the archive if it is not there."""
        if self._pid != os.getpid():
            self._open()
        if name not in self._members:
            raise ValueError(f"{self.path}: member {name!r} is missing from the archive")
        member = self._members[name]
        try:
            if isinstance(self._handle, zipfile.ZipFile):
                return self._handle.read(member)
            return self._handle.extractfile(member).read()
        except (zipfile.BadZipFile, tarfile.TarError, OSError, EOFError) as error:
            raise ValueError(f"{self.path}: member {name!r} cannot be read ({error})") from None

    def open(self, name: str) -> BinaryIO:
        return io.BytesIO(self.read(name))

    def origin(self, name: str) -> Path:
        """How a member is named in messages: ``archive/member``."""
        return self.path / name

    def load_npy(self, name: str):
        """A member ``.npy`` file, numeric or object arrays (through ``checks.load_npy``'s restricted unpickler)."""
        return checks.load_npy(self.origin(name), opener=lambda _path, _mode: self.open(name))

    def load_pickle(self, name: str):
        """A member pickle of arrays and plain containers (``checks.load_pickle``)."""
        return checks.load_pickle(self.origin(name), opener=lambda _path, _mode: self.open(name))


def _normalise(name: str) -> str:
    name = name.replace("\\", "/")
    while name.startswith("./"):
        name = name[2:]
    return name.lstrip("/")


def npy_bytes(array: np.ndarray) -> bytes:
    """``array`` as the bytes of an ``.npy`` file (object arrays are pickled, as ``np.save`` does)."""
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=array.dtype.hasobject)
    return buffer.getvalue()


def write_zip(path: Path, members: Mapping[str, bytes]) -> None:
    """A deflate-compressed zip with ``members`` (name -> bytes), written atomically."""

    def write(handle: BinaryIO) -> None:
        with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name, data in members.items():
                archive.writestr(name, data)

    checks.atomic_write(Path(path), write)


def write_tar(path: Path, members: Mapping[str, bytes]) -> None:
    """An uncompressed tar with ``members`` (name -> bytes) and their parent directories, written atomically."""

    def write(handle: BinaryIO) -> None:
        with tarfile.open(fileobj=handle, mode="w") as archive:
            directories: set[str] = set()
            for name, data in members.items():
                parts = name.split("/")[:-1]
                for depth in range(1, len(parts) + 1):
                    directory = "/".join(parts[:depth])
                    if directory not in directories:
                        directories.add(directory)
                        info = tarfile.TarInfo(directory)
                        info.type, info.mode = tarfile.DIRTYPE, 0o755
                        archive.addfile(info)
                info = tarfile.TarInfo(name)
                info.size, info.mode = len(data), 0o644
                archive.addfile(info, io.BytesIO(data))

    checks.atomic_write(Path(path), write)
