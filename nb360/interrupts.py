"""SIGTERM (a job scheduler, `kill`, a closed terminal's session) stops long work as Ctrl-C does.

Python's default SIGTERM ends the process at once, losing what a command would write on the way
out; raised as KeyboardInterrupt instead, it takes the same path as Ctrl-C: checkpoints are saved,
finished results kept, and the command line reports it in one line.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


@contextmanager
def sigterm_as_interrupt():
    """Within the block, SIGTERM raises KeyboardInterrupt (handlers can only be set in the main
    thread; elsewhere the block runs unchanged)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
