"""The `nb360` command line.

Every command reports bad input as one line, `nb360 <command>: error: ...`, with exit code 2.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (argparse prints the whole usage block by default)."""

    def error(self, message: str):  # noqa: D102 - argparse API
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _int_at_least(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {value}")
        return value

    return parse


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value}")
    return value


_positive = _int_at_least(1)
_non_negative = _int_at_least(0)


# ---- commands ------------------------------------------------------------------------------
def _cmd_tasks(args: argparse.Namespace) -> None:
    from nb360.data import resolve_data_root, task_status

    print(f"data root: {resolve_data_root(args.data_root)}")
    rows = task_status(args.data_root)
    print(f"{'task':<12} {'kind':<11} {'input':<14} {'output':<8} {'metric':<22} files")
    for r in rows:
        print(f"{r['name']:<12} {r['kind']:<11} {r['input']:<14} {r['output']:<8} {r['metric']:<22} {r['files']}")


def _cmd_data_generate(args: argparse.Namespace) -> None:
    from nb360.data import darcy, resolve_data_root

    if args.task != "darcyflow":
        raise ValueError(f"only darcyflow is generated from its equations; got {args.task!r}")
    out = Path(args.out) if args.out else resolve_data_root(None)
    paths = darcy.generate(out, n=args.n, resolution=args.resolution, solver_resolution=args.solver_resolution,
                           seed=args.seed, workers=args.workers, solver=args.solver, grid=args.grid)
    for p in paths:
        print(p)


def _cmd_train(args: argparse.Namespace) -> None:
    from nb360.data import load_task
    from nb360.spaces.costs import count_flops, count_params
    from nb360.spaces.nb201 import Arch
    from nb360.spaces.network import build
    from nb360.train import fit, seed_everything

    arch = Arch.parse(args.arch)
    options = {"resolution": args.resolution} if args.resolution else {}
    task = load_task(args.task, data_root=args.data_root, **options)
    seed_everything(args.seed)
    model = build(arch, task.spec, C=args.C, N=args.N)
    batch_size = args.batch_size or task.batch_size
    print(f"{task.name}: {arch} (index {arch.index}), C={args.C} N={args.N}, "
          f"{count_params(model):,} params, {count_flops(model, task.spec.input_shape) / 1e6:.2f} MFLOPs, "
          f"{len(task.train)}/{len(task.val)}/{len(task.test)} train/val/test, batch {batch_size}")
    print(f"{'epoch':>5} {'train_loss':>11} {'train_' + task.metric_name:>18} {'val':>10} {'test':>10} {'seconds':>8}")

    def show(r: dict) -> None:
        print(f"{r['epoch']:>5} {r['train_loss']:>11.5f} {r['train_metric']:>18.5f} {r['val_metric']:>10.5f} "
              f"{r['test_metric']:>10.5f} {r['train_seconds']:>8.1f}", flush=True)

    records = fit(model, task.splits, task.loss, task.metric, epochs=args.epochs, batch_size=batch_size,
                  lr=args.lr, seed=args.seed, callback=show, checkpoint=args.checkpoint)
    config = {"task": task.name, "arch": str(arch), "index": arch.index, "C": args.C, "N": args.N,
              "epochs": args.epochs, "batch_size": batch_size, "lr": args.lr, "seed": args.seed,
              "metric": task.metric_name, "resolution": task.spec.in_shape}
    out = Path(args.out or f"runs/{task.name}-{arch.index}-seed{args.seed}.json")
    _write_records(out, config, records)
    print(f"records: {out} and {out.with_suffix('.csv')}")


def _write_records(out: Path, config: dict, records: list[dict]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"config": config, "records": records}, indent=2))
    with out.with_suffix(".csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(records[0]))
        writer.writeheader()
        writer.writerows(records)


def _cmd_demo(args: argparse.Namespace) -> None:
    from nb360.demo import run_demo

    start = time.perf_counter()
    run_demo(Path(args.out), epochs=args.epochs)
    print(f"demo finished in {time.perf_counter() - start:.0f} s")


def _cmd_query(args: argparse.Namespace) -> None:
    from nb360.table.benchmark import Benchmark

    b = Benchmark.load(args.table)
    if args.arch is None and args.top is None:
        raise ValueError("give an architecture (string or official index) or --top K")
    if args.arch is not None:
        for key, value in b.query(args.arch, epoch=args.epoch, seed=args.seed).items():
            # curves are stored as float32: 7 significant digits say all there is
            print(f"{key:<16} {value:.7g}" if isinstance(value, float) else f"{key:<16} {value}")
        return
    if args.by not in b.df.columns:
        raise ValueError(f"--by {args.by!r} is not a column; columns: {', '.join(b.df.columns)}")
    top = b.df.sort_values(args.by).head(args.top)
    shown = ["arch", "val_metric", "test_metric", "train_seconds", "params", "flops"]
    print(f"{b.task}: top {args.top} of {b.df[args.by].notna().sum()} archs by {args.by} ({b.metric}, lower is better)")
    print(top[shown].to_string())


def _cmd_table_info(args: argparse.Namespace) -> None:
    from nb360.table.benchmark import Benchmark

    b = Benchmark.load(args.table)
    c = b.completeness()
    rows = [("table", b.path), *((key, b.attrs[key]) for key in ("task", "space", "metric", "metric_direction",
                                                                 "schema_version", "epochs")),
            ("seeds", b.seeds),
            ("protocol", ", ".join(f"{k}={v}" for k, v in sorted(b.protocol.items()))),
            ("provenance", ", ".join(f"{k}={v}" for k, v in sorted(b.provenance.items()))),
            ("build time", f"{b.attrs['build_seconds'] / 3600:.2f} h" if "build_seconds" in b.attrs else "not recorded"),
            ("runs", f"{c['done']}/{c['runs']} done, {c['failed']} failed; "
                     f"{c['archs_with_a_run']}/15625 archs have a finished run")]
    rows += [("failed", f"arch {index} seed {seed}: {error}") for index, seed, error in b.failures()[:10]]
    for key, value in rows:
        print(f"{key:<17} {value}")


def _cmd_table_import(args: argparse.Namespace) -> None:
    from nb360.table.nats import import_nats

    path = import_nats(args.file, task=args.task, out=args.out, hp=args.hp, overwrite=args.overwrite)
    print(path)


def _cmd_table_costs(args: argparse.Namespace) -> None:
    from nb360.table import cost_file

    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()] if args.tasks else None
    print(cost_file.write(args.out, tasks=tasks, C=args.C, N=args.N))


def _cmd_precompute(args: argparse.Namespace) -> None:
    from nb360.table.build import precompute

    if args.space != "nb201":
        raise ValueError(f"unknown search space {args.space!r}; expected nb201")
    archs = int(args.archs) if args.archs.isdigit() else args.archs
    summary = precompute(
        task=args.task, out=args.out, epochs=args.epochs, seeds=args.seeds, archs=archs, C=args.C, N=args.N,
        batch_size=args.batch_size, lr=args.lr, resolution=args.resolution, data_root=args.data_root,
        address=args.address, num_cpus=args.num_cpus,
    )
    print(", ".join(f"{k}={v}" for k, v in summary.items()))


def _cmd_search(args: argparse.Namespace) -> None:
    # one function per backend; "table" runs in-process against a precomputed table
    {"table": _search_table}[args.backend](args)


def _search_table(args: argparse.Namespace) -> None:
    from nb360.search.report import write_outputs
    from nb360.search.runner import run_many
    from nb360.table.benchmark import Benchmark

    b = Benchmark.load(args.table)
    queries = args.budget if args.budget is not None or args.time_budget is not None else 100
    start = time.perf_counter()
    trials = run_many(b, args.algo, range(args.seeds), queries=queries, time_budget=args.time_budget, proxy=args.proxy)
    seconds = time.perf_counter() - start
    budget = " and ".join(([f"{queries} queries"] if queries else []) +
                          ([f"{args.time_budget:g} simulated s"] if args.time_budget else []))
    paths = write_outputs(trials, args.out, title=f"{b.task} ({b.path.name}): {budget}, {args.seeds} seeds")
    final = trials.groupby(["algo", "seed"], sort=False).last().groupby("algo", sort=False)
    print(f"{b.task}: {len(trials):,} queries in {seconds:.1f} s; "
          f"final test regret over {args.seeds} seeds ({b.metric}, lower is better)")
    print(f"{'algo':<10} {'mean':>9} {'median':>9} {'sim hours':>9}")
    for algo, rows in final:
        print(f"{algo:<10} {rows['regret'].mean():>9.5f} {rows['regret'].median():>9.5f} "
              f"{rows['sim_seconds'].mean() / 3600:>9.2f}")
    for path in paths.values():
        print(path)


def _algo_list(text: str) -> list[str]:
    from nb360.search import SEARCHERS

    algos = [a.strip() for a in text.split(",") if a.strip()]
    unknown = [a for a in algos if a not in SEARCHERS]
    if not algos or unknown or len(set(algos)) != len(algos):
        raise argparse.ArgumentTypeError(f"expected distinct names among {', '.join(SEARCHERS)}, got {text!r}")
    return algos


def _seed_list(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers such as 0,1, got {text!r}") from None
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"expected distinct non-negative seeds, got {text!r}")
    return seeds


# ---- parser --------------------------------------------------------------------------------
def _data_root_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-root", default=None,
                   help="where task files live (default: $NB360_DATA, else ~/.nb360/data)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="nb360", description="Neural architecture search on diverse tasks (NAS-Bench-360, NB201 cells).")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("tasks", help="the NAS-Bench-360 tasks and whether their files are under the data root")
    _data_root_option(p)
    p.set_defaults(func=_cmd_tasks)

    p = sub.add_parser("data", help="make data sets")
    data_sub = p.add_subparsers(dest="data_command", metavar="ACTION", parser_class=_Parser)
    data_sub.required = True
    g = data_sub.add_parser("generate", help="generate a task's data from its equations (darcyflow)")
    g.add_argument("task", help="darcyflow")
    g.add_argument("--n", type=_positive, default=1024, help="samples per file (default 1024, as published)")
    g.add_argument("--resolution", type=_int_at_least(3), default=85, help="output grid size (default 85)")
    g.add_argument("--solver-resolution", type=_int_at_least(3), default=421,
                   help="grid size of the finite-difference solve (default 421, as published)")
    g.add_argument("--grid", choices=("node", "cell"), default="node",
                   help="node: values at grid nodes, u = 0 on the boundary (default); cell: FNO's solve_gwf.m "
                        "convention (cell centres, spline-resampled), which the published files follow")
    g.add_argument("--solver", choices=("spectral", "amg", "direct"), default="spectral",
                   help="linear solver (default spectral: CG preconditioned by the fast Poisson inverse)")
    g.add_argument("--seed", type=_non_negative, default=0)
    g.add_argument("--workers", type=_positive, default=1, help="processes (default 1)")
    g.add_argument("--out", default=None, help="output folder (default: the data root)")
    g.set_defaults(func=_cmd_data_generate)

    p = sub.add_parser("train", help="train one NB201 cell on a task and record every epoch")
    p.add_argument("--task", default="darcyflow")
    p.add_argument("--arch", required=True, help="NB201 string or official index")
    p.add_argument("--epochs", type=_positive, default=200)
    p.add_argument("--C", type=_positive, default=16, help="channels of the first stage (default 16)")
    p.add_argument("--N", type=_positive, default=5, help="cells per stage (default 5)")
    p.add_argument("--batch-size", type=_positive, default=None, help="default: the task's NB360 batch size")
    p.add_argument("--lr", type=_positive_float, default=0.1)
    p.add_argument("--seed", type=_non_negative, default=0)
    p.add_argument("--resolution", type=_int_at_least(3), default=None, help="grid size, for tasks that have one (darcyflow)")
    p.add_argument("--checkpoint", default=None, help="save state here each epoch and resume from it")
    p.add_argument("--out", default=None, help="records file (.json, with a .csv beside it)")
    _data_root_option(p)
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("query", help="look up an architecture, or the best ones, in a table")
    p.add_argument("table", help="shipped table name or path to an .h5 table")
    p.add_argument("arch", nargs="?", default=None, help="NB201 string or official index")
    p.add_argument("--epoch", type=_positive, default=None, help="1-based epoch (default: the last)")
    p.add_argument("--seed", type=_non_negative, default=None, help="one seed (default: mean over seeds)")
    p.add_argument("--top", type=_positive, default=None, help="list the K best architectures")
    p.add_argument("--by", default="test_metric", help="column that --top sorts by (default test_metric)")
    p.set_defaults(func=_cmd_query)

    p = sub.add_parser("table", help="inspect and import tables")
    table_sub = p.add_subparsers(dest="table_command", metavar="ACTION", parser_class=_Parser)
    table_sub.required = True
    t = table_sub.add_parser("info", help="attributes, protocol, provenance and completeness of a table")
    t.add_argument("table")
    t.set_defaults(func=_cmd_table_info)
    t = table_sub.add_parser("import", help="turn a NATS-Bench topology file (NATS-tss-v1_0-*.pickle.pbz2) into a table")
    t.add_argument("file")
    t.add_argument("--task", required=True, help="dataset inside the file (e.g. darcyflow, ninapro, cifar10, cifar100, ImageNet16-120)")
    t.add_argument("--out", required=True, help="output .h5 table")
    t.add_argument("--hp", default="200", help="training length key in the file (NATS: '12' or '200'; default 200)")
    t.add_argument("--overwrite", action="store_true")
    t.set_defaults(func=_cmd_table_import)
    t = table_sub.add_parser("costs", help="params and FLOPs of all 15,625 cells for each task's network (exact, no training)")
    t.add_argument("--out", type=Path, required=True, help="the cost file to write (e.g. precomputed/nb201-costs.h5)")
    t.add_argument("--tasks", default=None, help="comma-separated task names (default: the ten NAS-Bench-360 tasks)")
    t.add_argument("--C", type=_positive, default=16)
    t.add_argument("--N", type=_positive, default=5)
    t.set_defaults(func=_cmd_table_costs)

    p = sub.add_parser("precompute", help="train architectures of the space on a task (on Ray) into a table; resumable")
    p.add_argument("--task", default="darcyflow")
    p.add_argument("--space", default="nb201")
    p.add_argument("--epochs", type=_positive, required=True)
    p.add_argument("--seeds", type=_seed_list, default=[0], help="comma-separated, e.g. 0,1 (default 0)")
    p.add_argument("--out", required=True, help="the .h5 table (resumed if it exists)")
    p.add_argument("--archs", default="all", help="all, a number N of iso classes, or a file of indices / arch strings")
    p.add_argument("--C", type=_positive, default=16)
    p.add_argument("--N", type=_positive, default=5)
    p.add_argument("--batch-size", type=_positive, default=None, help="default: the task's NB360 batch size")
    p.add_argument("--lr", type=_positive_float, default=0.1)
    p.add_argument("--resolution", type=_int_at_least(3), default=None, help="grid size, for tasks that have one (darcyflow)")
    p.add_argument("--address", default=None, help="Ray cluster address ('auto' for a running cluster); default: a local one")
    p.add_argument("--num-cpus", type=_positive, default=None, help="CPUs of the local Ray cluster")
    _data_root_option(p)
    p.set_defaults(func=_cmd_precompute)

    p = sub.add_parser("search", help="run search algorithms for several seeds; trials.csv, regret.png, best.json")
    p.add_argument("--algo", type=_algo_list, default=["rs", "re"], help="comma-separated, e.g. rs,re,ls (default rs,re)")
    p.add_argument("--backend", choices=("table",), default="table",
                   help="table: in-process against a precomputed table, in simulated time (default)")
    p.add_argument("--table", default="nb201-darcyflow-mini", help="shipped table name or path to an .h5 table")
    p.add_argument("--budget", type=_positive, default=None,
                   help="queries per search (default 100, or unlimited when --time-budget is given)")
    p.add_argument("--time-budget", type=_positive_float, default=None,
                   help="simulated training seconds per search (stops at whichever budget ends first)")
    p.add_argument("--seeds", type=_positive, default=10, help="number of seeds, 0..N-1 (default 10)")
    p.add_argument("--proxy", default="synflow",
                   help="zero-cost proxy column for zc-re / zc-ls (default synflow; params and flops also work)")
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=_cmd_search)

    p = sub.add_parser("demo", help="generate Darcy Flow, train a few cells, print a table, draw a figure (~1-2 min)")
    p.add_argument("--out", default="nb360-demo", help="output folder (default ./nb360-demo)")
    p.add_argument("--epochs", type=_positive, default=8)
    p.set_defaults(func=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except (ValueError, FileNotFoundError, FileExistsError) as e:
        # Bad input surfaces as these from the library; report it as a usage error, no traceback.
        prog = f"nb360 {args.command}"
        print(f"{prog}: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
