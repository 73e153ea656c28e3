"""The one error path: damaged files, a closed pipe, every default in the help."""

import argparse
import shutil
import subprocess
import sys

import pytest

from nb360.cli import build_parser
from nb360.table.schema import TableWriter, create


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    path = create(tmp_path_factory.mktemp("t") / "t.h5", task="darcyflow", metric="relative_l2", seeds=[0], epochs=2,
                  protocol={"C": 2}, provenance={"command": "test"})
    with TableWriter(path) as w:
        w.write_runs((i, 0, [{"train_loss": 1.0, "train_metric": 1.0, "val_metric": i / 1e4, "test_metric": i / 1e4,
                              "train_seconds": 1.0 * (e + 1)} for e in range(2)]) for i in range(15625))
    return path


def damaged(table, tmp_path, how: str):
    path = tmp_path / f"{how}.h5"
    data = table.read_bytes()
    if how == "empty":
        path.write_bytes(b"")
    elif how == "text":
        path.write_text("this is not HDF5\n")
    elif how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "header":
        path.write_bytes(b"\0" * 64 + data[64:])
    elif how == "inside":  # garbage in the middle of the curve data, after the header and metadata
        shutil.copy(table, path)
        with path.open("r+b") as f:
            f.seek(len(data) * 3 // 4)
            f.write(b"\xff" * 4096)
    return path


@pytest.mark.parametrize("how", ["empty", "text", "truncated", "header", "inside"])
@pytest.mark.parametrize("command", [("query", "{}", "5"), ("table", "info", "{}"), ("query", "{}", "--top", "3"),
                                     ("search", "--table", "{}", "--algo", "rs", "--seeds", "1", "--budget", "5",
                                      "--out", "{out}")])
def test_a_damaged_table_is_one_line_naming_the_file(cli, table, tmp_path, how, command):
    path = damaged(table, tmp_path, how)
    result = cli(*(a.format(path, out=tmp_path / "out") for a in command))
    if how == "inside" and result.returncode == 0:
        pytest.skip("the damage fell where this command reads nothing")
    assert result.returncode == 2, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    name = " ".join(command[:2]) if command[0] == "table" else command[0]  # a group's action is part of the name
    assert str(path) in lines[0] and lines[0].startswith(f"nb360 {name}: error: ")


def test_a_table_being_written_is_one_line_saying_so(cli, table, tmp_path):
    path = tmp_path / "busy.h5"
    shutil.copy(table, path)
    writer = subprocess.Popen([sys.executable, "-c", f"import h5py, sys; f = h5py.File({str(path)!r}, 'r+'); "
                               "print('open', flush=True); sys.stdin.read()"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "open"  # another process holds HDF5's write lock
        result = cli("table", "info", str(path))
    finally:
        writer.communicate("")
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert str(path) in result.stderr and "open for writing" in result.stderr


def test_debug_shows_the_traceback(cli, table, tmp_path):
    result = cli("--debug", "query", str(damaged(table, tmp_path, "text")), "5")
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_a_closed_pipe_ends_quietly(table):
    process = subprocess.Popen([sys.executable, "-m", "nb360.cli", "query", str(table), "--top", "5000", "--members"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.readline()  # `| head -1`
    process.stdout.close()
    assert process.wait(timeout=120) == 2
    assert process.stderr.read() == b""


def _options(parser: argparse.ArgumentParser, name: str = "nb360"):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                yield from _options(sub, f"{name} {sub_name}")
        elif action.option_strings and not isinstance(action, argparse._HelpAction):
            yield name, parser, action


def test_every_option_states_its_default():
    """Each option's help gives its default, or says it is required; switches default to off."""
    missing = []
    for name, parser, action in _options(build_parser()):
        text = parser.formatter_class(name)._get_help_string(action) or ""
        if action.default is False or action.required or any(action in g._group_actions for g in
                                                             parser._mutually_exclusive_groups if g.required):
            continue
        if "default" not in text and "required" not in text:
            missing.append(f"{name} {action.option_strings[0]}")
    assert not missing, missing


@pytest.mark.parametrize("command", [["search", "--out", "x"], ["precompute", "--epochs", "1", "--out", "x.h5"],
                                     ["oneshot", "--out", "x"], ["w2s", "synthetic", "--out", "x"]])
def test_seeds_counts_seeds_everywhere(command):
    parser = build_parser()
    assert parser.parse_args([*command, "--seed", "3", "--seeds", "2"]).seeds == 2
    with pytest.raises(SystemExit):
        parser.parse_args([*command, "--seeds", "0,1"])


def test_seeds_list_gets_the_count_to_give(cli):
    result = cli("precompute", "--epochs", "1", "--out", "x.h5", "--seeds", "2,3")
    assert result.returncode == 2 and "give --seed 2 --seeds 2" in result.stderr


def test_algorithms_are_listed_where_they_are_chosen(cli):
    from nb360.search import SEARCHERS

    text = " ".join(cli("search", "--help").stdout.split())
    assert all(name in text for name in SEARCHERS) and "(default: rs,re)" in text


def test_gpus_per_run_takes_fractions_and_refuses_negatives():
    parser = build_parser()
    args = ["precompute", "--epochs", "1", "--out", "x.h5"]
    assert parser.parse_args(args).gpus_per_run is None  # precompute decides: 1 with CUDA, else 0
    assert parser.parse_args([*args, "--gpus-per-run", "0.25"]).gpus_per_run == 0.25
    with pytest.raises(SystemExit):
        parser.parse_args([*args, "--gpus-per-run", "-1"])
