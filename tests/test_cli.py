import json
import subprocess
import sys

import pytest

from nb360.cli import main


def nb360(*args, cwd=None):
    """Run the real console entry point in a subprocess, as a user would."""
    return subprocess.run([sys.executable, "-m", "nb360.cli", *args], capture_output=True, text=True, cwd=cwd)


def test_help_lists_commands():
    result = nb360("--help")
    assert result.returncode == 0
    for command in ("tasks", "data", "train", "demo"):
        assert command in result.stdout


@pytest.mark.parametrize(
    "args, expected",
    [
        (["train", "--arch", "|bogus~0|+|none~0|none~1|+|none~0|none~1|none~2|"], "unknown operation 'bogus'"),
        (["train", "--arch", "99999"], "out of range"),
        (["train", "--arch", "0", "--task", "nosuchtask"], "unknown task 'nosuchtask'"),
        (["train", "--arch", "0", "--epochs", "-3"], "argument --epochs: expected an integer >= 1, got -3"),
        (["data", "generate", "darcyflow", "--n", "0"], "argument --n: expected an integer >= 1, got 0"),
        (["data", "generate", "darcyflow", "--resolution", "abc"], "expected an integer, got 'abc'"),
        (["data", "generate", "cifar100"], "only darcyflow"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_input_is_one_line_exit_2(args, expected, tmp_path):
    result = nb360(*args, "--data-root", str(tmp_path)) if args[0] == "train" else nb360(*args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert expected in lines[0] and "error" in lines[0]


def test_missing_data_names_the_file(tmp_path):
    result = nb360("train", "--arch", "0", "--data-root", str(tmp_path))
    assert result.returncode == 2
    assert "piececonst" in result.stderr and str(tmp_path) in result.stderr
