"""Darcy flow: the solver against exact solutions, the generator's files, and the NB360 splits."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import scipy.fft
import scipy.io
import torch
from matlab import write_v73

from nb360.data import darcy


def grid(s: int) -> tuple[np.ndarray, np.ndarray]:
    """Node coordinates (x varies along the last axis, as in NB360's grid channels)."""
    line = np.linspace(0.0, 1.0, s)
    return np.meshgrid(line, line)


def poisson_series(x: np.ndarray, y: np.ndarray, terms: int = 4001) -> np.ndarray:
    """Exact solution of -Laplace(u) = 1 on the unit square, u = 0 on the boundary.

    u = x(1-x)/2 - sum_{m odd} 4/(pi^3 m^3) sin(m pi x) cosh(m pi (y - 1/2)) / cosh(m pi / 2):
    the particular part x(1-x)/2 fixes the x-boundaries and the harmonic series cancels its values on
    y = 0, 1. The cosh ratio is written with decaying exponentials to avoid overflow; 2000 terms
    leave a truncation error below 1e-10.
    """
    m = np.arange(1, terms + 1, 2)[:, None, None]
    dy = np.abs(y - 0.5)[None]
    ratio = np.exp(m * np.pi * (dy - 0.5)) * (1 + np.exp(-2 * m * np.pi * dy)) / (1 + np.exp(-m * np.pi))
    return x * (1 - x) / 2 - (4 / (np.pi**3 * m**3) * np.sin(m * np.pi * x[None]) * ratio).sum(0)


def random_coeff(s: int, seed: int = 0) -> np.ndarray:
    return darcy.threshold(darcy.gaussian_random_field(s, np.random.default_rng(seed)))


# ----------------------------------------------------------------------------------------------
# Fields and solver
# ----------------------------------------------------------------------------------------------


def test_gaussian_random_field_is_grf_m():
    """Same KL construction as FNO's GRF.m: scaled coefficients, no constant mode, orthonormal idct2."""
    s, alpha, tau = 32, 2.0, 3.0
    field = darcy.gaussian_random_field(s, np.random.default_rng(7), alpha, tau)
    xi = np.random.default_rng(7).standard_normal((s, s))
    k1, k2 = np.meshgrid(np.arange(s), np.arange(s))
    expected = s * tau ** (alpha - 1) * (np.pi**2 * (k1**2 + k2**2) + tau**2) ** (-alpha / 2) * xi
    expected[0, 0] = 0.0
    np.testing.assert_allclose(scipy.fft.dctn(field, type=2, norm="ortho"), expected, atol=1e-12)
    assert abs(field.mean()) < 1e-12


def test_threshold_values():
    coeff = darcy.threshold(np.array([[-1.0, 0.0], [2.0, -1e-9]]))
    np.testing.assert_array_equal(coeff, [[3.0, 12.0], [12.0, 3.0]])
    assert coeff.dtype == np.float64


def test_manufactured_solution_second_order():
    """a = 2 + sin(2 pi x) cos(pi y), u = sin(pi x) sin(2 pi y): the max error falls as h^2."""
    errors = []
    for s in (17, 33, 65):
        x, y = grid(s)
        pi = np.pi
        a = 2 + np.sin(2 * pi * x) * np.cos(pi * y)
        a_x, a_y = 2 * pi * np.cos(2 * pi * x) * np.cos(pi * y), -pi * np.sin(2 * pi * x) * np.sin(pi * y)
        u = np.sin(pi * x) * np.sin(2 * pi * y)
        u_x, u_y = pi * np.cos(pi * x) * np.sin(2 * pi * y), 2 * pi * np.sin(pi * x) * np.cos(2 * pi * y)
        f = -(a_x * u_x + a_y * u_y) + 5 * pi**2 * a * u  # -div(a grad u), with u_xx + u_yy = -5 pi^2 u
        errors.append(np.abs(darcy.solve(a, rhs=f) - u).max())
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert np.all((orders > 1.8) & (orders < 2.2)), orders


def test_constant_coefficient_matches_series():
    """a = 1, f = 1 at s = 65: the 5-point error is 0.058 h^2 here; allow 0.07 h^2 (1.7e-5)."""
    s = 65
    x, y = grid(s)
    u = darcy.solve(np.ones((s, s)))
    h = 1 / (s - 1)
    assert np.abs(u - poisson_series(x, y)).max() < 0.07 * h**2
    assert np.all(u[0] == 0) and np.all(u[-1] == 0) and np.all(u[:, 0] == 0) and np.all(u[:, -1] == 0)


def test_cell_grid_constant_coefficient():
    """grid='cell' (solve_gwf.m's storage) returns values at cell centres (2i+1)/(2s), O(h^2) accurate."""
    s = 65
    centres = (2 * np.arange(s) + 1) / (2 * s)
    x, y = np.meshgrid(centres, centres)
    u = darcy.solve(np.ones((s, s)), grid="cell")
    assert np.abs(u - poisson_series(x, y)).max() < 0.1 / (s - 1) ** 2
    assert 0 < np.abs(u[0]).max() < 0.01  # half a cell from the wall: small, not zero


@pytest.mark.parametrize("solver", ["spectral", "amg"])
@pytest.mark.parametrize("grid_kind", ["node", "cell"])
def test_iterative_solvers_match_direct(solver, grid_kind):
    coeff = random_coeff(65, seed=3)
    reference = darcy.solve(coeff, "direct", grid=grid_kind)
    u = darcy.solve(coeff, solver, grid=grid_kind)
    assert np.linalg.norm(u - reference) / np.linalg.norm(reference) < 1e-8


def test_solve_rejects_bad_input():
    with pytest.raises(ValueError, match="square"):
        darcy.solve(np.ones((5, 6)))
    with pytest.raises(ValueError, match="positive"):
        darcy.solve(np.zeros((5, 5)))
    with pytest.raises(ValueError, match="solver"):
        darcy.solve(np.ones((5, 5)), solver="cholesky")


# ----------------------------------------------------------------------------------------------
# Generated files
# ----------------------------------------------------------------------------------------------

N, RES, SOLVER_RES = 6, 9, 33  # 33 -> 9 keeps every 4th node


def make(out: Path, **kwargs) -> list[Path]:
    options = dict(n=N, resolution=RES, solver_resolution=SOLVER_RES, seed=0, progress=False)
    return darcy.generate(out, **{**options, **kwargs})


def read(paths: list[Path]) -> list[dict[str, np.ndarray]]:
    return [scipy.io.loadmat(p) for p in paths]


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> list[Path]:
    return make(tmp_path_factory.mktemp("darcy"))


def test_generated_files(generated):
    assert [p.name for p in generated] == ["piececonst_r9_N6_smooth1.mat", "piececonst_r9_N6_smooth2.mat"]
    first, second = read(generated)
    for data in (first, second):
        assert {"coeff", "sol"} <= data.keys()
        for key in ("coeff", "sol"):
            assert data[key].shape == (N, RES, RES) and data[key].dtype == np.float64
        assert set(np.unique(data["coeff"])) == {3.0, 12.0}
        sol = data["sol"]
        boundary = np.concatenate([sol[:, 0], sol[:, -1], sol[:, :, 0], sol[:, :, -1]])
        assert np.all(boundary == 0)
        assert np.all(sol[:, 1:-1, 1:-1] > 0)
    assert not np.array_equal(first["coeff"], second["coeff"])  # two independent draws
    assert not list(generated[0].parent.glob("*.partial.npz")) and not list(generated[0].parent.glob(".*.tmp"))


def test_generated_sample_is_the_solver_output(generated):
    """Sample 0 of smooth1 is the subsampled solve of the field drawn from its own seed."""
    seed = np.random.SeedSequence(0).spawn(2)[0].spawn(1)[0]
    coeff = darcy.threshold(darcy.gaussian_random_field(SOLVER_RES, np.random.default_rng(seed)))
    data = read(generated)[0]
    np.testing.assert_array_equal(data["coeff"][0], coeff[::4, ::4])
    np.testing.assert_allclose(data["sol"][0], darcy.solve(coeff, "direct")[::4, ::4], rtol=1e-9, atol=1e-14)


def test_same_seed_same_files_and_workers_do_not_matter(generated, tmp_path):
    again = read(make(tmp_path / "serial"))
    pooled = read(make(tmp_path / "pooled", workers=2))
    for reference, serial, parallel in zip(read(generated), again, pooled):
        for key in ("coeff", "sol"):
            np.testing.assert_array_equal(serial[key], reference[key])
            np.testing.assert_array_equal(parallel[key], reference[key])


def test_resume_after_interruption(generated, tmp_path, monkeypatch):
    calls = {"n": 0}
    draw = darcy._draw_sample

    def interrupted(spec, seed):
        calls["n"] += 1
        if calls["n"] > 3:
            raise KeyboardInterrupt
        return draw(spec, seed)

    monkeypatch.setattr(darcy, "_draw_sample", interrupted)
    with pytest.raises(KeyboardInterrupt):
        make(tmp_path, checkpoint_every=2)
    partial = tmp_path / "piececonst_r9_N6_smooth1.mat.partial.npz"
    assert partial.exists() and not (tmp_path / "piececonst_r9_N6_smooth1.mat").exists()
    with np.load(partial) as saved:
        assert saved["done"].sum() == 3  # the interruption saved everything that had finished

    monkeypatch.setattr(darcy, "_draw_sample", draw)
    calls["n"] = 0
    resumed = read(make(tmp_path))
    for reference, data in zip(read(generated), resumed):
        for key in ("coeff", "sol"):
            np.testing.assert_array_equal(data[key], reference[key])
    assert not partial.exists()


def test_checkpoint_from_other_settings_is_refused(tmp_path, monkeypatch):
    draw = darcy._draw_sample
    calls = iter(range(N))

    def interrupted(spec, seed):
        if next(calls) == 1:
            raise KeyboardInterrupt
        return draw(spec, seed)

    monkeypatch.setattr(darcy, "_draw_sample", interrupted)
    with pytest.raises(KeyboardInterrupt):
        make(tmp_path)
    monkeypatch.setattr(darcy, "_draw_sample", draw)
    with pytest.raises(ValueError, match="other settings"):
        make(tmp_path, seed=1)


def test_existing_file_is_not_overwritten(generated, tmp_path, capsys):
    target = tmp_path / generated[0].name
    target.write_bytes(generated[0].read_bytes())
    os.utime(target, (1_000_000, 1_000_000))
    paths = make(tmp_path, seed=5)
    assert target.stat().st_mtime == 1_000_000
    assert "skipped" in capsys.readouterr().out
    assert paths[1].exists()

    wrong = tmp_path / "wrong"
    wrong.mkdir()
    scipy.io.savemat(wrong / generated[0].name, {"coeff": np.ones((2, RES, RES)), "sol": np.ones((2, RES, RES))})
    before = (wrong / generated[0].name).read_bytes()
    with pytest.raises(ValueError, match="Refusing to overwrite"):
        make(wrong)
    assert (wrong / generated[0].name).read_bytes() == before


def test_finished_file_of_another_seed_is_refused(generated, tmp_path):
    for path in generated:  # a finished seed-0 pair, with the settings it was made with beside it
        for source in (path, path.with_name(path.name + ".json")):
            (tmp_path / source.name).write_bytes(source.read_bytes())
    assert (tmp_path / (generated[0].name + ".json")).exists()
    with pytest.raises(ValueError, match="generated with other settings .*seed 0 there, 1 now"):
        make(tmp_path, seed=1)
    with pytest.raises(ValueError, match="solver 'spectral' there, 'direct' now"):
        make(tmp_path, solver="direct")
    make(tmp_path)  # the same settings: skipped, accepted


def test_non_finite_values_are_refused_naming_file_field_and_count(tmp_path):
    write_files(tmp_path, r=17, n=6)
    path = tmp_path / darcy.file_name(17, 6, 1)
    data = scipy.io.loadmat(path)
    data["sol"][2, 3, 4] = np.nan
    data["sol"][4, 0, 0] = np.inf
    scipy.io.savemat(path, {"coeff": data["coeff"], "sol": data["sol"]})
    with pytest.raises(ValueError, match=r"smooth1.mat: field 'sol' has 2 non-finite values .* in 2 samples \(the first: 2\)"):
        darcy.load_splits(tmp_path, resolution=17)


def test_matlab_v73_files_read_as_fno_reads_them(tmp_path):
    v5, v73 = tmp_path / "v5", tmp_path / "v73"
    write_files(v5, r=17, n=6)
    v73.mkdir()
    for part in (1, 2):
        data = scipy.io.loadmat(v5 / darcy.file_name(17, 6, part))
        write_v73(v73 / darcy.file_name(17, 6, part), {"coeff": data["coeff"], "sol": data["sol"]})
    with pytest.raises(NotImplementedError):  # what scipy says of a v7.3 file
        scipy.io.loadmat(v73 / darcy.file_name(17, 6, 1))
    for a, b in zip(darcy.load_splits(v5, resolution=9)[:3], darcy.load_splits(v73, resolution=9)[:3]):
        for x, y in zip(a.tensors, b.tensors):
            torch.testing.assert_close(x, y, rtol=0, atol=0)


def test_a_text_file_named_mat_is_one_clear_error(tmp_path):
    write_files(tmp_path, r=17, n=6)
    (tmp_path / darcy.file_name(17, 6, 2)).write_text("coeff,sol\n1,2\n")
    with pytest.raises(ValueError, match="smooth2.mat: not a MAT file"):
        darcy.load_splits(tmp_path, resolution=17)


def test_resolution_must_divide():
    with pytest.raises(ValueError, match="421 - 1 must be a multiple"):
        darcy.generate("unused", n=1, resolution=100)


# ----------------------------------------------------------------------------------------------
# NB360 splits
# ----------------------------------------------------------------------------------------------


def write_files(root: Path, r: int, n: int, seed: int = 0, coeff_key: str = "coeff") -> None:
    """Files in the published layout, with random contents (only the loader is under test)."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for part in (1, 2):
        coeff = np.where(rng.standard_normal((n, r, r)) >= 0, 12.0, 3.0)
        sol = rng.random((n, r, r))
        scipy.io.savemat(root / darcy.file_name(r, n, part), {coeff_key: coeff, "sol": sol})


def test_load_splits_shapes_and_normalisation(tmp_path):
    write_files(tmp_path, r=33, n=20)
    train, val, test, y_normalizer = darcy.load_splits(tmp_path, resolution=17)
    assert [len(d) for d in (train, val, test)] == [18, 2, 20]
    x, y = train.tensors
    assert x.shape == (18, 3, 17, 17) and y.shape == (18, 1, 17, 17)
    assert x.dtype == torch.float32 and y.dtype == torch.float32
    line = torch.linspace(0, 1, 17)
    torch.testing.assert_close(x[0, 1], line.expand(17, 17))  # x-grid varies along the last axis
    torch.testing.assert_close(x[0, 2], line[:, None].expand(17, 17))
    assert x[:, 1:].min() == 0 and x[:, 1:].max() == 1
    assert x[:, 0].mean(0).abs().max() < 1e-5  # fitted on the training split
    assert y.mean(0).abs().max() < 1e-5
    raw = scipy.io.loadmat(tmp_path / darcy.file_name(33, 20, 1))["sol"][:18, ::2, ::2]
    torch.testing.assert_close(y_normalizer.decode(y)[:, 0], torch.from_numpy(raw).float(), rtol=1e-5, atol=1e-6)
    raw_test = scipy.io.loadmat(tmp_path / darcy.file_name(33, 20, 2))["sol"][:, ::2, ::2]
    decoded_test = y_normalizer.decode(test.tensors[1])[:, 0]
    torch.testing.assert_close(decoded_test, torch.from_numpy(raw_test).float(), rtol=1e-5, atol=1e-6)
    assert {name for name, _ in y_normalizer.named_buffers()} == {"mean", "std"}


def test_load_task_darcyflow(tmp_path):
    from nb360.data import load_task

    write_files(tmp_path, r=33, n=10)
    task = load_task("darcyflow", data_root=tmp_path, resolution=17)
    assert task.spec.in_shape == (17, 17) and task.spec.in_channels == 3
    assert [len(task.train), len(task.val), len(task.test)] == [9, 1, 10]
    x, y = task.test.tensors
    assert float(task.metric(y, y)) == 0.0
    assert isinstance(task.loss.normalizer, darcy.UnitGaussianNormalizer)  # measured in physical units


def test_split_sizes():
    assert darcy.split_sizes(1024, 1024) == (900, 100, 100)
    assert darcy.split_sizes(10, 4) == (9, 1, 4)
    assert darcy.split_sizes(300, 300, test_size=300) == (270, 30, 300)
    with pytest.raises(ValueError, match="at least 3"):
        darcy.split_sizes(2, 2)


def test_test_size_takes_more_of_smooth2(tmp_path):
    from nb360.data import load_task

    write_files(tmp_path, r=17, n=12)
    default = load_task("darcyflow", data_root=tmp_path, resolution=17)
    larger = load_task("darcyflow", data_root=tmp_path, resolution=17, test_size=12)
    smaller = load_task("darcyflow", data_root=tmp_path, resolution=17, test_size=5)
    assert [len(t.test) for t in (default, larger, smaller)] == [12, 12, 5]
    torch.testing.assert_close(smaller.test.tensors[0], larger.test.tensors[0][:5])  # a prefix of the same file
    with pytest.raises(ValueError, match="test_size=13 asks more samples than the file's 12"):
        load_task("darcyflow", data_root=tmp_path, resolution=17, test_size=13)


def test_prefers_published_files_then_most_samples(tmp_path):
    write_files(tmp_path, r=17, n=10)
    write_files(tmp_path, r=33, n=12)
    assert len(darcy.load_splits(tmp_path, resolution=17)[0]) == 11  # r33_N12: more samples
    for part in (1, 2):
        (tmp_path / darcy.file_name(421, 1024, part)).touch()
    assert darcy._find_pair(tmp_path, 85)[0].name == "piececonst_r421_N1024_smooth1.mat"
    assert darcy._find_pair(tmp_path, 17)[0].name == "piececonst_r33_N12_smooth1.mat"  # 421 cannot give 17


def test_missing_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        darcy.load_splits(tmp_path)
    message = str(error.value)
    assert "piececonst_r421_N1024_smooth1.mat" in message and "piececonst_r421_N1024_smooth2.mat" in message
    assert str(tmp_path) in message and "https://pde-xd.s3.amazonaws.com/" in message
    assert "nb360 data generate darcyflow" in message

    write_files(tmp_path, r=17, n=5)
    (tmp_path / darcy.file_name(17, 5, 2)).unlink()
    with pytest.raises(FileNotFoundError, match="piececonst_r17_N5_smooth2.mat is missing"):
        darcy.load_splits(tmp_path, resolution=17)


def test_bad_files_are_named(tmp_path):
    write_files(tmp_path / "key", r=17, n=5, coeff_key="a")
    with pytest.raises(ValueError, match=r"smooth1\.mat: field 'coeff' is missing; found fields \['a', 'sol'\]"):
        darcy.load_splits(tmp_path / "key", resolution=17)

    root = tmp_path / "shape"
    write_files(root, r=17, n=5)
    scipy.io.savemat(root / darcy.file_name(17, 5, 1), {"coeff": np.ones((5, 17, 16)), "sol": np.ones((5, 17, 17))})
    with pytest.raises(ValueError, match=r"field 'coeff' has shape \(5, 17, 16\), expected \(5, 17, 17\)"):
        darcy.load_splits(root, resolution=17)

    root = tmp_path / "dtype"
    write_files(root, r=17, n=5)
    integers = {"coeff": np.ones((5, 17, 17), np.int32), "sol": np.ones((5, 17, 17))}
    scipy.io.savemat(root / darcy.file_name(17, 5, 2), integers)
    with pytest.raises(ValueError, match="field 'coeff' has dtype int32, expected float64"):
        darcy.load_splits(root, resolution=17)
