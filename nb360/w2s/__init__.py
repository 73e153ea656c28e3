"""Weak-to-strong generalization on nb360 tasks: a weak teacher labels data, a strong student (an
architecture a search found) learns from those labels, and the report gives the performance gap
recovered; overlap detection and source selection from the data-centric view. See docs/w2s.md.

Names are resolved on first use: the detection and selection side needs only NumPy and ruptures,
the training side imports torch.
"""

from nb360.lazy import lazy_exports

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
__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
