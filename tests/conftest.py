import importlib
import subprocess
import sys

import pytest


@pytest.fixture(scope="session")
def cli():
    """Runs the real console entry point in a subprocess, as a user would: `cli("search", "--algo", "rs")`."""

    def run(*args, cwd=None):
        return subprocess.run([sys.executable, "-m", "nb360.cli", *args], capture_output=True, text=True, cwd=cwd)

    return run


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for a module: its networks are tiny, so one thread is fastest, extra threads
    spin on a shared machine, and float sums run in a fixed order (determinism tests compare bits).
    Module scope, so that module-scoped fixtures that train see it too."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def xautodl():
    """The reference NB201 implementation. Its metadata pins numpy<=1.19.5, so it is installed
    without its dependencies (the modules we compare against need only torch)."""
    try:
        return importlib.import_module("xautodl")
    except ImportError:
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "xautodl==1.0.0"], check=True
        )
        importlib.invalidate_caches()
        return importlib.import_module("xautodl")


@pytest.fixture(scope="session")
def reference_net(xautodl):
    """Builds xautodl's NB201 network (TinyNetwork) for an Arch; it returns (features, logits)."""
    from xautodl.models import get_cell_based_tiny_net
    from xautodl.models.cell_searchs.genotypes import Structure

    def build(arch, C=16, N=5, num_classes=10):
        genotype = Structure.str2structure(str(arch))
        return get_cell_based_tiny_net({"name": "infer.tiny", "C": C, "N": N, "genotype": genotype, "num_classes": num_classes})

    return build


@pytest.fixture(scope="session")
def reference_dense_net(xautodl):
    """NAS-Bench-360's Darcy Flow network (its precompute/darcyflow TinyNetwork), rebuilt from the
    reference cell: every reduction turned into a stride-1 cell, channels-last input and a linear
    layer applied at every pixel. Returns (features, logits), both channels-last."""
    import torch
    from xautodl.models.cell_infers.cells import InferCell
    from xautodl.models.cell_searchs.genotypes import Structure

    class NB360DarcyNetwork(torch.nn.Module):
        def __init__(self, C, N, genotype, num_classes):
            super().__init__()
            self.stem = torch.nn.Sequential(torch.nn.Conv2d(3, C, 3, padding=1, bias=False), torch.nn.BatchNorm2d(C))
            layer_channels = [C] * N + [C * 2] + [C * 2] * N + [C * 4] + [C * 4] * N
            cells, c_prev = [], C
            for c_curr in layer_channels:
                cells.append(InferCell(genotype, c_prev, c_curr, 1))
                c_prev = c_curr
            self.cells = torch.nn.ModuleList(cells)
            self.lastact = torch.nn.Sequential(torch.nn.BatchNorm2d(c_prev), torch.nn.ReLU(inplace=True))
            self.classifier = torch.nn.Linear(c_prev, num_classes)

        def forward(self, inputs):
            feature = self.stem(inputs.permute(0, 3, 1, 2).contiguous())
            for cell in self.cells:
                feature = cell(feature)
            out = self.lastact(feature).permute(0, 2, 3, 1).contiguous()
            return out, self.classifier(out)

    def build(arch, C=16, N=5, num_classes=1):
        return NB360DarcyNetwork(C, N, Structure.str2structure(str(arch)), num_classes)

    return build


@pytest.fixture
def stop_after(tmp_path):
    """Runs a command line, waits until its tqdm bar shows at least `done` of `total` units finished
    (the bar may skip counts that finish together), sends SIGTERM and returns the finished process
    and its stderr. For the resume tests of long commands. `timeout` only bounds a hung command: Ray's
    start and the first runs take minutes on a loaded two-core machine."""
    import re
    import signal
    import time

    def run(command: list[str], total: int, done: int = 2, timeout: float = 600) -> tuple[subprocess.Popen, str]:
        log = tmp_path / "stderr.txt"
        with log.open("w") as stderr:
            process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True)
            deadline = time.monotonic() + timeout
            while max(map(int, re.findall(rf"\| *(\d+)/{total} ", log.read_text())), default=0) < done:
                assert process.poll() is None, log.read_text()
                assert time.monotonic() < deadline, f"the command did not finish {done} of {total} in {timeout:.0f} s"
                time.sleep(0.05)
            process.send_signal(signal.SIGTERM)
            process.communicate(timeout=60)
        return process, log.read_text()

    return run


@pytest.fixture(scope="session")
def nats_bench():
    """NATS-Bench's API (pure Python); installed on first use."""
    try:
        return importlib.import_module("nats_bench")
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "nats_bench==1.8"], check=True)
        importlib.invalidate_caches()
        return importlib.import_module("nats_bench")
