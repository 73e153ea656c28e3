"""FSD50K (NAS-Bench-360's audio task): 200-label sound event tagging from log-mel spectrograms.

The published ``audio.zip`` is the FSD50K recipe of ``SarthakYadav/fsd50k-pytorch`` that NAS-Bench-360
adopted (``backbone/data_utils/load_data.py: load_audio``, ``audio_dataset.py``), unpacked by
NAS-Bench-360 into ``data/``:

* ``chunks/tr.csv``, ``chunks/val.csv``, ``chunks/eval.csv``: one row per 1-s chunk, columns
  ``files`` (the chunk's wav), ``labels`` (the clip's label names, comma separated) and ``ext`` (the
  clip id); FSD50K's dev set split into train / val, and its eval set as the test split;
* ``chunks/lbl_map.json``: label name -> index, 200 labels (FSD50K's ``vocabulary.csv``);
* the chunks: mono 16-bit PCM wav files at 22,050 Hz, ``{clip}_{k:04d}.wav``, 1 s long, cut every
  0.5 s from each clip (``chunkify_fsd50k.py``; shorter clips are repeated up to 1 s);
* ``noise_22050/*.wav``: background noise (MUSAN) for the training augmentation.

The manifests name each chunk by the path it had where the archive was made; chunks are looked up
in the archive by file name, so any such prefix works.

Features (``AudioParser`` with ``feature="melspectrogram"``): torchaudio's ``MelSpectrogram``
(n_fft 1920, window 661 = 30 ms, hop 220 = 10 ms, 96 HTK mel bands without normalisation, power
spectrum, centred reflect-padded frames), then ``librosa.power_to_db`` (10 log10, floor 1e-10,
dynamic range limited to 80 dB) and the mean over the spectrogram subtracted: 1 x 96 x 101 per chunk.
This module computes exactly that with ``torch.stft`` and its own filterbank (``mel_filterbank``).

Training (``SpectrogramDataset``) draws one random chunk per clip and epoch, masks frequency and
time bands with probability 0.5 (SpecAugment) and mixes in a random background noise with
probability 0.75. Evaluation (``FSD50kEvalDataset``) runs every chunk of a clip and averages the
logits per clip; here each chunk is a sample and its target carries the clip id, so the metric
(``nb360.metrics.clip_map_error``) averages the chunks of each clip before the macro mAP.
"""

from __future__ import annotations

import csv
import io
import json
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

import numpy as np
import scipy.io.wavfile
import torch
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from nb360.data import checks
from nb360.data.archives import Archive, write_zip

if TYPE_CHECKING:
    from nb360.data.task import Task

ARCHIVE = "audio.zip"
MANIFESTS = {"train": "chunks/tr.csv", "val": "chunks/val.csv", "test": "chunks/eval.csv"}
LABEL_MAP = "chunks/lbl_map.json"
NOISE_DIR = "noise_22050/"
COLUMNS = ("files", "labels", "ext")
LABEL_DELIMITER = ","
NUM_LABELS = 200

# torchaudio.transforms.MelSpectrogram as AudioParser builds it.
SAMPLE_RATE = 22050
N_FFT = 96 * 20
WIN_LENGTH = int(SAMPLE_RATE * 0.03)
HOP_LENGTH = int(SAMPLE_RATE * 0.01)
N_MELS = 96
TOP_DB = 80.0  # librosa.power_to_db's default dynamic range
AMIN = 1e-10
CHUNK_SECONDS = 1.0  # load_audio's min_duration: shorter audio is repeated up to 1 s
FRAMES = 1 + round(SAMPLE_RATE * CHUNK_SECONDS) // HOP_LENGTH  # 101

# Training augmentation (get_transforms_fsd_chunks, BackgroundAddMixer, UseMixerWithProb).
SPEC_AUGMENT_PROB, SPEC_NUM_MASK, SPEC_FREQ_MASKING, SPEC_TIME_MASKING = 0.5, 2, 0.15, 0.20
MIX_PROB, MIX_MAX_ALPHA = 0.75, 0.5


# ----------------------------------------------------------------------------------------------
# Log-mel features
# ----------------------------------------------------------------------------------------------


def hz_to_mel(f: np.ndarray | float) -> np.ndarray:
    """HTK mel scale: 2595 log10(1 + f / 700)."""
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def mel_to_hz(m: np.ndarray | float) -> np.ndarray:
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


@lru_cache(maxsize=4)
def mel_filterbank(n_freqs: int = N_FFT // 2 + 1, n_mels: int = N_MELS, sample_rate: int = SAMPLE_RATE) -> torch.Tensor:
    """(n_freqs, n_mels) triangular filters, torchaudio's ``melscale_fbanks`` with f_min 0, f_max
    sample_rate / 2, HTK scale, no normalisation: the n_mels + 2 corner frequencies are equally spaced
    in mel, and filter m rises linearly from corner m to corner m+1 and falls to corner m+2, on the
    STFT bin frequencies linspace(0, sample_rate // 2, n_freqs)."""
    bins = np.linspace(0, sample_rate // 2, n_freqs)
    corners = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(sample_rate / 2), n_mels + 2))
    widths = np.diff(corners)
    offsets = corners[None, :] - bins[:, None]  # (n_freqs, n_mels + 2)
    rising = -offsets[:, :-2] / widths[:-1]
    falling = offsets[:, 2:] / widths[1:]
    return torch.from_numpy(np.maximum(0.0, np.minimum(rising, falling))).float()


def log_mel(audio: np.ndarray | torch.Tensor) -> torch.Tensor:
    """(96, frames) float32 features of a mono signal at 22,050 Hz, as NAS-Bench-360 computes them:
    mel power spectrogram, power_to_db (top_db 80), minus its mean (the +75 dB offset that AudioParser
    adds before centring cancels). 22,050 samples give 101 frames. In float32, as torchaudio computes
    on NAS-Bench-360's float32 audio."""
    x = torch.as_tensor(audio, dtype=torch.float32)
    window = torch.hann_window(WIN_LENGTH, periodic=True)
    spectrum = torch.stft(x, N_FFT, HOP_LENGTH, WIN_LENGTH, window, center=True, pad_mode="reflect",
                          normalized=False, onesided=True, return_complex=True)
    mel = mel_filterbank().T @ spectrum.abs().pow(2)
    db = 10.0 * torch.log10(mel.clamp(min=AMIN))
    db = torch.maximum(db, db.max() - TOP_DB)
    return db - db.mean()


def fit_duration(audio: np.ndarray, seconds: float = CHUNK_SECONDS) -> np.ndarray:
    """load_audio's min_duration: audio shorter than ``seconds`` is repeated (tiled) up to that length."""
    need = int(SAMPLE_RATE * seconds)
    if len(audio) >= need:
        return audio
    return np.tile(audio, need // len(audio) + 1)[:need]


def read_wav(data: bytes, origin: Path) -> np.ndarray:
    """A mono wav at 22,050 Hz as float32 in [-1, 1) (16-bit PCM scaled by 1/32768, as soundfile reads it)."""
    try:
        rate, audio = scipy.io.wavfile.read(io.BytesIO(data))
    except (ValueError, EOFError) as error:
        raise ValueError(f"{origin}: not a wav file that can be read ({error})") from None
    if rate != SAMPLE_RATE:
        raise ValueError(f"{origin}: sample rate {rate} Hz, expected {SAMPLE_RATE} Hz")
    if audio.ndim != 1:
        raise ValueError(f"{origin}: {audio.shape[1]} channels, expected mono")
    if len(audio) == 0:
        raise ValueError(f"{origin}: no samples, expected audio")
    if audio.dtype == np.int16:
        return audio.astype(np.float32) / 32768.0
    if audio.dtype.kind == "f":
        return audio.astype(np.float32)
    raise ValueError(f"{origin}: samples of dtype {audio.dtype}, expected 16-bit PCM (int16) or float")


# ----------------------------------------------------------------------------------------------
# Manifests and datasets
# ----------------------------------------------------------------------------------------------


class Manifest:
    """One split's manifest: its clips (sorted ids, as ``np.unique`` orders them), each clip's chunk
    members in the archive and its multi-hot labels."""

    def __init__(self, archive: Archive, name: str, label_map: dict[str, int], chunk_members: dict[str, str]):
        origin = archive.origin(name)
        try:
            reader = csv.DictReader(io.StringIO(archive.read(name).decode("utf-8")))
            rows, columns = list(reader), list(reader.fieldnames or [])
        except (UnicodeDecodeError, csv.Error) as error:
            raise ValueError(f"{origin}: not a UTF-8 csv file ({error})") from None
        missing = [c for c in COLUMNS if c not in columns]
        if missing:
            raise ValueError(f"{origin}: column {missing[0]!r} is missing; found columns {columns}, expected {list(COLUMNS)}")
        chunks: dict[str, list[str]] = {}
        labels: dict[str, str] = {}
        for line, row in enumerate(rows, start=2):
            clip, file = row["ext"], PurePosixPath(row["files"]).name
            if file not in chunk_members:
                raise ValueError(f"{origin}: line {line}: chunk {row['files']!r} is not in the archive "
                                 f"(looked for a member named {file!r})")
            if labels.setdefault(clip, row["labels"]) != row["labels"]:
                raise ValueError(f"{origin}: line {line}: clip {clip!r} has labels {row['labels']!r} here and "
                                 f"{labels[clip]!r} on an earlier line; expected the same labels for all its chunks")
            chunks.setdefault(clip, []).append(chunk_members[file])
        if not chunks:
            raise ValueError(f"{origin}: no chunks; expected one row per 1-s chunk")
        self.clips = sorted(chunks)
        self.chunks = [chunks[c] for c in self.clips]
        self.labels = torch.zeros(len(self.clips), len(label_map))
        for i, clip in enumerate(self.clips):
            for label in labels[clip].split(LABEL_DELIMITER):
                if label not in label_map:
                    raise ValueError(f"{origin}: clip {clip!r} has label {label!r}, which is not in {LABEL_MAP}")
                self.labels[i, label_map[label]] = 1.0


class ChunkFeatures:
    """Reads a chunk (or noise file) from the archive and computes its log-mel features."""

    def __init__(self, archive: Archive):
        self.archive = archive

    def __call__(self, member: str) -> torch.Tensor:
        audio = read_wav(self.archive.read(member), self.archive.origin(member))
        return log_mel(fit_duration(audio))


class EvalChunks(Dataset):
    """Every chunk of every clip, clip by clip; target = the clip's labels, then the clip's index."""

    def __init__(self, manifest: Manifest, features: ChunkFeatures):
        self.features = features
        self.items = [(member, clip) for clip, members in enumerate(manifest.chunks) for member in members]
        self.labels = manifest.labels

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        member, clip = self.items[i]
        target = torch.cat([self.labels[clip], torch.tensor([float(clip)])])
        return _pad_frames(self.features(member), "constant")[None], target


class TrainClips(Dataset):
    """One sample per clip: a random chunk of it, augmented as NAS-Bench-360 trains (torch's random
    generator, so ``nb360.train.fit``'s seed fixes it). Target as ``EvalChunks``."""

    def __init__(self, manifest: Manifest, features: ChunkFeatures, noise_members: list[str], augment: bool = True):
        self.manifest, self.features, self.augment = manifest, features, augment
        self.noise_members = noise_members
        self._noise: list[torch.Tensor] | None = None

    def __len__(self) -> int:
        return len(self.manifest.clips)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        members = self.manifest.chunks[i]
        spec = self.features(members[int(torch.randint(len(members), ()))])
        if self.augment:
            spec = self._transform(spec)
            if self.noise_members and float(torch.rand(())) < MIX_PROB:
                noise = self._transform(self.noise()[int(torch.randint(len(self.noise_members), ()))])
                alpha = float(torch.rand(())) * MIX_MAX_ALPHA
                spec = (1 - alpha) * spec + alpha * noise
        else:
            spec = _pad_frames(spec, "constant")[:, :FRAMES]
        return spec[None], torch.cat([self.manifest.labels[i], torch.tensor([float(i)])])

    def noise(self) -> list[torch.Tensor]:
        """The background noises' features, computed once (as SpectrogramDataset does at start)."""
        if self._noise is None:
            members = tqdm(self.noise_members, desc="fsd50k background noise", unit="file", leave=False,
                           disable=len(self.noise_members) < 100)
            self._noise = [self.features(member) for member in members]
        return self._noise

    @staticmethod
    def _transform(spec: torch.Tensor) -> torch.Tensor:
        """get_transforms_fsd_chunks(train=True, 101): pad to 101 frames (wrap or constant, even odds),
        SpecAugment with probability 0.5, a random 101-frame crop."""
        spec = _pad_frames(spec, "wrap" if float(torch.rand(())) < 0.5 else "constant")
        if float(torch.rand(())) < SPEC_AUGMENT_PROB:
            spec = spec_augment(spec)
        start = int(torch.randint(spec.shape[1] - FRAMES + 1, ()))
        return spec[:, start : start + FRAMES]


def spec_augment(spec: torch.Tensor, num_mask: int = SPEC_NUM_MASK, freq_masking: float = SPEC_FREQ_MASKING,
                 time_masking: float = SPEC_TIME_MASKING) -> torch.Tensor:
    """NAS-Bench-360's ``spec_augment``: 1 to ``num_mask`` rounds, each setting a band of up to 15% of
    the mel bands and a band of up to 20% of the frames to the spectrogram's minimum."""
    spec, value = spec.clone(), spec.min()
    for _ in range(int(torch.randint(1, num_mask + 1, ()))):
        for axis, fraction in ((0, freq_masking), (1, time_masking)):
            size = spec.shape[axis]
            width = int(float(torch.rand(())) * fraction * size)
            start = int(float(torch.rand(())) * (size - width))
            spec.narrow(axis, start, width).fill_(value)
    return spec


def _pad_frames(spec: torch.Tensor, mode: str) -> torch.Tensor:
    """PadToSize(101): centre-pad the time axis to 101 frames with the minimum ("constant") or by wrapping."""
    missing = FRAMES - spec.shape[1]
    if missing <= 0:
        return spec
    left, right = missing // 2, missing - missing // 2
    if mode == "wrap":
        index = torch.arange(-left, spec.shape[1] + right) % spec.shape[1]
        return spec[:, index]
    return torch.nn.functional.pad(spec, (left, right), value=float(spec.min()))


# ----------------------------------------------------------------------------------------------
# The task
# ----------------------------------------------------------------------------------------------


def open_archive(data_root: Path) -> Archive:
    path = checks.require_file(Path(data_root), ARCHIVE, "fsd50k", checks.published_url("audio/audio.zip"))
    return Archive(path)


def read_label_map(archive: Archive) -> dict[str, int]:
    origin = archive.origin(LABEL_MAP)
    if LABEL_MAP not in archive:
        raise ValueError(f"{archive.path}: member {LABEL_MAP!r} is missing; expected the label map of the 200 FSD50K labels")
    try:
        label_map = json.loads(archive.read(LABEL_MAP))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{origin}: not valid JSON ({error})") from None
    indices = sorted(label_map.values()) if isinstance(label_map, dict) else None
    if indices != list(range(NUM_LABELS)):
        found = f"{len(indices)} labels with indices {indices[:3]}..." if indices is not None else type(label_map).__name__
        raise ValueError(f"{origin}: found {found}, expected a dict of {NUM_LABELS} label names to the indices 0..{NUM_LABELS - 1}")
    return label_map


def load_splits(data_root: Path, augment: bool = True) -> tuple[Dataset, Dataset, Dataset]:
    """(train, val, test): train = ``TrainClips`` of tr.csv; val and test = ``EvalChunks`` of val.csv
    and eval.csv. Inputs (1, 96, 101) float32; targets (201,) float32, 200 labels then the clip index."""
    archive = open_archive(data_root)
    label_map = read_label_map(archive)
    chunk_members: dict[str, str] = {}
    for member in archive.names():
        if member.endswith(".wav") and not member.startswith(NOISE_DIR):
            other = chunk_members.setdefault(PurePosixPath(member).name, member)
            if other != member:
                raise ValueError(f"{archive.path}: members {other!r} and {member!r} have the same file name; "
                                 "expected one wav per chunk name (the manifests name chunks by file)")
    manifests = {}
    for split, name in MANIFESTS.items():
        if name not in archive:
            raise ValueError(f"{archive.path}: member {name!r} is missing; expected the {split} manifest "
                             f"({', '.join(MANIFESTS.values())})")
        manifests[split] = Manifest(archive, name, label_map, chunk_members)
    features = ChunkFeatures(archive)
    noise = sorted(n for n in archive.names() if n.startswith(NOISE_DIR) and n.endswith(".wav"))
    return (TrainClips(manifests["train"], features, noise, augment),
            EvalChunks(manifests["val"], features), EvalChunks(manifests["test"], features))


def make_task(card: dict, data_root: Path, augment: bool = True) -> Task:
    """The fsd50k ``Task``: BCE with logits on the 200 labels, 1 - mAP over clips (chunk logits averaged).
    ``augment=False`` trains on a random chunk per clip without SpecAugment and noise mixing."""
    from nb360.data.task import Task
    from nb360.metrics import clip_bce_loss, clip_map_error
    from nb360.train import Splits

    train, val, test = load_splits(data_root, augment)
    return Task.from_card(card, Splits(train, val, test), clip_bce_loss, clip_map_error)


# ----------------------------------------------------------------------------------------------
# Format-faithful fake data
# ----------------------------------------------------------------------------------------------


def write_fake(root: str | Path, n: int = 16, seed: int = 0) -> Path:
    """A small ``audio.zip`` in the published layout: ``n`` training clips and n/3 (at least 2) each
    for validation and evaluation, of 1-3.5 s cut into 1-s chunks every 0.5 s, 16-bit mono wav at
    22,050 Hz, the three manifests, a 200-label map and two background noises. Each clip has 1-3 of 8
    labels; label j sounds as a tone at its own frequency, pulsed at its own rate, so the labels are
    learnable from local patterns of the log-mel spectrogram. Where the published wav chunks sit
    inside the archive is not documented; they are written under ``chunks/dev/`` and ``chunks/eval/``
    and the manifests name them as ``data/chunks/...`` (the loader matches chunks by file name).
    """
    if n < 2:
        raise ValueError(f"fsd50k fake data needs n >= 2 training clips, got {n}")
    rng = np.random.default_rng(seed)
    names = [f"Sound_{j:03d}" for j in range(NUM_LABELS)]
    splits = {"train": n, "val": max(2, n // 3), "test": max(2, n // 3)}
    used = 8  # labels that occur, so that each recurs in a small set
    tones = np.geomspace(300.0, 6000.0, used)
    pulse_rates = np.geomspace(2.0, 25.0, used)  # Hz: on-off periods of 50 down to 4 frames
    members: dict[str, bytes] = {LABEL_MAP: json.dumps({name: j for j, name in enumerate(names)}).encode()}
    clip_id = 100000
    for split, count in splits.items():
        folder = "eval" if split == "test" else "dev"
        rows = []
        for _ in range(count):
            clip_id += int(rng.integers(1, 50))
            labels = sorted(rng.choice(used, size=int(rng.integers(1, 4)), replace=False))  # a few labels recur
            seconds = rng.uniform(1.0, 3.5)
            t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
            audio = 0.05 * rng.standard_normal(len(t))
            for j in labels:
                pulses = np.sin(2 * np.pi * pulse_rates[j] * t + rng.uniform(0, 2 * np.pi)) > 0
                audio += 0.3 * pulses * np.sin(2 * np.pi * tones[j] * t + rng.uniform(0, 2 * np.pi))
            for k, chunk in enumerate(_chunks(audio)):
                file = f"{clip_id}_{k:04d}.wav"
                members[f"chunks/{folder}/{file}"] = _wav_bytes(chunk)
                rows.append({"files": f"data/chunks/{folder}/{file}",
                             "labels": LABEL_DELIMITER.join(names[j] for j in labels), "ext": str(clip_id)})
        if split == "train":
            rows = [rows[i] for i in rng.permutation(len(rows))]  # tr.csv is shuffled, val and eval sorted
        members[MANIFESTS[split]] = _csv_bytes(rows)
    for k in range(2):
        members[f"{NOISE_DIR}noise-free-sound-{k:04d}.wav"] = _wav_bytes(0.1 * rng.standard_normal(int(1.5 * SAMPLE_RATE)))
    path = Path(root) / ARCHIVE
    write_zip(path, members)
    return path


def _chunks(audio: np.ndarray) -> list[np.ndarray]:
    """chunkify_fsd50k.py: 1-s pieces starting every 0.5 s, the short ones (and short clips) repeated to 1 s."""
    length, step = SAMPLE_RATE, SAMPLE_RATE // 2
    if len(audio) < length:
        return [fit_duration(audio)]
    return [fit_duration(audio[start : start + length]) for start in range(0, len(audio), step)]


def _wav_bytes(audio: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    pcm = np.clip(np.round(audio * 32768.0), -32768, 32767).astype(np.int16)
    scipy.io.wavfile.write(buffer, SAMPLE_RATE, pcm)
    return buffer.getvalue()


def _csv_bytes(rows: list[dict[str, str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(COLUMNS), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode()
