"""Paths as a table records them: nothing of the machine that built it.

A table's provenance and build log keep the command and the arguments of each build, so that it
can be redone; an absolute path in them would name the builder's home folder and mean nothing on
another machine. A path under the working folder (a build run from the repository) is kept
relative to it; any other absolute path keeps its last component behind a placeholder, DATA for
the data root (as the shipped tables' recipes write it) and ... otherwise.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path


def portable_path(value: str | os.PathLike, placeholder: str = "...") -> str:
    text = str(value)
    path = Path(text).expanduser()
    if not (text.startswith("~") or path.is_absolute()):
        return text
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return f"{placeholder}/{path.name}" if path.name else placeholder


def portable_command(argv: list[str]) -> str:
    """A command line with the program as its name alone and every path argument portable
    (`--data-root` values as DATA/...)."""
    words = [Path(argv[0]).name if argv else ""]
    after_data_root = False
    for arg in argv[1:]:
        option, equals, value = arg.partition("=") if arg.startswith("--") else ("", "", arg)
        placeholder = "DATA" if after_data_root or option == "--data-root" else "..."
        if equals:
            words.append(f"{option}={portable_path(value, placeholder)}")
        else:
            words.append(portable_path(arg, placeholder) if not arg.startswith("-") else arg)
        after_data_root = arg == "--data-root"
    return shlex.join(words)


def redact(value, placeholder: str = "..."):
    """A provenance value (nested dicts, lists, strings) with every absolute path made portable;
    strings that hold a command line (with spaces) made portable word by word."""
    if isinstance(value, dict):
        return {k: redact(v, "DATA" if k == "data_root" else placeholder) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, placeholder) for v in value]
    if isinstance(value, str) and (value.startswith("/") or value.startswith("~")):
        return portable_command(shlex.split(value)) if " " in value else portable_path(value, placeholder)
    return value
