"""Shared by the weak-to-strong tests: the two real tasks, loaded once, kept tiny."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's digits (real data, no download): 897 training images of 8x8."""
    from nb360.data import load_task

    return load_task("digits")


@pytest.fixture(scope="session")
def darcy(tmp_path_factory):
    """Darcy Flow generated for real by nb360's solver: 40 samples per file on a 15x15 grid."""
    from nb360.data import darcy as darcy_data, load_task

    root = tmp_path_factory.mktemp("darcy")
    darcy_data.generate(root, n=40, resolution=15, solver_resolution=29, progress=False)
    return load_task("darcyflow", root, resolution=15)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Networks here are tiny: one thread is fastest, and on a shared machine extra threads spin
    (measured: a digits run_w2s costs 1.7 s of CPU with one thread, 20 s with two under load).
    Module scope, so that module-scoped runs see it too (results depend on the thread count)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
