"""`nb360 tasks`, `nb360 data generate`, `nb360 data fake`: what data there is, and making it."""

from __future__ import annotations

import argparse
from pathlib import Path

from nb360.cli import options
from nb360.cli.errors import Interrupted


def cmd_tasks(args: argparse.Namespace) -> None:
    from nb360.data import resolve_data_root, task_status

    if args.baselines:
        print_baselines()
        return
    print(f"data root: {resolve_data_root(args.data_root)}")
    rows = task_status(args.data_root)
    print(f"{'task':<12} {'kind':<11} {'input':<14} {'output':<8} {'metric':<27} files")
    for r in rows:
        name = r["name"] if r["nb360"] else r["name"] + "*"
        print(f"{name:<12} {r['kind']:<11} {r['input']:<14} {r['output']:<8} {r['metric']:<27} {r['files']}")
    if not all(r["nb360"] for r in rows):
        print("* not a NAS-Bench-360 task (an extra task with real data available offline)")


def print_baselines() -> None:
    """The [baselines] tables of the task cards: one row per task, one column per method."""
    from nb360 import cards

    rows = {}
    for name in cards.names("tasks"):
        card = cards.load("tasks", name)
        results = {method: value for method, value in card.get("baselines", {}).items() if isinstance(value, list)}
        if results:
            rows[name] = (card["metric"], results)
    methods = list(dict.fromkeys(method for _, results in rows.values() for method in results))
    print("NAS-Bench-360 baselines (arXiv:2110.05668; README images/baselines.png): test error, mean±std over "
          "three seeds, in each task's metric (lower is better)")
    print(f"{'task':<11} {'metric':<27}" + "".join(f" {m:>15}" for m in methods))
    for name, (metric, results) in rows.items():
        cells = [f"{results[m][0]:g}±{results[m][1]:g}" if m in results else "-" for m in methods]
        print(f"{name:<11} {metric:<27}" + "".join(f" {c:>15}" for c in cells))


def cmd_fake(args: argparse.Namespace) -> None:
    import importlib

    from nb360 import cards

    names = [n for n in cards.names("tasks") if cards.load("tasks", n).get("benchmark") != "extra"] \
        if args.task == "all" else [args.task]
    out = Path(args.data_root)
    writers = []
    for name in names:  # check every task before writing any
        card = cards.load("tasks", name)
        existing = sorted(str(p.relative_to(out)) for pattern in card["files"] for p in out.glob(pattern))
        if existing and not args.overwrite:
            raise FileExistsError(f"{out}: {name} files are already there ({', '.join(existing)}); fake data would "
                                  "replace them. Choose another --data-root, or pass --overwrite")
        writer = getattr(importlib.import_module(f"nb360.data.{card['loader']}"), "write_fake", None)
        if writer is None:
            raise ValueError(f"task {name!r} has no fake-data writer (its loader nb360.data.{card['loader']} reads "
                             "data that needs none)")
        writers.append(writer)
    for writer in writers:
        paths = writer(out, **({"n": args.n} if args.n else {}), seed=args.seed)
        for path in [paths] if isinstance(paths, (str, Path)) else paths:
            print(path)


def cmd_generate(args: argparse.Namespace) -> None:
    from nb360.data import darcy, resolve_data_root

    out = resolve_data_root(args.data_root)
    try:
        paths = darcy.generate(out, n=args.n, resolution=args.resolution, solver_resolution=args.solver_resolution,
                               seed=args.seed, workers=args.workers, solver=args.solver, grid=args.grid)
    except KeyboardInterrupt:
        kept = sorted(p.name for p in out.glob("*.partial.npz"))
        raise Interrupted(f"the finished samples are kept in {out} ({', '.join(kept) or 'no checkpoint yet'}); "
                          "rerun the same command to resume") from None
    for p in paths:
        print(p)


def cmd_generate_burgers(args: argparse.Namespace) -> None:
    from nb360.data import burgers, resolve_data_root

    try:
        path = burgers.generate(resolve_data_root(args.data_root), n=args.n, resolution=args.resolution,
                                solver_resolution=args.solver_resolution, seed=args.seed)
    except KeyboardInterrupt:
        raise Interrupted("nothing was written: the file is written whole at the end (minutes at the published "
                          "size); rerun the same command") from None
    print(path)


def register(sub) -> None:
    p = sub.add_parser("tasks", help="the NAS-Bench-360 tasks and whether their files are under the data root")
    p.add_argument("--baselines", action="store_true", help="print the paper's baseline results of each task instead")
    options.add(p, "data_root")
    p.set_defaults(func=cmd_tasks)

    p = sub.add_parser("data", help="make data sets")
    data_sub = options.subparsers(p, "data_command")
    g = data_sub.add_parser("generate", help="generate a task's data from its equations (darcyflow, burgers)")
    tasks = options.subparsers(g, "task", metavar="TASK")
    t = tasks.add_parser("darcyflow", help="Darcy Flow: piececonst_r{R}_N{n}_smooth{1,2}.mat, FNO's layout")
    t.add_argument("--n", type=options.positive, default=1024, help="samples per file (default: 1024, as published)")
    t.add_argument("--resolution", type=options.int_at_least(3), default=85, help="output grid size")
    t.add_argument("--solver-resolution", type=options.int_at_least(3), default=421,
                   help="grid size of the finite-difference solve (default: 421, as published)")
    t.add_argument("--grid", choices=("node", "cell"), default="node",
                   help="node: values at grid nodes, u = 0 on the boundary; cell: FNO's solve_gwf.m convention "
                        "(cell centres, spline-resampled), which the published files follow")
    t.add_argument("--solver", choices=("spectral", "amg", "direct"), default="spectral",
                   help="linear solver (spectral: CG preconditioned by the fast Poisson inverse)")
    t.add_argument("--workers", type=options.positive, default=1, help="processes")
    t.set_defaults(func=cmd_generate)
    t = tasks.add_parser("burgers", help="Burgers (1D, not an NB360 task): burgers_r{R}_N{n}.mat, keys a and u as "
                                         "FNO's burgers_data_R10.mat")
    t.add_argument("--n", type=options.positive, default=2048, help="samples (default: 2048, as published)")
    t.add_argument("--resolution", type=options.int_at_least(2), default=1024,
                   help="output grid size, a divisor of --solver-resolution (default: 1024, what FNO trains on)")
    t.add_argument("--solver-resolution", type=options.int_at_least(2), default=8192,
                   help="grid size of the spectral solve (default: 8192, as published)")
    t.set_defaults(func=cmd_generate_burgers)
    for t in tasks.choices.values():
        options.add(t, "seed", "data_root", data_root={"help": "the folder the files are written to (default: "
                                                              "$NB360_DATA, else ~/.nb360/data)"})
    g = data_sub.add_parser("fake", help="write a small stand-in data set in a task's published file format")
    g.add_argument("task", help="a task name, or all (the ten NAS-Bench-360 tasks)")
    g.add_argument("--n", type=options.positive, default=None,
                   help="size of the training file (samples; records for ecg; default: each task's own, tens)")
    options.add(g, "seed", "overwrite", "data_root",
                data_root={"required": True, "help": "the folder the files are written to (required: stand-ins never go "
                                                     "into the default data root, beside real files)"},
                overwrite={"help": "replace files of the task already in --data-root"})
    g.set_defaults(func=cmd_fake)
