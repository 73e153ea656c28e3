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
def one_thread_for_every_module(one_thread):
    """Every w2s module on one thread (measured: a digits run_w2s costs 1.7 s of CPU with one thread,
    20 s with two under load; results depend on the thread count)."""
