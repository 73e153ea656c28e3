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


_LR_HELP = "default: the task's (NB201's 0.1 unless its card names NAS-Bench-360's own, as psicov and cosmic do)"
_positive = _int_at_least(1)
_non_negative = _int_at_least(0)


# ---- commands ------------------------------------------------------------------------------
def _cmd_tasks(args: argparse.Namespace) -> None:
    from nb360.data import resolve_data_root, task_status

    if args.baselines:
        _print_baselines()
        return
    print(f"data root: {resolve_data_root(args.data_root)}")
    rows = task_status(args.data_root)
    print(f"{'task':<12} {'kind':<11} {'input':<14} {'output':<8} {'metric':<27} files")
    for r in rows:
        name = r["name"] if r["nb360"] else r["name"] + "*"
        print(f"{name:<12} {r['kind']:<11} {r['input']:<14} {r['output']:<8} {r['metric']:<27} {r['files']}")
    if not all(r["nb360"] for r in rows):
        print("* not a NAS-Bench-360 task (an extra task with real data available offline)")


def _print_baselines() -> None:
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


def _cmd_data_fake(args: argparse.Namespace) -> None:
    import importlib

    from nb360 import cards

    names = [n for n in cards.names("tasks") if cards.load("tasks", n).get("benchmark") != "extra"] \
        if args.task == "all" else [args.task]
    out = Path(args.out)
    writers = []
    for name in names:  # check every task before writing any
        card = cards.load("tasks", name)
        existing = sorted(str(p.relative_to(out)) for pattern in card["files"] for p in out.glob(pattern))
        if existing and not args.overwrite:
            raise FileExistsError(f"{out}: {name} files are already there ({', '.join(existing)}); fake data would "
                                  "replace them. Choose another --out, or pass --overwrite")
        writer = getattr(importlib.import_module(f"nb360.data.{card['loader']}"), "write_fake", None)
        if writer is None:
            raise ValueError(f"task {name!r} has no fake-data writer (its loader nb360.data.{card['loader']} reads "
                             "data that needs none)")
        writers.append(writer)
    for writer in writers:
        paths = writer(out, **({"n": args.n} if args.n else {}), seed=args.seed)
        for path in [paths] if isinstance(paths, (str, Path)) else paths:
            print(path)


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

    arch = Arch.parse(args.arch) if args.model is None else None
    options = {"resolution": args.resolution} if args.resolution else {}
    task = load_task(args.task, data_root=args.data_root, **options)
    seed_everything(args.seed)
    if arch is None:  # --model wrn: NAS-Bench-360's hand-designed baseline instead of a cell
        from nb360.spaces.wrn import build_wrn

        model = build_wrn(task.spec)
        described, run_name = f"{args.model} ({type(model).__name__}, NAS-Bench-360's baseline network)", args.model
    else:
        model = build(arch, task.spec, C=args.C, N=args.N)
        described, run_name = f"{arch} (index {arch.index}), C={args.C} N={args.N}", str(arch.index)
    batch_size = args.batch_size or task.batch_size
    print(f"{task.name}: {described}, "
          f"{count_params(model):,} params, {count_flops(model, task.spec.input_shape) / 1e6:.2f} MFLOPs, "
          f"{len(task.train)}/{len(task.val)}/{len(task.test)} train/val/test, batch {batch_size}")
    print(f"{'epoch':>5} {'train_loss':>11} {'train_' + task.metric_name:>18} {'val':>10} {'test':>10} {'seconds':>8}")

    def show(r: dict) -> None:
        print(f"{r['epoch']:>5} {r['train_loss']:>11.5f} {r['train_metric']:>18.5f} {r['val_metric']:>10.5f} "
              f"{r['test_metric']:>10.5f} {r['train_seconds']:>8.1f}", flush=True)

    records = fit(model, task.splits, task.loss, task.metric, epochs=args.epochs, batch_size=batch_size,
                  lr=args.lr or task.lr, seed=args.seed, callback=show, checkpoint=args.checkpoint)
    network = {"model": args.model, "arch": None, "index": None, "C": None, "N": None} if arch is None else \
        {"model": "nb201", "arch": str(arch), "index": arch.index, "C": args.C, "N": args.N}
    config = {"task": task.name, **network, "epochs": args.epochs, "batch_size": batch_size, "lr": args.lr or task.lr,
              "seed": args.seed, "metric": task.metric_name, "resolution": task.spec.in_shape}
    out = Path(args.out or f"runs/{task.name}-{run_name}-seed{args.seed}.json")
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
            ("build jobs", _build_jobs(b.builds) if b.builds else "none logged"),
            ("runs", f"{c['done']}/{c['runs']} done, {c['failed']} failed; "
                     f"{c['archs_with_a_run']}/15625 archs have a finished run"),
            ("runs per seed", ", ".join(f"seed {s}: {n}/15625" for s, n in c["done_per_seed"].items())),
            ("proxies", ", ".join(f"{name.removeprefix('proxy_')} {int(b.df[name].notna().sum())}/15625"
                                  for name in b.df.columns if name.startswith("proxy_")) or "none (nb360 proxies --table T)")]
    rows += [("failed", f"arch {index} seed {seed}: {error}") for index, seed, error in b.failures()[:10]]
    for key, value in rows:
        print(f"{key:<17} {value}")


def _build_jobs(builds: list[dict]) -> str:
    """The build log in a line: jobs, runs and hours, and the distinct hardware they ran on."""
    from nb360.table.benchmark import counted, job_hardware

    machines = "; ".join(dict.fromkeys(job_hardware(job) for job in builds))
    return (f"{len(builds)} ({builds[0]['started']} to {builds[-1]['started']}): "
            f"{counted(sum(job['runs_done'] for job in builds), 'run')} in {sum(job['seconds'] for job in builds) / 3600:.2f} h "
            f"on {machines}")


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


def _cmd_proxies(args: argparse.Namespace) -> None:
    from nb360.table.proxy_columns import build_proxy_columns

    archs = int(args.archs) if args.archs.isdigit() else args.archs
    summary = build_proxy_columns(args.table, names=args.proxies, data_root=args.data_root, batch_size=args.batch_size,
                                  seed=args.seed, archs=archs, overwrite=args.overwrite, threads=args.threads)
    summary["proxies"] = ",".join(summary["proxies"])
    print(", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in summary.items()))


# Ray Tune's own searchers (nb360.search.ray_tune.TUNE_SEARCHERS), named here because importing
# Ray Tune takes seconds
_TUNE_SEARCHERS = ("optuna", "hyperopt")


def _cmd_search(args: argparse.Namespace) -> None:
    # one function per backend; "table" runs in-process against a precomputed table, "ray" on Ray Tune
    if args.seeds is None:
        args.seeds = 10 if args.backend == "table" else 1
    tune_only = [a for a in args.algo if a in _TUNE_SEARCHERS]
    if args.backend == "table" and tune_only:
        raise ValueError(f"{', '.join(tune_only)}: Ray Tune's own searchers run with --backend ray")
    if args.backend == "table" and args.task is not None:
        raise ValueError("--task trains every trial, on Ray Tune: add --backend ray")
    {"table": _search_table, "ray": _search_ray}[args.backend](args)


def _search_table(args: argparse.Namespace) -> None:
    from nb360.search.report import validation_pick_regret, write_outputs
    from nb360.search.runner import run_many
    from nb360.table.benchmark import Benchmark

    b = Benchmark.load(args.table)
    queries = args.budget if args.budget is not None or args.time_budget is not None else 100
    start = time.perf_counter()
    trials = run_many(b, args.algo, range(args.seeds), queries=queries, time_budget=args.time_budget, proxy=args.proxy,
                      workers=args.workers, unscored=args.unscored)
    seconds = time.perf_counter() - start
    budget = " and ".join(([f"{queries} queries"] if queries else []) +
                          ([f"{args.time_budget:g} simulated s"] if args.time_budget else []))
    paths = write_outputs(trials, args.out, title=f"{b.task} ({b.path.name}): {budget}, {args.seeds} seeds",
                          val_pick=validation_pick_regret(b))
    final = trials.groupby(["algo", "seed"], sort=False).last().groupby("algo", sort=False)
    print(f"{b.task}: {len(trials):,} queries in {seconds:.1f} s; "
          f"final test regret over {args.seeds} seeds ({b.metric}, lower is better)")
    print(f"{'algo':<10} {'mean':>9} {'median':>9} {'sim hours':>9}")
    for algo, rows in final:
        print(f"{algo:<10} {rows['regret'].mean():>9.5f} {rows['regret'].median():>9.5f} "
              f"{rows['sim_seconds'].mean() / 3600:>9.2f}")
    for path in paths.values():
        print(path)


def _search_ray(args: argparse.Namespace) -> None:
    from nb360.search.ray_tune import search_table, search_task, summarize, write_outputs

    if args.time_budget is not None:
        raise ValueError("--time-budget counts the table backend's simulated seconds; with --backend ray give --trials")
    if args.workers != 1:
        raise ValueError("--workers is the table backend's; Ray runs trials in parallel by itself (--num-cpus)")
    if args.unscored != "fail":
        raise ValueError("--unscored is the table backend's (the in-process runner)")
    common = dict(algos=args.algo, seeds=range(args.seeds), trials=args.budget or 100, scheduler=args.scheduler,
                  address=args.address, num_cpus=args.num_cpus, max_failures=args.max_failures,
                  storage=Path(args.out).resolve() / "tune")
    start = time.perf_counter()
    val_pick = None
    if args.task is not None:
        trials = search_task(args.task, epochs=args.epochs, C=args.C, N=args.N, batch_size=args.batch_size,
                             lr=args.lr, resolution=args.resolution, data_root=args.data_root, **common)
        title = f"{args.task}: trained {args.epochs} epochs, C={args.C} N={args.N}"
    else:
        from nb360.search.report import validation_pick_regret
        from nb360.table.benchmark import Benchmark

        b = Benchmark.load(args.table)
        trials = search_table(b, proxy=args.proxy, **common)
        title = f"{b.task} ({b.path.name}): looked up"
        val_pick = validation_pick_regret(b)
    paths = write_outputs(trials, args.out, title=f"{title}, {common['trials']} Tune trials, {args.seeds} seeds",
                          val_pick=val_pick)
    print(summarize(trials, title, time.perf_counter() - start))
    for path in paths.values():
        print(path)


def _cmd_oneshot(args: argparse.Namespace) -> None:
    import torch

    from nb360.search.oneshot_runs import FILES, run_oneshot_many, summarize

    torch.set_num_threads(args.threads)
    if (args.table is None) == (args.task is None):
        raise ValueError("give --table (look the derived cells up; task and network from its protocol) "
                         "or --task (train the derived cells)")
    if args.table is not None:
        from nb360.table.benchmark import Benchmark, resolve
        from nb360.table.build import table_task

        given = [f"--{k.replace('_', '-')}" for k in ("C", "N", "resolution", "train_epochs")
                 if getattr(args, k) is not None]
        if given:
            raise ValueError(f"{', '.join(given)}: with --table the network and data are the table's protocol")
        path = resolve(args.table)
        task, C, N, protocol = table_task(path, args.data_root)
        bench, batch_size, where = Benchmark.load(path), args.batch_size or protocol.get("batch_size"), str(path)
    else:
        from nb360.data.task import load_task
        from nb360.spaces.network import DEFAULT_C, DEFAULT_N

        task = load_task(args.task, args.data_root, **({"resolution": args.resolution} if args.resolution else {}))
        C, N = args.C or DEFAULT_C, args.N or DEFAULT_N
        bench, batch_size, where = None, args.batch_size, args.task
    runs = run_oneshot_many(task, args.method, range(args.seeds), args.out, epochs=args.epochs, C=C, N=N,
                            batch_size=batch_size, table=bench, train_epochs=args.train_epochs, order=args.order)
    score = "mean_regret" if bench is not None else "mean_test"
    print(f"{where}: {args.epochs} supernet epochs, C={C} N={N}; derived cells "
          f"{'looked up (test regret)' if bench is not None else 'trained (test score)'}, {task.metric_name}")
    for row in summarize(runs).to_dict("records"):
        print(f"{row['method']:<6} {row['runs']} runs, {row['scored']} scored, mean {row[score]:.5f}, "
              f"{row['search_seconds']:.0f} s per search; {row['cells']}")
    for name in ("runs", "epochs", "figure", "alphas_figure"):
        print(Path(args.out) / FILES[name])


def _cmd_hypotheses(args: argparse.Namespace) -> None:
    from nb360 import hypotheses

    # only the options given reach the questions; each question keeps its own defaults
    options = {key: getattr(args, key) for key in ("top", "seed", "algos", "budget", "seeds", "trials")
               if getattr(args, key) is not None}
    if args.costs is not None:
        options["costs"] = None if args.costs == "none" else args.costs
    if args.name != "all":
        if args.doc is not None:
            raise ValueError("--doc gathers the summaries of every question: use it with `nb360 hypotheses all`")
        report = hypotheses.run(args.name, args.out, tables=args.tables, **options)
        print(report.answer)
        print(report.summary)
        return
    if args.tables is not None:
        raise ValueError("`all` asks each question of its own default tables; give --tables to one question at a time")
    reports, failed = hypotheses.run_all(args.out, doc=args.doc, **options)
    for report in reports:
        print(report.summary)
    if args.doc is not None:
        print(args.doc)
    if failed:
        raise ValueError("not answered: " + "; ".join(f"{name}: {error}" for name, error in failed.items()))


def _require(args: argparse.Namespace, names: Sequence[str], hint: str = "") -> None:
    missing = [f"--{name}" for name in names if getattr(args, name) is None]
    if missing:
        raise ValueError(f"{', '.join(missing)} required{hint}")


def _w2s_task(args: argparse.Namespace):
    from nb360.data import load_task

    return load_task(args.task, data_root=args.data_root, **({"resolution": args.resolution} if args.resolution else {}))


def _w2s_runs(task, teacher, student, args: argparse.Namespace, checkpoints: Path) -> list[dict]:
    """run_w2s for seeds seed..seed+seeds-1, one printed line each; the reports as dicts."""
    from nb360.w2s.protocol import run_w2s

    reports = []
    for seed in range(args.seed, args.seed + args.seeds):
        r = run_w2s(task, teacher, student, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr or task.lr,
                    aux_loss=getattr(args, "aux_loss", False), seed=seed, checkpoint_dir=checkpoints)
        print(f"seed {seed}: weak {r.weak:.4f}  w2s {r.w2s:.4f}  ceiling {r.ceiling:.4f}  PGR {r.pgr:.3f}  "
              f"({r.seconds:.0f} s)", flush=True)
        reports.append(r.to_dict())
    return reports


def _cmd_w2s(args: argparse.Namespace) -> None:
    from nb360.w2s.protocol import Net
    from nb360.w2s.report import write_report
    from nb360.w2s.search import best_from_file

    _require(args, ("teacher", "student", "out"), " (or an action: search, synthetic)")
    extra = {}
    student = args.student
    if student.endswith(".json") or Path(student).is_file():  # a search's best.json
        student, extra["student_from"] = best_from_file(student, args.student_algo)
    teacher = Net.of(args.teacher, args.teacher_C, args.teacher_N)
    student = Net.of(student, args.C, args.N)
    task = _w2s_task(args)
    print(f"{task.name}: teacher {teacher.to_dict()}, student {student.to_dict()}, {args.epochs} epochs, "
          f"test {task.metric_name} (lower is better)")
    reports = _w2s_runs(task, teacher, student, args, Path(args.out) / "checkpoints")
    paths = write_report(args.out, reports, extra)
    s = json.loads(paths["json"].read_text())["summary"]
    print("mean ± 95% CI: " + "  ".join(f"{k} {v['mean']:.4f} ± {v['ci95']:.4f}" for k, v in s.items()))
    for path in paths.values():
        print(path)


def _cmd_w2s_search(args: argparse.Namespace) -> None:
    from nb360.w2s.protocol import Net
    from nb360.w2s.report import write_report
    from nb360.w2s.search import search_student

    _require(args, ("teacher", "out"))
    task = _w2s_task(args)
    teacher = Net.of(args.teacher, args.teacher_C, args.teacher_N)
    out, checkpoints = Path(args.out), Path(args.out) / "checkpoints"
    found = search_student(task, teacher, args.algo, args.budget, C=args.C, N=args.N, epochs=args.epochs,
                           batch_size=args.batch_size, lr=args.lr or task.lr, seed=args.seed, checkpoint_dir=checkpoints,
                           backend=args.backend, address=args.address, num_cpus=args.num_cpus)
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
        reports = _w2s_runs(task, teacher, student, args, checkpoints)
        paths = write_report(out / name, reports, {"role": name})
        summary["students"][name] = {**student.to_dict(), "report": str(paths["json"]),
                                     **json.loads(paths["json"].read_text())["summary"]}
    (out / "search.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"{'student':<11} {'w2s':>8} {'ceiling':>8} {'PGR':>7}")
    for name, s in summary["students"].items():
        print(f"{name:<11} {s['w2s']['mean']:>8.4f} {s['ceiling']['mean']:>8.4f} {s['pgr']['mean']:>7.3f}")
    print(out / "search.json")


def _cmd_w2s_synthetic(args: argparse.Namespace) -> None:
    from nb360.w2s.report import write_synthetic
    from nb360.w2s.synthetic import density_sweep, source_selection

    sweep = density_sweep(args.densities, args.seeds, n=args.n)
    selection = source_selection(seeds=args.seeds, budget=args.budget, batch_size=args.batch_size,
                                 n_per_source=args.n_per_source)
    print(sweep.groupby("density")[["weak_acc", "w2s_acc", "ceiling_acc", "pgr", "overlap_precision",
                                    "overlap_recall"]].mean().to_string(float_format="%.3f"))
    print(selection.groupby("policy", sort=False)[["true_density", "detected_density", "richest_share"]]
          .mean().to_string(float_format="%.3f"))
    for path in write_synthetic(args.out, sweep, selection).values():
        print(path)


def _float_list(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers such as 0,0.1,0.2, got {text!r}") from None
    if not values or not all(0 <= v <= 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected fractions in [0, 1], got {text!r}")
    return values


def _name_list(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"expected comma-separated names or paths, got {text!r}")
    return names


def _method_list(text: str) -> list[str]:
    from nb360.search.oneshot import METHODS

    methods = [m.strip() for m in text.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise argparse.ArgumentTypeError(f"unknown one-shot method(s) {', '.join(unknown) or text!r}; "
                                         f"known: {', '.join(METHODS)}")
    return methods


def _algo_list(text: str) -> list[str]:
    from nb360.search import SEARCHERS

    algos = [a.strip() for a in text.split(",") if a.strip()]
    known = [*SEARCHERS, *_TUNE_SEARCHERS]
    unknown = [a for a in algos if a not in known]
    if not algos or unknown or len(set(algos)) != len(algos):
        raise argparse.ArgumentTypeError(f"expected distinct names among {', '.join(known)}, got {text!r}")
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


# the densest cell: the default student of `nb360 w2s search`
DEFAULT_STUDENT = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"


def _w2s_options(p: argparse.ArgumentParser) -> None:
    """Options shared by `nb360 w2s` and `nb360 w2s search`."""
    p.add_argument("--task", default="darcyflow")
    p.add_argument("--teacher", default=None, help="the weak teacher: NB201 string, official index, or wrn")
    p.add_argument("--teacher-C", type=_positive, default=4, help="teacher's channels (default 4)")
    p.add_argument("--teacher-N", type=_positive, default=1, help="teacher's cells per stage (default 1)")
    p.add_argument("--C", type=_positive, default=16, help="student's channels of the first stage (default 16)")
    p.add_argument("--N", type=_positive, default=5, help="student's cells per stage (default 5)")
    p.add_argument("--epochs", type=_positive, default=20, help="epochs of each training (default 20)")
    p.add_argument("--batch-size", type=_positive, default=None, help="default: the task's NB360 batch size")
    p.add_argument("--lr", type=_positive_float, default=None, help=_LR_HELP)
    p.add_argument("--seed", type=_non_negative, default=0, help="first seed (default 0)")
    p.add_argument("--seeds", type=_positive, default=1, help="number of seeds, seed..seed+N-1 (default 1)")
    p.add_argument("--resolution", type=_int_at_least(3), default=None, help="grid size, for tasks that have one (darcyflow)")
    p.add_argument("--out", default=None, help="output folder (report.json, report.png, checkpoints/ to resume)")
    _data_root_option(p)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="nb360", description="Neural architecture search on diverse tasks (NAS-Bench-360, NB201 cells).")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("tasks", help="the NAS-Bench-360 tasks and whether their files are under the data root")
    p.add_argument("--baselines", action="store_true", help="print the paper's baseline results of each task instead")
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
    g = data_sub.add_parser("fake", help="write a small stand-in data set in a task's published file format")
    g.add_argument("task", help="a task name, or all (the ten NAS-Bench-360 tasks)")
    g.add_argument("--out", required=True, help="output folder (use it as --data-root)")
    g.add_argument("--n", type=_positive, default=None,
                   help="size of the training file (samples; records for ecg; default: each task's own, tens)")
    g.add_argument("--seed", type=_non_negative, default=0)
    g.add_argument("--overwrite", action="store_true", help="replace files of the task already in --out")
    g.set_defaults(func=_cmd_data_fake)

    p = sub.add_parser("train", help="train one NB201 cell (or the WRN baseline) on a task and record every epoch")
    p.add_argument("--task", default="darcyflow")
    network = p.add_mutually_exclusive_group(required=True)
    network.add_argument("--arch", help="NB201 string or official index")
    network.add_argument("--model", choices=("wrn",),
                         help="a hand-designed network instead of a cell: wrn, NAS-Bench-360's WRN-16-4 baseline "
                              "(its 1D ResNet for sequences; --C and --N do not apply)")
    p.add_argument("--epochs", type=_positive, default=200)
    p.add_argument("--C", type=_positive, default=16, help="channels of the first stage (default 16)")
    p.add_argument("--N", type=_positive, default=5, help="cells per stage (default 5)")
    p.add_argument("--batch-size", type=_positive, default=None, help="default: the task's NB360 batch size")
    p.add_argument("--lr", type=_positive_float, default=None, help=_LR_HELP)
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
    p.add_argument("--lr", type=_positive_float, default=None, help=_LR_HELP)
    p.add_argument("--resolution", type=_int_at_least(3), default=None, help="grid size, for tasks that have one (darcyflow)")
    p.add_argument("--address", default=None, help="Ray cluster address ('auto' for a running cluster); default: a local one")
    p.add_argument("--num-cpus", type=_positive, default=None, help="CPUs of the local Ray cluster")
    _data_root_option(p)
    p.set_defaults(func=_cmd_precompute)

    p = sub.add_parser("proxies", help="zero-cost proxies of every iso class of a table, stored as its columns; resumable")
    p.add_argument("--table", required=True, help="shipped table name or path to an .h5 table")
    p.add_argument("--proxies", default=None, help="comma-separated names (default: all, see nb360.proxy_names.PROXIES)")
    p.add_argument("--batch-size", type=_int_at_least(2), default=64, help="training samples scored (default 64)")
    p.add_argument("--seed", type=_non_negative, default=0, help="initial weights and the batch drawn (default 0)")
    p.add_argument("--archs", default="all", help="all, a number N of iso classes, or a file of indices / arch strings")
    p.add_argument("--overwrite", action="store_true", help="recompute the columns from scratch")
    p.add_argument("--threads", type=_positive, default=1, help="torch CPU threads (default 1)")
    _data_root_option(p)
    p.set_defaults(func=_cmd_proxies)

    p = sub.add_parser("search", help="run search algorithms for several seeds; trials.csv, regret.png, best.json")
    p.add_argument("--algo", type=_algo_list, default=["rs", "re"], help="comma-separated, e.g. rs,re,ls (default rs,re)")
    p.add_argument("--backend", choices=("table", "ray"), default="table",
                   help="table: in-process against a precomputed table, in simulated time (default); ray: on Ray "
                        "Tune, each trial training its cell on --task, or looking it up in --table without --task")
    p.add_argument("--table", default="nb201-darcyflow-mini", help="shipped table name or path to an .h5 table")
    p.add_argument("--budget", type=_positive, default=None,
                   help="queries per search (default 100, or unlimited when --time-budget is given)")
    p.add_argument("--time-budget", type=_positive_float, default=None,
                   help="simulated training seconds per search (stops at whichever budget ends first)")
    p.add_argument("--seeds", type=_positive, default=None,
                   help="number of seeds, 0..N-1 (default 10; 1 with --backend ray)")
    p.add_argument("--proxy", default="synflow",
                   help="zero-cost proxy column for zc-re / zc-ls (default synflow; params and flops also work)")
    p.add_argument("--workers", type=_positive, default=1,
                   help="processes running the searches (table backend; default 1): the same results, sooner "
                        "where searches cost real time, as BANANAS's do")
    p.add_argument("--unscored", choices=("fail", "skip"), default="fail",
                   help="a cell the table has no run of (a partial table): a query told as a failure (default), or "
                        "skip: no query, nothing told, the searcher asked again (not for sh, hb)")
    p.add_argument("--out", required=True, help="output folder")
    g = p.add_argument_group("--backend ray (algorithms: the above, and Ray Tune's optuna, hyperopt)")
    g.add_argument("--task", default=None, help="train each trial's cell on this task (without it: look it up in --table)")
    g.add_argument("--trials", dest="budget", metavar="N", type=_positive, default=None,
                   help="trials per search, as --budget (default 100)")
    g.add_argument("--scheduler", choices=("fifo", "asha"), default="fifo",
                   help="asha: stop poor trials early (ASHA over epochs); fifo: every trial runs its budget (default)")
    g.add_argument("--epochs", type=_positive, default=12, help="epochs of a full trial (default 12)")
    g.add_argument("--C", type=_positive, default=16, help="channels of the first stage (default 16)")
    g.add_argument("--N", type=_positive, default=5, help="cells per stage (default 5)")
    g.add_argument("--batch-size", type=_positive, default=None, help="default: the task's NB360 batch size")
    g.add_argument("--lr", type=_positive_float, default=None, help=_LR_HELP)
    g.add_argument("--resolution", type=_int_at_least(3), default=None, help="grid size, for tasks that have one (darcyflow)")
    g.add_argument("--address", default=None, help="Ray cluster address ('auto' for a running cluster); default: a local one")
    g.add_argument("--num-cpus", type=_positive, default=None, help="CPUs of the local Ray cluster")
    g.add_argument("--max-failures", type=_non_negative, default=2,
                   help="retries of a trial whose worker or node died (default 2)")
    _data_root_option(g)
    p.set_defaults(func=_cmd_search)

    p = sub.add_parser("oneshot", help="one-shot weight-sharing search (DARTS, GDAS) on a task's real data; "
                                         "the derived cells looked up in a table or trained; resumable")
    p.add_argument("--method", type=_method_list, default=["darts", "gdas"], help="comma-separated (default darts,gdas)")
    p.add_argument("--table", default=None,
                   help="shipped table name or path: the task, its data, C, N and batch size come from the table's "
                        "protocol, and each derived cell is looked up in it")
    p.add_argument("--task", default=None, help="without --table: search this task and train the derived cells")
    p.add_argument("--epochs", type=_positive, default=100, help="supernet epochs (default 100, NATS-Bench's)")
    p.add_argument("--seeds", type=_positive, default=1, help="number of seeds, 0..N-1 (default 1)")
    p.add_argument("--order", type=int, choices=(1, 2), default=1,
                   help="2: DARTS's second-order alpha gradient (DARTS only; default 1)")
    p.add_argument("--out", required=True, help="output folder (a run already in its oneshot.csv is skipped)")
    p.add_argument("--batch-size", type=_positive, default=None, help="default: the table's, else the task's")
    p.add_argument("--threads", type=_positive, default=1,
                   help="torch CPU threads (default 1: fastest for small networks, and fair to other jobs)")
    g = p.add_argument_group("--task only")
    g.add_argument("--C", type=_positive, default=None, help="channels of the first stage (default 16)")
    g.add_argument("--N", type=_positive, default=None, help="cells per stage (default 5)")
    g.add_argument("--resolution", type=_int_at_least(3), default=None, help="grid size, for tasks that have one")
    g.add_argument("--train-epochs", type=_non_negative, default=None,
                   help="epochs to train each derived cell (default --epochs; 0: no scores)")
    _data_root_option(p)
    p.set_defaults(func=_cmd_oneshot)

    from nb360.hypotheses import DOC_COMMAND, QUESTIONS

    p = sub.add_parser("hypotheses", help="answer the benchmark's questions from tables: CSV, PNG and summary.md each")
    p.add_argument("name", choices=[*QUESTIONS, "all"], help="a question, or all of them (on their default tables)")
    p.add_argument("--tables", type=_name_list, default=None,
                   help="comma-separated table names or paths (default: the shipped tables the question names)")
    p.add_argument("--out", required=True, help="output folder (with all: one folder per question inside)")
    p.add_argument("--doc", default=None, help=f"with all: gather the summaries into this page ({DOC_COMMAND})")
    p.add_argument("--top", type=_positive_float, default=None, help="top fraction of top-k numbers (default 0.1)")
    p.add_argument("--seed", type=_non_negative, default=None, help="locality: seed of its random pairs and walk (default 0)")
    p.add_argument("--costs", default=None, help="size: cost file, name or path (default nb201-costs; 'none' leaves it out)")
    p.add_argument("--algo", dest="algos", type=_algo_list, default=None,
                   help="search-consistency: algorithms (default rs,re,ls,reinforce,bananas)")
    p.add_argument("--budget", type=_positive, default=None, help="search-consistency: queries per search (default 100)")
    p.add_argument("--seeds", type=_positive, default=None, help="search-consistency: seeds 0..N-1 (default 10)")
    p.add_argument("--trials", type=_name_list, default=None,
                   help="search-consistency: one trials.csv (or its folder) per table, read instead of searching")
    p.set_defaults(func=_cmd_hypotheses)

    from nb360.search import SEARCHERS as w2s_algos

    p = sub.add_parser("w2s", help="weak-to-strong: weak teacher, student on its labels, ceiling, PGR; "
                                   "actions search (a student from weak labels only), synthetic")
    w2s_sub = p.add_subparsers(dest="w2s_command", metavar="ACTION", parser_class=_Parser)
    _w2s_options(p)
    p.add_argument("--student", default=None,
                   help="NB201 string, official index, wrn (the task's baseline), or a best.json of `nb360 search`")
    p.add_argument("--student-algo", default=None, help="with a best.json: take that algorithm's best (default: any)")
    p.add_argument("--aux-loss", action="store_true", help="add the auxiliary confidence loss (classification)")
    p.set_defaults(func=_cmd_w2s)
    s = w2s_sub.add_parser("search", help="search the student on the teacher's labels only; PGR of the found, a "
                                          "default and the table's best student")
    _w2s_options(s)
    # zc-re and zc-ls start from a table's zero-cost proxy column, which a search on weak labels lacks
    s.add_argument("--algo", choices=sorted(a for a in w2s_algos if not a.startswith("zc-")), default="re",
                   help="search algorithm (default re)")
    s.add_argument("--budget", type=_positive, default=10, help="candidate trainings (default 10)")
    s.add_argument("--default-student", default=DEFAULT_STUDENT,
                   help="the student to compare with (default: the cell of nor_conv_3x3 on every edge)")
    s.add_argument("--table", default=None, help="a table of the task: its best cell (by validation) is compared too")
    s.add_argument("--backend", choices=("inprocess", "ray"), default="inprocess",
                   help="train the candidates in this process, or as Ray Tune trials (default inprocess)")
    s.add_argument("--address", default=None, help="with --backend ray: a running cluster ('auto'); default a local one")
    s.add_argument("--num-cpus", type=_positive, default=None, help="with --backend ray: CPUs of the local Ray")
    s.set_defaults(func=_cmd_w2s_search)
    s = w2s_sub.add_parser("synthetic", help="overlap density experiments on the synthetic problem: PGR, detection, "
                                             "source selection (CSV + PNG each)")
    s.add_argument("--densities", type=_float_list, default=[0.0, 0.05, 0.1, 0.2, 0.3],
                   help="overlap densities (default 0,0.05,0.1,0.2,0.3)")
    s.add_argument("--seeds", type=_positive, default=5, help="seeds 0..N-1 (default 5)")
    s.add_argument("--n", type=_int_at_least(8), default=1000, help="training points, halves A + B (default 1000)")
    s.add_argument("--budget", type=_positive, default=2000, help="points bought by source selection (default 2000)")
    s.add_argument("--batch-size", type=_int_at_least(4), default=50, help="points per round (default 50)")
    s.add_argument("--n-per-source", type=_positive, default=2500, help="points in each source (default 2500)")
    s.add_argument("--out", required=True, help="output folder")
    s.set_defaults(func=_cmd_w2s_synthetic)

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
