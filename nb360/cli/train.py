"""`nb360 train` (one cell or the WRN baseline on a task) and `nb360 demo`."""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

from nb360.cli import options


def cmd_train(args: argparse.Namespace) -> None:
    from nb360.data import load_task
    from nb360.spaces.costs import count_flops, count_params
    from nb360.spaces.nb201 import Arch
    from nb360.spaces.network import build
    from nb360.train import fit, seed_everything

    arch = Arch.parse(args.arch) if args.model is None else None
    out = Path(args.out or f"runs/{args.task}-{args.model or arch.index}-seed{args.seed}.json")
    if out.exists() and not args.overwrite:  # checked before training, not after
        raise FileExistsError(f"{out}: the records of a finished run are there; choose another --out, pass "
                              "--overwrite, or --checkpoint to resume an interrupted run")
    task = load_task(args.task, data_root=args.data_root, splits=args.splits,
                     **({"resolution": args.resolution} if args.resolution else {}))
    seed_everything(args.seed)
    if arch is None:  # --model wrn: NAS-Bench-360's hand-designed baseline instead of a cell
        from nb360.spaces.wrn import build_wrn

        model = build_wrn(task.spec)
        described = f"{args.model} ({type(model).__name__}, NAS-Bench-360's baseline network)"
    else:
        model = build(arch, task.spec, C=args.C, N=args.N)
        described = f"{arch} (index {arch.index}), C={args.C} N={args.N}"
    batch_size = args.batch_size or task.batch_size
    sizes = "/".join(str(len(split)) if split is not None else "-" for split in task.splits)
    print(f"{task.name}: {described}, "
          f"{count_params(model):,} params, {count_flops(model, task.spec.input_shape) / 1e6:.2f} MFLOPs, "
          f"{sizes} train/val/test ({args.splits} splits), batch {batch_size}")
    print(f"{'epoch':>5} {'train_loss':>11} {'train_' + task.metric_name:>18} {'val':>10} {'test':>10} {'seconds':>8}")

    def show(r: dict) -> None:
        print(f"{r['epoch']:>5} {r['train_loss']:>11.5f} {r['train_metric']:>18.5f} {r['val_metric']:>10.5f} "
              f"{r['test_metric']:>10.5f} {r['train_seconds']:>8.1f}", flush=True)

    records = fit(model, task.splits, task.loss, task.metric, epochs=args.epochs, batch_size=batch_size,
                  lr=args.lr or task.lr, seed=args.seed, callback=show, checkpoint=args.checkpoint)
    network = {"model": args.model, "arch": None, "index": None, "C": None, "N": None} if arch is None else \
        {"model": "nb201", "arch": str(arch), "index": arch.index, "C": args.C, "N": args.N}
    config = {"task": task.name, "splits": args.splits, **network, "epochs": args.epochs, "batch_size": batch_size, "lr": args.lr or task.lr,
              "seed": args.seed, "metric": task.metric_name, "resolution": task.spec.in_shape}
    write_records(out, config, records)
    print(f"records: {out} and {out.with_suffix('.csv')}")


def write_records(out: Path, config: dict, records: list[dict]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"config": config, "records": records}, indent=2))
    with out.with_suffix(".csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(records[0]))
        writer.writeheader()
        writer.writerows(records)


def cmd_demo(args: argparse.Namespace) -> None:
    from nb360.demo import run_demo

    start = time.perf_counter()
    run_demo(Path(args.out), epochs=args.epochs)
    print(f"demo finished in {time.perf_counter() - start:.0f} s")


def register(sub) -> None:
    p = sub.add_parser("train", help="train one NB201 cell (or the WRN baseline) on a task and record every epoch")
    network = p.add_mutually_exclusive_group(required=True)
    network.add_argument("--arch", help="NB201 string or official index")
    network.add_argument("--model", choices=("wrn",),
                         help="a hand-designed network instead of a cell: wrn, NAS-Bench-360's WRN-16-4 baseline "
                              "(its 1D ResNet for sequences; --C and --N do not apply)")
    options.add(p, "task", "epochs", "C", "N", "batch_size", "lr", "seed", "resolution", "data_root",
                epochs={"default": 200, "help": "training epochs (NB201's protocol trains 200)"},
                seed={"help": "seed of the initial weights and of the batch order"})
    p.add_argument("--splits", choices=("search", "final"), default="search",
                   help="search: train / validation / test as NAS-Bench-360's search runs; final: train on train "
                        "and validation together, as its final (*_retrain) runs, no validation score")
    p.add_argument("--checkpoint", default=None, help="save state here each epoch and resume from it (default: none)")
    p.add_argument("--out", default=None, help="records file, .json with a .csv beside it "
                                               "(default: runs/TASK-INDEX-seedS.json)")
    options.add(p, "overwrite", overwrite={"help": "replace the records file if it exists"})
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("demo", help="generate Darcy Flow, train a few cells, print a table, draw a figure (~1-2 min)")
    options.add(p, "epochs", "out", epochs={"default": 8}, out={"default": "nb360-demo"})
    p.set_defaults(func=cmd_demo)
