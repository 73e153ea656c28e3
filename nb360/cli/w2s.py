"""`nb360 w2s`, `nb360 w2s search`, `nb360 w2s sources`, `nb360 w2s synthetic`: weak-to-strong generalization."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Sequence

from nb360.cli import options

# nb360.w2s.sources.DENSITIES, written out so that building the parser imports no torch (a test checks they agree)
SOURCE_DENSITIES = [0.1, 0.5, 0.9, 1.0]
# the densest cell: the default student of `nb360 w2s search`
DEFAULT_STUDENT = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"


def _require(args: argparse.Namespace, names: Sequence[str], hint: str = "") -> None:
    missing = [f"--{name}" for name in names if getattr(args, name) is None]
    if missing:
        raise ValueError(f"{', '.join(missing)} required{hint}")


def _task(args: argparse.Namespace):
    from nb360.data import load_task

    return load_task(args.task, data_root=args.data_root, **({"resolution": args.resolution} if args.resolution else {}))


def _runs(task, teacher, student, args: argparse.Namespace, checkpoints: Path) -> list[dict]:
    """run_w2s for seeds seed..seed+seeds-1, one printed line each; the reports as dicts."""
    from nb360.w2s.protocol import run_w2s

    reports = []
    for seed in range(args.seed, args.seed + args.seeds):
        r = run_w2s(task, teacher, student, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr or task.lr,
                    aux_loss=getattr(args, "aux_loss", False), seed=seed, teacher_size=args.teacher_size,
                    pool_size=args.pool_size, pretrain_epochs=args.pretrain_epochs, checkpoint_dir=checkpoints)
        print(f"seed {seed}: weak {r.weak:.4f}  w2s {r.w2s:.4f}  ceiling {r.ceiling:.4f}  PGR {r.pgr:.3f}  "
              f"({r.seconds:.0f} s)", flush=True)
        reports.append(r.to_dict())
    return reports


def cmd_w2s(args: argparse.Namespace) -> None:
    from nb360.w2s.protocol import Net
    from nb360.w2s.report import write_report
    from nb360.w2s.search import best_from_file

    _require(args, ("teacher", "student", "out"), " (or an action: search, sources, synthetic)")
    extra = {}
    student = args.student
    if student.endswith(".json") or Path(student).is_file():  # a search's best.json
        student, extra["student_from"] = best_from_file(student, args.student_algo)
    teacher = Net.of(args.teacher, args.teacher_C, args.teacher_N)
    student = Net.of(student, args.C, args.N)
    task = _task(args)
    print(f"{task.name}: teacher {teacher.to_dict()}, student {student.to_dict()}, {args.epochs} epochs, "
          f"test {task.metric_name} (lower is better)")
    reports = _runs(task, teacher, student, args, Path(args.out) / "checkpoints")
    paths = write_report(args.out, reports, extra)
    s = json.loads(paths["json"].read_text())["summary"]
    print("mean ± 95% CI: " + "  ".join(f"{k} {v['mean']:.4f} ± {v['ci95']:.4f}" for k, v in s.items()))
    for path in paths.values():
        print(path)


def cmd_search(args: argparse.Namespace) -> None:
    from nb360.w2s.protocol import Net
    from nb360.w2s.report import write_report
    from nb360.w2s.search import search_student

    _require(args, ("teacher", "out"))
    task = _task(args)
    teacher = Net.of(args.teacher, args.teacher_C, args.teacher_N)
    out, checkpoints = Path(args.out), Path(args.out) / "checkpoints"
    found = search_student(task, teacher, args.algo, args.budget, C=args.C, N=args.N, epochs=args.epochs,
                           batch_size=args.batch_size, lr=args.lr or task.lr, seed=args.seed, checkpoint_dir=checkpoints,
                           backend=args.backend, address=args.address, num_cpus=args.num_cpus,
                           teacher_size=args.teacher_size, pool_size=args.pool_size)
    print(f"{args.algo}, {args.budget} trainings on the teacher's labels: student {found.best.arch} "
          f"(index {found.best.arch.index}), disagreement with the teacher {found.best_score:.4f} on held-out B")
    students = {"found": found.best, "default": Net.of(args.default_student, args.C, args.N)}
    if args.table is not None:
        from nb360.table.benchmark import Benchmark

        b = Benchmark.load(args.table)
        if b.task != task.name:
            raise ValueError(f"--table {args.table} is a table of {b.task!r}, not of {task.name!r}")
        students["table_best"] = Net.of(b.best("val_metric")[0], args.C, args.N)
    summary = {"algo": args.algo, "budget": args.budget, "teacher": teacher.to_dict(), "trials": found.trials,
               "students": {}}
    for name, student in students.items():
        print(f"{name} student {student.arch} (index {student.arch.index}):")
        reports = _runs(task, teacher, student, args, checkpoints)
        paths = write_report(out / name, reports, {"role": name})
        summary["students"][name] = {**student.to_dict(), "report": str(paths["json"]),
                                     **json.loads(paths["json"].read_text())["summary"]}
    (out / "search.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"{'student':<11} {'w2s':>8} {'ceiling':>8} {'PGR':>7}")
    for name, s in summary["students"].items():
        print(f"{name:<11} {s['w2s']['mean']:>8.4f} {s['ceiling']['mean']:>8.4f} {s['pgr']['mean']:>7.3f}")
    print(out / "search.json")


def cmd_synthetic(args: argparse.Namespace) -> None:
    from nb360.w2s.report import write_synthetic
    from nb360.w2s.synthetic import density_sweep, source_selection

    sweep = density_sweep(args.densities, args.seeds, n=args.n)
    selection = source_selection(seeds=args.seeds, budget=args.points, batch_size=args.batch_size,
                                 n_per_source=args.n_per_source)
    print(sweep.groupby("density")[["weak_acc", "w2s_acc", "ceiling_acc", "pgr", "overlap_precision",
                                    "overlap_recall"]].mean().to_string(float_format="%.3f"))
    print(selection.groupby("policy", sort=False)[["true_density", "detected_density", "richest_share"]]
          .mean().to_string(float_format="%.3f"))
    for path in write_synthetic(args.out, sweep, selection).values():
        print(path)


def cmd_sources(args: argparse.Namespace) -> None:
    import pandas as pd

    from nb360.w2s.protocol import Net
    from nb360.w2s.report import write_sources
    from nb360.w2s.sources import run_sources

    _require(args, ("teacher", "out"))
    task = _task(args)
    teacher, student = Net.of(args.teacher, args.teacher_C, args.teacher_N), Net.of(args.student, args.C, args.N)
    rows, selection = [], []
    for seed in range(args.seed, args.seed + args.seeds):
        found = run_sources(task, teacher, student, densities=args.densities, factor=args.block,
                            channels=args.pattern_channels, epochs=args.epochs, seed=seed,
                            teacher_size=args.teacher_size, pool_size=args.pool_size, batch_size=args.batch_size,
                            lr=args.lr or task.lr, checkpoint_dir=Path(args.out) / "checkpoints")
        for r in found["sources"]:
            print(f"seed {seed}, overlap density {r['density']:g}: weak {r['weak']:.4f}  w2s {r['w2s']:.4f}  "
                  f"ceiling {r['ceiling']:.4f}  PGR {r['pgr']:.3f}"
                  + (f"  detected overlap {r['detected_overlap_student']:.2f}" if "detected_overlap_student" in r
                     else ""), flush=True)
        rows += [{"seed": seed, **r} for r in found["sources"]]
        selection += [{"seed": seed, **r} for r in found["selection"]]
    for path in write_sources(args.out, pd.DataFrame(rows), pd.DataFrame(selection)).values():
        print(path)


def _shared(p: argparse.ArgumentParser, pretrain: bool = True, writes: str = "report.json, report.png") -> None:
    """Options of `nb360 w2s`, `nb360 w2s search` and (without pretraining) `nb360 w2s sources`."""
    p.add_argument("--teacher", default=None, help="the weak teacher: NB201 string, official index, or wrn (required)")
    p.add_argument("--teacher-C", type=options.positive, default=4, help="teacher's channels of the first stage")
    p.add_argument("--teacher-N", type=options.positive, default=1, help="teacher's cells per stage")
    p.add_argument("--teacher-size", type=options.int_at_least(2), default=None,
                   help="samples of the teacher's labeled set A (default: half of the training split)")
    p.add_argument("--pool-size", type=options.int_at_least(2), default=None,
                   help="samples of the student's weak-labeled pool B, drawn after A (default: the rest of the "
                        "training split)")
    if pretrain:
        p.add_argument("--pretrain-epochs", type=options.non_negative, default=0,
                       help="self-supervised pretraining of the student on the unlabeled inputs of A and B first: "
                            "masked reconstruction (dense tasks) or rotation prediction (2D classification) "
                            "(default: 0, none)")
    options.add(p, "task", "C", "N", "epochs", "batch_size", "lr", "seed", "seeds", "resolution", "data_root", "out",
                C={"help": "student's channels of the first stage"}, N={"help": "student's cells per stage"},
                epochs={"default": 20, "help": "epochs of each training"},
                out={"default": None, "help": f"output folder: {writes}, checkpoints/ to resume (required)"})


def register(sub) -> None:
    p = sub.add_parser("w2s", help="weak-to-strong: weak teacher, student on its labels, ceiling, PGR; "
                                   "actions search (a student from weak labels only), sources, synthetic")
    w2s_sub = p.add_subparsers(dest="w2s_command", metavar="ACTION", parser_class=options.Parser)
    _shared(p)
    p.add_argument("--student", default=None,
                   help="NB201 string, official index, wrn (the task's baseline), or a best.json of `nb360 search` "
                        "(required)")
    p.add_argument("--student-algo", default=None, help="with a best.json: take that algorithm's best (default: any)")
    p.add_argument("--aux-loss", action="store_true", help="add the auxiliary confidence loss (classification)")
    p.set_defaults(func=cmd_w2s)
    s = w2s_sub.add_parser("search", help="search the student on the teacher's labels only; PGR of the found, a "
                                          "default and the table's best student")
    _shared(s)
    # zc-re and zc-ls start from a table's zero-cost proxy column, which a search on weak labels lacks
    algos = sorted(a for a in options.searcher_names() if not a.startswith("zc-"))
    s.add_argument("--algo", choices=algos, default="re", help="search algorithm")
    options.add(s, "budget", "address", "num_cpus", budget={"default": 10, "help": "architectures evaluated: "
                                                                                  "candidate trainings"})
    s.add_argument("--default-student", default=DEFAULT_STUDENT,
                   help="the student to compare with (default: the cell of nor_conv_3x3 on every edge)")
    s.add_argument("--table", default=None,
                   help="a table of the task: its best cell (by validation) is compared too (default: none)")
    s.add_argument("--backend", choices=("inprocess", "ray"), default="inprocess",
                   help="train the candidates in this process, or as Ray Tune trials")
    s.set_defaults(func=cmd_search)
    s = w2s_sub.add_parser("sources", help="sources of the task's own inputs with different overlap density "
                                           "(coarse-only, fine-only, sharp inputs): PGR, detected overlap, "
                                           "source selection (CSV + PNG)")
    _shared(s, pretrain=False, writes="sources.csv, selection.csv, sources.png")
    s.add_argument("--student", default=DEFAULT_STUDENT,
                   help="NB201 string, official index, or wrn (default: the cell of nor_conv_3x3 on every edge)")
    s.add_argument("--densities", type=options.float_list, default=SOURCE_DENSITIES,
                   help="overlap density of each source: the share of sharp inputs, the rest half coarse-only, "
                        "half fine-only")
    s.add_argument("--block", type=options.int_at_least(2), default=2,
                   help="side of the blocks whose means make an input's coarse part (must divide the input's "
                        "height and width)")
    s.add_argument("--pattern-channels", type=options.positive, default=None,
                   help="how many leading input channels carry the patterns (default: all; Darcy Flow: 1, its "
                        "coefficient field, not the coordinate channels)")
    s.set_defaults(func=cmd_sources)
    s = w2s_sub.add_parser("synthetic", help="overlap density experiments on the synthetic problem: PGR, detection, "
                                             "source selection (CSV + PNG each)")
    s.add_argument("--densities", type=options.float_list, default=[0.0, 0.05, 0.1, 0.2, 0.3], help="overlap densities")
    s.add_argument("--n", type=options.int_at_least(8), default=1000, help="training points, halves A + B")
    s.add_argument("--points", type=options.positive, default=2000, help="points bought by source selection")
    s.add_argument("--batch-size", type=options.int_at_least(4), default=50, help="points bought per round")
    s.add_argument("--n-per-source", type=options.positive, default=2500, help="points in each source")
    options.add(s, "seeds", "out", seeds={"default": 5, "help": "how many seeds, 0..N-1"}, out={"required": True})
    s.set_defaults(func=cmd_synthetic)
