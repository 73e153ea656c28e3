import pytest

from nb360 import cards
from nb360.data.task import Task
from nb360.train import LR


@pytest.mark.parametrize("name, lr", [("cosmic", 0.001), ("psicov", 0.001), ("darcyflow", LR), ("cifar100", LR)])
def test_a_task_trains_at_its_cards_learning_rate_else_nb201s(name, lr):
    assert Task.from_card(cards.load("tasks", name), None, None, None).lr == lr


def test_the_download_script_layout_is_found(tmp_path):
    """NAS-Bench-360's download_datasets.sh puts each task in a folder of its own (and gunzips the
    spherical pickle): the same loaders read that layout, and `nb360 tasks` finds it."""
    import gzip
    import shutil

    import torch

    from nb360.data import load_task, ninapro, spherical, task_status

    flat = tmp_path / "flat"
    ninapro.write_fake(flat, n=8)
    spherical.write_fake(flat, n=8)
    layout = tmp_path / "datasets"
    shutil.copytree(flat, layout / "ninapro", ignore=shutil.ignore_patterns("s2_cifar100*"))
    (layout / "spherical").mkdir()
    with gzip.open(flat / spherical.FILE, "rb") as source:
        (layout / "spherical" / spherical.UNZIPPED).write_bytes(source.read())
    for name in ("ninapro", "spherical"):
        a, b = load_task(name, flat), load_task(name, layout)
        for split_a, split_b in zip(a.splits, b.splits):
            for x, y in zip(split_a.tensors, split_b.tensors):
                assert torch.equal(x, y)
    status = {row["name"]: row["files"] for row in task_status(layout)}
    assert status["ninapro"] == status["spherical"] == "found" and status["ecg"].startswith("missing")


def test_final_splits_train_on_train_and_validation(tmp_path):
    """NAS-Bench-360's final runs: NinaPro's 2,638 + 659 = 3,297 training samples, in miniature."""
    import torch

    from nb360.data import load_task, ninapro

    ninapro.write_fake(tmp_path, n=8)
    search, final = load_task("ninapro", tmp_path), load_task("ninapro", tmp_path, splits="final")
    assert final.val is None and len(final.train) == len(search.train) + len(search.val)
    assert torch.equal(final.train[len(search.train)][0], search.val[0][0])
    assert torch.equal(final.test.tensors[1], search.test.tensors[1])
    with pytest.raises(ValueError, match="splits='retrain': expected one of search, final"):
        load_task("ninapro", tmp_path, splits="retrain")


def test_train_command_with_final_splits(cli, tmp_path):
    from nb360.data import ninapro

    ninapro.write_fake(tmp_path, n=8)
    out = tmp_path / "run.json"
    result = cli("train", "--task", "ninapro", "--data-root", str(tmp_path), "--arch", "1", "--epochs", "1", "--C", "2",
                 "--N", "1", "--splits", "final", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "/-/" in result.stdout and "(final splits)" in result.stdout
    import json
    import math

    saved = json.loads(out.read_text())
    assert saved["config"]["splits"] == "final" and math.isnan(saved["records"][0]["val_metric"])
