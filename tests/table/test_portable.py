"""No table records a path of the machine that built it."""

import json
import os
import re
from pathlib import Path

import pytest

from nb360.table.portable import portable_command, portable_path, redact


def test_paths_under_the_working_folder_stay_relative_others_keep_their_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert portable_path(tmp_path / "precomputed" / "t.h5") == os.path.join("precomputed", "t.h5")
    assert portable_path("/home/someone/data/darcy-mini", "DATA") == "DATA/darcy-mini"
    assert portable_path("/home/someone/out.h5") == ".../out.h5"
    assert portable_path("relative/t.h5") == "relative/t.h5"


def test_commands_name_the_program_and_no_absolute_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = ["/home/someone/venv/bin/nb360", "precompute", "--task", "darcyflow", "--data-root", "/home/someone/d/mini",
            f"--out={tmp_path}/t.h5", "--archs", "all"]
    assert portable_command(argv) == ("nb360 precompute --task darcyflow --data-root DATA/mini --out=t.h5 "
                                      "--archs all")


def test_redact_nested_provenance():
    provenance = {"command": "/root/venv/bin/nb360 precompute --data-root /root/data/x --out /root/b/t.h5",
                  "arguments": {"data_root": "/root/data/x", "out": "/root/b/t.h5", "seeds": [0, 1], "C": 4}}
    redacted = redact(provenance)
    assert redacted == {"command": "nb360 precompute --data-root DATA/x --out .../t.h5",
                        "arguments": {"data_root": "DATA/x", "out": ".../t.h5", "seeds": [0, 1], "C": 4}}


ABSOLUTE = re.compile(r"(^|[\s=\"'])(/|~/)[^\s\"']*")


def _shipped_tables() -> list[str]:
    import tomllib

    manifest = tomllib.loads((Path(__file__).parents[2] / "precomputed" / "MANIFEST.toml").read_text())
    return sorted(name.removesuffix(".h5") for name, entry in manifest["files"].items() if entry["content"] == "table")


@pytest.mark.parametrize("name", _shipped_tables())
def test_shipped_tables_carry_no_absolute_path(name):
    from nb360.table.benchmark import Benchmark

    table = Benchmark.load(name)
    text = json.dumps(table.provenance) + json.dumps(table.builds)
    found = [m.group(0).strip() for m in ABSOLUTE.finditer(text)]
    assert not found, f"{name}: {found[:5]}"
