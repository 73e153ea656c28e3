"""`precomputed/MANIFEST.toml`: what each shipped table is, how it was made, and its checksum.

One `[files."<name>.h5"]` entry per shipped file: task, protocol, seeds, the commands that rebuild
it, package version and commit, completeness, build time and hardware, measured fidelity, and the
file's sha256. `verify` checks a table against its entry before `Benchmark` reads it; a file whose
size and modification time were verified before is not hashed again (the record lives in the user's
cache folder), so the check costs once per installed file, not once per load.

TOML is read with the standard library and written with tomli-w.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised only on Python 3.10
    import tomli as tomllib

MANIFEST = "MANIFEST.toml"
CACHE_ENV = "NB360_CACHE"
# The shipped tables of the two tasks, the one place that names them: commands and examples use the
# first when no table is named, the hypothesis questions are answered on both.
TASK_TABLES = ("nb201-darcyflow-mini-e40", "nb201-burgers-mini")
DEFAULT_TABLE = TASK_TABLES[0]


def sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read(directory: str | os.PathLike) -> dict[str, dict]:
    """The `files` entries of the manifest in `directory` ({} if it has none)."""
    path = Path(directory) / MANIFEST
    if not path.is_file():
        return {}
    with path.open("rb") as f:
        try:
            return tomllib.load(f).get("files", {})
        except tomllib.TOMLDecodeError as e:
            raise ValueError(f"{path}: not valid TOML: {e}") from None


def verify(path: str | os.PathLike) -> bool:
    """Check `path` against the manifest beside it. Returns False if the manifest has no entry for
    it (a user's own table), True if the checksum matches; raises ValueError if it does not."""
    path = Path(path).resolve()
    entry = read(path.parent).get(path.name)
    if entry is None:
        return False
    expected = entry.get("sha256")
    if not isinstance(expected, str) or len(expected) != 64:
        raise ValueError(f"{path.parent / MANIFEST}: files.{path.name!r}.sha256 must be a 64-digit hex string, "
                         f"found {expected!r}")
    stat = path.stat()
    key = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": expected}
    cache = _read_cache()
    if cache.get(str(path)) == key:
        return True
    found = sha256(path)
    if found != expected:
        raise ValueError(
            f"{path}: sha256 {found} but {path.parent / MANIFEST} expects {expected}: the file is corrupted or "
            f"was changed. Reinstall nb360, or rebuild it with: {' && '.join(entry.get('rebuild', ['(no command recorded)']))} "
            f"(a file extended on purpose, by resuming its build, needs its manifest entry rewritten)"
        )
    cache[str(path)] = key
    _write_cache(cache)
    return True


def _cache_file() -> Path:
    root = os.environ.get(CACHE_ENV) or os.path.join(os.environ.get("XDG_CACHE_HOME") or "~/.cache", "nb360")
    return Path(root).expanduser() / "verified-tables.json"


def _read_cache() -> dict:
    try:
        return json.loads(_cache_file().read_text())
    except (OSError, ValueError):
        return {}  # no cache yet, or an unreadable one: verify again


def _write_cache(cache: dict) -> None:
    path = _cache_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(cache, indent=1, sort_keys=True))
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only home only costs a re-hash next time


def write(directory: str | os.PathLike, entries: dict[str, dict], header: str = "") -> Path:
    """Write `entries` as the manifest of `directory` (entries sorted by file name; a dict value is
    a sub-table, at any depth), `header` as comment lines above them."""
    import tomli_w  # only maintaining the manifest writes TOML; reading needs the standard library alone

    comments = "".join(f"# {line}".rstrip() + "\n" for line in header.strip().splitlines())
    body = tomli_w.dumps({"files": {name: entries[name] for name in sorted(entries)}})
    path = Path(directory) / MANIFEST
    path.write_text(comments + ("\n" if comments else "") + body)
    return path
