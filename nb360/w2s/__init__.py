"""Weak-to-strong generalization on nb360 tasks: a weak teacher labels data, a strong student (an
architecture a search found) learns from those labels, and the report gives the performance gap
recovered; overlap detection and source selection from the data-centric view. See docs/w2s.md.

Names are resolved on first use: the detection and selection side needs only NumPy and ruptures,
the training side imports torch.
"""

from importlib import import_module

_EXPORTS = {
    "pgr": "nb360.w2s.gap",
    "Detection": "nb360.w2s.detect",
    "detect_overlap": "nb360.w2s.detect",
    "select_sources": "nb360.w2s.select",
    "Net": "nb360.w2s.protocol",
    "Report": "nb360.w2s.protocol",
    "run_w2s": "nb360.w2s.protocol",
    "search_student": "nb360.w2s.search",
    "run_sources": "nb360.w2s.sources",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'nb360.w2s' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
