"""`nb360 search` (searchers against a table in-process, or on Ray Tune) and `nb360 oneshot`."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from nb360.cli import options
from nb360.cli.errors import Interrupted
from nb360.search.objectives import COSTS
from nb360.table.manifest import DEFAULT_TABLE

SEARCH_SEEDS = {"table": 10, "ray": 1}  # default --seeds per backend
FLAG_HELP_CONSTRAINT = ("constrained search, table backend: only cells within it count, e.g. 'flops<=2e7' "
                        "(regret to the best cell within); repeatable (default: none)")


def cmd_search(args: argparse.Namespace) -> None:
    # one function per backend; "table" runs in-process against a precomputed table, "ray" on Ray Tune
    if args.seeds is None:
        args.seeds = SEARCH_SEEDS[args.backend]
    tune_only = [a for a in args.algo if a in options.TUNE_SEARCHERS]
    if args.backend == "table" and tune_only:
        raise ValueError(f"{', '.join(tune_only)}: Ray Tune's own searchers run with --backend ray")
    if args.backend == "table" and args.task is not None:
        raise ValueError("--task trains every trial, on Ray Tune: add --backend ray")
    {"table": search_table, "ray": search_ray}[args.backend](args)


class SearchFolder:
    """The --out of `nb360 search --backend table`: trials.csv gains each (algorithm, seed) search as
    it finishes, and search.json records the settings that the searches in it share, so that a rerun
    resumes (skipping the searches there, adding new algorithms or seeds) and a run with other
    settings is refused instead of mixing in or replacing them."""

    def __init__(self, out: str | Path, settings: dict, overwrite: bool):
        self.out, self.settings = Path(out), settings
        self.trials, self.settings_path = self.out / "trials.csv", self.out / "search.json"
        if overwrite:
            for name in ("trials.csv", "search.json", "regret.png", "best.json"):
                (self.out / name).unlink(missing_ok=True)
        if self.trials.exists():
            if not self.settings_path.exists():
                raise FileExistsError(f"{self.trials}: results of a search whose settings were not recorded; "
                                      "choose another --out, or pass --overwrite to replace them")
            saved = json.loads(self.settings_path.read_text())
            differ = [f"{k} {saved.get(k)!r} there, {v!r} now" for k, v in settings.items() if saved.get(k) != v]
            if differ:
                raise FileExistsError(f"{self.out}: holds searches made with other settings ({'; '.join(differ)}); "
                                      "choose another --out, or pass --overwrite to replace them")
        self.out.mkdir(parents=True, exist_ok=True)
        self.settings_path.write_text(json.dumps(settings, indent=1) + "\n")

    def finished(self):
        import pandas as pd

        from nb360.search.runner import columns

        if not self.trials.exists():
            return pd.DataFrame(columns=columns(self.settings.get("objectives")))
        try:
            return pd.read_csv(self.trials)
        except (pd.errors.ParserError, UnicodeDecodeError) as e:
            raise ValueError(f"{self.trials}: not a trials file nb360 wrote ({e}); move it away or pass --overwrite") from None

    def add(self, frame) -> None:
        """Append one finished search (a single write, so an interrupt leaves whole searches)."""
        from nb360.search.runner import columns

        text = frame.to_csv(index=False, header=not self.trials.exists(),
                            columns=columns(self.settings.get("objectives")))
        with self.trials.open("a") as f:
            f.write(text)
            f.flush()


def search_table(args: argparse.Namespace) -> None:
    from nb360.search.report import summary_lines, validation_pick_regret, write_outputs
    from nb360.search.runner import run_many
    from nb360.table import manifest
    from nb360.table.benchmark import Benchmark

    b = Benchmark.load(args.table)
    if not b.df["val_metric"].notna().any():
        raise ValueError(f"{b.path}: no cell has a validation score (val_metric), which searches select by; "
                         "the table needs finished runs with a validation set")
    queries = args.budget if args.budget is not None or args.time_budget is not None else 100
    constraints = options.constraints(args.constraint)
    settings = {"table": b.path.name, "table_sha256": manifest.sha256(b.path), "queries": queries,
                "time_budget": args.time_budget, "proxy": args.proxy, "unscored": args.unscored,
                "constraints": constraints, "objectives": args.objectives}
    folder = SearchFolder(args.out, settings, args.overwrite)
    previous = folder.finished()
    seeds = range(args.seed, args.seed + args.seeds)
    done = set(zip(previous["algo"], previous["seed"].astype(int)))
    todo = [(a, s) for a in args.algo for s in seeds if (a, s) not in done]
    if len(todo) < len(args.algo) * len(seeds):
        print(f"{folder.trials}: {len(args.algo) * len(seeds) - len(todo)} of the {len(args.algo) * len(seeds)} "
              f"searches asked are there already; running the other {len(todo)}")
    start = time.perf_counter()
    try:
        run_many(b, args.algo, seeds, queries=queries, time_budget=args.time_budget, proxy=args.proxy,
                 workers=args.workers, unscored=args.unscored, done=done, on_search=folder.add,
                 constraints=constraints, objectives=args.objectives)
    except KeyboardInterrupt:
        kept = folder.finished().groupby(["algo", "seed"]).ngroups
        raise Interrupted(f"{kept} finished searches are kept in {folder.trials}; rerun the same command to "
                          "resume") from None
    seconds = time.perf_counter() - start
    trials = folder.finished()
    asked = trials[trials["algo"].isin(args.algo) & trials["seed"].isin(list(seeds))]
    budget = " and ".join(([f"{queries} queries"] if queries else []) +
                          ([f"{args.time_budget:g} simulated s"] if args.time_budget else []))
    paths = write_outputs(trials, args.out, title=f"{b.task} ({b.path.name}): {budget}, "
                                                 f"{trials.groupby('algo')['seed'].nunique().max()} seeds",
                          val_pick=None if constraints or args.objectives else validation_pick_regret(b),
                          true_front=b.pareto(["test_metric", *args.objectives[1:]], constraints)
                          if args.objectives else None)
    within = f" within {', '.join(args.constraint)} (regret to the best cell within)" if constraints else ""
    scored = (f"final hypervolume regret of the found front of {','.join(args.objectives)} (0: the whole true front)"
              if args.objectives else f"final test regret ({b.metric}, lower is better)")
    print(f"{b.task}: {len(asked):,} queries{within} ({len(todo)} searches run now, in {seconds:.1f} s); {scored} "
          f"over seeds {seeds.start}..{seeds.stop - 1}")
    print("\n".join(summary_lines(asked)))
    for path in paths.values():
        print(path)


def search_ray(args: argparse.Namespace) -> None:
    from nb360.search.ray_tune import search_table as tune_table, search_task, summarize, write_outputs

    if args.time_budget is not None:
        raise ValueError("--time-budget counts the table backend's simulated seconds; with --backend ray give --budget")
    if args.workers != 1:
        raise ValueError("--workers is the table backend's; Ray runs trials in parallel by itself (--num-cpus)")
    if args.unscored != "fail":
        raise ValueError("--unscored is the table backend's (the in-process runner)")
    if args.constraint or args.objectives:
        raise ValueError(f"{'--constraint' if args.constraint else '--objectives'} is the table backend's "
                         "(the in-process runner)")
    common = dict(algos=args.algo, seeds=range(args.seed, args.seed + args.seeds), trials=args.budget or 100,
                  scheduler=args.scheduler, address=args.address, num_cpus=args.num_cpus,
                  max_failures=args.max_failures, storage=Path(args.out).resolve() / "tune")
    start = time.perf_counter()
    val_pick = None
    try:
        if args.task is not None:
            trials = search_task(args.task, epochs=args.epochs, C=args.C, N=args.N, batch_size=args.batch_size,
                                 lr=args.lr, resolution=args.resolution, data_root=args.data_root, **common)
            title = f"{args.task}: trained {args.epochs} epochs, C={args.C} N={args.N}"
        else:
            from nb360.search.report import validation_pick_regret
            from nb360.table.benchmark import Benchmark

            b = Benchmark.load(args.table)
            trials = tune_table(b, proxy=args.proxy, **common)
            title = f"{b.task} ({b.path.name}): looked up"
            val_pick = validation_pick_regret(b)
    except KeyboardInterrupt:
        raise Interrupted(f"the trials Tune finished are kept in {common['storage']} (a folder per search, a "
                          "result.json per trial); trials.csv, regret.png and best.json were not written") from None
    paths = write_outputs(trials, args.out, title=f"{title}, {common['trials']} Tune trials, {args.seeds} seeds",
                          val_pick=val_pick)
    print(summarize(trials, title, time.perf_counter() - start))
    for path in paths.values():
        print(path)


def cmd_oneshot(args: argparse.Namespace) -> None:
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
    runs = run_oneshot_many(task, args.method, range(args.seed, args.seed + args.seeds), args.out, epochs=args.epochs,
                            C=C, N=N, batch_size=batch_size, table=bench, train_epochs=args.train_epochs,
                            order=args.order)
    score = "mean_regret" if bench is not None else "mean_test"
    print(f"{where}: {args.epochs} supernet epochs, C={C} N={N}; derived cells "
          f"{'looked up (test regret)' if bench is not None else 'trained (test score)'}, {task.metric_name}")
    for row in summarize(runs).to_dict("records"):
        print(f"{row['method']:<6} {row['runs']} runs, {row['scored']} scored, mean {row[score]:.5f}, "
              f"{row['search_seconds']:.0f} s per search; {row['cells']}")
    for name in ("runs", "epochs", "figure", "alphas_figure"):
        print(Path(args.out) / FILES[name])


def objective_list(text: str) -> list[str]:
    """--objectives: comma-separated, checked by `nb360.search.objectives.check`."""
    from nb360.search.objectives import check

    try:
        return check([part.strip() for part in text.split(",") if part.strip()])
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def register(sub) -> None:
    algos = options.choice_list(lambda: [*options.searcher_names(), *options.TUNE_SEARCHERS], "algorithms")
    p = sub.add_parser("search", help="run search algorithms for several seeds; trials.csv, regret.png, best.json")
    p.add_argument("--algo", type=algos, default=["rs", "re"],
                   help="comma-separated algorithms: " + ", ".join(options.searcher_names()) +
                        "; with --backend ray also Ray Tune's " + ", ".join(options.TUNE_SEARCHERS))
    p.add_argument("--backend", choices=("table", "ray"), default="table",
                   help="table: in-process against a precomputed table, in simulated time; ray: on Ray Tune, each "
                        "trial training its cell on --task, or looking it up in --table without --task")
    options.add(p, "table", "budget", "seed", "seeds", table={"default": DEFAULT_TABLE},
                budget={"default": None, "help": "architectures evaluated per search: table queries or Tune trials "
                                                 "(default: 100, or unlimited when --time-budget is given)"},
                seeds={"default": None, "help": "how many seeds: S..S+N-1 with --seed S (default: 10, 1 with --backend ray)"})
    p.add_argument("--time-budget", type=options.positive_float, default=None,
                   help="simulated training seconds per search, table backend (default: none; stops at whichever "
                        "budget ends first)")
    p.add_argument("--proxy", default="synflow",
                   help="zero-cost proxy column for zc-re / zc-ls (params and flops also work)")
    p.add_argument("--workers", type=options.positive, default=1,
                   help="processes running the searches (table backend): the same results, sooner where searches "
                        "cost real time, as BANANAS's do")
    p.add_argument("--unscored", choices=("fail", "skip"), default="fail",
                   help="a cell the table has no run of (a partial table): a query told as a failure, or skip: no "
                        "query, nothing told, the searcher asked again (not for sh, hb); a cell outside "
                        "--constraint likewise, at no simulated time")
    options.add(p, "constraint", constraint={"help": FLAG_HELP_CONSTRAINT})
    p.add_argument("--objectives", type=objective_list, default=None, metavar="val_metric,COST[,COST]",
                   help="multi-objective search, table backend: validation error and one or two costs of "
                        f"{', '.join(COSTS)}, e.g. val_metric,flops; scored by hypervolume regret of the found "
                        "front (algorithms: rs, mo-re, mo-bananas, optuna-tpe, optuna-nsga2; default: none, "
                        "minimise the error alone)")
    options.add(p, "out", "overwrite", out={"required": True, "help": "output folder; searches already in it are "
                                                                       "kept and the rest run (table backend)"},
                overwrite={"help": "replace the searches in --out instead of resuming them"})
    g = p.add_argument_group("--backend ray")
    g.add_argument("--scheduler", choices=("fifo", "asha"), default="fifo",
                   help="asha: stop poor trials early (ASHA over epochs); fifo: every trial runs its budget")
    options.add(g, "task", "epochs", "C", "N", "batch_size", "lr", "resolution", "address", "num_cpus", "data_root",
                task={"default": None, "help": "train each trial's cell on this task (default: none, look it up in --table)"},
                epochs={"default": 12, "help": "epochs of a full trial"})
    g.add_argument("--max-failures", type=options.non_negative, default=2,
                   help="retries of a trial whose worker or node died")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("oneshot", help="one-shot weight-sharing search (DARTS, GDAS) on a task's real data; "
                                         "the derived cells looked up in a table or trained; resumable")
    p.add_argument("--method", type=options.choice_list(options.oneshot_names, "one-shot methods"),
                   default=["darts", "gdas"], help="comma-separated: " + ", ".join(options.oneshot_names()))
    options.add(p, "table", "task", table={"default": None,
                                           "help": "a table (name or path): the task, its data, C, N and batch size come "
                                                   "from its protocol, and each derived cell is looked up in it "
                                                   "(default: none, give --task)"},
                task={"default": None, "help": "without --table: search this task and train the derived cells (default: none)"})
    options.add(p, "epochs", "seed", "seeds", "out", "threads", "data_root",
                epochs={"default": 100, "help": "supernet epochs (NATS-Bench's 100)"},
                out={"required": True, "help": "output folder (a run already in its oneshot.csv is skipped)"},
                threads={"help": "torch CPU threads (1 is fastest for small networks, and fair to other jobs)"})
    p.add_argument("--order", type=int, choices=(1, 2), default=1, help="2: DARTS's second-order alpha gradient (DARTS only)")
    p.add_argument("--batch-size", type=options.positive, default=None, help="default: the table's, else the task's")
    g = p.add_argument_group("--task only")
    options.add(g, "C", "N", "resolution", C={"default": None, "help": "channels of the first stage (default: 16)"},
                N={"default": None, "help": "cells per stage (default: 5)"})
    g.add_argument("--train-epochs", type=options.non_negative, default=None,
                   help="epochs to train each derived cell (default: --epochs; 0: no scores)")
    p.set_defaults(func=cmd_oneshot)
