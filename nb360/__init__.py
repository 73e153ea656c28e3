"""nb360: neural architecture search on diverse tasks.

The public names below are imported on first use, so that `import nb360` stays light (no torch)
for code that only queries tables.
"""

from nb360.lazy import lazy_exports

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
__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
