"""Test helper: put one thing wrong inside a copy of a fake archive."""

from __future__ import annotations

import zipfile
from pathlib import Path


def rewrite_member(archive: Path, name: str, data: bytes) -> None:
    """Replace (or add) member `name` of the zip file `archive` with `data`."""
    with zipfile.ZipFile(archive) as z:
        members = {m: z.read(m) for m in z.namelist()}
    members[name] = data
    with zipfile.ZipFile(archive, "w") as z:
        for m, d in members.items():
            z.writestr(m, d)
