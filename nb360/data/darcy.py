"""Darcy flow: the FNO data that NAS-Bench-360 uses, read from the published files or made anew.

The task (Li et al., "Fourier Neural Operator", 2021; NAS-Bench-360's ``darcyflow``) maps a
piecewise-constant permeability ``a`` on the unit square to the solution ``u`` of

    -div(a grad u) = 1   in (0, 1)^2,        u = 0 on the boundary.

``a`` is a Gaussian random field N(0, (-Laplacian + tau^2)^(-alpha)) (zero Neumann boundary,
alpha=2, tau=3) thresholded to 12 where it is >= 0 and 3 elsewhere. The published files
``piececonst_r421_N1024_smooth{1,2}.mat`` hold 1024 such pairs on a 421 x 421 grid (keys ``coeff``
and ``sol``); NAS-Bench-360 subsamples every 5th point to 85 x 85.

This module reproduces FNO's MATLAB generator (``data_generation/darcy/GRF.m``, ``demo.m``,
``solve_gwf.m``) with a fast solver, writes files in the published layout, and builds the
NAS-Bench-360 train/val/test splits from either kind of file.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import closing
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, Sequence

import numpy as np
import scipy.fft
import scipy.sparse
import scipy.sparse.linalg
import torch
from scipy.interpolate import CubicSpline
from torch.utils.data import TensorDataset
from tqdm import tqdm

from nb360.data.fields import (UnitGaussianNormalizer, check_finished, read_fields, relative_l2_task, write_mat,
                               write_settings)
from nb360.interrupts import raise_if_interrupted

if TYPE_CHECKING:
    from nb360.data.task import Task

# The two permeability values. FNO's paper gives 12 and 3, as the published files have them; the
# MATLAB demo (demo.m) writes 4 for the negative part.
HIGH, LOW = 12.0, 3.0
PUBLISHED_RESOLUTION = 421
PUBLISHED_SAMPLES = 1024
# Where NAS-Bench-360's README points for the two files.
PUBLISHED_URL = "https://pde-xd.s3.amazonaws.com/{name}"

SOLVERS = ("spectral", "amg", "direct")
GRIDS = ("node", "cell")
RTOL = 1e-10  # relative residual of the iterative solvers: far below the O(h^2) discretisation error
MAXITER = 1000  # ~25 are needed for the thresholded fields
FIELDS = ("coeff", "sol")

# NAS-Bench-360 (backbone/model_grid_fno.py, darts/gaea-dense/utils.py): ntrain=1000, ntest=100;
# search runs train on smooth1[:900] and validate on smooth1[900:1000]; the test set is smooth2[:100].
TRAIN, VAL, TEST = 900, 100, 100

_NAME = re.compile(r"^piececonst_r(\d+)_N(\d+)_smooth([12])\.mat$")


# ----------------------------------------------------------------------------------------------
# Coefficient fields
# ----------------------------------------------------------------------------------------------


def gaussian_random_field(s: int, rng: np.random.Generator, alpha: float = 2.0, tau: float = 3.0) -> np.ndarray:
    """A sample of N(0, C), C = tau^(2 alpha - 2) (-Laplacian + tau^2)^(-alpha), zero Neumann boundary.

    A line-for-line port of FNO's ``GRF.m``: the Karhunen-Loeve coefficients of the cosine basis are
    ``s * tau^(alpha-1) * (pi^2 |k|^2 + tau^2)^(-alpha/2) * xi`` with xi ~ N(0, 1), the constant mode
    is zeroed (so the field has zero mean), and MATLAB's ``idct2`` is the orthonormal inverse DCT-II.
    The orthonormal DCT samples cos(k pi x) at cell centres x = (2i+1)/(2s), the grid on which
    ``solve_gwf.m`` takes its coefficient. Only the sign of the field matters once it is thresholded,
    so the overall scale is kept for fidelity, not because it changes the data.
    """
    k = np.arange(s)
    k1, k2 = np.meshgrid(k, k)
    sqrt_eigenvalues = tau ** (alpha - 1) * (np.pi**2 * (k1**2 + k2**2) + tau**2) ** (-alpha / 2)
    coefficients = s * sqrt_eigenvalues * rng.standard_normal((s, s))
    coefficients[0, 0] = 0.0
    return scipy.fft.idctn(coefficients, type=2, norm="ortho")


def threshold(field: np.ndarray, high: float = HIGH, low: float = LOW) -> np.ndarray:
    """The piecewise-constant permeability: ``high`` where the field is >= 0, ``low`` where < 0."""
    return np.where(np.asarray(field) >= 0, high, low).astype(np.float64)


# ----------------------------------------------------------------------------------------------
# Finite-difference solver
# ----------------------------------------------------------------------------------------------


def solve(
    coeff: np.ndarray,
    solver: str = "spectral",
    rhs: float | np.ndarray = 1.0,
    grid: str = "node",
) -> np.ndarray:
    """Solve -div(a grad u) = rhs on the unit square with u = 0 on the boundary.

    Second-order finite differences as in FNO's ``solve_gwf.m``: a 5-point stencil on the s x s
    nodes of spacing h = 1/(s-1) (boundary nodes included), each face carrying the mean of the
    coefficients of its two nodes.

    ``grid`` says where ``coeff``, ``rhs`` and the returned ``u`` live:
      * ``"node"``: on those nodes, so ``u`` is exactly zero on the boundary rows and columns.
      * ``"cell"``: on the cell centres (2i+1)/(2s), as ``solve_gwf.m`` does: the coefficient and
        the right-hand side are moved to the nodes, and the solution back, with MATLAB's
        ``interp2(..., 'spline')`` (not-a-knot cubic spline along each axis, extrapolated at the
        ends). This is what FNO's published generator does; ``u`` is then small but not zero on the
        boundary, and the coefficient the solver sees is smoothed across the jumps.

    ``solver``:
      * ``"spectral"`` (default, fastest): conjugate gradients preconditioned by the exact inverse of
        the constant-coefficient operator, applied with two fast sine transforms. On the node grid
        the preconditioned condition number is at most max(a)/min(a) = 4 whatever the resolution,
        so it converges in about 25 iterations at any s.
      * ``"amg"``: conjugate gradients preconditioned by a Ruge-Stuben algebraic multigrid hierarchy
        (pyamg) built for each matrix; robust for any positive coefficient, slower to set up.
      * ``"direct"``: scipy's sparse LU (``spsolve``), the reference.
    The iterative solvers stop at a relative residual of 1e-10 and agree with ``direct`` to ~1e-12.
    """
    a = _square_field(coeff, "coeff")
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {SOLVERS}, got {solver!r}")
    if grid not in GRIDS:
        raise ValueError(f"grid must be one of {GRIDS}, got {grid!r}")
    if not np.all(a > 0):
        raise ValueError(f"the coefficient must be positive for the problem to be elliptic; its minimum is {a.min()}")
    s = a.shape[0]
    f = np.broadcast_to(np.asarray(rhs, dtype=np.float64), a.shape)
    if grid == "cell":
        # Kept as solve_gwf.m has it, artefacts included: extrapolating the spline half a cell past a
        # jump near the edge can make boundary-node values negative (only their face means enter).
        a, f = _cells_to_nodes(a), _cells_to_nodes(f)
    u = np.zeros((s, s))
    u[1:-1, 1:-1] = _SOLVE[solver](_operator(a), f[1:-1, 1:-1].ravel()).reshape(s - 2, s - 2)
    return _nodes_to_cells(u) if grid == "cell" else u


def _square_field(field: np.ndarray, name: str) -> np.ndarray:
    """Checks that a field is a finite square 2-D array with room for one interior node."""
    array = np.asarray(field, dtype=np.float64)
    if array.ndim != 2 or array.shape[0] != array.shape[1] or array.shape[0] < 3:
        raise ValueError(f"{name} must be a square 2-D array of side >= 3, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} has non-finite values")
    return array


def _operator(a: np.ndarray) -> scipy.sparse.csr_matrix:
    """The 5-point matrix on the (s-2)^2 interior nodes, unknowns in row-major order.

    Built from whole-array slices (no loop over nodes). Face coefficients are node means, as in
    ``solve_gwf.m``; faces next to the boundary couple to the known zero values and only add to the
    diagonal.
    """
    s = a.shape[0]
    n = s - 2
    h2 = (1.0 / (s - 1)) ** 2
    faces_0 = 0.5 * (a[:-1, 1:-1] + a[1:, 1:-1])  # between nodes (i, j) and (i+1, j): (s-1, n)
    faces_1 = 0.5 * (a[1:-1, :-1] + a[1:-1, 1:])  # between nodes (i, j) and (i, j+1): (n, s-1)
    diagonal = faces_0[:-1] + faces_0[1:] + faces_1[:, :-1] + faces_1[:, 1:]
    # Neighbours along axis 1 are one apart in the ordering; the face to the right of the last
    # interior node of a row leads to the boundary, so its coupling is zero.
    along_1 = np.zeros((n, n))
    along_1[:, :-1] = -faces_1[:, 1:-1]
    along_0 = -faces_0[1:-1].ravel()  # neighbours along axis 0 are n apart
    matrix = scipy.sparse.diags(
        [diagonal.ravel(), along_1.ravel()[:-1], along_1.ravel()[:-1], along_0, along_0],
        [0, 1, -1, n, -n],
        format="csr",
    )
    return matrix / h2


def _solve_spectral(matrix: scipy.sparse.csr_matrix, b: np.ndarray) -> np.ndarray:
    """CG preconditioned by the inverse discrete Laplacian (the a = 1 operator), via DST-I.

    For any positive a, the Rayleigh quotient of the a-operator over the Laplacian lies between the
    smallest and the largest face coefficient, so the preconditioned condition number is at most
    12/3 = 4 for the thresholded fields, independent of the grid.
    """
    n = int(round(np.sqrt(b.size)))
    eigenvalues = _laplacian_eigenvalues(n)

    def precondition(r: np.ndarray) -> np.ndarray:
        spectrum = scipy.fft.dstn(r.reshape(n, n), type=1, norm="ortho") / eigenvalues
        return scipy.fft.dstn(spectrum, type=1, norm="ortho").ravel()

    return _pcg(matrix, b, precondition, "spectral")


@lru_cache(maxsize=8)
def _laplacian_eigenvalues(n: int) -> np.ndarray:
    """Eigenvalues of the 5-point Laplacian on n x n interior nodes, h = 1/(n+1), in DST-I order."""
    k = np.arange(1, n + 1)
    one_d = 4.0 * (n + 1) ** 2 * np.sin(k * np.pi / (2 * (n + 1))) ** 2
    return one_d[:, None] + one_d[None, :]


def _solve_amg(matrix: scipy.sparse.csr_matrix, b: np.ndarray) -> np.ndarray:
    """CG preconditioned by a Ruge-Stuben V-cycle; RS set up faster than smoothed aggregation here."""
    import pyamg  # imported here: only this solver needs it

    v_cycle = pyamg.ruge_stuben_solver(matrix).aspreconditioner(cycle="V")
    return _pcg(matrix, b, v_cycle.matvec, "amg")


def _pcg(
    matrix: scipy.sparse.csr_matrix, b: np.ndarray, precondition: Callable[[np.ndarray], np.ndarray], name: str
) -> np.ndarray:
    """Preconditioned conjugate gradients from zero until ||r|| <= RTOL ||b||.

    Written out instead of calling scipy's ``cg`` so that the inner products avoid BLAS: with
    multithreaded BLAS in every worker, a process pool oversubscribes the cores (measured: two
    workers on two cores ran slower than one).
    """
    x = np.zeros_like(b)
    r = b.copy()
    z = precondition(r)
    p = z.copy()
    rz = _dot(r, z)
    stop = RTOL * np.sqrt(_dot(b, b))
    for _ in range(MAXITER):
        q = matrix @ p
        alpha = rz / _dot(p, q)
        x += alpha * p
        r -= alpha * q
        if np.sqrt(_dot(r, r)) <= stop:
            return x
        z = precondition(r)
        rz, rz_previous = _dot(r, z), rz
        p = z + (rz / rz_previous) * p
    raise RuntimeError(f"{name}-preconditioned CG did not reach a relative residual of {RTOL} in {MAXITER} iterations")


def _dot(u: np.ndarray, v: np.ndarray) -> float:
    """Single-threaded inner product (numpy's einsum loop, not BLAS)."""
    return float(np.einsum("i,i->", u, v))


def _solve_direct(matrix: scipy.sparse.csr_matrix, b: np.ndarray) -> np.ndarray:
    """Sparse LU, the reference the iterative solvers are checked against."""
    return scipy.sparse.linalg.spsolve(matrix.tocsc(), b)


_SOLVE = {"spectral": _solve_spectral, "amg": _solve_amg, "direct": _solve_direct}


def _cells_to_nodes(values: np.ndarray) -> np.ndarray:
    """MATLAB ``interp2(X1, Y1, values, X2, Y2, 'spline')`` from cell centres to nodes."""
    weights = _spline_weights(values.shape[0], to_nodes=True)
    return weights @ values @ weights.T


def _nodes_to_cells(values: np.ndarray) -> np.ndarray:
    """MATLAB ``interp2(X2, Y2, values, X1, Y1, 'spline')`` from nodes back to cell centres."""
    weights = _spline_weights(values.shape[0], to_nodes=False)
    return weights @ values @ weights.T


@lru_cache(maxsize=8)
def _spline_weights(s: int, to_nodes: bool) -> scipy.sparse.csr_matrix:
    """The linear map of 1-D not-a-knot cubic spline interpolation between the two grids.

    The tensor-product spline that ``interp2`` evaluates is this map applied along each axis. Its
    weights decay like (2 - sqrt(3))^distance, so those below 1e-17 of the largest (beyond ~30
    nodes) are dropped: a banded sparse map, applied without multithreaded BLAS (see ``_pcg``).
    """
    cells = (2 * np.arange(s) + 1) / (2 * s)
    nodes = np.linspace(0.0, 1.0, s)
    source, target = (cells, nodes) if to_nodes else (nodes, cells)
    weights = CubicSpline(source, np.eye(s), axis=0, bc_type="not-a-knot", extrapolate=True)(target)
    weights[np.abs(weights) < 1e-17 * np.abs(weights).max()] = 0.0
    return scipy.sparse.csr_matrix(weights)


# ----------------------------------------------------------------------------------------------
# Generating files in the published layout
# ----------------------------------------------------------------------------------------------


def file_name(resolution: int = PUBLISHED_RESOLUTION, n: int = PUBLISHED_SAMPLES, part: int = 1) -> str:
    """``piececonst_r{resolution}_N{n}_smooth{part}.mat``, FNO's naming (part 1: train, 2: test)."""
    return f"piececonst_r{resolution}_N{n}_smooth{part}.mat"


def subsample_step(source: int, target: int) -> int:
    """The stride that takes a ``source``-point grid to ``target`` points, keeping both ends."""
    if _reaches(source, target):
        return (source - 1) // (target - 1)
    valid = [d + 1 for d in range(1, source) if (source - 1) % d == 0]
    raise ValueError(
        f"cannot subsample a {source}-point grid to {target} points: every k-th node is kept, so "
        f"{source} - 1 must be a multiple of resolution - 1; resolutions reachable from {source}: {valid}"
    )


@dataclass(frozen=True)
class _SampleSpec:
    """What one worker needs to make one sample (picklable for the process pool)."""

    solver_resolution: int
    resolution: int
    solver: str
    grid: str


def _draw_sample(spec: _SampleSpec, seed: np.random.SeedSequence) -> tuple[np.ndarray, np.ndarray]:
    """One (coeff, sol) pair at the output resolution, a pure function of its own seed."""
    rng = np.random.default_rng(seed)
    coeff = threshold(gaussian_random_field(spec.solver_resolution, rng))
    sol = solve(coeff, spec.solver, grid=spec.grid)
    step = subsample_step(spec.solver_resolution, spec.resolution)
    return coeff[::step, ::step], sol[::step, ::step]


def generate(
    out_dir: str | os.PathLike,
    n: int,
    resolution: int = 85,
    solver_resolution: int = PUBLISHED_RESOLUTION,
    seed: int = 0,
    workers: int = 1,
    progress: bool = True,
    solver: str = "spectral",
    grid: str = "node",
    checkpoint_every: int = 50,
) -> list[Path]:
    """Write ``piececonst_r{resolution}_N{n}_smooth1.mat`` and ``..._smooth2.mat`` into ``out_dir``.

    Each file holds ``coeff`` and ``sol`` of shape (n, resolution, resolution), float64, solved at
    ``solver_resolution`` and subsampled (every k-th node, as NAS-Bench-360 subsamples 421 to 85).
    The two files are independent draws, like FNO's smooth1 (train) and smooth2 (test).

    Seeds: ``SeedSequence(seed).spawn(2)`` gives one sequence per file and each of those spawns one
    per sample, so sample i of a file depends only on (seed, file, i): the result is the same for
    any ``workers`` and for a run that was interrupted and resumed, and the first m samples of an
    n-sample file are those of an m-sample file.

    Safety: an existing complete file is skipped (and said so), an existing file of another shape
    raises instead of being overwritten, files are written under a temporary name and renamed, and
    finished samples are checkpointed to ``<file>.partial.npz`` every ``checkpoint_every`` samples
    (and on any interruption) so that a new call resumes where the last one stopped.

    ``grid="cell"`` reproduces ``solve_gwf.m``'s cell-centred storage (see ``solve``); the default
    ``"node"`` stores node values with an exactly zero boundary. The published files also hold
    ``Kcoeff``, ``Kcoeff_x`` and ``Kcoeff_y``, which neither FNO's nor NAS-Bench-360's Darcy code
    reads; they are not written.
    """
    subsample_step(solver_resolution, resolution)  # fail early on an unreachable resolution
    if n < 1 or workers < 1 or checkpoint_every < 1:
        raise ValueError(f"n, workers and checkpoint_every must be >= 1, got {n}, {workers}, {checkpoint_every}")
    if solver not in SOLVERS or grid not in GRIDS:
        raise ValueError(f"solver must be one of {SOLVERS} and grid one of {GRIDS}, got {solver!r}, {grid!r}")
    spec = _SampleSpec(solver_resolution, resolution, solver, grid)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for part, file_seed in enumerate(np.random.SeedSequence(seed).spawn(2), start=1):
        path = out / file_name(resolution, n, part)
        paths.append(path)
        meta = _meta(spec, file_seed, n)
        if path.exists():
            check_finished(path, FIELDS, (n, resolution, resolution), "samples x resolution x resolution, from the "
                           "file name", {**meta, "seed": seed}, unnamed=("entropy", "spawn_key"))
            print(f"skipped {path}: it already holds {n} samples at {resolution}x{resolution}, made with these settings")
            continue
        _generate_file(path, spec, file_seed, n, workers, progress, checkpoint_every)
        write_settings(path, {**meta, "seed": seed})
    return paths


def _meta(spec: "_SampleSpec", file_seed: np.random.SeedSequence, n: int) -> dict:
    """What decides a file's samples: its seed sequence, the sample count and the solve."""
    return {"entropy": str(file_seed.entropy), "spawn_key": list(file_seed.spawn_key), "n": n, **asdict(spec)}


def write_fake(root: str | os.PathLike, n: int = 12, seed: int = 0) -> list[Path]:
    """The small stand-in that ``nb360 data fake darcyflow`` writes: no fake at all, a real generation
    of ``n`` samples per file, solved and stored at the task's 85 x 85 grid."""
    return generate(root, n=n, resolution=85, solver_resolution=85, seed=seed, progress=False)


def _generate_file(
    path: Path,
    spec: _SampleSpec,
    file_seed: np.random.SeedSequence,
    n: int,
    workers: int,
    progress: bool,
    checkpoint_every: int,
) -> None:
    """Fills one file sample by sample, resuming from and updating its checkpoint."""
    checkpoint = _Checkpoint.open(path.with_name(path.name + ".partial.npz"), _meta(spec, file_seed, n))
    seeds = file_seed.spawn(n)
    todo = [(i, seeds[i]) for i in np.flatnonzero(~checkpoint.done)]
    bar = tqdm(total=n, initial=n - len(todo), desc=path.name, unit="sample", disable=not progress)
    try:
        with closing(_samples(spec, todo, workers)) as samples:
            for i, (coeff, sol) in samples:
                checkpoint.store(i, coeff, sol)
                if checkpoint.unsaved >= checkpoint_every:
                    checkpoint.save()
                bar.update()
                raise_if_interrupted()  # after the finished sample is stored, so that it is kept
    finally:
        bar.close()
        if checkpoint.unsaved and not checkpoint.done.all():
            checkpoint.save()
    write_mat(path, {"coeff": checkpoint.coeff, "sol": checkpoint.sol})
    checkpoint.remove()


def _samples(
    spec: _SampleSpec, todo: Sequence[tuple[int, np.random.SeedSequence]], workers: int
) -> Iterator[tuple[int, tuple[np.ndarray, np.ndarray]]]:
    """Yields (index, sample) as samples finish, in this process or in a pool of ``workers``."""
    if workers == 1:
        for i, seed in todo:
            yield i, _draw_sample(spec, seed)
        return
    pool = ProcessPoolExecutor(workers, initializer=_exit_with_parent, initargs=(os.getpid(),))
    try:
        futures = {pool.submit(_draw_sample, spec, seed): i for i, seed in todo}
        for future in as_completed(futures):
            yield futures[future], future.result()
    finally:
        # On an interruption, drop the queued samples instead of waiting for all of them.
        pool.shutdown(wait=True, cancel_futures=True)


def _exit_with_parent(parent: int) -> None:
    """Ends a pool worker once its parent is gone.

    A parent killed by a signal (a scheduler's SIGTERM) leaves its pool workers waiting forever
    on the task queue; a daemon thread that watches the parent id makes them exit instead.
    """

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


class _Checkpoint:
    """Finished samples of one file, kept in ``<file>.partial.npz`` with the settings that made them."""

    def __init__(self, path: Path, meta: dict, coeff: np.ndarray, sol: np.ndarray, done: np.ndarray):
        self.path, self.meta = path, meta
        self.coeff, self.sol, self.done = coeff, sol, done
        self.unsaved = 0

    @classmethod
    def open(cls, path: Path, meta: dict) -> "_Checkpoint":
        """Resumes from ``path`` if it exists and was made with the same settings, else starts empty."""
        shape = (meta["n"], meta["resolution"], meta["resolution"])
        if not path.exists():
            return cls(path, meta, np.zeros(shape), np.zeros(shape), np.zeros(shape[0], dtype=bool))
        with np.load(path) as saved:
            found = json.loads(str(saved["meta"]))
            if found != meta:
                raise ValueError(
                    f"checkpoint {path} was made with other settings ({found}, now {meta}); "
                    "delete it to start over, or call generate with the settings it was made with"
                )
            return cls(path, meta, saved["coeff"], saved["sol"], saved["done"])

    def store(self, i: int, coeff: np.ndarray, sol: np.ndarray) -> None:
        self.coeff[i], self.sol[i], self.done[i] = coeff, sol, True
        self.unsaved += 1

    def save(self) -> None:
        """Writes atomically, so an interruption during the write leaves the previous checkpoint."""
        temporary = self.path.with_name(f".{self.path.name}.tmp")
        with open(temporary, "wb") as handle:
            np.savez(handle, meta=json.dumps(self.meta), coeff=self.coeff, sol=self.sol, done=self.done)
        os.replace(temporary, self.path)
        self.unsaved = 0

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


# ----------------------------------------------------------------------------------------------
# Reading files and building the NAS-Bench-360 task
# ----------------------------------------------------------------------------------------------


def load_splits(
    data_root: str | os.PathLike, resolution: int = 85, test_size: int | None = None
) -> tuple[TensorDataset, TensorDataset, TensorDataset, UnitGaussianNormalizer]:
    """NAS-Bench-360's darcyflow task: (train, val, test, y_normalizer).

    Files: the published ``piececonst_r421_N1024_smooth{1,2}.mat`` if present, else the pair of
    generated ``piececonst_r{R}_N{n}_smooth{1,2}.mat`` (same R and n) with the most samples and then
    the smallest R that reaches ``resolution`` (R == resolution, or every k-th node of R).

    Splits, as NAS-Bench-360's search runs: train = smooth1[:900], val = smooth1[900:1000],
    test = smooth2[:100]. Files with fewer samples are split in proportion: of the first
    min(n, 1000) samples of smooth1, 10% (at least one) validate and the rest train; the test set is
    all of smooth2 up to 100 samples. ``test_size`` takes exactly that many of smooth2 instead (more
    or fewer): a larger test set measures each cell with less evaluation noise.

    Tensors: x is (N, 3, s, s) float32, channels [coefficient, x-grid, y-grid] in NAS-Bench-360's
    order (``create_grid``: ``np.meshgrid`` of two ``linspace(0, 1, s)``, so channel 1 varies along
    the last axis and channel 2 along the one before); the coefficient is normalised pointwise with
    statistics of the training split. y is (N, 1, s, s) float32, normalised by ``y_normalizer``
    (fitted on the training split) in every split; decode predictions and targets with it before
    the relative L2 error, as FNO and NAS-Bench-360 do.
    """
    root = Path(data_root)
    train_file, test_file = _find_pair(root, resolution)
    coeff_1, sol_1 = _read(train_file, resolution, limit=TRAIN + VAL)
    if test_size is not None and test_size < 1:
        raise ValueError(f"test_size={test_size}: the darcyflow test set needs at least 1 sample")
    coeff_2, sol_2 = _read(test_file, resolution, limit=test_size or TEST)
    if test_size is not None and coeff_2.shape[0] < test_size:
        raise ValueError(f"{test_file}: test_size={test_size} asks more samples than the file's {coeff_2.shape[0]}")
    n_train, n_val, n_test = split_sizes(coeff_1.shape[0], coeff_2.shape[0], test_size or TEST)

    x_1, x_2 = torch.from_numpy(coeff_1), torch.from_numpy(coeff_2)
    y_1, y_2 = torch.from_numpy(sol_1).unsqueeze(1), torch.from_numpy(sol_2).unsqueeze(1)
    x_normalizer = UnitGaussianNormalizer(x_1[:n_train])
    y_normalizer = UnitGaussianNormalizer(y_1[:n_train])
    grid = _grid_channels(resolution)

    def dataset(x: torch.Tensor, y: torch.Tensor) -> TensorDataset:
        x = x_normalizer.encode(x).unsqueeze(1)
        x = torch.cat([x, grid.expand(x.shape[0], -1, -1, -1)], dim=1)
        return TensorDataset(x, y_normalizer.encode(y))

    return (
        dataset(x_1[:n_train], y_1[:n_train]),
        dataset(x_1[n_train : n_train + n_val], y_1[n_train : n_train + n_val]),
        dataset(x_2[:n_test], y_2[:n_test]),
        y_normalizer,
    )


def make_task(card: dict, data_root: Path, resolution: int | None = None, test_size: int | None = None) -> Task:
    """The darcyflow ``Task`` for ``nb360.data.load_task``: the splits of ``load_splits`` at
    ``resolution`` (default: the card's ``in_shape``), relative L2 as NAS-Bench-360 trains and
    evaluates (``fields.relative_l2_task``)."""
    size = resolution or card["in_shape"][0]
    return relative_l2_task(card, load_splits(data_root, size, test_size), (size, size))


def split_sizes(n_smooth1: int, n_smooth2: int, test_size: int = TEST) -> tuple[int, int, int]:
    """(train, val, test) sizes: 900/100/100 for the published files, in proportion for fewer samples;
    the test set is smooth2 up to ``test_size`` samples."""
    used = min(n_smooth1, TRAIN + VAL)
    n_val = max(1, round(used * VAL / (TRAIN + VAL)))
    n_train = used - n_val
    if n_train < 2 or n_smooth2 < 1:
        raise ValueError(
            f"darcyflow needs at least 3 samples in smooth1 (2 to fit the normaliser, 1 to validate) and 1 in "
            f"smooth2; the files have {n_smooth1} and {n_smooth2}"
        )
    return n_train, n_val, min(n_smooth2, test_size)


def _grid_channels(s: int) -> torch.Tensor:
    """(1, 2, s, s): NAS-Bench-360's ``create_grid`` (meshgrid 'xy' of linspace(0, 1, s)), channels first."""
    line = np.linspace(0, 1, s)
    gx, gy = np.meshgrid(line, line)
    return torch.tensor(np.stack([gx, gy])[None], dtype=torch.float32)


def _find_pair(root: Path, resolution: int) -> tuple[Path, Path]:
    """The (smooth1, smooth2) files to read; see ``load_splits`` for the order of preference."""
    published = [root / file_name(PUBLISHED_RESOLUTION, PUBLISHED_SAMPLES, part) for part in (1, 2)]
    if all(p.is_file() for p in published) and _reaches(PUBLISHED_RESOLUTION, resolution):
        return published[0], published[1]
    found: dict[tuple[int, int], set[int]] = {}
    for path in root.glob("piececonst_r*_N*_smooth*.mat") if root.is_dir() else []:
        match = _NAME.match(path.name)
        if match:
            r, n, part = (int(g) for g in match.groups())
            found.setdefault((r, n), set()).add(part)
    usable = [(r, n) for (r, n), parts in found.items() if parts == {1, 2} and _reaches(r, resolution)]
    if usable:
        r, n = max(usable, key=lambda rn: (rn[1], -rn[0]))
        return root / file_name(r, n, 1), root / file_name(r, n, 2)
    raise FileNotFoundError(_missing_message(root, resolution, found))


def _reaches(source: int, target: int) -> bool:
    """Whether keeping every k-th node of a ``source``-point grid gives ``target`` points."""
    return target >= 2 and source >= target and (source - 1) % (target - 1) == 0


def _missing_message(root: Path, resolution: int, found: dict[tuple[int, int], set[int]]) -> str:
    """Names the files looked for, the directory, what was there instead and how to get the data."""
    wanted = [file_name(PUBLISHED_RESOLUTION, PUBLISHED_SAMPLES, part) for part in (1, 2)]
    lines = [
        f"darcyflow data not found in {root.resolve()}: looked for {wanted[0]} and {wanted[1]} (the published files), "
        f"or a pair piececonst_r{{R}}_N{{n}}_smooth1.mat / _smooth2.mat with R = {resolution} or R - 1 a multiple "
        f"of {resolution - 1} (made by `nb360 data generate darcyflow`)."
    ]
    for (r, n), parts in sorted(found.items()):
        missing = [file_name(r, n, part) for part in (1, 2) if part not in parts]
        why = f"{', '.join(missing)} is missing" if missing else f"r{r} cannot be subsampled to {resolution}"
        lines.append(f"Found piececonst_r{r}_N{n}_smooth*.mat, not usable: {why}.")
    lines.append(
        "NAS-Bench-360 publishes the files at " + " and ".join(PUBLISHED_URL.format(name=w) for w in wanted) + "; "
        "or run `nb360 data generate darcyflow` to make them."
    )
    return " ".join(lines)  # one line: the CLI prints it as a one-line error


def _load_fields(path: Path, n: int, resolution: int) -> dict[str, np.ndarray]:
    """``coeff`` and ``sol`` of ``path``, checked to be (n, resolution, resolution) finite floating arrays."""
    return read_fields(path, FIELDS, (n, resolution, resolution), "samples x resolution x resolution, from the file name")


def _read(path: Path, resolution: int, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``limit`` samples of ``coeff`` and ``sol`` at ``resolution``, float32 as NB360 reads them."""
    r, n, _ = (int(g) for g in _NAME.match(path.name).groups())
    step = subsample_step(r, resolution)
    data = _load_fields(path, n, r)
    coeff, sol = (data[field][:limit, ::step, ::step].astype(np.float32) for field in FIELDS)
    return coeff, sol

