"""nb360: neural architecture search on diverse tasks.

The public names below are imported on first use, so that `import nb360` stays light (no torch)
for code that only queries tables.
"""

from importlib import import_module

__version__ = "0.1.0"

_EXPORTS = {
    "Arch": "nb360.spaces.nb201",
    "Benchmark": "nb360.table.benchmark",
    "Spec": "nb360.spaces.network",
    "build": "nb360.spaces.network",
    "costs": "nb360.spaces.costs",
    "Task": "nb360.data.task",
    "load_task": "nb360.data.task",
    "fit": "nb360.train",
    "seed_everything": "nb360.train",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'nb360' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
