"""Where a shipped table's seed noise comes from, measured before compute is spent on reducing it.

On a uniform sample of iso classes (the first classes of the builder's fixed permutation, so the
shipped tables' own runs of them can be checked for reproduction), each class is trained several
times under the table's protocol, and every run is scored sample by sample on an evaluation set
larger than the table's test set. From those per-sample errors `report` computes:

- training noise against evaluation noise: seed-to-seed agreement of the class scores when each run
  is scored on a test set of 25 ... N samples, and the variance of a class score split into its
  part between runs (weight init, batch order) and its part from the test samples drawn;
- weight init against batch order: runs that differ in one of the two seeds only;
- agreement against the number of seeds averaged (split halves of four seeds, and Spearman-Brown);
- agreement against epochs (the protocol's epochs, twice and four times as many, each its own
  cosine schedule).

    python scripts/table_noise.py run --table nb201-darcyflow-mini-e40 --data-root DATA/darcy-mini --out noise/darcyflow-e40
    python scripts/table_noise.py report noise/darcyflow-e40

The study in docs/tables/noise/ ran on the first round's tables, since retired (docs/tables.md: how to
restore them from the repository's history into a folder OLD); `report` compares the study's runs
with the table's, so it needs them back:

    NB360_TABLES=OLD python scripts/table_noise.py report docs/tables/noise/darcyflow docs/tables/noise/digits --doc docs/tables.md

`run` appends one JSON line per finished run to OUT/runs.jsonl and skips the runs already there, so
an interrupted study resumes. The evaluation set is the test set at its largest (Darcy Flow: all of
smooth2, 300 samples for the mini data) followed by the validation set where the task's validation
set plays no part in training (digits: 450 + 450 images); its first `test_size` samples are the
table's own test set.
"""

from __future__ import annotations

import argparse
import gzip
import json
import multiprocessing
import os
from pathlib import Path

import numpy as np

from nb360.cli.options import positive
from nb360.table.compare import spearman_brown, spearman_interval, with_interval

# (kind, epoch multiple of the protocol's, init seed, batch-order seed), in the order they run:
# every class gets the cheap, most informative runs before any class gets the long ones.
PLAN = [("seeds", 1, s, s) for s in range(4)] + [("cross", 1, 0, 1), ("cross", 1, 1, 0)] + [
    ("epochs", m, s, s) for m in (2, 4) for s in (0, 1)]
# Extra test samples per task beyond the table's: Darcy Flow's smooth2 file holds 300 for the mini data
# (Burgers' table already tests on all 300 held-out samples of its file).
EVAL_TEST_SIZE = {"darcyflow": 300}


def load(table_name: str, data_root: str | None):
    """(task with the evaluation set as its test split, the table's protocol, its test size)."""
    from dataclasses import replace

    from torch.utils.data import ConcatDataset

    from nb360 import cards
    from nb360.data.task import load_task
    from nb360.table.benchmark import Benchmark
    from nb360.table.build import load_options

    table = Benchmark.load(table_name)
    protocol = table.protocol
    options = load_options(table.path, cards.load("tasks", protocol["task"]), protocol)
    if protocol["task"] in EVAL_TEST_SIZE:
        options["test_size"] = EVAL_TEST_SIZE[protocol["task"]]
    task = load_task(protocol["task"], data_root, **options)
    test = task.test
    if protocol["task"] == "digits":  # its validation set is not used in training: a second test set
        test = ConcatDataset([task.test, task.val])
    task = replace(task, splits=task.splits._replace(test=test))
    return task, protocol, int(protocol["test_size"]), table


def per_sample_errors(model, task) -> np.ndarray:
    """The task's metric on each evaluation sample alone (both metrics are means over samples)."""
    import torch
    from torch.utils.data import DataLoader

    model.eval()
    errors = []
    with torch.no_grad():
        for x, y in DataLoader(task.test, batch_size=256):
            out = model(x)
            errors += [float(task.metric(out[i : i + 1], y[i : i + 1])) for i in range(len(y))]
    return np.asarray(errors)


_STATE: dict = {}


def _init_worker(table_name: str, data_root: str | None) -> None:
    import torch

    torch.set_num_threads(1)  # as the builder trains: one thread per run
    _STATE["task"], _STATE["protocol"], _, _ = load(table_name, data_root)


def train_one(job: tuple) -> dict:
    from nb360.spaces import network
    from nb360.train import Splits, fit, seed_everything

    index, kind, multiple, init_seed, order_seed = job
    task, p = _STATE["task"], _STATE["protocol"]
    seed_everything(init_seed)
    model = network.build(index, task.spec, p["C"], p["N"])
    epochs = p["epochs"] * multiple
    records = fit(model, Splits(task.train, None, None), task.loss, task.metric, epochs=epochs,
                  batch_size=p["batch_size"], lr=p["lr"], weight_decay=p["weight_decay"], seed=order_seed,
                  device="cpu", progress=False)
    return {"index": index, "kind": kind, "epochs": epochs, "init_seed": init_seed, "order_seed": order_seed,
            "train_seconds": records[-1]["train_seconds"], "errors": per_sample_errors(model, task).round(7).tolist()}


def cmd_run(args: argparse.Namespace) -> None:
    from tqdm.auto import tqdm

    from nb360.table.build import select_classes

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = out / "runs.jsonl"
    _, protocol, test_size, _ = load(args.table, args.data_root)
    settings = {"table": args.table, "classes": args.classes, "test_size": test_size, "protocol": protocol}
    settings_file = out / "settings.json"
    if settings_file.exists() and json.loads(settings_file.read_text()) != settings:
        raise SystemExit(f"{settings_file}: a study with other settings is in this folder; use another --out")
    settings_file.write_text(json.dumps(settings, indent=1))
    done = set()
    if log.exists():
        for line in log.read_text().splitlines():
            r = json.loads(line)
            done.add((r["index"], r["kind"], r["epochs"] // protocol["epochs"], r["init_seed"], r["order_seed"]))
    classes = list(select_classes(args.classes))
    jobs = [(c, *plan) for plan in PLAN for c in classes]
    jobs = [j for j in jobs if j not in done]
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(args.workers, _init_worker, (args.table, args.data_root)) as pool, log.open("a") as f:
        for record in tqdm(pool.imap(train_one, jobs), total=len(jobs), desc=out.name, unit="run"):
            f.write(json.dumps(record) + "\n")
            f.flush()


# ---- report -----------------------------------------------------------------------------------
def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy import stats

    return float(stats.spearmanr(a, b).statistic)


def _runs(folder: Path) -> tuple[dict, dict]:
    """The study's settings and runs: OUT/runs.jsonl while it runs, runs.jsonl.gz as committed."""
    settings = json.loads((folder / "settings.json").read_text())
    log = folder / "runs.jsonl"
    text = log.read_text() if log.exists() else gzip.decompress((folder / "runs.jsonl.gz").read_bytes()).decode()
    runs: dict = {}
    for line in text.splitlines():
        r = json.loads(line)
        runs[(r["kind"], r["epochs"], r["init_seed"], r["order_seed"], r["index"])] = np.asarray(r["errors"])
    return settings, runs


def _scores(runs: dict, kind: str, epochs: int, init: int, order: int, classes: list[int], n_test: int,
            sample: np.ndarray | None = None) -> np.ndarray:
    cols = slice(0, n_test) if sample is None else sample
    return np.array([runs[(kind, epochs, init, order, c)][cols].mean() for c in classes])


def _complete_classes(runs: dict, keys: list[tuple]) -> list[int]:
    sets = [{k[-1] for k in runs if k[:4] == key} for key in keys]
    return sorted(set.intersection(*sets))


def _better_half(scores: np.ndarray) -> np.ndarray:
    return scores <= np.median(scores)


def _interval(r: float, n: int) -> str:
    """A Spearman correlation with its approximate 95% interval."""
    return with_interval(r, spearman_interval(r, n))


def _agreement(a: np.ndarray, b: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    """Spearman over all classes and over the better half, the classes at or below the median of `reference`."""
    half = _better_half(reference)
    return _spearman(a, b), _spearman(a[half], b[half])


def report(folder: Path) -> list[str]:
    settings, runs = _runs(folder)
    E, table_test = settings["protocol"]["epochs"], settings["test_size"]
    seeds = [("seeds", E, s, s) for s in range(4)]
    classes = _complete_classes(runs, seeds)
    n_eval = len(next(iter(runs.values())))
    lines = [f"**{settings['table']}** ({len(classes)} classes with all four seeds; evaluation set of {n_eval} "
             f"samples, the table's test set being its first {table_test}). Seeds 0 and 1 are compared over all "
             "classes and over the better half chosen by seeds 2 and 3 (on the whole evaluation set), runs "
             "independent of the two compared:", ""]
    # 1. reproduction: seeds 0 and 1 on the table's test set against the shipped table
    from nb360.table.benchmark import Benchmark

    table = Benchmark.load(settings["table"])
    shipped = table.at_epoch("test_metric")[classes]
    for k, seed in enumerate(table.seeds[:2]):
        ours = _scores(runs, "seeds", E, seed, seed, classes, table_test)
        have = np.isfinite(shipped[:, k])
        if have.any():
            diff = np.abs(ours[have] - shipped[have, k]).max()
            lines.append(f"- Reproduction: seed {seed} on the table's test set against the shipped table's run, "
                         f"{int(have.sum())} classes: largest difference {diff:.2e}.")
    # 2. test-set size: agreement of seed 0 and 1 when both are scored on the first n samples
    sizes = [n for n in (25, 50, 100, 200, 300, 450, 900) if n <= n_eval]
    # the better half is chosen by runs independent of the two compared: choosing it by their own
    # mean would select classes where their noise happens to agree low, biasing the correlation down
    independent = (_scores(runs, *seeds[2], classes, n_eval) + _scores(runs, *seeds[3], classes, n_eval)) / 2
    half_n = int(_better_half(np.arange(len(classes), dtype=float)).sum())
    lines += ["", f"Spearman with approximate 95% intervals ({len(classes)} classes, better half {half_n}):", "",
              "| test samples | seed 0 vs 1, all classes | better half |", "|---|---|---|"]
    for n in sizes:
        a, b = (_scores(runs, *seeds[s], classes, n) for s in (0, 1))
        rho, rho_half = _agreement(a, b, independent)
        lines.append(f"| {n}{' (the table)' if n == table_test else ''} | {_interval(rho, len(classes))} "
                     f"| {_interval(rho_half, half_n)} |")
    # 3. variance split at the table's test size: between runs (training) and from the test samples
    errors = np.stack([[runs[(*key, c)][:table_test] for key in seeds] for c in classes])  # class x seed x sample
    class_scores = errors.mean(axis=2)
    between_classes = class_scores.mean(axis=1).var(ddof=1)
    run_noise = class_scores.var(axis=1, ddof=1).mean()
    test_noise = (errors.var(axis=2, ddof=1) / table_test).mean()  # a class score's variance from the draw of samples
    lines += ["", f"Variance of a single run's score at {table_test} test samples, averaged over classes: between runs "
              f"(training noise) {run_noise:.3g}, from the draw of test samples (evaluation noise) {test_noise:.3g}; "
              f"variance of the class means across classes: {between_classes:.3g}. The test set is the same for every "
              "run, so evaluation noise only adds to seed disagreement through the cell-by-sample interaction."]
    # 4. init against batch order
    cross = [("cross", E, 0, 1), ("cross", E, 1, 0)]
    both = _complete_classes(runs, seeds[:2] + cross)
    if len(both) >= 10:
        s00, s11, s01, s10 = (_scores(runs, *key, both, table_test) for key in (*seeds[:2], *cross))
        ref = independent[[classes.index(c) for c in both]]
        lines += ["", f"Init against batch order ({len(both)} classes; (i, o) = init seed i, batch-order seed o):", "",
                  "| runs compared | what differs | all classes | better half |", "|---|---|---|---|"]
        for label, what, a, b in [("(0,0) vs (0,1)", "batch order only", s00, s01),
                                  ("(1,1) vs (1,0)", "batch order only", s11, s10),
                                  ("(0,0) vs (1,0)", "init only", s00, s10),
                                  ("(1,1) vs (0,1)", "init only", s11, s01),
                                  ("(0,0) vs (1,1)", "both", s00, s11)]:
            rho, rho_half = _agreement(a, b, ref)
            lines.append(f"| {label} | {what} | {rho:.3f} | {rho_half:.3f} |")
    # 5. seeds averaged: split halves of the four seeds, on the table's test set and on the whole evaluation set
    lines += ["", "| test samples | seeds averaged per side | split-half Spearman, all classes | better half | "
              "Spearman-Brown from one seed, all | better half |", "|---|---|---|---|---|---|"]
    for n_test in dict.fromkeys((table_test, n_eval)):
        s = np.stack([_scores(runs, *key, classes, n_test) for key in seeds], axis=1)
        ref = s.mean(axis=1)
        # one seed against another, the half chosen by the other two seeds; two against two, by all four
        # (no independent runs are left: that half is biased low, the Spearman-Brown column is not)
        one = np.mean([_agreement(s[:, i], s[:, j], s[:, [k for k in range(4) if k not in (i, j)]].mean(1))
                       for i, j in ((0, 1), (2, 3), (0, 2), (1, 3))], axis=0)
        two = np.mean([_agreement(s[:, [0, 1]].mean(1), s[:, [2, 3]].mean(1), ref),
                       _agreement(s[:, [0, 2]].mean(1), s[:, [1, 3]].mean(1), ref)], axis=0)
        for k in (1, 2, 3, 4, 6, 8):
            predicted = [spearman_brown(r, k) for r in one]
            measured = {1: one, 2: two}.get(k)
            cells = f"{measured[0]:.3f} | {measured[1]:.3f}" if measured is not None else " | "
            lines.append(f"| {n_test} | {k} | {cells} | {predicted[0]:.3f} | {predicted[1]:.3f} |")
    # 6. epochs
    lines += ["", "| epochs (own cosine schedule) | classes | seed 0 vs 1, all classes | better half | mean score |",
              "|---|---|---|---|---|"]
    for m in (1, 2, 4):
        keys = [("seeds" if m == 1 else "epochs", E * m, s, s) for s in (0, 1)]
        have = _complete_classes(runs, keys)
        if len(have) >= 10:
            a, b = (_scores(runs, *key, have, table_test) for key in keys)
            rho, rho_half = _agreement(a, b, independent[[classes.index(c) for c in have]])
            lines.append(f"| {E * m} | {len(have)} | {rho:.3f} | {rho_half:.3f} | {np.mean((a + b) / 2):.4f} |")
    return lines + [""]


def cmd_report(args: argparse.Namespace) -> None:
    lines = [line for folder in args.folders for line in report(Path(folder))]
    print("\n".join(lines))
    if args.doc:
        from doc_section import write_section

        command = "python scripts/table_noise.py report " + " ".join(args.folders) + f" --doc {args.doc}"
        write_section(Path(args.doc), "noise", [f"Generated by `{command}`.", "", *lines])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="train the study's runs (resumable)")
    p.add_argument("--table", required=True, help="a shipped table whose protocol is studied")
    p.add_argument("--data-root", default=None, help="the table's data (default: $NB360_DATA)")
    p.add_argument("--classes", type=positive, default=128, help="iso classes in the sample (default: 128)")
    p.add_argument("--workers", type=positive, default=os.cpu_count(), help="processes (default: the CPU count)")
    p.add_argument("--out", required=True, help="folder of the study's runs")
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("report", help="print the measurements")
    p.add_argument("folders", nargs="+")
    p.add_argument("--doc", default=None, help="also write the measurements into this page's noise section")
    p.set_defaults(func=cmd_report)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
