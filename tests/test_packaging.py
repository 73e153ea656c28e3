"""The cards must travel inside a wheel, and be found there when no checkout is around."""

import subprocess
import sys
import zipfile

import pytest


@pytest.mark.slow
def test_wheel_carries_cards_and_reads_them(tmp_path):
    root = __import__("pathlib").Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(tmp_path), str(root)],
                   check=True)
    (wheel,) = tmp_path.glob("nb360-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for expected in ("nb360/_cards/search_spaces/nb201.toml", "nb360/_cards/search_spaces/nb201_index.txt",
                     "nb360/_cards/tasks/darcyflow.toml"):
        assert expected in names
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site), str(wheel)],
                   check=True)
    probe = ("import nb360.cards as c; from nb360.spaces.nb201 import Arch; "
             "print(c.card_dir('tasks')); print(Arch.from_index(0).index, c.names('tasks'))")
    result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env={"PYTHONPATH": str(site)},
                            capture_output=True, text=True, check=True)
    cards_dir, rest = result.stdout.splitlines()
    assert cards_dir.startswith(str(site)) and cards_dir.endswith("_cards/tasks")
    assert rest == f"0 {sorted(p.stem for p in (root / 'tasks').glob('*.toml'))}"
    shipped = sorted(p.name for p in (root / "precomputed").iterdir())
    assert shipped and all(f"nb360/_cards/precomputed/{name}" in names for name in shipped)
