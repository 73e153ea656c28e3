"""PSICOV (NAS-Bench-360's protein task): inter-residue distance maps from 57 pairwise feature maps.

The published ``protein.zip`` holds PDNet's data (Adhikari, Bioinformatics 2020), read by
NAS-Bench-360's ``backbone/data_utils/protein_io.py`` and ``protein_gen.py`` after unpacking:

* ``deepcov.lst`` (3,456 DeepCov proteins) and ``psicov.lst`` (the 150 PSICOV test proteins): one
  protein id per line (the first word);
* ``{deepcov,psicov}/features/{id}.pkl``: a pickled dict with ``seq`` (the sequence, length L),
  ``ss`` (3, L), ``pssm`` (L, 22), ``sa`` (L,), ``entropy`` (L,), ``ccmpred``, ``freecon`` and
  ``potential`` (L, L);
* ``{deepcov,psicov}/distance/{id}-cb.npy``: an object array (L, sequence, C-beta distance map (L, L)).

Input (``get_feature``): 57 channels, each 1-D feature f as the pair of maps f[col] and f[row] (3
secondary-structure, 22 PSSM, solvent accessibility and entropy rows: 54 maps), then the three
pairwise maps. Target (``get_map``): distances clipped below at 1, the diagonal replaced by its
neighbours' mean. Both are padded by 5 on each side (zeros / distance 100) and placed in a
``size`` x ``size`` window: at the top-left when they fit, else a random crop (independent row and
column offsets). Training crops are 128 x 128 with distances clipped at 16 (``label_engineering``);
NAS-Bench-360's test maps are 512 x 512 (``LMAX``); here they are as large as the split's longest
protein needs, rounded up to a multiple of 128 (``evaluation_window``). They are scored by MAE8
(``nb360.metrics.psicov_mae8``).

Splits: DeepCov's first 100 proteins validate and the others train (``deepcov_list[100:]``);
PSICOV's 150 are the test set. Validation here uses full maps scored by MAE8, the task metric,
where NAS-Bench-360's training runs report an L1 error on random 128 crops. The network is
applied to the whole padded map at once (it is fully convolutional); NAS-Bench-360's models predict
it in 128 x 128 tiles (``forward_window``), which differs only near tile borders.

Targets have two channels: the distance, and the sequence separation of each pixel's residue pair
(column residue minus row residue), which the metric needs to find the long-range pairs of a crop.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.utils.data import Dataset

from nb360.data import checks
from nb360.data.archives import Archive, npy_bytes, write_zip

if TYPE_CHECKING:
    from nb360.data.task import Task

ARCHIVE = "protein.zip"
LISTS = {"deepcov": "deepcov.lst", "psicov": "psicov.lst"}
CHANNELS = 57
VECTOR_FEATURES = {"ss": (3, "L"), "pssm": ("L", 22), "sa": ("L",), "entropy": ("L",)}
PAIR_FEATURES = ("ccmpred", "freecon", "potential")
PAD = 10  # pad_size: 5 on each side
PAD_DISTANCE = 100.0  # distance given to padding
TRAIN_WINDOW = 128  # training crops, and the tile size evaluation maps are a multiple of
LMAX = 512  # NAS-Bench-360's evaluation map size
TRAIN_DISTANCE_CLIP = 16.0  # label_engineering="16.0"
VALIDATION = 100  # deepcov_list[:100] validate
DEEPCOV = 3456  # proteins in the published deepcov.lst


def vector_maps(vectors: list[np.ndarray], rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """get_feature's 1-D features: each vector v gives the maps v[col] and v[row] (``a`` and ``a.T``)."""
    maps = []
    for v in vectors:
        maps.append(np.broadcast_to(v[None, cols], (len(rows), len(cols))))
        maps.append(np.broadcast_to(v[rows, None], (len(rows), len(cols))))
    return np.stack(maps)


class Protein:
    """One protein's features and distance map, checked against PDNet's format."""

    def __init__(self, archive: Archive, dataset: str, pid: str):
        feature_name, distance_name = f"{dataset}/features/{pid}.pkl", f"{dataset}/distance/{pid}-cb.npy"
        for name in (feature_name, distance_name):
            if name not in archive:
                raise ValueError(f"{archive.path}: member {name!r} is missing; {LISTS[dataset]} lists protein {pid!r}")
        self.vectors, self.pairs = _read_features(archive, feature_name)
        self.distance = _read_distance(archive, distance_name, self.pairs[0].shape[0])
        self.length = self.distance.shape[0]

    def window(self, row_start: int, col_start: int, size: int, clip: float | None) -> tuple[np.ndarray, np.ndarray]:
        """(input (57, size, size), target (2, size, size)) of the padded maps, window at (row_start,
        col_start) of the padded coordinates (the protein starts at PAD / 2); outside the protein the
        input is 0 and the distance PAD_DISTANCE (clipped at ``clip`` like all distances, if given)."""
        offset = PAD // 2
        rows, cols = np.arange(size) + row_start - offset, np.arange(size) + col_start - offset
        row_in, col_in = (rows >= 0) & (rows < self.length), (cols >= 0) & (cols < self.length)
        r, c = rows[row_in], cols[col_in]
        x = np.zeros((CHANNELS, size, size), dtype=np.float32)
        inside = np.ix_(row_in, col_in)
        x[(slice(None), *inside)] = np.concatenate([vector_maps(self.vectors, r, c),
                                                    np.stack([p[np.ix_(r, c)] for p in self.pairs])])
        distance = np.full((size, size), PAD_DISTANCE, dtype=np.float32)
        distance[inside] = self.distance[np.ix_(r, c)]
        if clip is not None:
            distance = np.minimum(distance, clip)
        separation = (cols[None, :] - rows[:, None]).astype(np.float32)
        return x, np.stack([distance, separation])


def _read_features(archive: Archive, name: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    origin = archive.origin(name)
    features = checks.require_keys(archive.load_pickle(name), ["seq", *VECTOR_FEATURES, *PAIR_FEATURES], origin)
    if not isinstance(features["seq"], str):
        raise ValueError(f"{origin}: field 'seq' is a {type(features['seq']).__name__}, expected the sequence as a str")
    dims = {"L": (len(features["seq"]), "seq")}
    for key, shape in VECTOR_FEATURES.items():
        checks.check_array(features[key], origin, key, shape, checks.REAL, dims)
    for key in PAIR_FEATURES:
        checks.check_array(features[key], origin, key, ("L", "L"), checks.REAL, dims)
    # get_feature: secondary structure rows, PSSM columns, then SA and entropy, in this channel order.
    vectors = [*features["ss"], *features["pssm"].T, features["sa"], features["entropy"]]
    pairs = [features[key] for key in PAIR_FEATURES]
    for key, values in (("ss/pssm/sa/entropy", vectors), ("ccmpred/freecon/potential", pairs)):
        if not all(np.all(np.abs(v) < 100) for v in values):  # PDNet asserts -100 < X < 100 (so no NaN)
            raise ValueError(f"{origin}: fields {key} have values outside (-100, 100) or NaN, expected finite features")
    return [np.asarray(v, dtype=np.float32) for v in vectors], [np.asarray(p, dtype=np.float32) for p in pairs]


def _distance_record(archive: Archive, name: str) -> tuple[int, object]:
    """(length, distance map) of a ``-cb.npy`` member: an object array (length, sequence, map)."""
    record = archive.load_npy(name)
    if not (isinstance(record, np.ndarray) and record.dtype.hasobject and record.shape == (3,)):
        found = f"shape {record.shape}, dtype {record.dtype}" if isinstance(record, np.ndarray) else type(record).__name__
        raise ValueError(f"{archive.origin(name)}: found {found}, expected an object array (length, sequence, distance map)")
    if not isinstance(record[0], (int, np.integer)):
        raise ValueError(f"{archive.origin(name)}: the length is a {type(record[0]).__name__}, expected an integer")
    return int(record[0]), record[2]


def _read_distance(archive: Archive, name: str, length: int) -> np.ndarray:
    """get_map: the C-beta map, distances below 1 set to 1, the diagonal set to its neighbours' mean."""
    origin = archive.origin(name)
    ly, cb_map = _distance_record(archive, name)
    cb_map = checks.check_array(cb_map, origin, "distance map", (length, length), checks.REAL)
    if ly != length:
        raise ValueError(f"{origin}: length {ly} does not match the {length} residues of the features, expected equal")
    if not np.all(np.isfinite(cb_map)) or cb_map.max() > 500:
        raise ValueError(f"{origin}: field 'distance map' has NaN or distances above 500, expected finite distances <= 500")
    y = np.maximum(cb_map.astype(np.float32), 1.0)
    if length > 1:
        below, above = np.diagonal(y, -1), np.diagonal(y, 1)  # y[q, q-1] and y[q, q+1]
        np.fill_diagonal(y, np.concatenate([above[:1], (below[:-1] + above[1:]) / 2, below[-1:]]))
    return y


class ProteinMaps(Dataset):
    """Proteins as (input (57, S, S), target (2, S, S)) windows: random crops of ``window`` x ``window``
    when the padded map is larger (torch's random generator), the top-left window otherwise."""

    def __init__(self, archive: Archive, dataset: str, ids: list[str], window: int, clip: float | None):
        self.archive, self.dataset, self.ids, self.size, self.clip = archive, dataset, ids, window, clip

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        protein = Protein(self.archive, self.dataset, self.ids[i])
        padded = protein.length + PAD
        row = col = 0
        if padded > self.size:
            row, col = (int(v) for v in torch.randint(padded - self.size + 1, (2,)))
        x, y = protein.window(row, col, self.size, self.clip)
        return torch.from_numpy(x), torch.from_numpy(y)


def read_list(archive: Archive, dataset: str) -> list[str]:
    """protein_io.load_list: the first word of each line."""
    name = LISTS[dataset]
    if name not in archive:
        raise ValueError(f"{archive.path}: member {name!r} is missing; expected the list of {dataset} proteins")
    ids = [line.split()[0] for line in archive.read(name).decode().splitlines() if line.strip()]
    if not ids:
        raise ValueError(f"{archive.origin(name)}: no protein ids, expected one per line")
    return ids


def evaluation_window(archive: Archive, dataset: str, ids: list[str], size: int | None) -> int:
    """The side of a split's evaluation maps: ``size`` if given, checked to hold every padded protein of
    the split (NAS-Bench-360 would crop a larger one at random); by default the smallest multiple of 128
    that holds them all. Where the padded protein fits, the network's output on it does not depend on
    how much zero padding surrounds it beyond the network's receptive field, so NAS-Bench-360's 512
    (``LMAX``) only costs time on short proteins."""
    longest = max(_distance_record(archive, f"{dataset}/distance/{pid}-cb.npy")[0] for pid in ids)
    if size is None:
        return -(-(longest + PAD) // TRAIN_WINDOW) * TRAIN_WINDOW
    if longest + PAD > size:
        raise ValueError(f"psicov: the longest {dataset} protein has {longest} residues, which with padding do not fit in "
                         f"test_size={size}; expected test_size >= {longest + PAD}")
    return size


def split_sizes(n_deepcov: int) -> tuple[int, int]:
    """(train, val): 3356 / 100 for the published list, in proportion (at least one each) for fewer."""
    if n_deepcov < 2:
        raise ValueError(f"psicov needs at least 2 DeepCov proteins (1 to train, 1 to validate), the list has {n_deepcov}")
    n_val = min(VALIDATION, max(1, round(n_deepcov * VALIDATION / DEEPCOV)))
    return n_deepcov - n_val, n_val


def load_splits(data_root: Path, test_size: int | None = None) -> tuple[Dataset, Dataset, Dataset]:
    """(train, val, test) as NAS-Bench-360 builds them (see the module docstring)."""
    path = checks.require_file(Path(data_root), ARCHIVE, "psicov", checks.published_url(ARCHIVE))
    archive = Archive(path)
    deepcov, psicov = read_list(archive, "deepcov"), read_list(archive, "psicov")
    _, n_val = split_sizes(len(deepcov))
    val_ids = deepcov[:n_val]
    return (ProteinMaps(archive, "deepcov", deepcov[n_val:], TRAIN_WINDOW, TRAIN_DISTANCE_CLIP),
            ProteinMaps(archive, "deepcov", val_ids, evaluation_window(archive, "deepcov", val_ids, test_size), None),
            ProteinMaps(archive, "psicov", psicov, evaluation_window(archive, "psicov", psicov, test_size), None))


def make_task(card: dict, data_root: Path, test_size: int | None = None) -> Task:
    """The psicov ``Task``: MSE on 128 x 128 crops, MAE8 on full maps padded to ``test_size`` (default:
    the smallest multiple of 128 that holds the split's longest protein; NAS-Bench-360 uses 512)."""
    from nb360.data.task import Task
    from nb360.metrics import psicov_mae8, psicov_mse_loss
    from nb360.train import Splits

    train, val, test = load_splits(data_root, test_size)
    return Task.from_card(card, Splits(train, val, test), psicov_mse_loss, psicov_mae8)


# ----------------------------------------------------------------------------------------------
# Format-faithful fake data
# ----------------------------------------------------------------------------------------------


def write_fake(root: str | Path, n: int = 24, seed: int = 0) -> Path:
    """A small ``protein.zip`` in PDNet's layout: ``n`` proteins in deepcov.lst (training and validation)
    and n/3 (at least 2) in psicov.lst, of 40 to 140 residues in each list (some longer than a 128 crop).

    A protein's C-beta trace is a random walk of 3.8 A steps kept inside a sphere, so many residues far
    apart in the sequence are in contact. The three pairwise maps are noisy functions of the true
    distances (as coevolution scores are), the 1-D features are random, so the distances are
    learnable from the input. dtypes: float32 features and float64 distances (not documented by
    NAS-Bench-360; PDNet's pickles hold floating-point arrays)."""
    if n < 2:
        raise ValueError(f"psicov fake data needs n >= 2 DeepCov proteins (1 to train, 1 to validate), got {n}")
    rng = np.random.default_rng(seed)
    n_psicov = max(2, n // 3)
    lists = {"deepcov": [f"{i + 1}abc{'ABCD'[i % 4]}" for i in range(n)],
             "psicov": [f"{i + 1}xyz" for i in range(n_psicov)]}
    members: dict[str, bytes] = {}
    for dataset, ids in lists.items():
        members[LISTS[dataset]] = ("\n".join(ids) + "\n").encode()
        lengths = rng.permutation(np.linspace(40, 140, len(ids)).round().astype(int))  # short and long in each list
        for pid, length in zip(ids, lengths):
            features, record = _fake_protein(int(length), rng)
            members[f"{dataset}/features/{pid}.pkl"] = pickle.dumps(features, protocol=2)
            members[f"{dataset}/distance/{pid}-cb.npy"] = npy_bytes(record)
    path = Path(root) / ARCHIVE
    write_zip(path, members)
    return path


def _fake_protein(length: int, rng: np.random.Generator) -> tuple[dict, np.ndarray]:
    trace = np.zeros((length, 3))
    for i in range(1, length):
        step = rng.standard_normal(3)
        trace[i] = trace[i - 1] + 3.8 * step / np.linalg.norm(step)
        if np.linalg.norm(trace[i]) > 11.0:  # keep the chain compact: step back towards the centre
            trace[i] = trace[i - 1] - 3.8 * trace[i - 1] / max(np.linalg.norm(trace[i - 1]), 1e-9)
    distance = np.linalg.norm(trace[:, None] - trace[None], axis=-1)
    contact = 1.0 / (1.0 + np.exp(distance - 8.0))

    def pair(scale: float) -> np.ndarray:
        noise = rng.normal(0, 0.1, (length, length))
        return (scale * contact + (noise + noise.T) / 2).astype(np.float32)

    ss = rng.dirichlet(np.ones(3), size=length).T.astype(np.float32)
    features = {"seq": "".join(rng.choice(list("ACDEFGHIKLMNPQRSTVWY"), size=length)),
                "ss": ss, "pssm": rng.uniform(0, 1, (length, 22)).astype(np.float32),
                "sa": rng.uniform(0, 1, length).astype(np.float32), "entropy": rng.uniform(0, 3, length).astype(np.float32),
                "ccmpred": pair(1.0), "freecon": pair(0.5), "potential": pair(-2.0)}
    record = np.empty(3, dtype=object)
    record[0], record[1], record[2] = length, features["seq"], distance
    return features, record
