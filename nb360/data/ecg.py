"""ECG rhythms (PhysioNet/CinC Challenge 2017) as NAS-Bench-360 uses them, read from the published file.

File: ``challenge2017.pkl``, a pickle of ``{"data": records, "label": classes}`` as the resnet1d
preprocessing (NAS-Bench-360 expert/ECG/resnet1d/util.py: preprocess_physionet) writes it: ``data`` an
object array of 8,528 one-dimensional records (the ``val`` arrays of the challenge's .mat files, int16,
300 Hz, 9-61 s), ``label`` an object array of their classes "N" (normal), "A" (atrial fibrillation),
"O" (other rhythm), "~" (noisy), from the challenge's REFERENCE csv. It is read through a restricted
unpickler (arrays and plain containers only).

Task, as NAS-Bench-360's ``read_data_physionet_4_with_val`` (backbone_1d/data_utils/load_data.py):
  * each record z-scored on its own (population std); classes encoded N, A, O, ~ -> 0, 1, 2, 3;
  * records split with scikit-learn's ``train_test_split(test_size=0.2, random_state=0)``, the held-out
    fifth halved with ``train_test_split(test_size=0.5, random_state=0)`` into val and test, in the order
    those calls return them (so windows line up with NB360's);
  * every record cut into windows of 1,000 samples starting at 0, s, 2s, ... below len - 1,000, with a
    stride s that depends on the class to balance them: 500 for N, 83 for A, 250 for O, 25 for ~ (the
    same in all three splits, as ``slide_and_cut`` does); one channel, (1, 1000) float32;
  * the metric votes: each record gets the most common window prediction (ties going to the class
    predicted first, as ``collections.Counter.most_common`` does), and the error is 1 - macro F1 over
    the records (NB360 model_def.py: evaluate_full_dataset_ECG).
NB360 shuffles the training windows once when loading; here the training loader shuffles every epoch.

Why the targets carry the record: a metric sees only the predictions and targets of a whole split, in
dataset order for val and test but in shuffled order for the training predictions of an epoch. Each
window's target is the pair (label, record id), the record id being the record's index in the file, so
the vote needs no window-to-record map and works in any order; the loss reads the label column only.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from nb360.data import checks
from nb360.data.fake import balanced_labels

if TYPE_CHECKING:
    from nb360.data.task import Task

TASK = "ecg"
FILE = "challenge2017.pkl"
PUBLISHED_URL = checks.published_url("ECG/challenge2017.pkl")
CLASSES = ("N", "A", "O", "~")
WINDOW = 1000
# slide_and_cut(..., stride=500, datatype=4): stride, stride // 6, stride // 2, stride // 20 by class
STRIDES = (500, 500 // 6, 500 // 2, 500 // 20)
HELD_OUT, TEST_OF_HELD_OUT, SPLIT_SEED = 0.2, 0.5, 0
MIN_RECORDS = 10  # so that the held-out fifth has a record for val and one for test


def read(data_root: Path) -> tuple[list[np.ndarray], np.ndarray]:
    """(z-scored records as float32 arrays, labels (N,) int64 in 0..3), checked against the published format."""
    path = checks.require_file(Path(data_root), FILE, TASK, PUBLISHED_URL)
    content = checks.require_keys(checks.load_pickle(path), ["data", "label"], path)
    dims: dict = {}
    data = checks.check_array(content["data"], path, "data", ("N",), "O", dims)
    names = checks.check_array(content["label"], path, "label", ("N",), "OU", dims)
    unknown = sorted({str(v) for v in names} - set(CLASSES))
    if unknown:
        raise ValueError(f"{path}: field 'label' has values {unknown}, expected only {list(CLASSES)}")
    for i, record in enumerate(data):
        checks.check_array(record, path, f"data[{i}]", ("length",), checks.REAL)
        if len(record) <= WINDOW:
            raise ValueError(f"{path}: field 'data[{i}]' has {len(record)} samples, expected more than {WINDOW} "
                             "(one window)")
    checks.check_nonconstant_rows(data, path, "data")
    records = [((r - r.mean()) / r.std()).astype(np.float32) for r in (np.asarray(r, np.float64) for r in data)]
    labels = np.array([CLASSES.index(str(v)) for v in names], dtype=np.int64)
    return records, labels


def split_records(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Record indices of train, val and test: NAS-Bench-360's two ``train_test_split`` calls, in their order."""
    from sklearn.model_selection import train_test_split

    if len(labels) < MIN_RECORDS:
        raise ValueError(f"ecg needs at least {MIN_RECORDS} records (a fifth is held out and halved), "
                         f"found {len(labels)}")
    index = np.arange(len(labels))
    train, held_out = train_test_split(index, test_size=HELD_OUT, random_state=SPLIT_SEED)
    val, test = train_test_split(held_out, test_size=TEST_OF_HELD_OUT, random_state=SPLIT_SEED)
    return train, val, test


class RecordWindows(Dataset):
    """The windows of some records: item i is (window (1, 1000) float32, target [label, record id] int64).

    Records are kept once, end to end; a window is a view into them, so the data set takes the memory
    of its records, not of its overlapping windows.
    """

    def __init__(self, records: list[np.ndarray], labels: np.ndarray, ids: np.ndarray):
        starts = [np.arange(0, len(r) - WINDOW, STRIDES[label]) for r, label in zip(records, labels)]
        offsets = np.cumsum([0] + [len(r) for r in records])[:-1]
        which = np.repeat(np.arange(len(records)), [len(s) for s in starts])
        self.signal = torch.from_numpy(np.concatenate(records))
        self.begin = torch.from_numpy(offsets[which] + np.concatenate(starts))
        self.targets = torch.from_numpy(np.stack([labels[which], ids[which]], axis=1).astype(np.int64))

    def __len__(self) -> int:
        return len(self.begin)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        begin = int(self.begin[i])
        return self.signal[begin:begin + WINDOW].unsqueeze(0), self.targets[i]


def window_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of each window against its record's label (column 0); the record id is ignored."""
    return F.cross_entropy(logits, targets[:, 0])


def _vote(values: torch.Tensor, record: torch.Tensor, n_records: int, n_classes: int) -> torch.Tensor:
    """(n_records, n_classes) scores whose argmax is each record's most common value, ties going to the
    value seen first (``Counter.most_common`` keeps first-seen order among equal counts)."""
    n = len(values)
    flat = record * n_classes + values
    ones = torch.ones(n, dtype=torch.float64)
    counts = torch.zeros(n_records * n_classes, dtype=torch.float64).index_add_(0, flat, ones)
    first = torch.full((n_records * n_classes,), n, dtype=torch.long).scatter_reduce(0, flat, torch.arange(n), "amin")
    return (counts * (n + 1) - first).view(n_records, n_classes)


def record_vote_f1_error(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """1 - macro F1 over records of the majority vote of their window predictions (NB360's ECG score).

    ``targets`` is (windows, 2): label and record id per window, in any order.
    """
    from nb360.metrics import macro_f1_error

    if targets.ndim != 2 or targets.shape[1] != 2:
        raise ValueError(f"ecg targets must be (windows, 2) pairs [label, record id], got shape {tuple(targets.shape)}")
    pred = logits.argmax(dim=1).cpu()
    labels, ids = targets[:, 0].cpu(), targets[:, 1].cpu()
    unique_ids, record = torch.unique(ids, return_inverse=True)
    n_records, n_classes = len(unique_ids), logits.shape[1]
    voted = _vote(pred, record, n_records, n_classes)
    truth = _vote(labels, record, n_records, n_classes).argmax(dim=1)
    return macro_f1_error(voted, truth)


def make_task(card: dict, data_root: Path) -> Task:
    """The ecg ``Task``: NAS-Bench-360's record splits and windows, window cross-entropy, record-vote F1 error."""
    from nb360.data.task import Task
    from nb360.train import Splits

    records, labels = read(data_root)
    splits = [RecordWindows([records[i] for i in part], labels[part], part) for part in split_records(labels)]
    return Task.from_card(card, Splits(*splits), window_cross_entropy, record_vote_f1_error)


# Periods (samples) of the fake records' waves by class: short enough for a small network's receptive field.
_FAKE_PERIODS = (64, 40, 24, 12)


def write_fake(root: Path, n: int = 40, seed: int = 0) -> list[Path]:
    """``challenge2017.pkl`` in the published layout: ``n`` int16 records of 1,100-1,700 samples in an
    object array, and an object array of their classes ("N", "A", "O", "~", balanced); each record a
    wave whose period says its class, with noise and an offset."""
    if n < MIN_RECORDS:
        raise ValueError(f"ecg fake data needs n >= {MIN_RECORDS} records (a fifth is held out and halved), got {n}")
    rng = np.random.default_rng(seed)
    labels = balanced_labels(rng, n, range(len(CLASSES)))
    data = np.empty(n, dtype=object)
    for i, label in enumerate(labels):
        t = np.arange(rng.integers(WINDOW + 100, WINDOW + 700))
        wave = np.sin(2 * np.pi * t / _FAKE_PERIODS[label] + rng.uniform(0, 2 * np.pi))
        data[i] = np.round(rng.normal(0, 50) + 200 * wave + 30 * rng.standard_normal(len(t))).astype(np.int16)
    content = {"data": data, "label": np.array([CLASSES[k] for k in labels], dtype=object)}
    path = Path(root) / FILE
    checks.atomic_write(path, lambda f: pickle.dump(content, f))
    return [path]
