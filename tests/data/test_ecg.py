"""ECG: the fake pickle in the published layout, NAS-Bench-360's record splits and windows, the record vote."""

from __future__ import annotations

import pickle
from collections import Counter

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from signal_check import spectral_accuracy
from sklearn.metrics import f1_score
from sklearn.model_selection import train_test_split

from nb360.data import ecg, load_task

N = 24


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("ecg")
    ecg.write_fake(root, n=N, seed=0)
    return root


def raw(root):
    with open(root / "challenge2017.pkl", "rb") as f:
        return pickle.load(f)


def nb360_windows(content):
    """NAS-Bench-360's read_data_physionet_4_with_val, step by step, as the reference: per-record
    z-score, labels N/A/O/~ -> 0..3, two train_test_split calls on the records themselves, then
    slide_and_cut with the class-dependent strides. Returns {split: (windows, labels, pid)}."""
    data = [(r - np.mean(r)) / np.std(r) for r in content["data"]]
    labels = np.array(["NAO~".index(v) for v in content["label"]])
    x_train, x_test, y_train, y_test = train_test_split(data, labels, test_size=0.2, random_state=0)
    x_val, x_test, y_val, y_test = train_test_split(x_test, y_test, test_size=0.5, random_state=0)
    out = {}
    for split, xs, ys in (("train", x_train, y_train), ("val", x_val, y_val), ("test", x_test, y_test)):
        windows, window_labels, pid = [], [], []
        for i, (record, label) in enumerate(zip(xs, ys)):
            stride = {0: 500, 1: 500 // 6, 2: 500 // 2, 3: 500 // 20}[label]
            for j in range(0, len(record) - 1000, stride):
                windows.append(record[j:j + 1000])
                window_labels.append(label)
                pid.append(i)
        out[split] = np.array(windows), np.array(window_labels), np.array(pid)
    return out


def test_fake_file_has_the_published_layout(root):
    content = raw(root)
    assert set(content) == {"data", "label"}
    assert content["data"].dtype == object and content["data"].shape == (N,)
    assert all(r.dtype == np.int16 and r.ndim == 1 and len(r) > 1000 for r in content["data"])
    assert len({len(r) for r in content["data"]}) > 1  # variable-length records
    assert content["label"].dtype == object and set(content["label"]) == {"N", "A", "O", "~"}


def test_windows_and_splits_are_nb360s(root):
    task = load_task("ecg", root)
    reference = nb360_windows(raw(root))
    assert task.spec.input_shape == (1, 1000) and task.spec.out_size == 4 and task.batch_size == 256
    for split, dataset in zip(("train", "val", "test"), task.splits):
        windows, labels, pid = reference[split]
        assert len(dataset) == len(windows)
        x = torch.stack([dataset[i][0] for i in range(len(dataset))])
        targets = torch.stack([dataset[i][1] for i in range(len(dataset))])
        assert x.shape == (len(windows), 1, 1000) and x.dtype == torch.float32 and targets.dtype == torch.int64
        np.testing.assert_allclose(x[:, 0].numpy(), windows, rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(targets[:, 0].numpy(), labels)
        # the record id column groups windows exactly as NB360's pid does
        _, ours = np.unique(targets[:, 1].numpy(), return_inverse=True)
        assert len(set(zip(ours, pid))) == len(set(pid)) == len(set(ours))
    held_out = set(task.val.targets[:, 1].tolist()) | set(task.test.targets[:, 1].tolist())
    assert not held_out & set(task.train.targets[:, 1].tolist())  # splits are by record


def nb360_score(pred, labels, pid):
    """NAS-Bench-360's evaluate_full_dataset_ECG: Counter vote per pid, then sklearn's per-class F1 averaged."""
    final_pred, final_gt = [], []
    for i in np.unique(pid):
        final_pred.append(Counter(pred[pid == i]).most_common(1)[0][0])
        final_gt.append(Counter(labels[pid == i]).most_common(1)[0][0])
    return 1 - f1_score(final_gt, final_pred, average="macro")


def test_record_vote_matches_nb360_on_a_hand_built_case():
    # record 7: votes 2, 1, 1, 2 -> a tie that Counter gives to 2, seen first (argmax of counts would say 1)
    # record 3: all windows say 0; record 5: 3 beats 1; record 9: one window, class 1
    records = np.array([7, 7, 7, 7, 3, 3, 5, 5, 5, 9])
    labels = np.array([2, 2, 2, 2, 0, 0, 3, 3, 3, 1])
    pred = np.array([2, 1, 1, 2, 0, 0, 3, 1, 3, 1])
    logits = F.one_hot(torch.from_numpy(pred), 4).float() * 5 + torch.randn(len(pred), 4)
    targets = torch.from_numpy(np.stack([labels, records], axis=1))
    error = ecg.record_vote_f1_error(logits, targets)
    assert error == pytest.approx(nb360_score(pred, labels, records)) == pytest.approx(0.0)
    pred[1:3] = 2  # record 7 now votes 2 outright; record 5 turned to class 1 instead
    pred[6], pred[8] = 1, 1
    logits = F.one_hot(torch.from_numpy(pred), 4).float()
    error = ecg.record_vote_f1_error(logits, targets)
    assert error == pytest.approx(nb360_score(pred, labels, records)) and error > 0


def test_record_vote_matches_nb360_on_random_predictions_in_any_order():
    rng = np.random.default_rng(0)
    records = np.repeat(np.arange(30), rng.integers(1, 9, 30))
    labels = rng.integers(0, 4, 30)[records]
    logits = torch.randn(len(records), 4, generator=torch.Generator().manual_seed(0))
    pred = logits.argmax(1).numpy()
    targets = torch.from_numpy(np.stack([labels, records], axis=1))
    error = ecg.record_vote_f1_error(logits, targets)
    assert error == pytest.approx(nb360_score(pred, labels, records))
    order = torch.from_numpy(rng.permutation(len(records)))  # shuffled training predictions; ties may move
    shuffled = nb360_score(pred[order.numpy()], labels[order.numpy()], records[order.numpy()])
    assert ecg.record_vote_f1_error(logits[order], targets[order]) == pytest.approx(shuffled)


def test_loss_ignores_the_record_id():
    logits = torch.randn(6, 4, requires_grad=True)
    targets = torch.tensor([[0, 1], [1, 1], [2, 5], [3, 5], [0, 9], [2, 9]])
    loss = ecg.window_cross_entropy(logits, targets)
    assert loss.item() == pytest.approx(F.cross_entropy(logits, targets[:, 0]).item())
    assert ecg.window_cross_entropy(logits, targets * torch.tensor([1, 1000])).item() == pytest.approx(loss.item())
    loss.backward()
    assert torch.isfinite(logits.grad).all()


def test_fake_data_carries_a_signal(root):
    accuracy, chance = spectral_accuracy(load_task("ecg", root))
    assert accuracy >= 0.8 > chance


def test_one_epoch_gives_a_finite_metric(root, one_epoch):
    record = one_epoch(load_task("ecg", root), batch_size=64)
    assert 0 <= record["val_metric"] <= 1


def test_missing_file_names_file_directory_and_source(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        load_task("ecg", tmp_path)
    message = str(error.value)
    assert "challenge2017.pkl" in message and str(tmp_path.resolve()) in message
    assert "https://pde-xd.s3.amazonaws.com/ECG/challenge2017.pkl" in message


def short_record(content):
    content["data"][4] = content["data"][4][:1000]


def two_dimensional(content):
    content["data"] = np.zeros((len(content["label"]), 2000), np.int16)


@pytest.mark.parametrize("change, expected", [
    (lambda c: c["label"].__setitem__(3, "X"), "field 'label' has values ['X'], expected only ['N', 'A', 'O', '~']"),
    (short_record, "field 'data[4]' has 1000 samples, expected more than 1000 (one window)"),
    (two_dimensional, "field 'data' has shape (12, 2000), expected (N,)"),
    (lambda c: c["data"].__setitem__(2, np.full(1500, 7, np.int16)), "field 'data' row 2 is constant"),
    (lambda c: c.pop("label"), "field 'label' is missing; found keys ['data'], expected ['data', 'label']"),
])
def test_bad_file_names_file_field_found_and_expected(tmp_path, change, expected):
    ecg.write_fake(tmp_path, n=12)
    content = raw(tmp_path)
    change(content)
    (tmp_path / "challenge2017.pkl").write_bytes(pickle.dumps(content))
    with pytest.raises(ValueError) as error:
        load_task("ecg", tmp_path)
    assert str(tmp_path / "challenge2017.pkl") in str(error.value) and expected in str(error.value)


def test_too_few_records_to_split(tmp_path):
    ecg.write_fake(tmp_path, n=12)
    content = raw(tmp_path)
    (tmp_path / "challenge2017.pkl").write_bytes(pickle.dumps({"data": content["data"][:9], "label": content["label"][:9]}))
    with pytest.raises(ValueError, match="ecg needs at least 10 records .*, found 9"):
        load_task("ecg", tmp_path)
    with pytest.raises(ValueError, match="n >= 10 records"):
        ecg.write_fake(tmp_path, n=9)
