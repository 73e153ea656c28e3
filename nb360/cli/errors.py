"""One error path for every command: what counts as the user's mistake or a damaged file (one line,
exit code 2, no traceback), an interruption (one line saying what was kept), a closed pipe (quiet).

`nb360 --debug COMMAND` or NB360_DEBUG=1 shows the traceback instead."""

from __future__ import annotations

import os
import pickle
import sys
import zipfile

from nb360.cli.options import EXIT_USAGE
from nb360.interrupts import sigterm_as_interrupt


class Interrupted(Exception):
    """Raised by a command stopped by SIGINT or SIGTERM, with what it kept and how to resume."""


# Exceptions that mean bad input or a damaged file, never a bug in nb360: reading a file that is
# not what its name says raises these from h5py (OSError), bz2 (OSError, EOFError), pickle, zipfile, scipy.io.
USER_ERRORS = (ValueError, OSError, EOFError, KeyError, pickle.UnpicklingError, zipfile.BadZipFile)


def debug() -> bool:
    return os.environ.get("NB360_DEBUG", "") not in ("", "0")


def describe(error: BaseException) -> str:
    """One line for an error: its message, prefixed by its kind where the message alone is unclear."""
    text = " ".join(str(error).split()) or type(error).__name__
    if isinstance(error, KeyError):
        return f"missing key {text}"
    if type(error) in (OSError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile) and "error" not in text.lower():
        return f"{type(error).__name__}: {text}"
    return text


def run(command: str, func, args) -> int:
    """Run a command's handler; its exit code."""
    try:
        with sigterm_as_interrupt():
            func(args)
    except BrokenPipeError:
        # the reader went away (`nb360 tasks | head -2`): stop quietly; stdout's flush at exit would
        # raise again, so point it at nothing
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_USAGE
    except (Interrupted, KeyboardInterrupt) as e:
        if debug():
            raise
        print(f"nb360 {command}: interrupted{'; ' + str(e) if str(e) else ''}", file=sys.stderr)
        return EXIT_USAGE
    except USER_ERRORS as e:
        if debug():
            raise
        print(f"nb360 {command}: error: {describe(e)}", file=sys.stderr)
        return EXIT_USAGE
    return 0
