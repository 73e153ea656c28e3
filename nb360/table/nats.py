"""Import NATS-Bench topology files into nb360 tables.

NATS-Bench (`nats_bench`, github.com/D-X-Y/NATS-Bench) publishes its NB201-space results as
`NATS-tss-v1_0-<md5>.pickle.pbz2`, and NAS-Bench-360 wrote its Darcy Flow and NinaPro tables in the
same format with NATS-Bench's own collection script (NAS-Bench-360 `precompute/*/benchmark/
tss-collect.py`). `import_nats` reads either, for one dataset and one training length (`hp`), into
an nb360 table: the task's metric (lower is better) per epoch and seed, and the costs. The details
of the format and of every conversion are in docs/tables.md ("Importing NATS-format tables").

Unpickling can run arbitrary code, so the files are read by an unpickler that builds plain data only
and refuses every other global with `UnsafePickleError`; `nats_bench` need not be installed.
"""

from __future__ import annotations

import bz2
import hashlib
import io
import os
import pickle
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from tqdm.auto import tqdm

from nb360 import cards
from nb360.spaces.nb201 import NUM_ARCHS, Arch
from nb360.table.schema import TableWriter, create

# nats_bench/api_utils.py: PICKLE_EXT; the fast-mode archive holds meta.pickle.pbz2 and one
# {index:06d}.pickle.pbz2 per arch (NATS-Bench api_utils.py `reload`, which also tries {index:d}).
PICKLE_EXT = ".pickle.pbz2"
_META_NAME = f"meta{PICKLE_EXT}"
# Keys NATStopology.__init__ requires of a benchmark file (nats_bench/api_topology.py).
_FILE_KEYS = ("meta_archs", "arch2infos", "evaluated_indexes")


# ---- what each dataset means ---------------------------------------------------------------
def error_from_percent(accuracy: float) -> float:
    """NATS-Bench's top-1 accuracy in percent (xautodl `obtain_accuracy` multiplies by 100) as a
    0-1 error."""
    return (100.0 - accuracy) / 100.0


def percent_from_error(error: float) -> float:
    return 100.0 * (1.0 - error)


def relative_l2_from_accuracy(accuracy: float) -> float:
    """NAS-Bench-360's Darcy Flow "accuracy" is 1 - relative L2 (precompute/darcyflow/xautodl/
    procedures/funcs_nasbench.py `procedure`: `prec1 = 1 - loss`, the loss being LpLoss's mean
    relative L2 over the batch), so the relative L2 is 1 - accuracy, which equals the stored loss."""
    return 1.0 - accuracy


def accuracy_from_relative_l2(l2: float) -> float:
    return 1.0 - l2


def _negated(value: float) -> float:
    return -value


# Each nb360 metric as the "accuracy" (higher is better) of NATS-format files, and back:
# (to accuracy, to metric). NATS-Bench and NAS-Bench-360's NinaPro file: top-1 in percent;
# NAS-Bench-360's Darcy Flow file: 1 - relative L2. Metrics no NATS-format file holds follow the
# nearest of these: a "1 - score" error as the score in percent (mAP, AUROC, macro F1), PSICOV's
# MAE8 (no score to subtract from) negated.
ACCURACY: dict[str, tuple[Callable[[float], float], Callable[[float], float]]] = {
    "zero_one_error": (percent_from_error, error_from_percent),
    "relative_l2": (accuracy_from_relative_l2, relative_l2_from_accuracy),
    **{name: (percent_from_error, error_from_percent) for name in
       ("record_vote_macro_f1_error", "clip_map_error", "auroc_error", "cosmic_auroc_error")},
    "psicov_mae8": (_negated, _negated),
}


@dataclass(frozen=True)
class NatsDataset:
    """How one dataset of a NATS-format file becomes a table.

    `val` and `test` are the evaluation-set names whose scores fill val_metric and test_metric, as
    NATS-Bench's `get_more_info` picks them (nats_bench/api_topology.py); a set a file lacks for
    some epoch stays NaN there. `val` is None where the files have no validation set at all.
    """

    val: str | None
    test: str
    metric: str
    benchmark: str

    def to_metric(self, accuracy: float) -> float:
        return ACCURACY[self.metric][1](accuracy)


# The datasets of NATS-Bench's and NAS-Bench-360's files: (metric, benchmark). A file that
# `nb360 table export` wrote names the task of its table, and that task's card gives the metric.
DATASETS: dict[str, tuple[str, str]] = {
    "cifar10-valid": ("zero_one_error", "NATS-Bench"),
    "cifar10": ("zero_one_error", "NATS-Bench"),
    "cifar100": ("zero_one_error", "NATS-Bench"),
    "ImageNet16-120": ("zero_one_error", "NATS-Bench"),
    "darcyflow": ("relative_l2", "NAS-Bench-360"),
    "ninapro": ("zero_one_error", "NAS-Bench-360"),
}


# Classes of NATS-Bench's datasets that have no nb360 task card (xautodl get_datasets).
NATS_CLASSES = {"cifar10-valid": 10, "cifar10": 10, "ImageNet16-120": 120}


def class_count(dataset: str) -> int:
    """The network's outputs on `dataset` (NATS-Bench's `class_num`): the task card's out_size."""
    return int(cards.load("tasks", dataset)["out_size"]) if dataset in cards.names("tasks") else NATS_CLASSES[dataset]


def check_dataset(task: str) -> None:
    """`task` must be a dataset whose accuracies nb360 can convert."""
    if task not in DATASETS and task not in cards.names("tasks"):
        raise ValueError(f"unknown NATS dataset {task!r}; supported: {', '.join(DATASETS)}, and the nb360 tasks "
                         f"({', '.join(cards.names('tasks'))}) of exported tables")


def dataset_spec(task: str, eval_names: set[str]) -> NatsDataset:
    """The conversion for `task` in a file whose runs hold the evaluation sets `eval_names`.

    The sets are get_more_info's: cifar10-valid -> valid x-valid, test ori-test; cifar10 -> test
    ori-test (x-valid tried, absent in the published files); any other name -> valid x-valid, test
    x-test, and ori-test as "valtest". NAS-Bench-360's files evaluate on one held-out set only,
    stored as ori-test (precompute/*/benchmark/main-tss.py: ValLoaders = {"ori-test": valid_loader};
    tss-collect.py sizes it as the test set, "darcyflow-test": 100, "ninapro-test": 659), and
    NAS-Bench-360's search scripts report its `valtest-loss` as the final score; so where a file has
    no x-test, ori-test fills test_metric, and without x-valid val_metric stays NaN (the protocol's
    val_set says so: null).
    """
    check_dataset(task)
    metric, benchmark = DATASETS.get(task) or (cards.load("tasks", task)["metric"], "nb360")
    val = "x-valid" if task == "cifar10-valid" or "x-valid" in eval_names else None
    test = "x-test" if "x-test" in eval_names and task not in ("cifar10", "cifar10-valid") else "ori-test"
    return NatsDataset(val, test, metric, benchmark)


# ---- the restricted unpickler -----------------------------------------------------------------
class UnsafePickleError(pickle.UnpicklingError):
    """A pickle references code that a NATS-Bench file never needs."""


class _StateDict(dict):
    """Stand-in for NATS-Bench's `ArchResults` / `ResultsCount` should a pickle hold the objects
    rather than their `state_dict()`s (the published files hold state dicts): the object's
    attributes become the dict's items, the same shape as a state dict."""

    def __setstate__(self, state: dict) -> None:
        self.update(state)


def _numeric_dtype(spec: Any, align: bool = False, copy: bool = False) -> np.dtype:
    """numpy's dtype reconstructor, limited to the numeric scalar types NATS files hold."""
    if not isinstance(spec, str):
        raise UnsafePickleError(f"refusing numpy.dtype({spec!r}): only numeric dtypes given by name are read")
    return np.dtype(spec, align, copy)


def _numeric_scalar(dtype: Any, data: Any = None) -> int | float | complex | bool:
    """numpy's scalar reconstructor (`numpy.core.multiarray.scalar`) for numeric dtypes, as a
    Python number. The dtype is rebuilt from its type string, so a pickled dtype state cannot make
    the bytes be read as anything but a plain number."""
    if not isinstance(dtype, np.dtype) or not isinstance(data, bytes):
        raise UnsafePickleError("refusing a numpy scalar that is not a numeric dtype and its bytes")
    clean = np.dtype(dtype.str)
    if clean.kind not in "biufc" or len(data) != clean.itemsize:
        raise UnsafePickleError(f"refusing a numpy scalar of dtype {dtype.str!r} ({len(data)} bytes): not a plain number")
    return np.frombuffer(data, dtype=clean)[0].item()


# Every global the files may name, mapped to a constructor of plain data. Found in the published
# archive files (NATS-Bench fake_torch_dir/NATS-tss-v1_0-3ffb9-simple/*.pickle.pbz2):
# collections.OrderedDict (each file's {hp: ...} and ResultsCount.train_times) and numpy float64
# scalars (ResultsCount.params, .latency), pickled by numpy < 2 as numpy.core.multiarray.scalar.
_SAFE_GLOBALS: dict[tuple[str, str], Callable] = {
    ("collections", "OrderedDict"): dict,
    ("numpy", "dtype"): _numeric_dtype,
    ("numpy.core.multiarray", "scalar"): _numeric_scalar,
    ("numpy._core.multiarray", "scalar"): _numeric_scalar,
    ("nats_bench.api_utils", "ArchResults"): _StateDict,
    ("nats_bench.api_utils", "ResultsCount"): _StateDict,
}


class _NatsUnpickler(pickle.Unpickler):
    """Builds dicts, lists, tuples, sets, strings and numbers; any other global is refused."""

    def __init__(self, file: BinaryIO, origin: str):
        super().__init__(file)
        self.origin = origin

    def find_class(self, module: str, name: str) -> Callable:
        try:
            return _SAFE_GLOBALS[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"{self.origin}: refusing to load {module}.{name}: a NATS-Bench file holds plain data "
                f"only (allowed: {', '.join(f'{m}.{n}' for m, n in _SAFE_GLOBALS)}); this pickle would run other code"
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError(f"{self.origin}: refusing a persistent id (e.g. a torch tensor): not plain data")


def safe_load(path: str | os.PathLike) -> Any:
    """Unpickle one bz2-compressed NATS-Bench pickle with the restricted unpickler."""
    with _damage_named(path):
        with bz2.open(path, "rb") as f:
            return _NatsUnpickler(f, str(path)).load()


def _safe_loads(raw: bytes, path: Path) -> Any:
    with _damage_named(path):
        return _NatsUnpickler(io.BytesIO(bz2.decompress(raw)), str(path)).load()


@contextmanager
def _damage_named(path: str | os.PathLike):
    """A file that is not a bz2 pickle, or is cut short, raises ValueError naming it (bz2 and pickle
    name neither the file nor what was expected); refusals of unsafe content pass through."""
    try:
        yield
    except UnsafePickleError:
        raise
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError) as error:
        if isinstance(error, FileNotFoundError):
            raise
        raise ValueError(f"{path}: not a readable NATS-Bench pickle (expected a bz2-compressed pickle, "
                         f".pickle.pbz2; {type(error).__name__}: {error})") from None


# ---- reading a source -------------------------------------------------------------------------
def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_file(path: Path) -> tuple[dict, dict]:
    """The benchmark file of `fast_mode=False`: one dict with every arch's results."""
    origin = {"source": path.name, "sha256": _sha256_file(path), "layout": "single file"}
    data = safe_load(path)
    if not isinstance(data, dict) or any(key not in data for key in _FILE_KEYS):
        raise ValueError(f"{path}: not a NATS-Bench benchmark file (a dict with keys {', '.join(_FILE_KEYS)})")
    return data, origin


def _read_archive(folder: Path, progress: bool) -> tuple[dict, dict]:
    """The archive of `fast_mode=True`: meta.pickle.pbz2 plus one file per evaluated arch, read into
    the single-file layout. Its sha256 is that of the `sha256sum` lines ("<hex>  <name>\\n") of the
    files read, in name order."""
    meta_path = folder / _META_NAME
    if not meta_path.is_file():
        raise ValueError(f"{folder}: not a NATS-Bench archive (no {_META_NAME})")
    meta = safe_load(meta_path)
    lines = {meta_path.name: _sha256_file(meta_path)}
    arch2infos = {}
    for index in tqdm(range(len(meta["meta_archs"])), desc=f"read {folder.name}", disable=not progress):
        for name in (f"{index:06d}{PICKLE_EXT}", f"{index:d}{PICKLE_EXT}"):
            path = folder / name
            if path.is_file():
                raw = path.read_bytes()
                lines[name] = hashlib.sha256(raw).hexdigest()
                arch2infos[index] = _safe_loads(raw, path)
                break
    listing = "".join(f"{lines[name]}  {name}\n" for name in sorted(lines))
    origin = {"source": folder.name, "sha256": hashlib.sha256(listing.encode()).hexdigest(), "layout": "archive"}
    return {**meta, "arch2infos": arch2infos}, origin


def read_nats(source: str | os.PathLike, progress: bool = False) -> tuple[dict, dict]:
    """A NATS-format source (benchmark file or fast-mode archive folder) as one dict
    {meta_archs, arch2infos: {index: {hp: ArchResults state}}, ...}, and where it came from."""
    source = Path(source)
    if source.is_dir():
        return _read_archive(source, progress)
    if source.is_file():
        return _read_file(source)
    raise FileNotFoundError(f"{source}: no NATS-Bench benchmark file or archive folder there")


# ---- from NATS records to table records ---------------------------------------------------------
def check_meta_archs(meta_archs: list[str], origin: str) -> None:
    """Every arch string must sit at its official index, so that rows line up with every table."""
    if len(meta_archs) > NUM_ARCHS:
        raise ValueError(f"{origin}: {len(meta_archs)} architectures, the NB201 space has {NUM_ARCHS}")
    for i, arch_str in enumerate(meta_archs):
        index = Arch.from_str(arch_str).index
        if index != i:
            raise ValueError(f"{origin}: arch {arch_str!r} is at position {i} but its official index is {index}")


def _runs(arch_info: dict, dataset: str) -> dict[int, dict]:
    """{seed: ResultsCount state} of one arch on one dataset, seeds in the order of
    ArchResults.dataset_seed (sorted by ArchResults.update)."""
    seeds = arch_info.get("dataset_seed", {}).get(dataset, [])
    return {int(seed): arch_info["all_results"][(dataset, seed)] for seed in seeds}


def collect_runs(data: dict, hp: str, task: str, origin: str) -> dict[int, dict[int, dict]]:
    """{index: {seed: ResultsCount state}} of every arch with a run of `task` at `hp`; checks that
    each entry is the arch its index says and that the file has this hp and dataset at all."""
    meta_archs = data["meta_archs"]
    runs, hps, datasets = {}, set(), set()
    for index, hp2info in (data["arch2infos"] or {}).items():
        hps.update(hp2info)
        if hp not in hp2info:
            continue
        arch_info = hp2info[hp]
        datasets.update(arch_info.get("dataset_seed", {}))
        if int(index) >= len(meta_archs) or arch_info["arch_str"] != meta_archs[index] or arch_info["arch_index"] != index:
            raise ValueError(f"{origin}: entry {index} holds arch {arch_info['arch_index']} {arch_info['arch_str']!r}, "
                             f"not the arch at that index")
        if by_seed := _runs(arch_info, task):
            runs[int(index)] = by_seed
    if hp not in hps:
        raise ValueError(f"{origin}: no results for hp={hp!r}; the file has hp {', '.join(sorted(hps)) or 'none'}")
    if not runs:
        raise ValueError(f"{origin}: no runs of {task!r} at hp={hp!r}; datasets in the file: {', '.join(sorted(datasets))}")
    return runs


def run_records(run: dict, spec: NatsDataset, epochs: int) -> list[dict]:
    """One ResultsCount state as per-epoch table records (the keys of nb360.table.schema.CURVES).

    train_seconds is the sum of `train_times` up to the epoch, as ResultsCount.get_train's
    `all_time`; anything the run lacks for an epoch is NaN, as get_more_info leaves it out.
    """
    n = int(run["epochs"])
    if not 1 <= n <= epochs:
        raise ValueError(f"a run of {run['arch_config']['arch_str']} has {n} epochs, the table {epochs}")
    times = run.get("train_times") or {}
    elapsed = np.cumsum([float(times.get(e, np.nan)) for e in range(n)])

    def metric(values: dict, key: Any) -> float:
        return spec.to_metric(float(values[key])) if key in values else float("nan")

    def eval_metric(split: str | None, e: int) -> float:
        return float("nan") if split is None else metric(run["eval_acc1es"], f"{split}@{e}")

    return [
        {
            "train_loss": float(run["train_losses"].get(e, np.nan)),
            "train_metric": metric(run["train_acc1es"], e),
            "val_metric": eval_metric(spec.val, e),
            "test_metric": eval_metric(spec.test, e),
            "train_seconds": float(elapsed[e]),
        }
        for e in range(n)
    ]


def _consistent(values: list[float], seeds: list[int]) -> float:
    """ArchResults.get_compute_costs' legacy fix: where seeds disagree (at 5 decimals), NATS-Bench
    trusts seed 888; without seed 888 the mean is kept."""
    if len({f"{v:.5f}" for v in values}) > 1 and 888 in seeds:
        return values[seeds.index(888)]
    return float(np.mean(values))


def arch_costs(by_seed: dict[int, dict]) -> tuple[float, float, float]:
    """(params, FLOPs, latency ms) of one arch as ArchResults.get_compute_costs computes them, in
    units: NATS stores params / 1e6 and FLOPs / 1e6 (xautodl get_model_infos), latency in seconds
    (ResultsCount.get_latency: the mean of its list; None or <= 0 means not measured)."""
    seeds = list(by_seed)
    params = _consistent([float(r["params"]) for r in by_seed.values()], seeds)
    flops = _consistent([float(r["flop"]) for r in by_seed.values()], seeds)
    latencies = [float(np.mean(r["latency"])) for r in by_seed.values() if r.get("latency")]
    latencies = [x for x in latencies if x > 0]
    latency_ms = 1e3 * float(np.mean(latencies)) if latencies else float("nan")
    # params and FLOPs are counts: round away the float noise of the / 1e6 and * 1e6
    return float(np.round(params * 1e6)), float(np.round(flops * 1e6)), latency_ms


def cost_columns(runs: dict[int, dict[int, dict]]) -> dict[str, np.ndarray]:
    """Whole per-arch cost columns for TableWriter.set_costs, NaN where an arch has no run."""
    columns = {name: np.full(NUM_ARCHS, np.nan) for name in ("params", "flops", "latency_ms")}
    for index, by_seed in runs.items():
        columns["params"][index], columns["flops"][index], columns["latency_ms"][index] = arch_costs(by_seed)
    return columns


# ---- the importer ----------------------------------------------------------------------------
def import_nats(source: str | os.PathLike, task: str, out: str | os.PathLike, hp: str | int = "200",
                overwrite: bool = False, progress: bool = True) -> Path:
    """Write an nb360 table at `out` from a NATS-format source for one dataset and hp.

    `source` is a benchmark file (`NATS-tss-v1_0-*.pickle.pbz2`) or a fast-mode archive folder;
    `task` a dataset inside it (see DATASETS, dataset_spec); `hp` the training length key ("12", "200").
    Seeds are those present in the file, epochs = hp; archs or seeds without a run stay missing.
    """
    check_dataset(task)
    hp, out = str(hp), Path(out)
    if out.exists() and not overwrite:  # fail before the long read; `create` checks again
        raise FileExistsError(f"{out}: a table is already there; choose another path or replace it (overwrite=True, --overwrite)")
    data, origin = read_nats(source, progress)
    check_meta_archs(data["meta_archs"], origin["source"])
    runs = collect_runs(data, hp, task, origin["source"])
    spec = dataset_spec(task, {name for by_seed in runs.values() for run in by_seed.values()
                               for name in run.get("eval_names", ())})
    first = next(iter(runs[min(runs)].values()))  # C and N are the same for every run
    seeds = sorted({seed for by_seed in runs.values() for seed in by_seed})
    protocol = {
        "benchmark": spec.benchmark, "dataset": task, "hp": hp, "val_set": spec.val, "test_set": spec.test,
        "C": first["arch_config"]["channel"], "N": first["arch_config"]["num_cells"],
    }
    provenance = {**origin, "importer": "nb360.table.nats.import_nats", "hp": hp, "dataset": task}
    create(out, task=task, metric=spec.metric, seeds=seeds, epochs=int(hp), protocol=protocol,
           provenance=provenance, overwrite=overwrite)
    records = (
        (index, seed, run_records(run, spec, int(hp)))
        for index in tqdm(sorted(runs), desc=f"import {task} hp={hp}", disable=not progress)
        for seed, run in runs[index].items()
    )
    with TableWriter(out) as writer:
        writer.write_runs(records)
        writer.set_costs(**cost_columns(runs))
    return out
