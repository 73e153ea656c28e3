"""`nb360 data generate`: stopped by a scheduler it keeps its samples and resumes; a finished file
made with other settings is refused, not returned."""

import sys

import numpy as np
import scipy.io

from nb360.data import darcy

GENERATE = ["data", "generate", "darcyflow", "--resolution", "9", "--solver-resolution", "129"]


def test_sigterm_keeps_the_finished_samples_and_a_rerun_resumes(cli, stop_after, tmp_path):
    command = [*GENERATE, "--n", "400", "--data-root", str(tmp_path)]
    run, stderr = stop_after([sys.executable, "-m", "nb360.cli", *command], total=400, done=5)
    assert run.returncode == 2
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("nb360 data generate: interrupted; the finished samples are kept in "), last
    assert "piececonst_r9_N400_smooth1.mat.partial.npz" in last and "rerun the same command" in last

    resumed = cli(*command)
    assert resumed.returncode == 0, resumed.stderr
    assert not list(tmp_path.glob("*.partial.npz"))
    reference = darcy.generate(tmp_path / "ref", n=400, resolution=9, solver_resolution=129, progress=False)
    for path in reference:  # the same arrays as an uninterrupted run (the MAT header holds a time stamp)
        resumed_data, reference_data = scipy.io.loadmat(tmp_path / path.name), scipy.io.loadmat(path)
        for key in ("coeff", "sol"):
            np.testing.assert_array_equal(resumed_data[key], reference_data[key])


def test_a_finished_file_of_another_seed_is_refused(cli, tmp_path):
    assert cli(*GENERATE, "--n", "4", "--data-root", str(tmp_path)).returncode == 0
    files = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    other = cli(*GENERATE, "--n", "4", "--seed", "1", "--data-root", str(tmp_path))
    assert other.returncode == 2 and len(other.stderr.strip().splitlines()) == 1
    assert "generated with other settings (seed 0 there, 1 now)" in other.stderr
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == files
