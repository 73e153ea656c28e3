"""Maintain the shipped tables in precomputed/: their recipes, the high-fidelity sample, the manifest.

The recipes below are the one record of how each shipped file is made; `manifest` copies them into
precomputed/MANIFEST.toml together with what the files themselves say (protocol, completeness,
build time) and their checksums.

    python scripts/shipped_tables.py commands                # print every rebuild command
    python scripts/shipped_tables.py sample [--size 120]     # choose the high-fidelity sample (once)
    python scripts/shipped_tables.py add-best                # add the mini table's current best to it
    python scripts/shipped_tables.py fidelity                # mini vs high-fidelity agreement
    python scripts/shipped_tables.py manifest                # rewrite precomputed/MANIFEST.toml and the
                                                             # status section of docs/tables.md
    python scripts/shipped_tables.py portable                # no absolute paths in the tables' provenance

Commands run from the repository root; DATA stands for a data folder of your choice.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

import h5py
import numpy as np
from doc_section import write_section

from nb360.cli.options import positive
from nb360.spaces.nb201 import NUM_ARCHS, iso_class_representatives
from nb360.table import manifest
from nb360.table.benchmark import Benchmark, job_hardware, machine_in_words
from nb360.table.build import this_machine
from nb360.table.compare import RELIABILITY_GOAL, agreement, seed_reliability, spearman_interval, with_interval

ROOT = Path(__file__).resolve().parent.parent
PRECOMPUTED = ROOT / "precomputed"
HIFI_ARCHS = "nb201-darcyflow-hifi-sample.archs.txt"
# The Darcy table of the shipped pair, whose fidelity the high-fidelity samples measure (final test score).
DARCY_TABLE = f"{manifest.DEFAULT_TABLE}.h5"

DARCY_DATA = "nb360 data generate darcyflow --n 300 --resolution 85 --seed 0 --workers 2 --data-root DATA/darcy-mini"
BURGERS_DATA = "nb360 data generate burgers --n 1300 --resolution 1024 --seed 0 --data-root DATA/burgers-mini"
RECIPES = {
    "nb201-darcyflow-mini-e40.h5": {
        "description": "The Darcy table of the shipped pair: all 15,625 cells on generated Darcy Flow under the "
                       "protocol the seed-noise study chose (docs/tables.md): 15x15 grid (every 6th node of an "
                       "85x85 field solved at 421x421), 270 training / 30 validation / 300 test samples, C=4, N=1, "
                       "40 epochs, 2 seeds for every cell. Validation is scored after every epoch, test after "
                       "every 5th.",
        "rebuild": [DARCY_DATA,
                    "nb360 precompute --task darcyflow --epochs 40 --seeds 2 --archs all --C 4 --N 1 --resolution 15 "
                    "--test-size 300 --test-every 5 --num-cpus 2 --data-root DATA/darcy-mini "
                    "--out precomputed/nb201-darcyflow-mini-e40.h5",
                    "nb360 proxies --table precomputed/nb201-darcyflow-mini-e40.h5 --data-root DATA/darcy-mini"],
    },
    "nb201-darcyflow-hifi-sample.h5": {
        "description": "A stratified sample of the Darcy cells under a higher protocol, to measure the mini "
                       f"table's fidelity: 29x29 grid (every 3rd node of the same fields), C=8, N=1, 20 epochs, "
                       f"1 seed. The archs are listed in {HIFI_ARCHS}, which says how they were drawn.",
        "rebuild": [DARCY_DATA,
                    "nb360 precompute --task darcyflow --epochs 20 --seeds 1 "
                    f"--archs precomputed/{HIFI_ARCHS} --C 8 --N 1 --resolution 29 --num-cpus 2 "
                    "--data-root DATA/darcy-mini --out precomputed/nb201-darcyflow-hifi-sample.h5"],
        "archs": HIFI_ARCHS,
    },
    "nb201-darcyflow-hifi-sample-seed2.h5": {
        "description": "The high-fidelity sample retrained with seed 2, which no mini table uses, so that its "
                       "fidelity numbers share no training noise with the tables they judge: same archs, fields "
                       "and protocol as nb201-darcyflow-hifi-sample.",
        "rebuild": [DARCY_DATA,
                    "nb360 precompute --task darcyflow --epochs 20 --seed 2 --seeds 1 "
                    f"--archs precomputed/{HIFI_ARCHS} --C 8 --N 1 --resolution 29 --num-cpus 2 "
                    "--data-root DATA/darcy-mini --out precomputed/nb201-darcyflow-hifi-sample-seed2.h5"],
        "archs": HIFI_ARCHS,
    },
    "nb201-burgers-mini.h5": {
        "description": "All 15,625 cells on generated Burgers (FNO's 1D problem, NOT an NB360 task; made offline): "
                       "64 points (every 16th of a 1,024-point field solved at 8,192), 900 training / 100 "
                       "validation / 300 test samples, C=4, N=1, 10 epochs, batch 32, 3 seeds for every cell. The "
                       "second table of the shipped pair, replacing digits, whose cells differ by less than "
                       "their seed noise.",
        "rebuild": [BURGERS_DATA,
                    "nb360 precompute --task burgers --epochs 10 --seeds 3 --archs all --C 4 --N 1 --resolution 64 "
                    "--batch-size 32 --test-size 300 --test-every 5 --num-cpus 2 --data-root DATA/burgers-mini "
                    "--out precomputed/nb201-burgers-mini.h5",
                    "nb360 proxies --table precomputed/nb201-burgers-mini.h5 --data-root DATA/burgers-mini"],
    },
    "nb201-costs.h5": {
        "description": "Exact params and FLOPs of all 15,625 cells for the network of each of the ten NB360 "
                       "tasks at NB360's size (C=16, N=5, each task's input and output).",
        "rebuild": ["nb360 table costs --out precomputed/nb201-costs.h5"],
    },
}
HIFI = ("nb201-darcyflow-hifi-sample-seed2.h5", "nb201-darcyflow-hifi-sample.h5")
SAMPLE_SEED = 0


def _open(path: Path) -> Benchmark:
    """A shipped table as it is on disk: not checked against the manifest, which this script writes."""
    return Benchmark(Path(path))


def representatives_scored(table: Benchmark, metric: str = "test_metric") -> tuple[np.ndarray, np.ndarray]:
    """(official indices of the scored iso classes' rows, their scores): one row per class, as the
    hypothesis scripts count them."""
    rows = table.class_rows(metric)
    reps = rows[rows >= 0]
    return reps, table.final(metric)[reps]


def cmd_sample(args: argparse.Namespace) -> None:
    """Stratify the mini table's scored classes into `bins` quantile bins of the final test score and
    draw the same number from each, so the sample spans the whole score range."""
    out = PRECOMPUTED / HIFI_ARCHS
    if out.exists():
        raise SystemExit(f"{out} exists: the sample is chosen once (use add-best to extend it)")
    reps, scores = representatives_scored(_open(PRECOMPUTED / DARCY_TABLE))
    rng = np.random.default_rng(SAMPLE_SEED)
    edges = np.quantile(scores, np.linspace(0, 1, args.bins + 1))
    per_bin = args.size // args.bins
    chosen = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        members = reps[(scores >= lo) & (scores <= hi)]
        chosen += rng.choice(np.setdiff1d(members, chosen), size=per_bin, replace=False).tolist()
    header = (f"# High-fidelity sample: {len(chosen)} iso-class representatives of {DARCY_TABLE}, "
              f"{per_bin} from each of {args.bins} quantile bins of the final test score over the "
              f"{len(reps)} classes scored when it was drawn (seed {SAMPLE_SEED}); official indices.\n")
    out.write_text(header + "\n".join(str(i) for i in sorted(chosen)) + "\n")
    print(f"{out}: {len(chosen)} archs from {len(reps)} scored classes")


def cmd_add_best(args: argparse.Namespace) -> None:
    """Append the mini table's best arch (final test score) to the sample, so the regret of its pick
    can be measured at high fidelity."""
    mini = _open(PRECOMPUTED / DARCY_TABLE)
    best = mini.best()[0].iso_class().index
    path = PRECOMPUTED / HIFI_ARCHS
    listed = {int(line) for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")}
    if best in listed:
        print(f"the mini table's best class, {best}, is already in the sample")
        return
    with path.open("a") as f:
        f.write(f"# added: {DARCY_TABLE}'s best class when {mini.completeness()['archs_with_a_run']} archs were scored\n{best}\n")
    print(f"added {best}")


def agreement_with_interval(low: np.ndarray, high: np.ndarray) -> dict:
    """`agreement` with Spearman's approximate 95% interval."""
    a = agreement(low, high)
    return {**a, "spearman_interval": list(spearman_interval(a["spearman"], a["n"]))}


def fidelity(mini_name: str) -> dict | None:
    """Agreement of the mini table's final test scores (the mean over its seeds) with each
    high-fidelity sample's, over the sampled iso classes both scored (one row per class: members
    share their representative's run, so counting them would weigh classes by their size), with
    Spearman's 95% interval.

    A run's noise depends on its seed (the order of the training batches is the seed's alone), so a
    sample trained with a seed of the mini table shares part of its noise, which raises the
    agreement. The headline is the first sample of `HIFI` that shares no seed with the mini table;
    the others follow under `shared_seed`. None while no sample has 4 classes in common with it."""
    mini = _open(PRECOMPUTED / mini_name)
    found = []
    for hifi_name in HIFI:
        if not (PRECOMPUTED / hifi_name).exists():
            continue
        hifi = _open(PRECOMPUTED / hifi_name)
        reps, high = representatives_scored(hifi)
        low = mini.final("test_metric")[reps]
        if (np.isfinite(low) & np.isfinite(high)).sum() < 4:
            continue
        found.append({"against": hifi_name, "metric": "test_metric", "seeds": mini.seeds, "against_seeds": hifi.seeds,
                      "shares_a_seed": bool(set(mini.seeds) & set(hifi.seeds)), **agreement_with_interval(low, high)})
    if not found:
        return None
    found.sort(key=lambda f: f["shares_a_seed"])  # stable: HIFI's order among equals
    headline, *others = found
    return {**headline, **({"shared_seed": others[0]} if others else {})}


def seed_agreement(table: Benchmark) -> dict | None:
    """Agreement of the first two seeds' final test scores over the iso classes both scored: the
    seed noise of the protocol, which no other protocol's ranking can predict; with the reliability
    of the table's score (`compare.seed_reliability`: agreement over every pair of seeds) for each
    number of seeds a class has, over all classes and over the better half. None while fewer than
    4 classes have both of the first two seeds."""
    if len(table.seeds) < 2:
        return None
    rows = table.class_rows("test_metric")
    scores = table.at_epoch("test_metric")[rows[rows >= 0]]
    first, second = scores[:, 0], scores[:, 1]
    if (np.isfinite(first) & np.isfinite(second)).sum() < 4:
        return None
    r = seed_reliability(scores)
    return {"seeds": table.seeds[:2], "metric": "test_metric", **agreement(first, second),
            "all_pairs_spearman": r["agreement"], "better_half_spearman": r["better_half_agreement"],
            "better_half_interval": list(r["better_half_interval"]), "better_half_classes": r["better_half_classes"],
            "reliability_by_seeds": {str(k): {"classes": n, "all": all_, "better_half": better}
                                     for k, (n, all_, better) in r["by_seeds"].items()}}


def cmd_fidelity(args: argparse.Namespace) -> None:
    print(DARCY_TABLE, fidelity(DARCY_TABLE))


def hardware() -> str:
    return machine_in_words(this_machine())


def entry(name: str, before: dict | None = None) -> dict:
    """The manifest entry of shipped file `name`; `before` is its entry in the manifest as it stands."""
    path = PRECOMPUTED / name
    recipe = RECIPES[name]
    info = {"description": recipe["description"], "rebuild": recipe["rebuild"]}
    if name.endswith("-costs.h5"):
        info["content"] = "costs"
    else:
        table = _open(path)
        c = table.completeness()
        selected = _selected_archs(recipe)  # a sample table is complete when its sample is
        runs_total = (len(selected) if selected is not None else NUM_ARCHS) * len(table.seeds)
        info.update(content="table", task=table.task, metric=table.metric, seeds=table.seeds, epochs=table.epochs,
                    nb360_version=table.provenance.get("nb360_version", "unknown"),
                    archs_with_a_run=c["archs_with_a_run"], runs_done=c["done"], runs_total=runs_total,
                    runs_failed=c["failed"], complete=c["done"] == runs_total,
                    build_hours=round(float(table.attrs.get("build_seconds", float("nan"))) / 3600, 2),
                    build_hardware=hardware())
        if table.builds:  # jobs from before the build log are in build_hours only
            info.update(build_jobs_logged=len(table.builds),
                        build_hardware_logged=list(dict.fromkeys(job_hardware(job) for job in table.builds)))
        info["protocol"] = {k: v for k, v in sorted(table.protocol.items()) if v is not None}
        if proxies := proxy_summary(path):
            info["proxies"] = proxies
        if name == DARCY_TABLE and (found := fidelity(name)):
            info["fidelity"] = _rounded(found)
        if seeds := seed_agreement(table):
            info["seed_agreement"] = _rounded(seeds)
    checksum = manifest.sha256(path)
    # The commit a file was made at: an unchanged file keeps the one recorded with it, so that
    # regenerating the manifest changes only the entries of files that changed.
    if before and before.get("sha256") == checksum and "commit" in before:
        info["commit"] = before["commit"]
    else:
        info["commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                        text=True).stdout.strip()
    info["size_bytes"] = path.stat().st_size
    info["sha256"] = checksum
    return info


def _rounded(numbers: dict) -> dict:
    return {k: (round(v, 4) if isinstance(v, float) else _rounded(v) if isinstance(v, dict) else v)
            for k, v in numbers.items()}


def proxy_summary(path: Path) -> dict | None:
    """The zero-cost proxy columns of a table: names, how many cells were computed (not NaN; a
    proxy is -inf or NaN by definition for a few cells, jacob_cov for those with no input-output
    path) and the settings they were computed with (`nb360 proxies` refuses to mix settings)."""
    with h5py.File(path, "r") as f:
        if not len(f["proxies"]):
            return None
        names = sorted(f["proxies"])
        cells = max(int((~np.isnan(f["proxies"][n][()])).sum()) for n in names)
        settings = json.loads(f["proxies"][names[0]].attrs.get("settings", "{}"))
    return {"names": names, "cells_computed": cells,
            "settings": {k: v for k, v in sorted(settings.items()) if v is not None}}


def _selected_archs(recipe: dict) -> list[int] | None:
    """The archs a sample table's build selects (every member of the listed classes), None for all."""
    if "archs" not in recipe:
        return None
    from nb360.table.build import select_classes

    return [i for members in select_classes(PRECOMPUTED / recipe["archs"]).values() for i in members]


def status_lines(entries: dict[str, dict]) -> list[str]:
    """The status section of docs/tables.md: how complete each table is, seed by seed, what its
    build cost, and the measured fidelity, from the manifest entries and the files."""
    lines = ["| file | iso classes with a final test score, per seed | cells with a final test score | "
             "runs done / planned | build hours (all resumes) | MB |", "|---|---|---|---|---|---|"]
    fidelity_rows, seed_rows = [], []
    for name, info in entries.items():
        if info["content"] != "table":
            continue
        table, selected = _open(PRECOMPUTED / name), _selected_archs(RECIPES[name])
        classes = iso_class_representatives() if selected is None else np.unique(table.iso_classes()[selected])
        scored = np.isfinite(table.at_epoch("test_metric"))
        per_seed = ", ".join(f"seed {seed}: {int(scored[classes, k].sum()):,}" for k, seed in enumerate(table.seeds))
        cells = int(np.isfinite(table.final("test_metric")).sum())
        lines.append(f"| `{name}` | {per_seed} (of {len(classes):,}) | {cells:,} of {len(selected or range(NUM_ARCHS)):,} "
                     f"| {info['runs_done']:,} / {info['runs_total']:,} | {info['build_hours']:.2f} "
                     f"| {info['size_bytes'] / 2**20:.1f} |")
        if f := info.get("fidelity"):
            for a in (f, f.get("shared_seed")):
                if a:
                    shared = "shares a seed" if a["shares_a_seed"] else "independent seeds"
                    fidelity_rows.append(_agreement_row(
                        f"`{name}` (seeds {', '.join(map(str, a['seeds']))}) | `{a['against']}` (seed "
                        f"{', '.join(map(str, a['against_seeds']))}: {shared})", a, table.metric))
        if a := info.get("seed_agreement"):
            by_seeds = "; ".join(f"{k} seed{'s' * (int(k) > 1)} ({r['classes']:,} classes): {r['all']:.3f} / "
                                 f"{r['better_half']:.3f}" for k, r in a["reliability_by_seeds"].items())
            seed_rows.append(_agreement_row(f"`{name}` | seed {a['seeds'][0]} vs seed {a['seeds'][1]}", a, table.metric)
                             + f" {a['all_pairs_spearman']:.3f} / "
                             f"{with_interval(a['better_half_spearman'], a['better_half_interval'])} "
                             f"({a['better_half_classes']:,} classes) | {by_seeds} |")
    if all((PRECOMPUTED / name).exists() for name in HIFI):  # the samples' own seed noise bounds every row
        first, second = (_open(PRECOMPUTED / name) for name in reversed(HIFI))
        reps, scores = representatives_scored(first)
        a = agreement_with_interval(scores, second.final("test_metric")[reps])
        fidelity_rows.append(_agreement_row(
            f"`{HIFI[1]}` (seed {first.seeds[0]}) | `{HIFI[0]}` (seed {second.seeds[0]}): the high-fidelity "
            "protocol's own seed noise, the ceiling of the rows above", a, first.metric))
    lines += ["", f"Built on {hardware()}. Fidelity, on the final test score over the sampled iso classes "
              "(`python scripts/shipped_tables.py fidelity`; the regret is that of the class the mini table "
              "ranks best among them, measured at high fidelity; Spearman with its 95% interval). A sample "
              "trained with a seed the table also used shares part of its noise (the order of the training "
              "batches is the seed's alone) and so overstates the fidelity; the headline, first for each "
              "table, is against a sample with independent seeds:", "",
              "| table | against | classes | Spearman | Kendall | top-10% overlap | regret of the pick |",
              "|---|---|---|---|---|---|---|", *fidelity_rows]
    if seed_rows:
        lines += ["", "Seed noise: the same measures between two seeds of one protocol, over the iso classes "
                  "both seeds scored (the regret is that, at the second seed, of the class the first ranks "
                  "best). Those classes are a uniform sample where the build order is random, so they are "
                  "not comparable with the fidelity rows above, whose stratified sample spreads evenly over "
                  "the score range and so gives higher rank correlations for the same noise. The last two "
                  "columns are over every pair of the table's seeds: their Spearman (each pair over the "
                  "classes both scored, weighted by them) over all classes and over the better half (at or "
                  "below the median of the pair's mean, where searches end; chosen by the same seeds, which "
                  "biases it low), and from it the reliability of the table's score, the mean of a class's "
                  "seeds, for each number of seeds the classes have (Spearman-Brown; for two seeds the "
                  f"split-half reliability); the goal is {RELIABILITY_GOAL[0]} and {RELIABILITY_GOAL[1]}:", "",
                  "| table | compared | classes | Spearman | Kendall | top-10% overlap | regret of the pick "
                  "| all pairs: Spearman, all / better half | reliability of the score, all / better half |",
                  "|---|---|---|---|---|---|---|---|---|", *seed_rows]
    return lines


def _agreement_row(first_cells: str, a: dict, metric: str) -> str:
    spearman = with_interval(a["spearman"], a["spearman_interval"]) if "spearman_interval" in a else f"{a['spearman']:.3f}"
    return (f"| {first_cells} | {a['n']:,} | {spearman} | {a['kendall']:.3f} | "
            f"{a['top_overlap']:.2f} | {a['regret_of_pick']:.4f} {metric} |")


def cmd_manifest(args: argparse.Namespace) -> None:
    before = manifest.read(PRECOMPUTED)
    entries = {name: entry(name, before.get(name)) for name in RECIPES if (PRECOMPUTED / name).exists()}
    header = ("The shipped tables: how each was made and its sha256, which Benchmark.load checks.\n"
              "Written by scripts/shipped_tables.py manifest; do not edit by hand.")
    print(manifest.write(PRECOMPUTED, entries, header=header))
    write_section(ROOT / "docs" / "tables.md", "shipped", status_lines(entries))


def cmd_portable(args: argparse.Namespace) -> None:
    """Rewrite each shipped table's provenance and build log without absolute paths of the machine
    that built it (the manifest's checksums change: run `manifest` after)."""
    from nb360.table.schema import TableWriter

    for name, recipe in RECIPES.items():
        path = PRECOMPUTED / name
        if path.exists() and not name.endswith("-costs.h5"):
            with TableWriter(path) as writer:
                writer.make_portable()
            print(f"{path}: provenance and build log made portable")


def cmd_commands(args: argparse.Namespace) -> None:
    for name, recipe in RECIPES.items():
        print(f"# {name}\n" + "\n".join(recipe["rebuild"]) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("commands").set_defaults(func=cmd_commands)
    p = sub.add_parser("sample")
    p.add_argument("--size", type=positive, default=120)
    p.add_argument("--bins", type=positive, default=10)
    p.set_defaults(func=cmd_sample)
    sub.add_parser("add-best").set_defaults(func=cmd_add_best)
    sub.add_parser("fidelity").set_defaults(func=cmd_fidelity)
    sub.add_parser("manifest").set_defaults(func=cmd_manifest)
    sub.add_parser("portable").set_defaults(func=cmd_portable)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
