"""FSD50K: the log-mel features against their formula, the archive format, the splits, the errors,
and one training epoch on the fake archive."""

from __future__ import annotations

import csv
import io
import json
import zipfile

import numpy as np
import pytest
import scipy.io.wavfile
import torch

from archive_edit import rewrite_member

from nb360.data import fsd50k, load_task


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("fsd50k")
    fsd50k.write_fake(root, n=6, seed=0)
    return root


@pytest.fixture
def broken(root, tmp_path):
    """A writable copy of the fake archive."""
    (tmp_path / fsd50k.ARCHIVE).write_bytes((root / fsd50k.ARCHIVE).read_bytes())
    return tmp_path


# ----------------------------------------------------------------------------------------------
# Features
# ----------------------------------------------------------------------------------------------


def test_mel_filterbank_is_htk_triangles():
    """Filter m: 0 at corner m, 1 at corner m + 1, 0 at corner m + 2, linear in Hz in between, with
    corners equally spaced on the HTK mel scale between 0 and 11,025 Hz."""
    fb = fsd50k.mel_filterbank().double().numpy()
    n_freqs = fsd50k.N_FFT // 2 + 1
    assert fb.shape == (n_freqs, 96)
    freqs = np.linspace(0, 11025, n_freqs)
    corners = [700 * (10 ** (m / 2595) - 1) for m in np.linspace(0, 2595 * np.log10(1 + 11025 / 700), 98)]
    for m in (0, 40, 95):
        lo, mid, hi = corners[m : m + 3]
        expected = np.where(freqs <= mid, (freqs - lo) / (mid - lo), (hi - freqs) / (hi - mid)).clip(0)
        np.testing.assert_allclose(fb[:, m], expected, atol=1e-6)


def reference_log_mel(audio: np.ndarray) -> np.ndarray:
    """torchaudio's MelSpectrogram + librosa's power_to_db + centring, written out frame by frame."""
    n_fft, hop, win = 1920, 220, 661
    padded = np.pad(audio.astype(np.float64), n_fft // 2, mode="reflect")
    window = np.zeros(n_fft)
    left = (n_fft - win) // 2
    window[left : left + win] = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win) / win)  # periodic Hann
    frames = 1 + len(audio) // hop
    power = np.stack([np.abs(np.fft.rfft(padded[t * hop : t * hop + n_fft] * window)) ** 2 for t in range(frames)], axis=1)
    db = 10 * np.log10(np.maximum(fsd50k.mel_filterbank().double().numpy().T @ power, 1e-10))
    db = np.maximum(db, db.max() - 80.0) + 75.0  # AudioParser adds top_db / 2 before centring
    return db - db.mean()


def test_log_mel_matches_formula():
    rng = np.random.default_rng(0)
    t = np.arange(22050) / 22050
    audio = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.01 * rng.standard_normal(22050)
    features = fsd50k.log_mel(audio)
    assert features.shape == (96, 101) and features.dtype == torch.float32
    np.testing.assert_allclose(features.numpy(), reference_log_mel(audio), atol=2e-3)
    assert abs(features.mean().item()) < 1e-4 and features.max() - features.min() <= 80 + 1e-3


def test_tone_lands_in_its_mel_band():
    t = np.arange(22050) / 22050
    fb = fsd50k.mel_filterbank()
    for frequency in (300.0, 2000.0, 7000.0):
        band = int(fsd50k.log_mel(np.sin(2 * np.pi * frequency * t)).mean(1).argmax())
        bin_ = round(frequency / 11025 * (fsd50k.N_FFT // 2))
        assert band in fb[bin_].nonzero().flatten().tolist()  # one of the (two) filters covering that bin


def test_short_audio_is_repeated_to_one_second():
    audio = np.arange(10000, dtype=np.float32)
    out = fsd50k.fit_duration(audio)
    assert len(out) == 22050 and np.array_equal(out[10000:20000], audio)


def test_read_wav_scales_pcm16_and_checks_rate(tmp_path):
    buffer = io.BytesIO()
    scipy.io.wavfile.write(buffer, 22050, np.array([0, 16384, -32768], dtype=np.int16))
    np.testing.assert_array_equal(fsd50k.read_wav(buffer.getvalue(), tmp_path / "a.wav"), [0, 0.5, -1])
    buffer = io.BytesIO()
    scipy.io.wavfile.write(buffer, 44100, np.zeros(10, dtype=np.int16))
    with pytest.raises(ValueError, match="a.wav: sample rate 44100 Hz, expected 22050 Hz"):
        fsd50k.read_wav(buffer.getvalue(), tmp_path / "a.wav")


def test_spec_augment_masks_bands_with_the_minimum():
    torch.manual_seed(3)
    spec = torch.randn(96, 101)
    out = fsd50k.spec_augment(spec)
    changed = out != spec
    assert changed.any() and torch.all(out[changed] == spec.min())
    rows, cols = changed.all(1).sum(), changed.all(0).sum()  # masked bands span whole rows / columns
    assert rows <= 2 * int(0.15 * 96) and cols <= 2 * int(0.20 * 101) and rows + cols > 0


# ----------------------------------------------------------------------------------------------
# Format and splits
# ----------------------------------------------------------------------------------------------


def test_fake_archive_layout(root):
    with zipfile.ZipFile(root / "audio.zip") as z:
        names = set(z.namelist())
        label_map = json.loads(z.read("chunks/lbl_map.json"))
        rows = list(csv.DictReader(io.StringIO(z.read("chunks/eval.csv").decode())))
        rate, audio = scipy.io.wavfile.read(io.BytesIO(z.read(rows[0]["files"].removeprefix("data/"))))
    assert {"chunks/tr.csv", "chunks/val.csv", "chunks/eval.csv", "chunks/lbl_map.json"} <= names
    assert any(n.startswith("noise_22050/") for n in names)
    assert sorted(label_map.values()) == list(range(200))
    assert list(rows[0]) == ["files", "labels", "ext"]
    assert [r["ext"] for r in rows] == sorted(r["ext"] for r in rows)  # eval.csv is sorted by clip
    assert rows[0]["files"].endswith(f"{rows[0]['ext']}_0000.wav")
    assert (rate, audio.dtype, audio.shape) == (22050, np.int16, (22050,))


def test_splits(root):
    task = load_task("fsd50k", root)
    assert task.spec.input_shape == (1, 96, 101) and task.spec.out_size == 200 and task.batch_size == 256
    x, y = task.train[0]
    assert x.shape == (1, 96, 101) and x.dtype == torch.float32
    assert y.shape == (201,) and y[:200].sum() >= 1 and y[200] == 0
    with zipfile.ZipFile(root / "audio.zip") as z:
        counts = {split: len(list(csv.DictReader(io.StringIO(z.read(name).decode()))))
                  for split, name in fsd50k.MANIFESTS.items()}
    assert len(task.val) == counts["val"] and len(task.test) == counts["test"]  # one sample per chunk
    assert len(task.train) < counts["train"]  # one sample per clip
    targets = torch.stack([task.test[i][1] for i in range(len(task.test))])
    clips = targets[:, 200]
    assert torch.all(clips[1:] >= clips[:-1])  # clip by clip
    for clip in clips.unique():  # every chunk of a clip carries the clip's labels
        assert (targets[clips == clip, :200] == targets[clips == clip][0, :200]).all()


def test_training_samples_repeat_with_the_seed(root):
    task = load_task("fsd50k", root)
    torch.manual_seed(5)
    first = task.train[1][0]
    torch.manual_seed(5)
    assert torch.equal(task.train[1][0], first)


def test_one_epoch(root, one_epoch):
    one_epoch(load_task("fsd50k", root), batch_size=4)


# ----------------------------------------------------------------------------------------------
# Bad files
# ----------------------------------------------------------------------------------------------


def test_missing_archive(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"audio\.zip not found in .*pde-xd\.s3\.amazonaws\.com/audio/audio\.zip"):
        load_task("fsd50k", tmp_path)


def test_manifest_without_clip_column(broken):
    rewrite_member(broken / fsd50k.ARCHIVE, "chunks/val.csv", b"files,labels\ndata/chunks/dev/1_0000.wav,Sound_001\n")
    with pytest.raises(ValueError, match=r"chunks/val\.csv: column 'ext' is missing; found columns \['files', 'labels'\]"):
        load_task("fsd50k", broken)


def test_label_map_of_wrong_size(broken):
    rewrite_member(broken / fsd50k.ARCHIVE, "chunks/lbl_map.json", json.dumps({"Sound_000": 0}).encode())
    with pytest.raises(ValueError, match=r"lbl_map\.json: found 1 labels .* expected a dict of 200 label names"):
        load_task("fsd50k", broken)


def test_chunk_at_wrong_sample_rate(broken):
    with zipfile.ZipFile(broken / "audio.zip") as z:
        member = next(n for n in z.namelist() if n.startswith("chunks/eval/"))
    buffer = io.BytesIO()
    scipy.io.wavfile.write(buffer, 16000, np.zeros(16000, dtype=np.int16))
    rewrite_member(broken / fsd50k.ARCHIVE, member, buffer.getvalue())
    task = load_task("fsd50k", broken)
    with pytest.raises(ValueError, match=f"{member}: sample rate 16000 Hz, expected 22050 Hz"):
        for i in range(len(task.test)):
            task.test[i]
