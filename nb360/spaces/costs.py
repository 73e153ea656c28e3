"""Parameters, FLOPs and latency of NB201 networks.

FLOPs are multiply-adds counted the way the reference implementation does
(`xautodl.utils.flop_benchmark`): convolutions and linear layers only (weights times output
positions, plus one per output for a bias); pooling, BN and activations are free.

All 15,625 cells of a task at once: an edge's operation costs the same whatever the others are
(its widths and resolution are fixed by its place in the network), so a network's cost is
`base + sum over edges e of edge_cost[e, op_e]`. Twenty-five counted networks (all edges `none`,
then each single edge with each operation) give exact numbers for every cell. `table_costs` uses
that; `costs` counts one network directly, and the tests check that both agree.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cache

import numpy as np
import torch
from torch import nn

from nb360.spaces.nb201 import NUM_EDGES, OPS, Arch, ArchLike
from nb360.spaces.network import DEFAULT_C, DEFAULT_N, Spec, build


@dataclass(frozen=True)
class Costs:
    params: int  # trainable parameters
    flops: int  # multiply-adds for one input
    latency_ms: float = float("nan")  # median CPU forward time for one input, when measured


def _device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_flops(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Multiply-adds of one forward pass of a single input of `input_shape` (channels first)."""
    total = 0

    def conv_hook(m: nn.modules.conv._ConvNd, inputs, output) -> None:
        nonlocal total
        positions = output[0, 0].numel()
        per_position = int(np.prod(m.kernel_size)) * m.in_channels * m.out_channels // m.groups
        total += per_position * positions + (m.out_channels * positions if m.bias is not None else 0)

    def linear_hook(m: nn.Linear, inputs, output) -> None:
        nonlocal total
        total += m.in_features * m.out_features + (m.out_features if m.bias is not None else 0)

    handles = []
    for m in model.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d)):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, *input_shape, device=_device_of(model)))
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return total


def measure_latency_ms(model: nn.Module, input_shape: tuple[int, ...], repeats: int = 10) -> float:
    """Median wall time of a forward pass of one input on the model's device, in milliseconds."""
    x = torch.randn(1, *input_shape, device=_device_of(model))
    was_training = model.training
    model.eval()
    times = []
    with torch.no_grad():
        model(x)  # warm-up: allocations and kernel selection
        for _ in range(repeats):
            t = time.perf_counter()
            model(x)
            if x.is_cuda:
                torch.cuda.synchronize()  # kernels run asynchronously; wait for them
            times.append(time.perf_counter() - t)
    model.train(was_training)
    return 1e3 * float(np.median(times))


def costs(arch: ArchLike, spec: Spec, C: int = DEFAULT_C, N: int = DEFAULT_N, latency: bool = False) -> Costs:
    """Costs of one network, counted on the built model."""
    model = build(arch, spec, C, N)
    return Costs(
        params=count_params(model),
        flops=count_flops(model, spec.input_shape),
        latency_ms=measure_latency_ms(model, spec.input_shape) if latency else float("nan"),
    )


@cache
def _edge_costs(spec: Spec, C: int, N: int) -> tuple[np.ndarray, np.ndarray]:
    """(base, per_edge): base (2,) for the all-`none` network, per_edge (edges, ops, 2) the extra
    params and FLOPs of each operation on each edge."""
    none = OPS.index("none")

    def counted(ops: tuple[int, ...]) -> np.ndarray:
        c = costs(Arch(ops), spec, C, N)
        return np.array([c.params, c.flops], dtype=np.int64)

    base = counted((none,) * NUM_EDGES)
    per_edge = np.zeros((NUM_EDGES, len(OPS), 2), dtype=np.int64)
    for e in range(NUM_EDGES):
        for op in range(len(OPS)):
            if op != none:
                ops = tuple(op if k == e else none for k in range(NUM_EDGES))
                per_edge[e, op] = counted(ops) - base
    return base, per_edge


def table_costs(spec: Spec, C: int = DEFAULT_C, N: int = DEFAULT_N) -> tuple[np.ndarray, np.ndarray]:
    """Params and FLOPs of all 15,625 cells in official index order, as two int64 arrays."""
    base, per_edge = _edge_costs(spec, C, N)
    ops = np.array([a.ops for a in Arch.all()], dtype=np.int64)  # (15625, 6)
    total = base + per_edge[np.arange(NUM_EDGES), ops].sum(axis=1)
    return total[:, 0], total[:, 1]
