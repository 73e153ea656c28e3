import json
import math
import os

import pytest

from nb360.table import manifest
from nb360.table.benchmark import Benchmark
from nb360.table.schema import TableWriter, create

from test_benchmark import records


@pytest.fixture
def shipped(tmp_path, monkeypatch):
    """A table with a manifest entry beside it, as in precomputed/, and a private verification cache."""
    monkeypatch.setenv(manifest.CACHE_ENV, str(tmp_path / "cache"))
    path = create(tmp_path / "t.h5", task="darcyflow", metric="relative_l2", seeds=[0], epochs=2,
                  protocol={"C": 4}, provenance={})
    with TableWriter(path) as w:
        w.write_run(0, 0, records(2, 1.0))
    manifest.write(tmp_path, {"t.h5": {"task": "darcyflow", "sha256": manifest.sha256(path),
                                       "rebuild": ["nb360 precompute --out t.h5"]}})
    return path


def test_a_listed_table_is_verified_once_then_trusted_from_the_cache(shipped, tmp_path):
    assert Benchmark.load(shipped).query(0)["val_metric"] == pytest.approx(2.5)
    cache = json.loads((tmp_path / "cache" / "verified-tables.json").read_text())
    assert cache[str(shipped.resolve())]["sha256"] == manifest.sha256(shipped)

    hashed = []
    original = manifest.sha256
    manifest.sha256 = lambda p: hashed.append(p) or original(p)
    try:
        assert manifest.verify(shipped)
    finally:
        manifest.sha256 = original
    assert hashed == []  # same size and mtime: not hashed again


def test_a_corrupted_table_is_refused_with_the_file_and_the_rebuild_command(shipped):
    Benchmark.load(shipped)  # verified and cached while intact
    data = bytearray(shipped.read_bytes())
    data[-100] ^= 0xFF
    shipped.write_bytes(data)
    os.utime(shipped, ns=(1, 1))  # a different mtime: the cache no longer vouches for it
    with pytest.raises(ValueError, match=r"t\.h5: sha256 [0-9a-f]{64} but .*MANIFEST\.toml expects.*nb360 precompute"):
        Benchmark.load(shipped)


def test_a_table_without_an_entry_is_not_checked(shipped, tmp_path):
    other = create(tmp_path / "mine.h5", task="x", metric="m", seeds=[0], epochs=1, protocol={}, provenance={})
    assert manifest.verify(other) is False
    Benchmark.load(other)


def test_a_malformed_checksum_names_the_field(shipped, tmp_path):
    manifest.write(tmp_path, {"t.h5": {"sha256": "abc"}})
    with pytest.raises(ValueError, match=r"files\.'t\.h5'\.sha256 must be a 64-digit hex string, found 'abc'"):
        manifest.verify(shipped)


def test_write_and_read_round_trip(tmp_path):
    entries = {"b.h5": {"task": "darcyflow", "seeds": [0, 1], "complete": True, "archs": 15625, "hours": 1.5,
                        "quote": 'say "hi"\n', "protocol": {"C": 4, "resolution": [15, 15]},
                        "fidelity": {"spearman": 0.75, "missing": math.nan},
                        "proxies": {"names": ["snip"], "settings": {"seed": 0, "resolution": [15, 15]}}},
               "a.h5": {"task": "digits"}}
    manifest.write(tmp_path, entries, header="Shipped tables.\nSecond line.")
    text = (tmp_path / "MANIFEST.toml").read_text()
    assert text.startswith("# Shipped tables.\n# Second line.\n")
    assert text.index('[files."a.h5"]') < text.index('[files."b.h5"]')
    back = manifest.read(tmp_path)
    assert math.isnan(back["b.h5"]["fidelity"].pop("missing"))
    entries["b.h5"]["fidelity"].pop("missing")
    assert back == entries


def test_the_shipped_rebuild_commands_are_valid_commands():
    """Every `nb360 ...` rebuild command of the shipped manifest parses with today's command line."""
    import shlex

    from nb360 import cards
    from nb360.cli import build_parser

    entries = manifest.read(cards.card_dir("precomputed"))
    commands = [c for entry in entries.values() for c in entry["rebuild"] if c.startswith("nb360 ")]
    assert len(commands) >= 4
    for command in commands:
        build_parser().parse_args(shlex.split(command)[1:])
