"""SIGTERM (a job scheduler, `kill`, a closed terminal's session) stops long work as Ctrl-C does.

Python's default SIGTERM ends the process at once, losing what a command would write on the way
out; raised as KeyboardInterrupt instead, it takes the same path as Ctrl-C: checkpoints are saved,
finished results kept, and the command line reports it in one line.

A signal handler's exception is raised wherever the main thread happens to be, and where that is a
weakref callback or a `__del__` (Ray's object references run both), Python prints it as "Exception
ignored" and carries on: the stop would be lost. So the signal is also remembered, and long loops
call `raise_if_interrupted()` between steps.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager

_received = threading.Event()
_depth = 0  # blocks entered (they nest: a command's, then a build's): the outermost starts and ends clean


def _raise_interrupt(signum, frame):
    _received.set()
    raise KeyboardInterrupt


def raise_if_interrupted() -> None:
    """Raise KeyboardInterrupt if SIGINT or SIGTERM came within `sigterm_as_interrupt` (again, where
    its first raise was swallowed)."""
    if _received.is_set():
        raise KeyboardInterrupt


@contextmanager
def sigterm_as_interrupt():
    """Within the block, SIGTERM raises KeyboardInterrupt as Ctrl-C does, and both are remembered for
    `raise_if_interrupted` (handlers can only be set in the main thread; elsewhere the block runs
    unchanged). A SIGINT that the process ignores (a background job of a script) stays ignored."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    global _depth
    if _depth == 0:
        _received.clear()
    _depth += 1
    previous_term = signal.signal(signal.SIGTERM, _raise_interrupt)
    previous_int = signal.getsignal(signal.SIGINT)
    if previous_int is signal.default_int_handler:
        signal.signal(signal.SIGINT, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous_term)
        signal.signal(signal.SIGINT, previous_int)
        _depth -= 1
        if _depth == 0:
            _received.clear()  # a stop that ended its block must not stop later work outside one
