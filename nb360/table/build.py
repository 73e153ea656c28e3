"""Build a table on a Ray cluster: every selected NB201 cell of a task, several seeds, resumable.

One Ray task trains one (isomorphism class, seed): the class representative (its smallest official
index) is trained once and its records are written to every member, so all 15,625 cells cost 6,466
trainings per seed. The driver is the table's single writer: each finished run is written and
flushed at once, so a crash loses only the runs in flight. Re-running the same command resumes:
runs already DONE are skipped, FAILED ones are tried again, and a table made with another protocol
is refused. A run depends only on (arch, seed, protocol): workers train on one thread each and the
CPU results are bit-identical however many workers there are and in whatever order runs finish.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Callable, Sequence

import h5py
import numpy as np
import ray
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from nb360 import cards
from nb360.data.task import Task, load_task, resolve_data_root, task_options
from nb360.interrupts import raise_if_interrupted, sigterm_as_interrupt
from nb360.spaces import network
from nb360.spaces.costs import table_costs
from nb360.spaces.nb201 import Arch, ArchLike, iso_class_ids
from nb360.table.portable import portable_command, portable_path
from nb360.table.schema import DONE, TableWriter, add_seeds, check_version, create
from nb360.train import MOMENTUM, REVISION as TRAIN_REVISION, WEIGHT_DECAY, fit, seed_everything

# An int `archs` = N classes: the first N representatives of this fixed permutation, so a selection
# repeats exactly and a larger N extends a smaller one.
SELECTION_SEED = 0
# Each run holds one CPU and trains on one thread: runs sharing a node do not oversubscribe it, and
# the thread count (which can change the last bits of a CPU reduction) is the same for every run.
CPUS_PER_RUN = 1
# Exceptions that a retry can cure: file-system hiccups and a GPU momentarily short of memory. Any
# other exception repeats (a run is deterministic), so it is recorded as FAILED at once.
_TRANSIENT = (OSError, torch.cuda.OutOfMemoryError)


# ---- which cells ----------------------------------------------------------------------------
def select_classes(archs: str | int | Sequence[ArchLike] | os.PathLike = "all") -> dict[int, list[int]]:
    """The iso classes to train: representative official index -> all member indices, sorted; the
    classes in training order.

    `archs` is "all" (every class, in the order of that permutation); an int N or a string of digits
    (N classes: the first N representatives of a permutation seeded with SELECTION_SEED); a sequence of official indices or NB201 strings; or a path to a file
    with one index or string per line ('#' starts a comment). Listed cells bring their whole class.
    """
    iso = iso_class_ids()
    representatives = np.unique(iso)
    if isinstance(archs, str) and archs == "all":
        return select_classes(len(representatives))
    elif isinstance(archs, str) and archs.isdigit() and not Path(archs).exists():
        return select_classes(int(archs))
    elif isinstance(archs, (int, np.integer)) and not isinstance(archs, bool):
        if not 1 <= archs <= len(representatives):
            raise ValueError(f"archs={archs}: the number of iso classes must be in 1..{len(representatives)}")
        chosen = np.random.default_rng(SELECTION_SEED).permutation(representatives)[: int(archs)]
    elif isinstance(archs, (str, os.PathLike)):
        chosen = iso[[Arch.parse(a).index for a in _read_arch_file(Path(archs))]]
    else:
        chosen = iso[[Arch.parse(a).index for a in archs]]
    # in the order chosen (first mention), which is the order they train in: a partial build of
    # "all" or of N classes is then a uniform random sample of the space, not its low indices
    members: dict[int, list[int]] = {int(rep): [] for rep in dict.fromkeys(chosen.tolist())}
    for index, rep in enumerate(iso):
        if int(rep) in members:
            members[int(rep)].append(index)
    if not members:
        raise ValueError("no architecture selected")
    return members


def _read_arch_file(path: Path) -> list[str]:
    """Official indices or NB201 strings, one per line; blank lines and '#' comments skipped."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file (archs is 'all', a number of iso classes, or a file of archs)")
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


# ---- what a run needs -----------------------------------------------------------------------
@dataclass(frozen=True)
class RunSpec:
    """Everything a worker needs to train a run besides (arch, seed): the protocol and the data."""

    task: str
    data_root: str
    resolution: int | None
    C: int
    N: int
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    data_sha256: str
    test_size: int | None = None
    test_every: int = 1

    def load_options(self) -> dict:
        return {k: v for k, v in (("resolution", self.resolution), ("test_size", self.test_size)) if v is not None}


def data_sha256(task: Task) -> str:
    """A digest of every sample of every split, in order.

    Stored in the protocol, so a table is never resumed on other data, and checked by each worker,
    so a cluster node holding different files under the same path cannot mix its runs in.
    """
    digest = hashlib.sha256()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # a split that draws random augmentations gives the same digest every time
        for split in task.splits:
            digest.update(b"split")
            for batch in DataLoader(split, batch_size=256) if split is not None else ():
                for tensor in batch:
                    digest.update(tensor.contiguous().numpy().tobytes())
    return digest.hexdigest()


def protocol(spec: RunSpec, task: Task) -> dict:
    """The fields that make two tables' numbers comparable (epochs and seeds are added by `create`)."""
    return {
        "task": spec.task, "C": spec.C, "N": spec.N, "batch_size": spec.batch_size, "lr": spec.lr,
        "weight_decay": spec.weight_decay, "momentum": MOMENTUM, "schedule": "cosine",
        "resolution": list(task.spec.in_shape),
        "train_size": len(task.train), "val_size": _size(task.val), "test_size": _size(task.test),
        "data_sha256": spec.data_sha256, "threads_per_run": CPUS_PER_RUN, "test_every": spec.test_every,
        "revision": TRAIN_REVISION,
    }


def _size(split: Dataset | None) -> int:
    return 0 if split is None else len(split)


# ---- the worker side ------------------------------------------------------------------------
# Tasks loaded by this worker process, keyed by where and how they were loaded: a worker trains
# many runs and loads the data once.
_TASKS: dict[tuple, Task] = {}


def _cached_task(spec: RunSpec) -> Task:
    key = (spec.task, spec.data_root, spec.resolution, spec.test_size)
    if key not in _TASKS:
        task = load_task(spec.task, spec.data_root, **spec.load_options())
        found = data_sha256(task)
        if found != spec.data_sha256:
            raise ValueError(
                f"the {spec.task} data under {spec.data_root} on this node differ from the driver's "
                f"(sha256 {found[:12]}..., expected {spec.data_sha256[:12]}...); every node needs the same files"
            )
        _TASKS[key] = task
    return _TASKS[key]


def train_run(spec: RunSpec, index: int, seed: int, device: str = "cpu") -> list[dict]:
    """Train cell `index` once with `seed` under `spec`; the records of `nb360.train.fit`.

    The same (index, seed, spec) gives the same records on the CPU, wherever and whenever it runs.
    `device` is the driver's choice ("cuda" when runs are given GPUs), not the worker's guess: a
    worker that once ran a GPU task still sees CUDA when a later task was given none.
    """
    torch.set_num_threads(CPUS_PER_RUN)
    task = _cached_task(spec)
    seed_everything(seed)
    model = network.build(index, task.spec, spec.C, spec.N)
    return fit(model, task.splits, task.loss, task.metric, epochs=spec.epochs, batch_size=spec.batch_size,
               lr=spec.lr, weight_decay=spec.weight_decay, momentum=MOMENTUM, seed=seed, device=device,
               progress=False, test_every=spec.test_every)


# ---- the driver -----------------------------------------------------------------------------
def precompute(
    task: str,
    out: str | os.PathLike,
    epochs: int,
    seeds: Sequence[int],
    archs: str | int | Sequence[ArchLike] | os.PathLike = "all",
    C: int = 16,
    N: int = 5,
    batch_size: int | None = None,
    lr: float | None = None,
    resolution: int | None = None,
    data_root: str | os.PathLike | None = None,
    address: str | None = None,
    num_cpus: int | None = None,
    num_gpus_per_task: float | None = None,
    max_retries: int = 2,
    test_size: int | None = None,
    test_every: int = 1,
    progress: bool = True,
) -> dict:
    """Train the selected cells of `task` for `epochs` with each seed on Ray and write table `out`.

    Ray: an initialised connection is used as it is; else `address` joins a running cluster
    ("auto" or host:port) and no address starts a local one (`num_cpus` CPUs). Each run takes one
    CPU and `num_gpus_per_task` GPUs (default 1 if this machine has CUDA, else 0). A worker that
    dies is retried `max_retries` times; a run that still fails is written as FAILED with its error.
    `test_every` > 1 scores the test split only every that many epochs and after the last (the
    other epochs' test_metric is NaN; validation is scored every epoch): evaluation on a large test
    set is a good part of a small network's training time.
    An existing `out` is resumed if its protocol matches (Ray is not started when nothing is left to
    train); `seeds` it lacks are added to it as new columns (`schema.add_seeds`), its runs kept.
    Returns a summary: classes, archs, runs, done (trained now), failed, skipped (already done),
    seconds, table.
    """
    start = time.perf_counter()
    if address is not None and num_cpus is not None:
        raise ValueError("num_cpus sets the size of a local Ray instance; a cluster at an address has its own")
    seeds = [int(s) for s in seeds]
    classes = select_classes(archs)
    spec, loaded = _run_spec(task, epochs, C, N, batch_size, lr, resolution, data_root, test_size, test_every)
    out = Path(out)
    arguments = {"task": task, "out": portable_path(out), "epochs": epochs, "seeds": seeds, "archs": _describe(archs),
                 "C": C, "N": N, "batch_size": spec.batch_size, "lr": lr, "resolution": resolution,
                 "data_root": portable_path(spec.data_root, "DATA"), "address": address, "num_cpus": num_cpus,
                 "num_gpus_per_task": num_gpus_per_task, "max_retries": max_retries, "test_size": test_size,
                 "test_every": test_every}
    _open_or_create(out, spec, loaded, seeds, arguments)
    if num_gpus_per_task is None:
        num_gpus_per_task = 1 if torch.cuda.is_available() else 0
    with TableWriter(out) as writer:
        todo, skipped = _todo(writer, classes, seeds)
        label = f"{task} {out.name}" + (f" ({skipped} runs done before)" if skipped else "")
        done, failed = (_train(writer, spec, classes, todo, skipped, address, num_cpus, num_gpus_per_task,
                               max_retries, progress, label) if todo else (0, 0))
    return {"table": str(out), "classes": len(classes), "archs": sum(len(m) for m in classes.values()),
            "runs": len(classes) * len(seeds), "done": done, "failed": failed, "skipped": skipped,
            "seconds": time.perf_counter() - start}


def _run_spec(task: str, epochs: int, C: int, N: int, batch_size: int | None, lr: float | None, resolution: int | None,
              data_root: str | os.PathLike | None, test_size: int | None = None,
              test_every: int = 1) -> tuple[RunSpec, Task]:
    """The run spec, from the task as the driver loads it (the workers must find the same data)."""
    if (epochs < 1 or C < 1 or N < 1 or (batch_size is not None and batch_size < 1) or (lr is not None and lr <= 0)
            or test_every < 1):
        raise ValueError(f"epochs, C, N, batch_size, lr and test_every must be positive, got {epochs}, {C}, {N}, "
                         f"{batch_size}, {lr}, {test_every}")
    root = resolve_data_root(data_root).resolve()
    options = {k: v for k, v in (("resolution", resolution), ("test_size", test_size)) if v is not None}
    loaded = load_task(task, root, **options)
    lr = loaded.lr if lr is None else lr
    spec = RunSpec(task=task, data_root=str(root), resolution=resolution, C=C, N=N, epochs=epochs,
                   batch_size=batch_size or loaded.batch_size, lr=float(lr), weight_decay=WEIGHT_DECAY,
                   data_sha256=data_sha256(loaded), test_size=test_size, test_every=test_every)
    return spec, loaded


def _describe(archs: object) -> str | int:
    """The `archs` argument as provenance can hold it (a list of 15,625 would overflow an attribute)."""
    if isinstance(archs, str):
        return portable_path(archs)
    if isinstance(archs, int):
        return archs
    return str(archs) if isinstance(archs, os.PathLike) else f"{len(archs)} listed archs"


def _open_or_create(out: Path, spec: RunSpec, task: Task, seeds: list[int], arguments: dict) -> None:
    """Check an existing table's protocol, or create the table with its cost columns.

    A new table is written under a temporary name, given its costs and then renamed, so a table
    at `out` always has them.
    """
    if out.exists():
        # Seeds excepted: a job trains the seeds it is given, and a table lacking some of them gets
        # their columns, its runs kept (more seeds where the measured reliability calls for them).
        _check_protocol(out, {**protocol(spec, task), "epochs": spec.epochs})
        add_seeds(out, seeds)
        return
    staging = out.with_name(f".{out.name}.new")
    provenance = {"command": portable_command(sys.argv), "arguments": arguments, "torch": torch.__version__,
                  "ray": ray.__version__, "builder": f"{__name__}.precompute"}
    create(staging, task=spec.task, metric=task.metric_name, seeds=seeds, epochs=spec.epochs,
           protocol=protocol(spec, task), provenance=provenance, overwrite=True)
    params, flops = table_costs(task.spec, spec.C, spec.N)
    with TableWriter(staging) as writer:
        writer.set_costs(params=params, flops=flops)
    os.replace(staging, out)


def _check_protocol(path: Path, expected: dict) -> None:
    """Refuse to add runs made another way to a table: name each differing field."""
    with h5py.File(path, "r") as f:
        found = json.loads(f.attrs["protocol"]) if "protocol" in f.attrs else {}
    found.pop("seeds", None)
    expected = json.loads(json.dumps(expected))  # tuples -> lists, as the file stores them
    differing = [f"{key} (table: {found.get(key)!r}, now: {expected.get(key)!r})"
                 for key in sorted(set(found) | set(expected)) if found.get(key) != expected.get(key)]
    if differing:
        raise ValueError(f"{path} was built with another protocol; differing: {'; '.join(differing)}. "
                         "Resume with the table's settings or write to another file")


def _train(writer: TableWriter, spec: RunSpec, classes: dict[int, list[int]], todo: list[tuple[int, int]],
           skipped: int, address: str | None, num_cpus: int | None, num_gpus_per_task: float, max_retries: int,
           progress: bool, label: str) -> tuple[int, int]:
    """Run `todo` on Ray (joined or started here, and then shut down), log the job in the table
    and write every result."""
    with ray_session(address, num_cpus):
        remote = ray.remote(train_run).options(num_cpus=CPUS_PER_RUN, num_gpus=num_gpus_per_task,
                                               max_retries=max_retries, retry_exceptions=list(_TRANSIENT))
        submit = partial(remote.remote, spec, device="cuda" if num_gpus_per_task > 0 else "cpu")
        job = writer.start_build(_job_record(runs_before=skipped, runs_to_do=len(todo)))
        return _run(writer, submit, classes, todo, _window(num_gpus_per_task), progress, label, job)


def _job_record(runs_before: int, runs_to_do: int) -> dict:
    """What the table's build log keeps of this job: when, the command, the driver's machine, the
    cluster's resources and the versions (the hardware a table's wall time was measured on)."""
    from nb360 import __version__

    resources = ray.cluster_resources()
    return {
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"), "command": portable_command(sys.argv),
        "driver": this_machine(),
        "cluster": {"nodes": sum(node["Alive"] for node in ray.nodes()), "cpus": resources.get("CPU", 0),
                    "gpus": resources.get("GPU", 0)},
        "versions": {"nb360": __version__, "torch": torch.__version__, "ray": ray.__version__},
        "runs_before": runs_before, "runs_to_do": runs_to_do,
    }


def this_machine() -> dict:
    """The machine this process runs on, as a build job's record keeps it (`job_hardware` words it)."""
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {"machine": platform.machine(), "cpus": os.cpu_count(), "memory_gib": round(memory, 1),
            "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]}


def connect_ray(address: str | None, num_cpus: int | None) -> bool:
    """Join or start Ray unless already connected; True if this call did (and must shut it down).

    The workers' and raylets' own log lines are not forwarded to this process (they stay in Ray's
    session folder, /tmp/ray/session_*/logs): a node lost mid-job printed raw `(raylet)` lines among
    nb360's output, while nb360 itself reports each failed run or trial and each retry."""
    if ray.is_initialized():
        return False
    if address is not None:
        ray.init(address=address, log_to_driver=False)
    else:
        ray.init(num_cpus=num_cpus, log_to_driver=False)
    return True


@contextmanager
def ray_session(address: str | None, num_cpus: int | None):
    """Within: Ray joined or started (`connect_ray`; shut down on exit if started here), and SIGTERM
    stopping the driver as Ctrl-C does. ray.init installs a SIGTERM handler of its own, which exits
    the driver mid-write and prints Ray's C++ stack; the work in the block would lose its one-line
    report of what it kept."""
    started = connect_ray(address, num_cpus)
    try:
        with sigterm_as_interrupt():
            yield
    finally:
        if started:
            ray.shutdown()


def _window(num_gpus_per_task: float) -> int:
    """Runs kept in flight: twice what the cluster runs at once, so no worker waits for the driver
    while results are written, and a driver interrupt leaves few runs unfinished."""
    resources = ray.cluster_resources()
    slots = resources.get("CPU", 1) // CPUS_PER_RUN
    if num_gpus_per_task > 0:
        slots = min(slots, resources.get("GPU", 0) // num_gpus_per_task)
    return max(2, 2 * int(slots))


def _todo(writer: TableWriter, classes: dict[int, list[int]], seeds: list[int]) -> tuple[list[tuple[int, int]], int]:
    """(representative, seed) runs still to train, seed by seed (a whole first seed comes first),
    and how many are skipped because every member is already DONE."""
    status = writer.status()
    todo, skipped = [], 0
    for seed in seeds:
        col = writer.seeds.index(seed)
        for rep, members in classes.items():
            if (status[members, col] == DONE).all():
                skipped += 1
            else:
                todo.append((rep, seed))
    return todo, skipped


def _run(writer: TableWriter, submit: Callable[[int, int], ray.ObjectRef], classes: dict[int, list[int]],
         todo: list[tuple[int, int]], window: int, progress: bool, label: str, job: int) -> tuple[int, int]:
    """Submit runs (`submit(rep, seed)`), at most `window` in flight; write each as it finishes,
    with build job `job`'s progress. Returns (done, failed).

    On any interruption (Ctrl-C, SIGTERM) it propagates at once; what was written stays, and the
    next call resumes from it. The runs in flight are not cancelled one by one: cancelling a task
    while its result arrives made Ray's core abort the driver ("Tried to complete task that was not
    pending"), losing nb360's own message; a local Ray is shut down with them, and a cluster ends
    them with the driver's job.
    """
    queue = iter(todo)
    in_flight: dict[ray.ObjectRef, tuple[int, int]] = {}
    done = failed = 0
    bar = tqdm(total=len(todo), unit="run", desc=label, disable=not progress, dynamic_ncols=True)
    first = time.perf_counter()
    try:
        while True:
            for rep, seed in queue:
                in_flight[submit(rep, seed)] = (rep, seed)
                if len(in_flight) >= window:
                    break
            if not in_flight:
                break
            [ref], _ = ray.wait(list(in_flight), num_returns=1)
            rep, seed = in_flight.pop(ref)
            try:
                writer.write_run(classes[rep], seed, ray.get(ref))
                done += 1
            except ray.exceptions.RayError as error:
                writer.write_failure(classes[rep], seed, str(error))
                failed += 1
            # counted with every run, so a killed build still reports its time
            writer.build_progress(job, done, failed, time.perf_counter() - first)
            bar.update()
            bar.set_postfix(failed=failed)
            raise_if_interrupted()  # after the finished run is written, so that it is kept
    finally:
        bar.close()
    return done, failed


def table_protocol(path: Path) -> tuple[str, dict, dict]:
    """(task name, task card, protocol) of a table whose protocol names the network it trained (C, N)."""
    with h5py.File(path, "r") as f:
        check_version(f, path)
        name = str(f.attrs["task"])
        protocol = json.loads(f.attrs["protocol"])
    missing = [key for key in ("C", "N") if key not in protocol]
    if missing:
        raise ValueError(f"{path}: the table's protocol has no {' or '.join(missing)}: "
                         f"the network its runs trained is unknown")
    return name, cards.load("tasks", name), protocol


def table_spec(path: Path) -> tuple[network.Spec, int, int]:
    """The network spec (the task card's, at the protocol's resolution), C and N a table trained,
    without its data."""
    _, card, protocol = table_protocol(path)
    shape = tuple(protocol.get("resolution") or card["in_shape"])
    return network.Spec(card["kind"], card["in_channels"], shape, card["out_size"]), int(protocol["C"]), int(protocol["N"])


def table_task(path: Path, data_root: str | os.PathLike | None = None) -> tuple[Task, int, int, dict]:
    """The task of a table loaded as its protocol says (resolution), with the protocol's C and N
    and the protocol itself. Refuses data that differ from the data the table was built on."""
    name, card, protocol = table_protocol(path)
    task = load_task(name, data_root, **load_options(path, card, protocol))
    if "resolution" in protocol and list(task.spec.in_shape) != list(protocol["resolution"]):
        raise ValueError(f"{path}: protocol resolution {protocol['resolution']}, "
                         f"the {name} loader gave {list(task.spec.in_shape)}")
    if "data_sha256" in protocol:
        found = data_sha256(task)
        if found != protocol["data_sha256"]:
            raise ValueError(f"{path}: the {name} data under {resolve_data_root(data_root)} differ from the data the table "
                             f"was built on (sha256 {found[:12]}..., table {protocol['data_sha256'][:12]}...)")
    return task, int(protocol["C"]), int(protocol["N"]), protocol


def load_options(path: Path, card: dict, protocol: dict) -> dict:
    """`load_task` options that reproduce the protocol's input resolution (square grids only) and,
    for a loader that takes one, its test set size."""
    options = {}
    if "test_size" in protocol and "test_size" in task_options(card["name"]):
        options["test_size"] = int(protocol["test_size"])
    resolution = protocol.get("resolution")
    if resolution is None or list(resolution) == list(card["in_shape"]):
        return options
    if len(set(resolution)) != 1:
        raise ValueError(f"{path}: protocol resolution {resolution} is not a square grid, which loaders take as one size")
    return {**options, "resolution": int(resolution[0])}
