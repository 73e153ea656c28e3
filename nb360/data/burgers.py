"""Burgers' equation: FNO's 1D operator-learning data set, read from the published file or made anew.

The task (Li et al., "Fourier Neural Operator", ICLR 2021, section 5.1) maps an initial condition
``u0`` on the periodic unit interval to the solution at ``t = 1`` of the viscous Burgers equation

    u_t + (u^2 / 2)_x = nu u_xx,        nu = 0.1,

with ``u0`` drawn from N(0, 625 (-Laplacian + 25 I)^-2) (periodic). The published file
``burgers_data_R10.mat`` holds 2,048 pairs on an 8,192-point grid (keys ``a``, the initial
condition, and ``u``, the solution); FNO's ``fourier_1d.py`` keeps every 8th point, trains on the
first 1,000 pairs and tests on the last 100.

It is not one of NAS-Bench-360's ten tasks. It sits beside Darcy Flow (the same paper's 2D
problem, an NB360 task) because it can be made exactly offline and its cells differ by far more
than their training noise, so a table of it gives cross-task questions a second reliable ranking.

``solve`` integrates the equation with the pseudo-spectral ETDRK4 scheme (Kassam & Trefethen,
SIAM J. Sci. Comput. 2005), which treats the stiff diffusion exactly; FNO's MATLAB generator
(``data_generation/burgers/gen_burgers1.m``) uses chebfun's ``spin``, the same scheme family.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.utils.data import TensorDataset
from tqdm import tqdm

from nb360.data.fields import (UnitGaussianNormalizer, check_finished, read_fields, relative_l2_task, write_mat,
                               write_settings)

if TYPE_CHECKING:
    from nb360.data.task import Task

PUBLISHED_NAME = "burgers_data_R10.mat"
PUBLISHED_RESOLUTION = 8192
PUBLISHED_SAMPLES = 2048
# Where FNO's README points for the file (a Google Drive folder: no fixed file URL).
PUBLISHED_URL = "https://drive.google.com/drive/folders/1UnbQh2WWc6knEHbLn-ZaXrKUZhp7pjt-"
VISCOSITY = 0.1  # "R10": Reynolds number 10
FINAL_TIME = 1.0
# N(0, 625 (-Laplacian + 25 I)^-2): per Fourier mode k >= 1 a standard deviation of
# 25 / ((2 pi k)^2 + 25), for its cosine and its sine, in FNO's GRF1 parametrisation
# (sigma ((2 pi k)^2 + tau^2)^(-gamma/2) with sigma = 25, tau = 5, gamma = 2; sqrt(2) for the
# two real parts of each complex mode).
GRF_SIGMA, GRF_TAU, GRF_GAMMA = 25.0, 5.0, 2.0
STEPS = 200  # ETDRK4 time steps to t = 1: 5x as many change the result by 3e-7 (relative) at 8,192 points
FIELDS = ("a", "u")

# FNO's fourier_1d.py: ntrain = 1000 (the first), ntest = 100 (the last). Search runs here validate
# on the last 100 of the training block, as NAS-Bench-360 splits Darcy Flow's smooth1.
TRAIN, VAL, TEST = 900, 100, 100

_NAME = re.compile(r"^burgers_r(\d+)_N(\d+)\.mat$")


def file_name(resolution: int, n: int) -> str:
    """A generated file's name, ``burgers_r{resolution}_N{n}.mat`` (the published one is ``PUBLISHED_NAME``)."""
    return f"burgers_r{resolution}_N{n}.mat"


def gaussian_random_field(s: int, rng: np.random.Generator) -> np.ndarray:
    """One periodic initial condition on ``s`` points (x = j / s, ``s`` even), with the ``s // 2``
    lowest modes, as FNO's ``GRF1(s/2, 0, gamma, tau, sigma, "periodic")``: the sum over k of
    cos_k cos(2 pi k x) + sin_k sin(2 pi k x), synthesised by one inverse FFT."""
    k = np.arange(1, s // 2 + 1)
    std = np.sqrt(2) * GRF_SIGMA * ((2 * np.pi * k) ** 2 + GRF_TAU**2) ** (-GRF_GAMMA / 2)
    cos, sin = rng.standard_normal((2, k.size)) * std
    spectrum = np.zeros(s // 2 + 1, dtype=complex)
    spectrum[1:] = s / 2 * (cos - 1j * sin)
    spectrum[-1] = s * cos[-1]  # at the Nyquist mode only the cosine is seen on the grid
    return np.fft.irfft(spectrum, n=s)


def solve(u0: np.ndarray, viscosity: float = VISCOSITY, time: float = FINAL_TIME, steps: int = STEPS) -> np.ndarray:
    """u(., time) for initial conditions ``u0`` of shape (n, s) on the periodic unit interval.

    ETDRK4 in Fourier space: the diffusion -nu k^2 is integrated exactly, the advection
    -(u^2 / 2)_x by a fourth-order Runge-Kutta; the phi-function coefficients are evaluated by
    the contour integral of Kassam & Trefethen (32 points), which avoids their cancellation.
    """
    u0 = np.atleast_2d(np.asarray(u0, dtype=np.float64))
    s = u0.shape[-1]
    h = time / steps
    k = 2 * np.pi * np.fft.rfftfreq(s, d=1.0 / s)
    linear = -viscosity * k**2
    e, e2 = np.exp(h * linear), np.exp(h * linear / 2)
    roots = np.exp(1j * np.pi * (np.arange(1, 33) - 0.5) / 32)
    lr = h * linear[:, None] + roots[None, :]
    q = h * np.real(np.mean((np.exp(lr / 2) - 1) / lr, axis=1))
    f1 = h * np.real(np.mean((-4 - lr + np.exp(lr) * (4 - 3 * lr + lr**2)) / lr**3, axis=1))
    f2 = h * np.real(np.mean((2 + lr + np.exp(lr) * (lr - 2)) / lr**3, axis=1))
    f3 = h * np.real(np.mean((-4 - 3 * lr - lr**2 + np.exp(lr) * (4 - lr)) / lr**3, axis=1))
    g = -0.5j * k

    def advection(v: np.ndarray) -> np.ndarray:
        return g * np.fft.rfft(np.fft.irfft(v, n=s) ** 2)

    v = np.fft.rfft(u0)
    for _ in range(steps):
        nv = advection(v)
        a = e2 * v + q * nv
        na = advection(a)
        b = e2 * v + q * na
        nb = advection(b)
        c = e2 * a + q * (2 * nb - nv)
        v = e * v + nv * f1 + 2 * (na + nb) * f2 + advection(c) * f3
    return np.fft.irfft(v, n=s)


def generate(
    out_dir: str | os.PathLike,
    n: int = PUBLISHED_SAMPLES,
    resolution: int = 1024,
    solver_resolution: int = PUBLISHED_RESOLUTION,
    seed: int = 0,
    progress: bool = True,
    chunk: int = 64,
) -> Path:
    """Write ``burgers_r{resolution}_N{n}.mat`` into ``out_dir``: ``a`` and ``u``, each (n, resolution)
    float64, solved on ``solver_resolution`` points and subsampled (every k-th point, as FNO keeps
    every 8th of 8,192).

    Sample i depends only on (seed, i) (``SeedSequence(seed).spawn(n)``), so the first m samples of
    an n-sample file are those of an m-sample file, whatever ``chunk`` (samples solved together).
    An existing file holding what this call would write is kept (and said so); any other file of
    that name (another shape, or other settings in the ``<file>.json`` written beside it) is refused,
    never overwritten; the file is written under a temporary name and renamed.
    """
    step = subsample_step(solver_resolution, resolution)
    if n < 1 or chunk < 1:
        raise ValueError(f"n and chunk must be >= 1, got {n}, {chunk}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / file_name(resolution, n)
    settings = {"n": n, "resolution": resolution, "solver_resolution": solver_resolution, "seed": seed,
                "viscosity": VISCOSITY, "steps": STEPS}
    if path.exists():
        check_finished(path, FIELDS, (n, resolution), "samples x resolution, from the file name", settings)
        print(f"skipped {path}: it already holds {n} samples at {resolution} points, made with these settings")
        return path
    seeds = np.random.SeedSequence(seed).spawn(n)
    a, u = np.zeros((n, resolution)), np.zeros((n, resolution))
    with tqdm(total=n, desc=path.name, unit="sample", disable=not progress) as bar:
        for start in range(0, n, chunk):
            stop = min(start + chunk, n)
            u0 = np.stack([gaussian_random_field(solver_resolution, np.random.default_rng(s)) for s in seeds[start:stop]])
            a[start:stop], u[start:stop] = u0[:, ::step], solve(u0)[:, ::step]
            bar.update(stop - start)
    write_mat(path, {"a": a, "u": u})
    write_settings(path, settings)
    return path


def write_fake(root: str | os.PathLike, n: int = 24, seed: int = 0) -> Path:
    """The small stand-in that ``nb360 data fake burgers`` writes: no fake at all, a real generation
    of ``n`` samples, solved on 1,024 points and stored at 128."""
    return generate(root, n=n, resolution=128, solver_resolution=1024, seed=seed, progress=False)


def subsample_step(source: int, target: int) -> int:
    """The stride that takes a periodic ``source``-point grid to ``target`` points."""
    if target >= 2 and source % target == 0:
        return source // target
    raise ValueError(f"cannot subsample a periodic {source}-point grid to {target} points: every k-th point is kept, "
                     f"so the resolution must divide {source}")


def load_splits(
    data_root: str | os.PathLike, resolution: int = 1024, test_size: int | None = None
) -> tuple[TensorDataset, TensorDataset, TensorDataset, UnitGaussianNormalizer]:
    """The burgers task: (train, val, test, y_normalizer).

    File: the published ``burgers_data_R10.mat`` if present, else the generated
    ``burgers_r{R}_N{n}.mat`` with the most samples and then the smallest R that reaches
    ``resolution`` (R a multiple of it).

    Splits, as FNO's ``fourier_1d.py``: the test set is the last 100 samples (``test_size``: that
    many instead), training the first 1,000, of which the last 100 validate here. Files with fewer
    samples: the test set is taken first (a quarter of the file by default, at most half), then 10%
    (at least one) of what precedes it, up to 1,000, validates.

    Tensors: x is (N, 2, s) float32, channels [initial condition, x-grid] (FNO's ``get_grid``:
    ``linspace(0, 1, s)``), the initial condition normalised pointwise with statistics of the
    training split; y is (N, 1, s) float32, normalised by ``y_normalizer`` (fitted on the training
    split); decode both before the relative L2 error, as for Darcy Flow. (FNO's 1D script trains
    on raw values; the relative L2 error does not depend on the output's scale.)
    """
    path, source = _find_file(Path(data_root), resolution)
    n = PUBLISHED_SAMPLES if path.name == PUBLISHED_NAME else int(_NAME.match(path.name).group(2))
    data = read_fields(path, FIELDS, (n, source), "samples x resolution, from the file name")
    step = subsample_step(source, resolution)
    a, u = (torch.from_numpy(data[field][:, ::step].astype(np.float32)) for field in FIELDS)
    n_train, n_val, n_test = split_sizes(n, test_size, path)

    x_normalizer = UnitGaussianNormalizer(a[:n_train])
    y_normalizer = UnitGaussianNormalizer(u[:n_train])
    grid = torch.linspace(0, 1, resolution)

    def dataset(rows: slice) -> TensorDataset:
        x = x_normalizer.encode(a[rows])
        x = torch.stack([x, grid.expand_as(x)], dim=1)
        return TensorDataset(x, y_normalizer.encode(u[rows]).unsqueeze(1))

    return (
        dataset(slice(0, n_train)),
        dataset(slice(n_train, n_train + n_val)),
        dataset(slice(n - n_test, n)),
        y_normalizer,
    )


def make_task(card: dict, data_root: Path, resolution: int | None = None, test_size: int | None = None) -> Task:
    """The burgers ``Task`` for ``nb360.data.load_task``: the splits of ``load_splits`` at
    ``resolution`` (default: the card's ``in_shape``), relative L2 as for Darcy Flow."""
    size = resolution or card["in_shape"][0]
    return relative_l2_task(card, load_splits(data_root, size, test_size), (size,))


def split_sizes(n: int, test_size: int | None = None, path: Path | str = "the file") -> tuple[int, int, int]:
    """(train, val, test) sizes for a file of ``n`` samples: 900 / 100 / 100 for the published file;
    the test set defaults to 100 samples, or a quarter of a smaller file."""
    if test_size is None:
        test_size = max(1, min(TEST, n // 4))
    if test_size < 1 or test_size > n // 2:
        raise ValueError(f"{path}: test_size={test_size}, expected 1 to {n // 2} (at most half of the file's {n} samples)")
    used = min(n - test_size, TRAIN + VAL)
    n_val = max(1, round(used * VAL / (TRAIN + VAL)))
    n_train = used - n_val
    if n_train < 2:
        raise ValueError(f"{path}: {n} samples leave {n_train} to train on after {test_size} test and {n_val} "
                         "validation samples; the normaliser needs at least 2")
    return n_train, n_val, test_size


def _find_file(root: Path, resolution: int) -> tuple[Path, int]:
    """The file to read and its grid size; see ``load_splits`` for the order of preference."""
    published = root / PUBLISHED_NAME
    if published.is_file() and PUBLISHED_RESOLUTION % resolution == 0:
        return published, PUBLISHED_RESOLUTION
    found = [(int(m.group(1)), int(m.group(2))) for m in (_NAME.match(p.name) for p in sorted(root.glob("burgers_r*_N*.mat")))
             if m] if root.is_dir() else []
    usable = [(r, n) for r, n in found if r >= resolution and r % resolution == 0]
    if usable:
        r, n = max(usable, key=lambda rn: (rn[1], -rn[0]))
        return root / file_name(r, n), r
    others = f" Found {', '.join(file_name(r, n) for r, n in found)}, none a multiple of {resolution} points." if found else ""
    raise FileNotFoundError(
        f"burgers data not found in {root.resolve()}: looked for {PUBLISHED_NAME} (the published file) or "
        f"burgers_r{{R}}_N{{n}}.mat with R a multiple of {resolution} (made by `nb360 data generate burgers`).{others} "
        f"FNO publishes the file at {PUBLISHED_URL}; or run `nb360 data generate burgers` to make it."
    )
