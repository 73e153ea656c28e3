import importlib
import subprocess
import sys

import pytest


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
