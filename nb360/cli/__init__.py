"""The `nb360` command line: one module per command group, each with its parser and handlers; the
flags are defined once in `options`, the error path once in `errors`.

Every command reports bad input, a damaged file or an interruption as one line,
`nb360 <command>: error: ...`, with exit code 2 (`nb360 --debug ...` shows the traceback).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from nb360.cli import data, errors, hypotheses, options, search, tables, train, w2s


def build_parser() -> argparse.ArgumentParser:
    parser = options.Parser(prog="nb360", description="Neural architecture search on diverse tasks "
                                                      "(NAS-Bench-360, NB201 cells).")
    parser.add_argument("--debug", action="store_true", help="show tracebacks (also: NB360_DEBUG=1)")
    sub = options.subparsers(parser, "command", metavar="COMMAND")
    for group in (data, train, tables, search, hypotheses, w2s):
        group.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.debug:
        os.environ["NB360_DEBUG"] = "1"
    # the command's name as typed, its action included: "data generate", "table info"
    words = [args.command, *(getattr(args, f"{args.command}_command", None) or "").split()]
    return errors.run(" ".join(words), args.func, args)


if __name__ == "__main__":
    sys.exit(main())
