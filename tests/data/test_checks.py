"""The shared format checks: messages that name file, field, found and expected; the restricted unpickler."""

from __future__ import annotations

import gzip
import io
import pickle
from pathlib import Path

import numpy as np
import pytest

from nb360.data import checks

PATH = Path("/data/file.npy")


def test_require_file_names_file_directory_and_source(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        checks.require_file(tmp_path, "x.npy", "sometask", "https://example.org/x.npy")
    message = str(error.value)
    assert "sometask: x.npy not found in" in message and str(tmp_path.resolve()) in message
    assert "https://example.org/x.npy" in message and "nb360 data fake sometask" in message
    (tmp_path / "x.npy").write_bytes(b"")
    assert checks.require_file(tmp_path, "x.npy", "sometask", "") == tmp_path / "x.npy"


def test_check_array_binds_named_dimensions_across_fields():
    dims: dict = {}
    checks.check_array(np.zeros((5, 3)), PATH, "x", ("N", 3), checks.REAL, dims)
    assert dims == {"N": (5, "x")}
    checks.check_array(np.zeros(5, np.int64), PATH, "y", ("N",), checks.INTEGER, dims)
    with pytest.raises(ValueError) as error:
        checks.check_array(np.zeros(4, np.int64), PATH, "z", ("N",), checks.INTEGER, dims)
    assert str(error.value) == f"{PATH}: field 'z' has shape (4,), expected (N,) with N = 5 as in 'x'"


@pytest.mark.parametrize("array, shape, dtype, expected", [
    (np.zeros((2, 3)), ("N", 4), checks.REAL, "field 'f' has shape (2, 3), expected (N, 4)"),
    (np.zeros((2, 3, 1)), ("N", 3), checks.REAL, "field 'f' has shape (2, 3, 1), expected (N, 3)"),
    (np.zeros(3, np.float32), ("N",), checks.INTEGER, "field 'f' has dtype float32, expected signed integer or unsigned integer"),
    (np.zeros(3, np.int8), ("N",), np.uint8, "field 'f' has dtype int8, expected uint8"),
    ([1, 2, 3], ("N",), checks.INTEGER, "field 'f' is a list, expected a numpy array of shape (N,)"),
])
def test_check_array_says_what_was_found_and_expected(array, shape, dtype, expected):
    with pytest.raises(ValueError) as error:
        checks.check_array(array, PATH, "f", shape, dtype)
    assert str(error.value) == f"{PATH}: {expected}"


def test_require_keys_and_ranges():
    with pytest.raises(ValueError, match=r"field 'b' is missing; found keys \['a'\], expected \['a', 'b'\]"):
        checks.require_keys({"a": 1}, ["a", "b"], PATH)
    with pytest.raises(ValueError, match=r"field 'part.b' is missing"):
        checks.require_keys({"a": 1}, ["b"], PATH, "part")
    with pytest.raises(ValueError, match="the top level is a list, expected a dict"):
        checks.require_keys([1], ["a"], PATH)
    with pytest.raises(ValueError, match=r"values in \[-1, 3\], expected integers in \[0, 3\]"):
        checks.check_range(np.array([0, 3, -1]), PATH, "y", 0, 3)


def test_rows_to_zscore_must_be_finite_and_vary():
    checks.check_nonconstant_rows(np.array([[1.0, 2.0], [3.0, 1.0]]), PATH, "x")
    with pytest.raises(ValueError, match="field 'x' row 1 is constant"):
        checks.check_nonconstant_rows(np.array([[1.0, 2.0], [3.0, 3.0]]), PATH, "x")
    with pytest.raises(ValueError, match="field 'x' row 0 has non-finite values"):
        checks.check_nonconstant_rows([np.array([np.nan, 1.0]), np.array([1.0, 2.0, 3.0])], PATH, "x")


def test_npy_files_numeric_and_pickled(tmp_path):
    np.save(tmp_path / "a.npy", np.arange(6).reshape(2, 3))
    np.testing.assert_array_equal(checks.load_npy(tmp_path / "a.npy"), np.arange(6).reshape(2, 3))
    records = np.empty(2, dtype=object)
    records[:] = [np.arange(3, dtype=np.int16), np.arange(5, dtype=np.int16)]
    np.save(tmp_path / "d.npy", {"data": records, "label": np.array(["N", "~"], dtype=object)}, allow_pickle=True)
    content = checks.load_npy(tmp_path / "d.npy")
    assert [len(r) for r in content["data"]] == [3, 5] and list(content["label"]) == ["N", "~"]
    (tmp_path / "bad.npy").write_bytes(b"not an npy file")
    with pytest.raises(ValueError, match="bad.npy: not an .npy file that numpy can read"):
        checks.load_npy(tmp_path / "bad.npy")


class RunsCode:
    def __reduce__(self):
        return (print, ("this should not run",))


def test_restricted_unpickler_refuses_code_and_reads_arrays(tmp_path, capsys):
    with pytest.raises(ValueError, match="refusing to load builtins.print"):
        checks.restricted_load(io.BytesIO(pickle.dumps({"x": RunsCode()})), PATH)
    assert capsys.readouterr().out == ""
    for protocol in (2, 4, 5):
        data = {"x": np.arange(3.0), "y": [np.int64(2), "s"], "z": np.zeros((2, 2), np.uint8)}
        loaded = checks.restricted_load(io.BytesIO(pickle.dumps(data, protocol=protocol)), PATH)
        np.testing.assert_array_equal(loaded["x"], data["x"])
        assert loaded["y"] == [2, "s"] and loaded["z"].dtype == np.uint8
    with gzip.open(tmp_path / "g.gz", "wb") as f:
        pickle.dump([np.ones(2)], f)
    np.testing.assert_array_equal(checks.load_pickle(tmp_path / "g.gz", opener=gzip.open)[0], np.ones(2))
    with pytest.raises(ValueError, match="g.gz: not a pickle of numpy arrays"):
        checks.load_pickle(tmp_path / "g.gz")  # gzip bytes are no pickle


def test_atomic_write_leaves_no_partial_file(tmp_path):
    def fail(handle):
        handle.write(b"half")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        checks.atomic_write(tmp_path / "sub" / "f.bin", fail)
    assert list((tmp_path / "sub").iterdir()) == []
    checks.atomic_write(tmp_path / "sub" / "f.bin", lambda handle: handle.write(b"whole"))
    assert (tmp_path / "sub" / "f.bin").read_bytes() == b"whole"
