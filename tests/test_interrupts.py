"""SIGTERM as Ctrl-C, and a stop that Python swallowed still stops the next step."""

from __future__ import annotations

import os
import signal

import pytest

from nb360.interrupts import raise_if_interrupted, sigterm_as_interrupt


@pytest.fixture(params=["default", "ignored"])
def sigint(request):
    """SIGINT as a terminal's foreground process has it, and as a script's background job does
    (ignored); the tests must not depend on how pytest itself was started."""
    handler = signal.default_int_handler if request.param == "default" else signal.SIG_IGN
    previous = signal.signal(signal.SIGINT, handler)
    yield handler
    signal.signal(signal.SIGINT, previous)


def receive(signum: int) -> None:
    os.kill(os.getpid(), signum)
    signal.sigtimedwait([], 0)  # a point where the handler runs


def test_sigterm_raises_keyboard_interrupt_within_the_block_only(sigint):
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt):
        with sigterm_as_interrupt():
            receive(signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) is before
    assert signal.getsignal(signal.SIGINT) is sigint


class SignalledInDel:
    """Receives the signal inside `__del__`, where Python prints an exception and drops it."""

    def __init__(self, signum: int):
        self.signum = signum

    def __del__(self):
        receive(self.signum)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_stop_swallowed_by_a_destructor_is_raised_at_the_next_step(sigint):
    stops = [signal.SIGTERM] + ([signal.SIGINT] if sigint is signal.default_int_handler else [])
    for signum in stops:
        with sigterm_as_interrupt():
            raise_if_interrupted()  # nothing received yet: a new block starts clean
            SignalledInDel(signum)  # collected at once: the KeyboardInterrupt raised in it goes nowhere
            with pytest.raises(KeyboardInterrupt):
                raise_if_interrupted()


@pytest.mark.parametrize("sigint", ["ignored"], indirect=True)
def test_an_ignored_sigint_stays_ignored(sigint):
    with sigterm_as_interrupt():
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        receive(signal.SIGINT)
        raise_if_interrupted()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_stop_is_kept_by_nested_blocks_and_forgotten_after_the_outermost(sigint):
    with sigterm_as_interrupt():
        with sigterm_as_interrupt():
            SignalledInDel(signal.SIGTERM)
        with sigterm_as_interrupt():  # the command's block is still open: the stop still holds
            with pytest.raises(KeyboardInterrupt):
                raise_if_interrupted()
    raise_if_interrupted()  # outside every block nothing is pending
