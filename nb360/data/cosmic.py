"""Cosmic (NAS-Bench-360's astronomy task): cosmic-ray masks of Hubble ACS/WFC images (deepCR data).

The published ``deepCR.ACS-WFC.train.tar`` and ``deepCR.ACS-WFC.test.tar`` (Zhang & Bloom, ApJ 2020)
unpack to ``npy_train/`` and ``npy_test/``: ``{filter}/{proposal}/{visit}/{k}_*.npy``, each an array
(3, H, W) of [image, cosmic-ray mask, ignore mask] (or (2, H, W) without the ignore mask), and a
``sky.npy`` per visit whose entry k-1 is the sky level of exposure k. NAS-Bench-360
(``backbone/data_utils/cosmic_dataset.py``, from deepCR) uses the F435W images of the resolved-galaxy
fields ("GAL" in ``FIELD_TYPE``) only: train on the first 90% of the training images, validate on the
last 10%, test on all test images; each image is cropped to the fixed 128 x 128 window at (64, 64).
Training adds sky * U(-0.9, 3) to the image (deepCR's ``aug_sky``).

NAS-Bench-360 walks the directories in ``os.listdir`` order, which the file system decides; here
they are sorted, so which images validate is fixed (the last fields in sorted order, as the last
ones walked there). NAS-Bench-360 also applies the sky augmentation when it evaluates; here only
training is augmented, so a split's score does not change from one evaluation to the next.

Targets have two channels, the cosmic-ray mask and the ignore mask; the loss ignores the flagged
pixels and the metric (``nb360.metrics.cosmic_auroc_error``) is NAS-Bench-360's 1 - AUROC.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.utils.data import Dataset

from nb360.data import checks
from nb360.data.archives import Archive, npy_bytes, write_tar

if TYPE_CHECKING:
    from nb360.data.task import Task

ARCHIVES = {"train": "deepCR.ACS-WFC.train.tar", "test": "deepCR.ACS-WFC.test.tar"}
ROOTS = {"train": "npy_train", "test": "npy_test"}
FILTER = "f435w"
FIELD = "GAL"
CROP_START, CROP = 64, 128  # get_fixed_crop
VALIDATION_FRACTION = 0.1  # PairedDatasetImagePath's f_val
SKY_AUGMENTATION = (-0.9, 3.0)  # aug_sky

# deepCR's field types of the ACS/WFC data set, by "{proposal}_{visit}" (cosmic_dataset.field_type):
# globular cluster, resolved galaxy, extragalactic field.
FIELD_TYPE = {
    "10595_2": "GC", "10595_7": "GC", "9442_1": "GC", "9442_3": "GC", "9442_5": "GC", "10760_2": "GAL",
    "10760_4": "GAL", "10631_3": "EX", "10631_1": "EX", "10631_4": "EX", "12103_a3": "EX", "13498_b1": "EX",
    "13737_2": "GAL", "13737_3": "GAL", "9490_a3": "GAL", "10349_30": "GC", "10005_10": "GC", "10120_3": "GC",
    "12513_2": "GAL", "12513_3": "GAL", "14164_9": "EX", "13718_6": "EX", "10524_7": "GC", "10182_pb": "GAL",
    "10182_pd": "GAL", "9425_2": "EX", "9425_4": "EX", "9583_99": "EX", "10584_13": "GAL", "9978_5e": "EX",
    "15100_2": "EX", "15647_13": "EX", "11340_11": "GC", "13389_10": "EX", "9694_6": "EX", "10342_3": "GAL",
    "14343_1": "GAL", "10536_13": "EX", "13057_1": "GAL", "10260_7": "GAL", "10260_5": "GAL", "10407_3": "GAL",
    "13375_4": "EX", "13375_7": "EX", "13364_95": "GAL", "10190_28": "GAL", "10190_13": "GAL", "10146_4": "GC",
    "10146_3": "GC", "10775_ab": "GC", "11586_5": "GC", "12438_1": "EX", "13671_35": "EX", "14164_1": "GC",
    "9490_a2": "GAL", "9405_6d": "EX", "9405_4b": "EX", "9450_14": "EX", "10092_1": "EX", "13691_11": "GAL",
    "12058_12": "GAL", "12058_16": "GAL", "12058_1": "GAL", "9450_16": "EX", "10775_52": "GC", "12602_1": "GC",
    "12602_2": "GC", "10775_29": "GC", "10775_ad": "GC", "12058_6": "GAL", "14704_1": "GAL", "13804_6": "GAL",
}


def image_members(archive: Archive, part: str) -> list[str]:
    """get_dirs: ``{root}/f435w/{proposal}/{visit}/*.npy`` (sky.npy aside) of the GAL fields, sorted."""
    found = []
    for name in archive.names():
        parts = PurePosixPath(name).parts
        if len(parts) != 5 or parts[0] != ROOTS[part] or parts[1] != FILTER:
            continue
        if not parts[4].endswith(".npy") or parts[4] == "sky.npy":
            continue
        key = f"{parts[2]}_{parts[3]}"
        if key not in FIELD_TYPE:
            raise ValueError(f"{archive.origin(name)}: field {key!r} (proposal_visit) is not one of deepCR's ACS/WFC "
                             f"fields, whose types NAS-Bench-360 looks up; expected one of {sorted(FIELD_TYPE)}")
        if FIELD_TYPE[key] == FIELD:
            found.append(name)
    if not found:
        raise ValueError(f"{archive.path}: no {FILTER} images of resolved-galaxy fields under {ROOTS[part]}/{FILTER}/; "
                         f"expected {ROOTS[part]}/{FILTER}/<proposal>/<visit>/<k>_*.npy")
    return sorted(found, key=lambda n: PurePosixPath(n).parts)


class CosmicImages(Dataset):
    """(image (1, 128, 128), [mask, ignore] (2, 128, 128)) float32 crops; with ``augment``, the image
    gets sky * U(-0.9, 3) added (torch's random generator, so ``fit``'s seed fixes it)."""

    def __init__(self, archive: Archive, members: list[str], augment: bool):
        self.archive, self.members, self.augment = archive, members, augment

    def __len__(self) -> int:
        return len(self.members)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        name = self.members[i]
        origin = self.archive.origin(name)
        data = self.archive.load_npy(name)
        if not isinstance(data, np.ndarray) or data.ndim != 3 or data.shape[0] not in (2, 3):
            found = f"shape {data.shape}" if isinstance(data, np.ndarray) else f"a {type(data).__name__}"
            raise ValueError(f"{origin}: found {found}, expected an array (3, H, W) of image, cosmic-ray mask and "
                             "ignore mask (or (2, H, W) without the ignore mask)")
        checks.check_array(data, origin, "image stack", (data.shape[0], "H", "W"), checks.REAL)
        if min(data.shape[1:]) < CROP_START + CROP:
            raise ValueError(f"{origin}: images of {data.shape[1]} x {data.shape[2]} pixels, expected at least "
                             f"{CROP_START + CROP} x {CROP_START + CROP} for the 128 x 128 crop at ({CROP_START}, {CROP_START})")
        window = np.s_[CROP_START : CROP_START + CROP, CROP_START : CROP_START + CROP]
        image = data[0][window].astype(np.float32)
        ignore = data[2][window] if data.shape[0] == 3 else np.zeros_like(image)
        if self.augment:
            image = image + self._sky(name) * float(torch.empty(()).uniform_(*SKY_AUGMENTATION))
        target = np.stack([data[1][window], ignore]).astype(np.float32)
        return torch.from_numpy(image[None]), torch.from_numpy(target)

    def _sky(self, name: str) -> float:
        """get_skyaug: entry k-1 of the visit's sky.npy for file ``k_*.npy``; 0 without sky.npy."""
        sky_name = str(PurePosixPath(name).parent / "sky.npy")
        if sky_name not in self.archive:
            return 0.0
        sky = checks.check_array(self.archive.load_npy(sky_name), self.archive.origin(sky_name), "sky", ("K",), checks.REAL)
        file = PurePosixPath(name).name
        try:
            k = int(file.split("_")[0])
        except ValueError:
            raise ValueError(f"{self.archive.origin(name)}: file name {file!r} does not start with the exposure "
                             "number, expected <k>_*.npy to look up the sky level") from None
        if not 1 <= k <= len(sky):
            raise ValueError(f"{self.archive.origin(name)}: exposure {k} has no entry in sky.npy, which has {len(sky)}")
        return float(sky[k - 1])


def split_sizes(n_train_images: int) -> tuple[int, int]:
    """PairedDatasetImagePath: train = paths[:max(1, int(0.9 n))], val = paths[min(n - 1, int(0.9 n)):]."""
    n_train = int(n_train_images * (1 - VALIDATION_FRACTION))
    return max(1, n_train), min(n_train_images - 1, n_train)


def load_splits(data_root: Path) -> tuple[Dataset, Dataset, Dataset]:
    archives = {}
    for part, name in ARCHIVES.items():
        path = checks.require_file(Path(data_root), name, "cosmic", checks.published_url(f"cosmic/{name}"))
        archives[part] = Archive(path)
    train_members = image_members(archives["train"], "train")
    if len(train_members) < 2:
        raise ValueError(f"{archives['train'].path}: {len(train_members)} usable image, expected at least 2 (train and validation)")
    train_end, val_start = split_sizes(len(train_members))
    return (CosmicImages(archives["train"], train_members[:train_end], augment=True),
            CosmicImages(archives["train"], train_members[val_start:], augment=False),
            CosmicImages(archives["test"], image_members(archives["test"], "test"), augment=False))


def make_task(card: dict, data_root: Path) -> Task:
    """The cosmic ``Task``: BCE with logits outside the ignore mask, NAS-Bench-360's pixel 1 - AUROC."""
    from nb360.data.task import Task
    from nb360.metrics import cosmic_auroc_error, masked_bce_loss
    from nb360.train import Splits

    train, val, test = load_splits(data_root)
    return Task.from_card(card, Splits(train, val, test), masked_bce_loss, cosmic_auroc_error)


# ----------------------------------------------------------------------------------------------
# Format-faithful fake data
# ----------------------------------------------------------------------------------------------

# Fields the fake archives use: resolved-galaxy fields for each part, plus fields the loader must skip.
_FAKE_FIELDS = {"train": [("10760", "2"), ("10760", "4"), ("13737", "2"), ("12513", "3")],
                "test": [("12058", "12"), ("14704", "1")]}
_FAKE_SKIPPED = [(FILTER, "10595", "2"), ("f606w", "10760", "2")]  # a globular cluster field; another filter


def write_fake(root: str | Path, n: int = 16, seed: int = 0) -> tuple[Path, Path]:
    """The two tars in deepCR's layout: ``n`` resolved-galaxy F435W images in the training tar and n/3
    (at least 2) in the test tar, 256 x 256 float32 stacks [image, cosmic-ray mask, ignore mask] and a
    sky.npy per visit, plus a globular-cluster field and an F606W visit that the loader skips.

    An image is sky + noise + smooth sources (stars, a galaxy's light) + cosmic rays: short, sharp,
    bright tracks of a few pixels whose mask is the label, so they are learnable from the image. A
    few dead columns are flagged in the ignore mask. The file names ``{k}_{j}.npy`` (exposure k,
    piece j) follow the ``<k>_`` prefix the loader reads; the rest of the published names is not
    documented by NAS-Bench-360."""
    if n < 2:
        raise ValueError(f"cosmic fake data needs n >= 2 training images (1 to train, 1 to validate), got {n}")
    rng = np.random.default_rng(seed)
    counts = {"train": n, "test": max(2, n // 3)}
    paths = []
    for part, count in counts.items():
        members: dict[str, bytes] = {}
        fields = _FAKE_FIELDS[part]
        per_field = np.bincount(np.arange(count) % len(fields), minlength=len(fields))
        visits = [(FILTER, proposal, visit, k) for (proposal, visit), k in zip(fields, per_field) if k]
        visits += [(f, p, v, 1) for f, p, v in _FAKE_SKIPPED]
        for filter_, proposal, visit, images in visits:
            folder = f"{ROOTS[part]}/{filter_}/{proposal}/{visit}"
            sky = rng.uniform(20.0, 80.0, size=images).astype(np.float32)
            members[f"{folder}/sky.npy"] = npy_bytes(sky)
            for k in range(1, images + 1):
                members[f"{folder}/{k}_0.npy"] = npy_bytes(_fake_image(rng, float(sky[k - 1])))
        path = Path(root) / ARCHIVES[part]
        write_tar(path, members)
        paths.append(path)
    return paths[0], paths[1]


def _fake_image(rng: np.random.Generator, sky: float, size: int = 256) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    image = sky + rng.normal(0, 3.0, (size, size))
    for _ in range(int(rng.integers(5, 15))):  # stars and a diffuse galaxy: smooth, a few pixels wide or more
        y0, x0, width, flux = *rng.uniform(0, size, 2), rng.uniform(1.5, 12.0), rng.uniform(50, 400)
        image += flux * np.exp(-((yy - y0) ** 2 + (xx - x0) ** 2) / (2 * width**2))
    mask = np.zeros((size, size), dtype=bool)
    for _ in range(int(rng.integers(100, 250))):  # cosmic rays: sharp tracks, 1-6 pixels long (~1% of pixels)
        y, x = rng.integers(0, size, 2)
        dy, dx = rng.integers(-1, 2, 2)
        for _ in range(int(rng.integers(1, 7))):
            if 0 <= y < size and 0 <= x < size:
                mask[y, x] = True
                image[y, x] += rng.uniform(1000, 5000)
            y, x = y + dy, x + dx
    ignore = np.zeros((size, size), dtype=bool)
    for column in rng.integers(0, size, int(rng.integers(0, 3))):  # dead columns
        ignore[:, column] = True
        image[:, column] = 0.0
    return np.stack([image, mask, ignore]).astype(np.float32)
