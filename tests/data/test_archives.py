"""Archives: members read in place from zip and tar files, as the published archives are laid out."""

from __future__ import annotations

import io
import pickle
import tarfile
import zipfile

import numpy as np
import pytest

from nb360.data import archives


@pytest.mark.parametrize("kind", ["zip", "tar"])
def test_write_then_read_members(tmp_path, kind):
    numeric, record = np.arange(6, dtype=np.float32).reshape(2, 3), np.empty(3, dtype=object)
    record[0], record[1], record[2] = 5, "ACDEF", np.ones((5, 5))
    members = {"a/b/numbers.npy": archives.npy_bytes(numeric), "a/record.npy": archives.npy_bytes(record),
               "top.txt": b"hello", "a/data.pkl": pickle.dumps({"seq": "AC", "x": np.zeros(2)})}
    path = tmp_path / f"data.{kind}"
    (archives.write_zip if kind == "zip" else archives.write_tar)(path, members)
    archive = archives.Archive(path)
    assert sorted(archive.names()) == sorted(members)  # directories are not members
    assert archive.read("top.txt") == b"hello"
    np.testing.assert_array_equal(archive.load_npy("a/b/numbers.npy"), numeric)
    length, sequence, distances = archive.load_npy("a/record.npy")
    assert (length, sequence) == (5, "ACDEF") and distances.shape == (5, 5)
    assert archive.load_pickle("a/data.pkl")["seq"] == "AC"
    with pytest.raises(ValueError, match=r"data\.\w+: member 'nope' is missing"):
        archive.read("nope")
    clone = pickle.loads(pickle.dumps(archive))  # what a DataLoader worker gets: it reopens the file
    assert clone.read("top.txt") == b"hello"


def test_leading_dot_slash_is_normalised(tmp_path):
    path = tmp_path / "dotted.tar"
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo("./npy_train/x.npy")
        data = archives.npy_bytes(np.zeros(2))
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    assert archives.Archive(path).names() == ["npy_train/x.npy"]


def test_not_an_archive(tmp_path):
    path = tmp_path / "audio.zip"
    path.write_bytes(b"this is not a zip")
    with pytest.raises(ValueError, match="audio.zip: not a zip or tar archive"):
        archives.Archive(path)


def test_pickle_refuses_code(tmp_path):
    """Members are unpickled with the restricted unpickler: a pickle that would call a function is refused."""
    path = tmp_path / "evil.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("x.pkl", pickle.dumps(print))
    with pytest.raises(ValueError, match="refusing"):
        archives.Archive(path).load_pickle("x.pkl")
