"""Read the TOML cards that describe search spaces (`search_spaces/`) and tasks (`tasks/`), and
find the shipped tables (`precomputed/`).

These folders live at the top of the repository so that they are easy to find and edit; a wheel
carries them inside the package as `nb360/_cards/` (see `pyproject.toml`). This module is the one
place that knows both locations, so the rest of the code asks for a card or a table by name.
"""

from __future__ import annotations

import sys
from functools import cache
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised only on Python 3.10
    import tomli as tomllib

_PACKAGE = Path(__file__).resolve().parent
_KINDS = ("search_spaces", "tasks", "precomputed")


def card_dir(kind: str) -> Path:
    """The folder holding the files of `kind` ("search_spaces", "tasks" or "precomputed")."""
    if kind not in _KINDS:
        raise ValueError(f"unknown card kind {kind!r}; expected one of {', '.join(_KINDS)}")
    for candidate in (_PACKAGE.parent / kind, _PACKAGE / "_cards" / kind):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        f"no {kind}/ folder next to the nb360 package ({_PACKAGE.parent}) nor inside it; "
        "the installation is incomplete"
    )


def names(kind: str) -> list[str]:
    """Names of all cards of `kind`, sorted."""
    return sorted(p.stem for p in card_dir(kind).glob("*.toml"))


@cache
def load(kind: str, name: str) -> dict:
    """The parsed card `name` of `kind`; an unknown name lists the known ones."""
    path = card_dir(kind) / f"{name}.toml"
    if not path.is_file():
        known = ", ".join(names(kind)) or "none"
        raise ValueError(f"unknown {kind[:-1].replace('_', ' ')} {name!r}; known: {known}")
    with path.open("rb") as f:
        try:
            return tomllib.load(f)
        except tomllib.TOMLDecodeError as e:
            raise ValueError(f"{path}: not valid TOML: {e}") from None


def data_file(kind: str, filename: str) -> Path:
    """A data file that a card refers to, stored beside the cards."""
    path = card_dir(kind) / filename
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing; the installation is incomplete")
    return path
