"""Burgers: the solver against an exact solution, the initial conditions' law, the generated file in
FNO's layout, and the splits."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io
import torch
from matlab import write_v73

from nb360.data import burgers


def cole_hopf(x: np.ndarray, t: float, amplitude: float = 0.5, nu: float = burgers.VISCOSITY) -> np.ndarray:
    """An exact periodic solution of u_t + u u_x = nu u_xx: u = -2 nu phi_x / phi, where
    phi = 1 + A exp(-4 pi^2 nu t) cos(2 pi x) solves the heat equation phi_t = nu phi_xx."""
    decay = amplitude * np.exp(-4 * np.pi**2 * nu * t)
    return 4 * np.pi * nu * decay * np.sin(2 * np.pi * x) / (1 + decay * np.cos(2 * np.pi * x))


@pytest.mark.parametrize("nu", [0.1, 0.01])
def test_solver_matches_cole_hopf_solution(nu):
    x = np.arange(256) / 256
    u = burgers.solve(cole_hopf(x, 0.0, nu=nu), viscosity=nu, time=1.0, steps=200)
    exact = cole_hopf(x, 1.0, nu=nu)
    assert np.abs(u - exact).max() / np.abs(exact).max() < 1e-7
    # the nonlinearity matters: the heat equation alone would be far off
    heat = burgers.solve(cole_hopf(x, 0.0, nu=nu) * 1e-6, viscosity=nu, time=1.0, steps=200) * 1e6
    assert np.abs(heat - exact).max() / np.abs(exact).max() > 1e-2


def test_initial_conditions_follow_fno_law():
    """N(0, 625 (-Laplacian + 25)^-2): the cosine and sine parts of mode k have standard deviation
    sqrt(2) 25 / ((2 pi k)^2 + 25); 4,000 draws pin it to about 2%."""
    rng = np.random.default_rng(0)
    s = 64
    fields = np.stack([burgers.gaussian_random_field(s, rng) for _ in range(4000)])
    modes = np.fft.rfft(fields, axis=1) / s * 2  # cos part: real, sin part: -imag
    for k in (1, 2, 5):
        expected = np.sqrt(2) * 25 / ((2 * np.pi * k) ** 2 + 25)
        for part in (modes[:, k].real, -modes[:, k].imag):
            assert part.mean() == pytest.approx(0, abs=0.06 * expected)
            assert part.std() == pytest.approx(expected, rel=0.04)
    assert np.abs(fields.mean(axis=1)).max() < 1e-12  # no constant mode
    # the inverse FFT is the sum over modes that GRF1 writes, the Nyquist mode's cosine included
    cos, sin = np.random.default_rng(1).standard_normal((2, 4)) * np.sqrt(2) * 25 / ((2 * np.pi * np.arange(1, 5)) ** 2 + 25)
    phase = 2 * np.pi * np.outer(np.arange(1, 5), np.arange(8) / 8)
    direct = cos @ np.cos(phase) + sin @ np.sin(phase)
    np.testing.assert_allclose(burgers.gaussian_random_field(8, np.random.default_rng(1)), direct, atol=1e-14)


def test_generated_file_in_fno_layout(tmp_path):
    path = burgers.generate(tmp_path, n=6, resolution=32, solver_resolution=256, progress=False)
    assert path.name == "burgers_r32_N6.mat"
    data = scipy.io.loadmat(path)
    assert {k for k in data if not k.startswith("__")} == {"a", "u"}
    assert data["a"].shape == data["u"].shape == (6, 32) and data["a"].dtype == np.float64
    # sample i is the solve of its own initial condition, subsampled every 8th point
    seed = np.random.SeedSequence(0).spawn(6)[3]
    u0 = burgers.gaussian_random_field(256, np.random.default_rng(seed))
    np.testing.assert_allclose(data["a"][3], u0[::8])
    np.testing.assert_allclose(data["u"][3], burgers.solve(u0[None])[0, ::8], rtol=0, atol=1e-12)
    # the first samples of a longer file are those of a shorter one, whatever the chunking
    longer = burgers.generate(tmp_path / "more", n=9, resolution=32, solver_resolution=256, progress=False, chunk=4)
    np.testing.assert_allclose(scipy.io.loadmat(longer)["u"][:6], data["u"], rtol=0, atol=1e-12)


def test_existing_file_kept_and_other_settings_or_content_refused(tmp_path, capsys):
    path = burgers.generate(tmp_path, n=4, resolution=16, solver_resolution=64, progress=False)
    before = path.read_bytes()
    assert burgers.generate(tmp_path, n=4, resolution=16, solver_resolution=64, progress=False) == path
    assert "skipped" in capsys.readouterr().out and path.read_bytes() == before
    with pytest.raises(ValueError, match=r"generated with other settings \(seed 0 there, 1 now\)"):
        burgers.generate(tmp_path, n=4, resolution=16, solver_resolution=64, seed=1, progress=False)
    with pytest.raises(ValueError, match=r"solver_resolution 64 there, 128 now"):
        burgers.generate(tmp_path, n=4, resolution=16, solver_resolution=128, progress=False)
    assert path.read_bytes() == before
    scipy.io.savemat(path, {"a": np.zeros((3, 16)), "u": np.zeros((3, 16))})
    with pytest.raises(ValueError, match=r"field 'a' has shape \(3, 16\), expected \(4, 16\).*Refusing to overwrite"):
        burgers.generate(tmp_path, n=4, resolution=16, solver_resolution=64, progress=False)


def test_resolution_must_divide_the_solver_grid():
    with pytest.raises(ValueError, match="the resolution must divide 8192"):
        burgers.generate("unused", n=1, resolution=1000)


def test_load_splits_shapes_grid_and_normalisation(tmp_path):
    path = burgers.generate(tmp_path, n=40, resolution=64, solver_resolution=256, progress=False)
    train, val, test, y_normalizer = burgers.load_splits(tmp_path, resolution=32, test_size=10)
    assert [len(d) for d in (train, val, test)] == [27, 3, 10]
    x, y = train.tensors
    assert x.shape == (27, 2, 32) and y.shape == (27, 1, 32) and x.dtype == torch.float32
    torch.testing.assert_close(x[5, 1], torch.linspace(0, 1, 32))
    assert x[:, 0].mean(0).abs().max() < 1e-5 and y.mean(0).abs().max() < 1e-5  # fitted on the training split
    raw = scipy.io.loadmat(path)["u"]
    torch.testing.assert_close(y_normalizer.decode(test.tensors[1])[:, 0], torch.from_numpy(raw[-10:, ::2]).float(),
                               rtol=1e-5, atol=1e-6)  # the test set is the file's last samples, as FNO's


def test_load_task_trains(tmp_path, one_epoch):
    from nb360.data import load_task

    burgers.write_fake(tmp_path)
    task = load_task("burgers", data_root=tmp_path, resolution=32)
    assert task.spec.kind == "dense1d" and task.spec.in_shape == (32,) and task.spec.in_channels == 2
    x, y = task.test.tensors
    assert float(task.metric(y, y)) == 0.0
    assert task.loss.normalizer is not None  # measured in physical units
    one_epoch(task)


def test_published_file_preferred_and_read_in_v73(tmp_path, monkeypatch):
    """The published name wins over a generated file; a v7.3 copy reads as the v5 original."""
    monkeypatch.setattr(burgers, "PUBLISHED_SAMPLES", 8)
    monkeypatch.setattr(burgers, "PUBLISHED_RESOLUTION", 64)
    source = burgers.generate(tmp_path / "v5", n=8, resolution=64, solver_resolution=256, progress=False)
    data = scipy.io.loadmat(source)
    published = tmp_path / "both"
    published.mkdir()
    write_v73(published / burgers.PUBLISHED_NAME, {"a": data["a"], "u": data["u"]})
    burgers.generate(published, n=12, resolution=64, solver_resolution=256, seed=1, progress=False)
    for a, b in zip(burgers.load_splits(tmp_path / "v5", 32, test_size=2)[:3],
                    burgers.load_splits(published, 32, test_size=2)[:3]):
        for x, y in zip(a.tensors, b.tensors):
            torch.testing.assert_close(x, y, rtol=0, atol=0)


def test_missing_and_bad_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="burgers_data_R10.mat.*nb360 data generate burgers"):
        burgers.load_splits(tmp_path, 32)
    burgers.generate(tmp_path, n=8, resolution=48, solver_resolution=96, progress=False)
    with pytest.raises(FileNotFoundError, match="Found burgers_r48_N8.mat, none a multiple of 32 points"):
        burgers.load_splits(tmp_path, 32)
    with pytest.raises(ValueError, match="test_size=5, expected 1 to 4"):
        burgers.load_splits(tmp_path, 24, test_size=5)
    (tmp_path / "burgers_r48_N8.mat").write_text("a,u\n")
    with pytest.raises(ValueError, match="burgers_r48_N8.mat: not a MAT file"):
        burgers.load_splits(tmp_path, 24)
