"""One-shot weight-sharing search on real task data: DARTS and GDAS over the NB201 cell.

The supernet puts a mixed operation (all five NB201 operations) on each of the six edges of the
cell, inside the task's own macro skeleton (`nb360.spaces.network.Network` with a mixed-cell
factory), and one architecture matrix alpha (6 edges x 5 operations) is shared by every cell, as
in NAS-Bench-201. Each step takes an SGD step on the weights with a training batch, then an Adam
step on alpha with a validation batch. By default alpha's gradient is first order (it ignores how
the weights depend on alpha: NB201's "DARTS-V1"); DARTS's second order ("DARTS-V2") unrolls one
weight step and estimates the Hessian-vector product by finite differences (`unrolled_alpha_grad`).

- DARTS (Liu et al., ICLR 2019): each edge outputs the softmax(alpha)-weighted sum of all its
  operations.
- GDAS (Dong & Yang, CVPR 2019): each forward pass draws one operation per edge from the
  Gumbel-softmax of alpha; only that operation runs, and the straight-through weights
  `one_hot - p.detach() + p` pass the gradient to every entry of alpha. The temperature tau falls
  linearly from 10 to 0.1 over the epochs.
The derived cell takes the argmax of alpha on each edge (NB201's `genotype`).

Settings are NATS-Bench's weight-sharing runs (AutoDL-Projects `exps/NATS-algos/search-cell.py`
and `configs/nas-benchmark/algos/weight-sharing.config`; the models are xautodl's
`models/cell_searchs/search_model_darts.py`, `search_model_gdas.py` and `search_cells.py`):
weights by SGD with Nesterov momentum 0.9, weight decay 5e-4, learning rate 0.025 on a cosine to
0.001, 100 epochs; alpha initialised to 1e-3 N(0, 1), Adam with learning rate 3e-4, betas
(0.5, 0.999), weight decay 1e-3; the operations' batch norm without affine weights or running
statistics (`--affine 0 --track_running_stats 0`), while the stem, residual blocks and last batch
norm are the discrete network's (as in xautodl's TinyNetworkDarts / TinyNetworkGDAS). Two
departures: the batch size is the task's (NATS-Bench's 64 is for CIFAR), and the validation batch
of each step comes from a reshuffled pass over the validation split.
"""

from __future__ import annotations

import math
import os
import re
import time
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from nb360.data.task import Task
from nb360.interrupts import raise_if_interrupted
from nb360.spaces.nb201 import NUM_EDGES, NUM_OPS, OPS, Arch, ArchLike
from nb360.spaces.network import DEFAULT_C, DEFAULT_N, Cell, Layers, Network, Spec, build, edge_widths, operation
from nb360.table.benchmark import Benchmark
from nb360.train import MOMENTUM, WEIGHT_DECAY, default_device, evaluate, fit, seed_everything

METHODS = ("darts", "gdas")
EPOCHS = 100
# Weights: NATS-Bench weight-sharing.config (cosine from LR to eta_min).
LR, LR_MIN = 0.025, 0.001
# Alpha: search-cell.py's defaults (--arch_learning_rate, --arch_weight_decay) and its Adam betas.
ALPHA_LR, ALPHA_BETAS, ALPHA_WEIGHT_DECAY = 3e-4, (0.5, 0.999), 1e-3
ALPHA_INIT_STD = 1e-3
# GDAS temperature: search-cell.py --tau_max, --tau_min.
TAU_MAX, TAU_MIN = 10.0, 0.1

# A state-dict key on an edge of a cell: cells.<i>.edges.<e>.<rest>
_EDGE_KEY = re.compile(r"^(?P<edge>cells\.\d+\.edges\.(?P<e>\d+))\.(?P<rest>.+)$")


class _Mixing:
    """The edge weights of the current forward pass, shared by every mixed edge of one supernet:
    `weights` (6, 5), and for GDAS `sampled`, the operation drawn on each edge."""

    def __init__(self) -> None:
        self.weights: torch.Tensor | None = None
        self.sampled: list[int] | None = None


class MixedOp(nn.Module):
    """Edge `edge` of a supernet cell: all NB201 operations, mixed by the supernet's weights."""

    def __init__(self, edge: int, mixing: _Mixing, L: Layers, c_in: int, c_out: int):
        super().__init__()
        self.edge, self.mixing = edge, mixing
        self.ops = nn.ModuleList(operation(op, L, c_in, c_out) for op in OPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.mixing.weights[self.edge]
        if self.mixing.sampled is None:
            return sum(w[k] * op(x) for k, op in enumerate(self.ops))
        chosen = self.mixing.sampled[self.edge]
        # GDAS (xautodl search_cells.forward_gdas): only the drawn operation runs; the others add
        # their weight, zero in value, so that alpha still gets their straight-through gradient.
        return sum(w[k] * op(x) if k == chosen else w[k] for k, op in enumerate(self.ops))


class SuperNet(Network):
    """The task's skeleton with a mixed operation on every edge of every cell, and `alphas`.

    `method` picks the mixing: "darts" (softmax) or "gdas" (one Gumbel-softmax draw per forward
    pass at temperature `tau`). The operations' batch norm has no affine weights or running
    statistics unless asked (NATS-Bench's search setting).
    """

    def __init__(self, spec: Spec, C: int = DEFAULT_C, N: int = DEFAULT_N, method: str = "darts",
                 affine: bool = False, track_running_stats: bool = False):
        if method not in METHODS:
            raise ValueError(f"unknown one-shot method {method!r}; expected one of {', '.join(METHODS)}")
        mixing = _Mixing()
        op_layers = Layers(spec.dims, affine=affine, track_running_stats=track_running_stats)

        def mixed_cell(L: Layers, c_in: int, c_out: int) -> Cell:
            return Cell(MixedOp(e, mixing, op_layers, i, o) for e, (i, o) in enumerate(edge_widths(c_in, c_out)))

        super().__init__(spec, C, N, cell=mixed_cell)
        self.method, self.mixing, self.tau = method, mixing, TAU_MAX
        self.alphas = nn.Parameter(ALPHA_INIT_STD * torch.randn(NUM_EDGES, NUM_OPS))

    def weights(self) -> list[nn.Parameter]:
        """Every parameter but alpha."""
        return [p for name, p in self.named_parameters() if name != "alphas"]

    def edge_weights(self) -> tuple[torch.Tensor, list[int] | None]:
        """The (6, 5) mixing weights of one forward pass, and for GDAS the operation drawn per edge."""
        if self.method == "darts":
            return F.softmax(self.alphas, dim=-1), None
        while True:  # redraw the rare sample that overflows, as xautodl's TinyNetworkGDAS does
            gumbels = -torch.empty_like(self.alphas).exponential_().log()
            probs = F.softmax((self.alphas.log_softmax(dim=-1) + gumbels) / self.tau, dim=-1)
            if torch.isfinite(gumbels).all() and torch.isfinite(probs).all():
                break
        index = probs.argmax(dim=-1)
        return F.one_hot(index, NUM_OPS).to(probs) - probs.detach() + probs, index.tolist()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.mixing.weights, self.mixing.sampled = self.edge_weights()
        return super().forward(x)

    @property
    def arch(self) -> Arch:
        """The derived cell: the argmax of alpha on each edge."""
        return derive(self.alphas.detach().cpu().numpy())

    def discretize(self, arch: ArchLike) -> Network:
        """`network.build(arch, ...)` holding this supernet's weights: the skeleton's own and, on each
        edge, those of `arch`'s operation. Where the supernet's batch norm has no affine weights or
        running statistics, the network keeps its initial ones (weight 1 and bias 0 compute the same;
        statistics start afresh)."""
        arch = Arch.parse(arch)
        net = build(arch, self.spec, self.C, self.N)
        source = self.state_dict()

        def source_key(key: str) -> str:
            m = _EDGE_KEY.match(key)
            return key if m is None else f"{m['edge']}.ops.{arch.ops[int(m['e'])]}.{m['rest']}"

        state = {k: source[source_key(k)] for k in net.state_dict() if source_key(k) in source}
        missing = net.load_state_dict(state, strict=False).missing_keys
        norms = {name for name, m in net.named_modules() if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d))}
        unmatched = [k for k in missing if k.rsplit(".", 1)[0] not in norms]
        if unmatched:
            raise RuntimeError(f"the supernet holds no weights for {unmatched}")
        return net.to(self.alphas.device)


def derive(alphas: np.ndarray) -> Arch:
    """The cell of a (6, 5) alpha: the largest entry on each edge (NB201's `genotype`)."""
    alphas = np.asarray(alphas)
    if alphas.shape != (NUM_EDGES, NUM_OPS):
        raise ValueError(f"alphas must have shape ({NUM_EDGES}, {NUM_OPS}) (edges x operations), got {alphas.shape}")
    return Arch(tuple(int(k) for k in alphas.argmax(axis=-1)))


def gdas_tau(epoch: int, epochs: int) -> float:
    """GDAS's temperature in epoch `epoch` (0-based): linear from TAU_MAX to TAU_MIN (search-cell.py)."""
    return TAU_MAX if epochs == 1 else TAU_MAX - (TAU_MAX - TAU_MIN) * epoch / (epochs - 1)


@dataclass
class OneShotResult:
    """What `search_oneshot` found and how the derived cell scores.

    alphas: (epochs + 1, 6, 5), alpha at initialisation and after each epoch. records: one per
    epoch (epoch, lr, tau (GDAS) or NaN, train_loss (weight steps), alpha_loss (alpha steps, on
    validation batches), val_metric (the supernet itself on the validation split), arch (the cell
    derived then), train_seconds (cumulative, search steps only), eval_seconds). Scores of `arch`:
    from the table (`source` "table": final epoch, mean over seeds, NaN if the table has no finished
    run of it; `regret` its test regret), or from training it (`source` "trained", `train_records`
    from `nb360.train.fit`; `regret` NaN), or none (`source` "none").
    """

    method: str
    arch: Arch
    alphas: np.ndarray
    records: list[dict]
    source: str
    val_metric: float = math.nan
    test_metric: float = math.nan
    regret: float = math.nan
    train_records: list[dict] = field(default_factory=list)
    table: str | None = None

    @property
    def search_seconds(self) -> float:
        return self.records[-1]["train_seconds"]


def search_oneshot(
    task: Task,
    method: str = "darts",
    epochs: int = EPOCHS,
    C: int = DEFAULT_C,
    N: int = DEFAULT_N,
    batch_size: int | None = None,
    seed: int = 0,
    table: Benchmark | str | os.PathLike | None = None,
    device: torch.device | str | None = None,
    progress: bool = True,
    lr: float = LR,
    train_epochs: int | None = None,
    order: int = 1,
) -> OneShotResult:
    """Search `task` with a `method` ("darts" or "gdas") supernet of width C and N cells per stage
    for `epochs`, then score the derived cell.

    Weight steps use the training split, alpha steps the validation split; the test split is only
    used to score the derived cell. With `table` (a Benchmark, or a table name or path, for the same
    task) the cell is looked up; without one it is built at the same C and N and trained with
    `nb360.train.fit` for `train_epochs` (default: `epochs`; 0 skips scoring). `batch_size`
    defaults to the task's. `order` 2 takes DARTS's second-order alpha gradient (DARTS only). The
    same seed gives the same search on the CPU.
    """
    if method not in METHODS:
        raise ValueError(f"unknown one-shot method {method!r}; expected one of {', '.join(METHODS)}")
    if order not in (1, 2) or (order == 2 and method != "darts"):
        raise ValueError(f"order must be 1, or 2 with method 'darts' (DARTS-V2), got order={order} with {method!r}")
    if epochs < 1 or (batch_size is not None and batch_size < 1) or (train_epochs is not None and train_epochs < 0):
        raise ValueError(f"epochs and batch_size must be positive and train_epochs >= 0, "
                         f"got {epochs}, {batch_size}, {train_epochs}")
    if task.val is None or len(task.val) == 0:
        raise ValueError(f"task {task.name!r} has no validation split; a one-shot search steps alpha on it")
    bench = _open_table(table, task) if table is not None else None
    train_epochs = epochs if train_epochs is None else train_epochs
    device = torch.device(device) if device is not None else default_device()
    batch_size = batch_size or task.batch_size

    seed_everything(seed)
    net = SuperNet(task.spec, C, N, method).to(device)
    for fn in (task.loss, task.metric):
        if isinstance(fn, nn.Module):
            fn.to(device)
    w_optimizer = torch.optim.SGD(net.weights(), lr=lr, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY, nesterov=True)
    a_optimizer = torch.optim.Adam([net.alphas], lr=ALPHA_LR, betas=ALPHA_BETAS, weight_decay=ALPHA_WEIGHT_DECAY)
    train_loader = DataLoader(task.train, batch_size, shuffle=True, generator=torch.Generator().manual_seed(seed))
    val_loader = DataLoader(task.val, batch_size, shuffle=True, generator=torch.Generator().manual_seed(seed + 1))
    val_batches = _endless(val_loader)
    total_steps = epochs * len(train_loader)

    alphas = [net.alphas.detach().cpu().numpy().copy()]
    records: list[dict] = []
    train_seconds, step = 0.0, 0
    bar = tqdm(total=total_steps, desc=f"{method} {task.name}", unit="step", disable=not progress, leave=False)
    for epoch in range(epochs):
        raise_if_interrupted()
        net.tau = gdas_tau(epoch, epochs)
        net.train()
        w_losses, a_losses = [], []
        start = time.perf_counter()
        for x, y in train_loader:
            for group in w_optimizer.param_groups:
                group["lr"] = _cosine(lr, step, total_steps)
            train_batch, val_batch = (x.to(device), y.to(device)), tuple(t.to(device) for t in next(val_batches))
            w_losses.append(_step(net, w_optimizer, task.loss, *train_batch))
            if order == 1:
                a_losses.append(_step(net, a_optimizer, task.loss, *val_batch))
            else:
                net.zero_grad(set_to_none=True)
                value, net.alphas.grad = unrolled_alpha_grad(net, w_optimizer, task.loss, train_batch, val_batch)
                a_optimizer.step()
                a_losses.append(value)
            step += 1
            bar.update()
        train_seconds += time.perf_counter() - start
        start = time.perf_counter()
        alphas.append(net.alphas.detach().cpu().numpy().copy())
        record = {
            "epoch": epoch + 1,
            "lr": _cosine(lr, step, total_steps),
            "tau": net.tau if method == "gdas" else math.nan,
            "train_loss": torch.stack(w_losses).mean().item(),
            "alpha_loss": torch.stack(a_losses).mean().item(),
            "val_metric": evaluate(net, task.val, task.metric, batch_size, device),
            "arch": str(derive(alphas[-1])),
            "train_seconds": train_seconds,
        }
        record["eval_seconds"] = time.perf_counter() - start
        records.append(record)
        bar.set_postfix(epoch=epoch + 1, loss=f"{record['train_loss']:.4g}", val=f"{record['val_metric']:.4g}")
    bar.close()

    arch = derive(alphas[-1])
    result = OneShotResult(method, arch, np.stack(alphas), records, source="none")
    if bench is not None:
        row = bench.query(arch)
        result.source, result.table = "table", str(bench.path)
        result.val_metric, result.test_metric, result.regret = row["val_metric"], row["test_metric"], bench.regret(arch)
    elif train_epochs > 0:
        seed_everything(seed)
        result.train_records = fit(build(arch, task.spec, C, N), task.splits, task.loss, task.metric,
                                   epochs=train_epochs, batch_size=batch_size, seed=seed, device=device,
                                   progress=progress)
        result.source = "trained"
        last = result.train_records[-1]
        result.val_metric, result.test_metric = last["val_metric"], last["test_metric"]
    return result


def unrolled_alpha_grad(net: SuperNet, w_optimizer: torch.optim.SGD, loss, train_batch: tuple, val_batch: tuple,
                        r: float = 0.01) -> tuple[torch.Tensor, torch.Tensor]:
    """DARTS's second-order gradient of the validation loss with respect to alpha (Liu et al., eqs.
    6-8), computed as AutoDL-Projects' `backward_step_unrolled` (exps/NATS-algos/search-cell.py):

        w' = w - lr (momentum * buffer + grad_w L_train(w) + weight_decay * w)   (one virtual step)
        g  = grad_alpha L_val(w') - lr (grad_alpha L_train(w+) - grad_alpha L_train(w-)) / (2 eps)

    with w+- = w +- eps grad_w' L_val(w') and eps = r / |grad_w' L_val(w')| (the reference's r = 0.01:
    a coarse estimate where ReLU kinks lie within r; a small r in float64 gives the exact hypergradient).
    The weights are restored exactly afterwards. Returns (L_val(w'), g).
    """
    (x, y), (xv, yv) = train_batch, val_batch
    names, weights = zip(*[(name, p) for name, p in net.named_parameters() if name != "alphas"])
    group = w_optimizer.param_groups[0]
    lr, weight_decay, momentum = group["lr"], group["weight_decay"], group["momentum"]
    grads = torch.autograd.grad(loss(net(x), y), weights)
    with torch.no_grad():
        saved = [p.detach().clone() for p in weights]
        unrolled = []
        for p, w, g in zip(weights, saved, grads):
            buffer = w_optimizer.state[p].get("momentum_buffer") if p in w_optimizer.state else None
            step = g + weight_decay * w + (momentum * buffer if buffer is not None else 0.0)
            unrolled.append((w - lr * step).requires_grad_())
    val_loss = loss(torch.func.functional_call(net, dict(zip(names, unrolled)), (xv,)), yv)
    d_alpha, *d_weights = torch.autograd.grad(val_loss, [net.alphas, *unrolled])
    eps = r / torch.cat([d.flatten() for d in d_weights]).norm()

    def train_alpha_grad(sign: float) -> torch.Tensor:
        with torch.no_grad():
            for p, w, d in zip(weights, saved, d_weights):
                p.copy_(w + sign * eps * d)
        return torch.autograd.grad(loss(net(x), y), net.alphas)[0]

    hessian_vector = (train_alpha_grad(1.0) - train_alpha_grad(-1.0)) / (2 * eps)
    with torch.no_grad():
        for p, w in zip(weights, saved):
            p.copy_(w)
    return val_loss.detach(), d_alpha - lr * hessian_vector


def _step(net: SuperNet, optimizer: torch.optim.Optimizer, loss, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """One optimizer step on one batch (every gradient is cleared first, so a weight step leaves
    nothing behind for the alpha step and the reverse)."""
    net.zero_grad(set_to_none=True)
    value = loss(net(x), y)
    value.backward()
    optimizer.step()
    return value.detach()


def _cosine(lr: float, step: int, total_steps: int) -> float:
    return LR_MIN + 0.5 * (lr - LR_MIN) * (1 + math.cos(math.pi * step / total_steps))


def _endless(loader: DataLoader) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Batches of `loader`, pass after pass (each pass reshuffled)."""
    while True:
        yield from loader


def _open_table(table: Benchmark | str | os.PathLike, task: Task) -> Benchmark:
    bench = table if isinstance(table, Benchmark) else Benchmark.load(table)
    if bench.task != task.name:
        raise ValueError(f"table {bench.path} holds task {bench.task!r}, but the search runs on {task.name!r}")
    bench.best()  # a table without any finished run cannot give a regret: say so before searching
    return bench
