"""`nb360 hypotheses`: the benchmark's scientific questions, answered from tables."""

from __future__ import annotations

import argparse

from nb360.cli import options


def cmd_hypotheses(args: argparse.Namespace) -> None:
    from nb360 import hypotheses

    # only the options given reach the questions; each question keeps its own defaults
    given = {key: getattr(args, key) for key in ("top", "seed", "algos", "budget", "seeds", "trials")
             if getattr(args, key) is not None}
    if args.costs is not None:
        given["costs"] = None if args.costs == "none" else args.costs
    if args.name != "all":
        if args.doc is not None:
            raise ValueError("--doc gathers the summaries of every question: use it with `nb360 hypotheses all`")
        report = hypotheses.run(args.name, args.out, tables=args.tables, **given)
        print(report.answer)
        print(report.summary)
        return
    if args.tables is not None:
        raise ValueError("`all` asks each question of its own default tables; give --tables to one question at a time")
    reports, failed = hypotheses.run_all(args.out, doc=args.doc, **given)
    for report in reports:
        print(report.summary)
    if args.doc is not None:
        print(args.doc)
    if failed:
        raise ValueError("not answered: " + "; ".join(f"{name}: {error}" for name, error in failed.items()))


def register(sub) -> None:
    from nb360.hypotheses import DOC_COMMAND, QUESTIONS

    p = sub.add_parser("hypotheses", help="answer the benchmark's questions from tables: CSV, PNG and summary.md each")
    p.add_argument("name", choices=[*QUESTIONS, "all"], help="a question, or all of them (on their default tables)")
    p.add_argument("--tables", type=options.name_list, default=None,
                   help="comma-separated table names or paths (default: the shipped tables the question names)")
    options.add(p, "out", out={"required": True, "help": "output folder (with all: one folder per question inside)"})
    p.add_argument("--doc", default=None, help=f"with all: gather the summaries into this page ({DOC_COMMAND}; default: none)")
    p.add_argument("--top", type=options.positive_float, default=None, help="top fraction of top-k numbers (default: 0.1)")
    options.add(p, "seed", "budget", "seeds",
                seed={"default": None, "help": "locality: seed of its random pairs and walk (default: 0)"},
                budget={"default": None, "help": "search-consistency: queries per search (default: 100)"},
                seeds={"default": None, "help": "search-consistency: how many seeds, 0..N-1 (default: 30)"})
    p.add_argument("--costs", default=None,
                   help="size: cost file, name or path (default: nb201-costs; 'none' leaves it out)")
    p.add_argument("--algo", dest="algos", type=options.choice_list(options.searcher_names, "algorithms"), default=None,
                   help="search-consistency: algorithms (default: rs,re,ls,reinforce,bananas)")
    p.add_argument("--trials", type=options.name_list, default=None,
                   help="search-consistency: one trials.csv (or its folder) per table, read instead of searching "
                        "(default: search)")
    p.set_defaults(func=cmd_hypotheses)
