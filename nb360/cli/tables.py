"""`nb360 query`, `nb360 table info|import|costs`, `nb360 precompute`, `nb360 proxies`: making and
reading tables."""

from __future__ import annotations

import argparse
from pathlib import Path

from nb360.cli import options
from nb360.cli.errors import Interrupted


def arch_selection(args: argparse.Namespace):
    """What `--archs` / `--classes` select, as `nb360.table.build.select_classes` takes it: --archs
    always names cells (all, a file, or comma-separated indices / strings), --classes counts iso classes."""
    if args.classes is not None:
        if args.archs != "all":
            raise ValueError("give --archs (cells) or --classes (a number of iso classes), not both")
        return args.classes
    if args.archs == "all" or Path(args.archs).is_file():
        return args.archs
    if "/" in args.archs or args.archs.endswith(".txt"):
        raise FileNotFoundError(f"--archs {args.archs}: no such file")
    return [a.strip() for a in args.archs.split(",") if a.strip()]


def cmd_query(args: argparse.Namespace) -> None:
    from nb360.table import pareto
    from nb360.table.benchmark import Benchmark

    b = Benchmark.load(args.table)
    if args.arch is None and args.top is None and args.pareto is None:
        raise ValueError("give an architecture (string or official index), --top K or --pareto COSTS")
    if args.arch is not None:
        for key, value in b.query(args.arch, epoch=args.epoch, seed=args.seed).items():
            # curves are stored as float32: 7 significant digits say all there is
            print(f"{key:<16} {value:.7g}" if isinstance(value, float) else f"{key:<16} {value}")
        return
    if args.by not in b.df.columns:
        raise ValueError(f"--by {args.by!r} is not a column; columns: {', '.join(b.df.columns)}")
    constraints = options.constraints(args.constraint)
    within = f" within {', '.join(args.constraint)}" if constraints else ""
    if args.pareto is not None:
        objectives = [args.by, *(c.strip() for c in args.pareto.split(",") if c.strip())]
        front = b.pareto(objectives, constraints)
        print(f"{b.task}: the Pareto front of {', '.join(objectives)} (all lower is better), {len(front)} of "
              f"{int((b.class_rows() >= 0).sum()):,} iso classes{within}")
        print(front[["arch", *objectives, "iso_members"]].to_string())
        return
    df = b.df.assign(iso_members=b.df.groupby("iso_class")["arch"].transform("size"))
    scored = df[df[args.by].notna() & pareto.allowed(df, constraints)]
    ranked = scored.sort_values(args.by, kind="stable")
    if not args.members:  # members of an iso class are one network: one row for the class, its best-ranked member
        ranked = ranked.drop_duplicates("iso_class")
    unit = "archs" if args.members else "iso classes"
    shown = ["arch", "val_metric", "test_metric", "train_seconds", "params", "flops", "iso_members"]
    print(f"{b.task}: top {args.top} of {len(ranked):,} {unit}{within} by {args.by} ({b.metric}, lower is better)")
    print(ranked.head(args.top)[shown].to_string())


def cmd_info(args: argparse.Namespace) -> None:
    from nb360.table.benchmark import Benchmark

    b = Benchmark.load(args.table)
    c = b.completeness()
    rows = [("table", b.path), *((key, b.attrs[key]) for key in ("task", "space", "metric", "metric_direction",
                                                                 "schema_version", "epochs")),
            ("seeds", b.seeds),
            ("protocol", ", ".join(f"{k}={v}" for k, v in sorted(b.protocol.items()))),
            ("provenance", ", ".join(f"{k}={v}" for k, v in sorted(b.provenance.items()))),
            ("build time", f"{b.attrs['build_seconds'] / 3600:.2f} h" if "build_seconds" in b.attrs else "not recorded"),
            ("build jobs", build_jobs(b.builds) if b.builds else "none logged"),
            ("runs", f"{c['done']}/{c['runs']} done, {c['failed']} failed; "
                     f"{c['archs_with_a_run']}/15625 archs have a finished run"),
            ("runs per seed", ", ".join(f"seed {s}: {n}/15625" for s, n in c["done_per_seed"].items())),
            *zip(("seeds per class", "seed agreement", "reliability"), seed_agreement(b)),
            ("proxies", ", ".join(f"{name.removeprefix('proxy_')} {int(b.df[name].notna().sum())}/15625"
                                  for name in b.df.columns if name.startswith("proxy_")) or "none (nb360 proxies --table T)")]
    rows += [("failed", f"arch {index} seed {seed}: {error}") for index, seed, error in b.failures()[:10]]
    for key, value in rows:
        print(f"{key:<17} {value}")


def seed_agreement(b) -> tuple[str, str, str]:
    """How many seeds score each iso class, how well two seeds agree, and how much of the table's
    final test ranking is therefore signal (`compare.seed_reliability`): three lines."""
    import numpy as np

    from nb360.table.compare import RELIABILITY_GOAL, seed_reliability, with_interval

    rows = b.class_rows()
    per_seed = b.at_epoch("test_metric")[rows[rows >= 0]]
    counts = np.bincount(np.isfinite(per_seed).sum(axis=1), minlength=len(b.seeds) + 1)
    per_class = (f"{len(per_seed):,} iso classes scored: "
                 + ", ".join(f"{counts[k]:,} with {k} seed{'s' * (k > 1)}" for k in range(len(b.seeds), 0, -1) if counts[k]))
    r = seed_reliability(per_seed)
    if r is None:
        return per_class, "not measurable: fewer than two seeds with four classes run by both", "not measurable"
    agreement = (f"final test, {r['classes']:,} iso classes with two seeds or more: Spearman between two seeds "
                 f"{with_interval(r['agreement'], r['interval'])}; better half "
                 f"{with_interval(r['better_half_agreement'], r['better_half_interval'])} ({r['better_half_classes']:,} classes)")
    reliability = ("of the score, the mean of a class's seeds (Spearman-Brown from that agreement), all / better "
                   f"half, goal {RELIABILITY_GOAL[0]} / {RELIABILITY_GOAL[1]}: "
                   + "; ".join(f"{k} seed{'s' * (k > 1)} ({n:,} classes) {all_:.3f} / {better:.3f}"
                               for k, (n, all_, better) in r["by_seeds"].items()))
    return per_class, agreement, reliability


def build_jobs(builds: list[dict]) -> str:
    """The build log in a line: jobs, runs and hours, and the distinct hardware they ran on."""
    from nb360.table.benchmark import counted, job_hardware

    machines = "; ".join(dict.fromkeys(job_hardware(job) for job in builds))
    return (f"{len(builds)} ({builds[0]['started']} to {builds[-1]['started']}): "
            f"{counted(sum(job['runs_done'] for job in builds), 'run')} in {sum(job['seconds'] for job in builds) / 3600:.2f} h "
            f"on {machines}")


def cmd_import(args: argparse.Namespace) -> None:
    from nb360.table.nats import import_nats

    print(import_nats(args.file, task=args.task, out=args.out, hp=args.hp, overwrite=args.overwrite))


def cmd_export(args: argparse.Namespace) -> None:
    from nb360.table.nats_export import export_nats

    print(export_nats(args.table, args.out, overwrite=args.overwrite))


def cmd_costs(args: argparse.Namespace) -> None:
    from nb360.table import cost_file

    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()] if args.tasks else None
    print(cost_file.write(args.out, tasks=tasks, C=args.C, N=args.N, overwrite=args.overwrite))


def cmd_precompute(args: argparse.Namespace) -> None:
    from nb360.table.build import precompute

    if args.space != "nb201":
        raise ValueError(f"unknown search space {args.space!r}; expected nb201")
    try:
        summary = precompute(
            task=args.task, out=args.out, epochs=args.epochs, seeds=range(args.seed, args.seed + args.seeds),
            archs=arch_selection(args), C=args.C, N=args.N, batch_size=args.batch_size, lr=args.lr,
            resolution=args.resolution, data_root=args.data_root, address=args.address, num_cpus=args.num_cpus,
            test_size=args.test_size, test_every=args.test_every, num_gpus_per_task=args.gpus_per_run,
        )
    except KeyboardInterrupt:
        raise Interrupted(f"every finished run is kept in {args.out}; rerun the same command to resume") from None
    print(", ".join(f"{k}={v}" for k, v in summary.items()))


def cmd_proxies(args: argparse.Namespace) -> None:
    from nb360.table.proxy_columns import build_proxy_columns

    summary = build_proxy_columns(args.table, names=args.proxies, data_root=args.data_root, batch_size=args.batch_size,
                                  seed=args.seed, archs=arch_selection(args), overwrite=args.overwrite,
                                  threads=args.threads)
    summary["proxies"] = ",".join(summary["proxies"])
    print(", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in summary.items()))


def cmd_latency(args: argparse.Namespace) -> None:
    from nb360.table.latency_column import build_latency_column

    summary = build_latency_column(args.table, repeats=args.repeats, archs=arch_selection(args),
                                   noise_sample=args.noise_sample, overwrite=args.overwrite)
    print(", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in summary.items()))


def register(sub) -> None:
    p = sub.add_parser("query", help="look up an architecture, or the best ones, in a table")
    p.add_argument("table", help=options.FLAGS["table"][1]["help"])
    p.add_argument("arch", nargs="?", default=None, help="NB201 string or official index")
    p.add_argument("--epoch", type=options.positive, default=None, help="1-based epoch (default: the last)")
    options.add(p, "seed", seed={"default": None, "help": "one seed's run (default: the mean over seeds)"})
    p.add_argument("--top", type=options.positive, default=None, help="list the K best iso classes (default: not used)")
    p.add_argument("--by", default="test_metric", help="column that --top sorts by, and --pareto's error")
    p.add_argument("--pareto", default=None, metavar="COSTS",
                   help="list the Pareto front of --by and one or two costs, comma-separated: flops, params, "
                        "latency_ms, train_seconds (one row per iso class; default: not used)")
    options.add(p, "constraint")
    p.add_argument("--members", action="store_true",
                   help="with --top: one row per cell, listing every member of an iso class (default: one per class)")
    p.set_defaults(func=cmd_query)

    p = sub.add_parser("table", help="inspect, import and make tables")
    table_sub = options.subparsers(p, "table_command")
    t = table_sub.add_parser("info", help="attributes, protocol, provenance and completeness of a table")
    t.add_argument("table", help=options.FLAGS["table"][1]["help"])
    t.set_defaults(func=cmd_info)
    t = table_sub.add_parser("import", help="turn a NATS-Bench topology file (NATS-tss-v1_0-*.pickle.pbz2) into a table")
    t.add_argument("file")
    t.add_argument("--hp", default="200", help="training length key in the file (NATS: '12' or '200')")
    options.add(t, "task", "out", "overwrite",
                task={"required": True, "default": None,
                      "help": "dataset inside the file (e.g. darcyflow, ninapro, cifar10, cifar100, ImageNet16-120)"},
                out={"required": True, "help": "the .h5 table to write"})
    t.set_defaults(func=cmd_import)
    t = table_sub.add_parser("export", help="write a table as a NATS-Bench topology file that nats_bench.create loads")
    t.add_argument("table", help="a shipped table's name or an .h5 path")
    t.add_argument("--format", choices=["nats"], default="nats", help="the file format")
    options.add(t, "out", "overwrite",
                out={"required": True, "help": "a .pickle.pbz2 file (nats_bench.create(FILE, 'tss')), or a folder "
                                               "for the fast-mode archive (create(FOLDER, 'tss', fast_mode=True))"},
                overwrite={"help": "replace an existing file or folder"})
    t.set_defaults(func=cmd_export)
    t = table_sub.add_parser("costs", help="params and FLOPs of all 15,625 cells for each task's network (exact, no training)")
    t.add_argument("--tasks", default=None, help="comma-separated task names (default: the ten NAS-Bench-360 tasks)")
    options.add(t, "C", "N", "out", "overwrite", out={"type": Path, "required": True,
                                                       "help": "the cost file to write (e.g. precomputed/nb201-costs.h5)"},
                overwrite={"help": "replace an existing cost file"})
    t.set_defaults(func=cmd_costs)
    t = table_sub.add_parser("latency", help="forward time of the table's network for every iso class on this CPU "
                                              "(batch size 1, one thread), stored as its latency_ms column; resumable")
    t.add_argument("table", help=options.FLAGS["table"][1]["help"])
    t.add_argument("--repeats", type=options.positive, default=10, help="timed forward passes per class (the median)")
    t.add_argument("--noise-sample", type=options.non_negative, default=100,
                   help="classes measured a second time to state the column's noise")
    options.add(t, "archs", "classes", "overwrite", overwrite={"help": "measure the column again from scratch"})
    t.set_defaults(func=cmd_latency)

    p = sub.add_parser("precompute", help="train architectures of the space on a task (on Ray) into a table; resumable")
    p.add_argument("--space", default="nb201", help="search space")
    options.add(p, "task", "epochs", "seed", "seeds", "archs", "classes", "C", "N", "batch_size", "lr", "resolution",
                "test_size", "test_every", "gpus_per_run", "address", "num_cpus", "data_root", "out",
                epochs={"required": True},
                out={"required": True, "help": "the .h5 table (resumed if it exists, given columns for seeds it lacks)"})
    p.set_defaults(func=cmd_precompute)

    p = sub.add_parser("proxies", help="zero-cost proxies of every iso class of a table, stored as its columns; resumable")
    p.add_argument("--proxies", type=options.choice_list(options.proxy_names, "proxies"), default=None,
                   help="comma-separated proxy names (default: all of " + ", ".join(options.proxy_names()) + ")")
    p.add_argument("--batch-size", type=options.int_at_least(2), default=64, help="training samples scored")
    options.add(p, "table", "seed", "archs", "classes", "overwrite", "threads", "data_root",
                table={"required": True}, seed={"help": "seed of the initial weights and of the batch drawn"},
                overwrite={"help": "recompute the columns from scratch"})
    p.set_defaults(func=cmd_proxies)

