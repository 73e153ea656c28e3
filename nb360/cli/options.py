"""Every flag of the `nb360` commands, defined once: a flag means the same thing in every command
that takes it, and its help states its default.

A command adds the flags it takes with `add(parser, "seed", "seeds", "out", ...)`; a flag whose
default differs by command (the number of seeds a search runs, say) is given it there, and its help
shows that command's default.
"""

from __future__ import annotations

import argparse
from typing import Callable

EXIT_USAGE = 2


class HelpFormatter(argparse.HelpFormatter):
    """Appends "(default: X)" to every option whose help does not already say its default, so that
    `--help` lists every default."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if ("default" in text or action.required or not action.option_strings
                or default is None or default is False or default == argparse.SUPPRESS):
            return text
        default = ",".join(map(str, default)) if isinstance(default, list) else default
        return f"{text} (default: {str(default).replace('%', '%%')})".strip()


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (argparse prints the whole usage block by default) and the
    defaults in the help."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):  # noqa: D102 - argparse API
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def subparsers(parser: argparse.ArgumentParser, dest: str, metavar: str = "ACTION"):
    sub = parser.add_subparsers(dest=dest, metavar=metavar, parser_class=Parser)
    sub.required = True
    return sub


# ---- value types ------------------------------------------------------------------------------
def int_at_least(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {value}")
        return value

    return parse


positive, non_negative = int_at_least(1), int_at_least(0)


def positive_float(text: str) -> float:
    value = _number(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value}")
    return value


def non_negative_float(text: str) -> float:
    value = _number(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {value}")
    return value


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def seed_count(text: str) -> int:
    """--seeds N: how many seeds, always (seeds S..S+N-1 with --seed S)."""
    if "," in text:
        seeds = text.split(",")
        raise argparse.ArgumentTypeError(
            f"--seeds counts seeds: N means seeds S..S+N-1 with --seed S (default 0); for seeds {text} give "
            f"--seed {seeds[0].strip()} --seeds {len(seeds)}" if _consecutive(seeds) else
            f"--seeds counts seeds (N: seeds S..S+N-1 with --seed S); {text!r} is not a run of consecutive seeds")
    return positive(text)


def _consecutive(texts: list[str]) -> bool:
    try:
        values = [int(t) for t in texts]
    except ValueError:
        return False
    return values == list(range(values[0], values[0] + len(values))) and values[0] >= 0


def float_list(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers such as 0,0.1,0.2, got {text!r}") from None
    if not values or not all(0 <= v <= 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected fractions in [0, 1], got {text!r}")
    return values


def name_list(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"expected comma-separated names or paths, got {text!r}")
    return names


def choice_list(known: Callable[[], list[str]], what: str) -> Callable[[str], list[str]]:
    """Comma-separated distinct names among `known()` (called when parsing: the lists live in
    modules that are slow to import)."""

    def parse(text: str) -> list[str]:
        names, allowed = [n.strip() for n in text.split(",") if n.strip()], known()
        unknown = [n for n in names if n not in allowed]
        if not names or unknown or len(set(names)) != len(names):
            raise argparse.ArgumentTypeError(f"expected distinct {what} among {', '.join(allowed)}, got {text!r}")
        return names

    return parse


# Ray Tune's own searchers (nb360.search.ray_tune.TUNE_SEARCHERS), named here because importing
# Ray Tune takes seconds
TUNE_SEARCHERS = ("optuna", "hyperopt")


def searcher_names() -> list[str]:
    from nb360.search import SEARCHERS

    return list(SEARCHERS)


def oneshot_names() -> list[str]:
    from nb360.search.oneshot import METHODS

    return list(METHODS)


def proxy_names() -> list[str]:
    from nb360.proxy_names import PROXIES

    return list(PROXIES)


# ---- the flags --------------------------------------------------------------------------------
LR_HELP = "learning rate (default: the task's, NB201's 0.1 unless its card names NAS-Bench-360's own, as psicov and cosmic do)"
RAY_ADDRESS_HELP = "Ray cluster address ('auto' for a running cluster; default: start a local one)"

# name -> (flags, keyword arguments of add_argument); `default` may be overridden per command
FLAGS: dict[str, tuple[tuple[str, ...], dict]] = {
    "data_root": (("--data-root",), dict(default=None, help="the folder of task files (default: $NB360_DATA, else ~/.nb360/data)")),
    "task": (("--task",), dict(default="darcyflow", help="task name (`nb360 tasks` lists them)")),
    "table": (("--table",), dict(help="a shipped table's name (precomputed/MANIFEST.toml lists them) or the path of an .h5 table")),
    "seed": (("--seed",), dict(type=non_negative, default=0, help="the first seed")),
    "seeds": (("--seeds",), dict(type=seed_count, default=1, help="how many seeds: S..S+N-1 with --seed S")),
    "epochs": (("--epochs",), dict(type=positive, help="training epochs")),
    "C": (("--C",), dict(type=positive, default=16, help="channels of the network's first stage")),
    "N": (("--N",), dict(type=positive, default=5, help="cells per stage")),
    "batch_size": (("--batch-size",), dict(type=positive, default=None, help="training batch size (default: the task's NAS-Bench-360 batch size)")),
    "lr": (("--lr",), dict(type=positive_float, default=None, help=LR_HELP)),
    "resolution": (("--resolution",), dict(type=int_at_least(3), default=None,
                                           help="grid size, for tasks that have one (darcyflow; default: the card's 85)")),
    "test_size": (("--test-size",), dict(type=positive, default=None,
                                         help="test samples, for tasks that take it (darcyflow: taken from smooth2; "
                                              "default: NAS-Bench-360's 100)")),
    "constraint": (("--constraint",), dict(action="append", default=None, metavar="COLUMN<=BOUND",
                                           help="only cells within it, e.g. 'flops<=2e7' (columns: errors, "
                                                "train_seconds, params, flops, latency_ms); repeatable (default: "
                                                "none)")),
    "gpus_per_run": (("--gpus-per-run",), dict(type=non_negative_float, default=None,
                                               help="GPUs each run takes on Ray; a fraction lets runs share a GPU "
                                                    "(0.25: four runs per GPU; default: 1 where CUDA is available, "
                                                    "else 0)")),
    "test_every": (("--test-every",), dict(type=positive, default=1,
                                           help="score the test split every K epochs and after the last (the others "
                                                "store NaN; validation is scored every epoch)")),
    "archs": (("--archs",), dict(default="all", help="all, or a file of official indices / NB201 strings, one per line "
                                                     "(a listed cell brings its whole iso class)")),
    "classes": (("--classes",), dict(type=positive, default=None,
                                     help="instead of --archs: N iso classes, the first N of a fixed random permutation "
                                          "(a larger N extends a smaller one; default: not used)")),
    "budget": (("--budget",), dict(type=positive, help="architectures evaluated per search (table queries, or trainings)")),
    "address": (("--address",), dict(default=None, help=RAY_ADDRESS_HELP)),
    "num_cpus": (("--num-cpus",), dict(type=positive, default=None, help="CPUs of the local Ray cluster (default: all)")),
    "threads": (("--threads",), dict(type=positive, default=1, help="torch CPU threads")),
    "overwrite": (("--overwrite",), dict(action="store_true", help="replace what is there instead of resuming or refusing")),
    "out": (("--out",), dict(help="output folder")),
}


def add(parser: argparse.ArgumentParser | argparse._ArgumentGroup, *names: str, **overrides: dict) -> None:
    """Add the named flags; `overrides[name]` changes their add_argument keywords (a default, a help
    line, required) for this command."""
    for name in names:
        flags, kwargs = FLAGS[name]
        parser.add_argument(*flags, **{**kwargs, **overrides.get(name, {})})


def constraints(texts: list[str] | None) -> dict[str, float]:
    """--constraint values as {column: upper bound}."""
    from nb360.table.pareto import parse_constraint

    return dict(parse_constraint(text) for text in texts or ())
