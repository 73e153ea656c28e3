"""Figures as every report writes them: a grid of matplotlib panels saved as a PNG, on the Agg
backend (no display needed), closed whatever happens."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np


@contextmanager
def figure(path: Path, ncols: int = 1, nrows: int = 1, size: tuple[float, float] = (5.0, 3.8), title: str = "",
           width_ratios: Sequence[float] | None = None) -> Iterator[tuple[object, np.ndarray]]:
    """A matplotlib figure of nrows x ncols panels (each `size` inches; with `width_ratios`, the
    figure keeps ncols x size[0] inches and the columns share it in those ratios), saved to `path`
    as PNG on exit. Yields (figure, 2D array of axes). Agg backend: no display needed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows), squeeze=False,
                             constrained_layout=True, width_ratios=width_ratios)
    try:
        yield fig, axes
        if title:
            fig.suptitle(title)
        fig.savefig(path, dpi=110)
    finally:
        plt.close(fig)
