"""The torch network of an NB201 cell, fitted to a task's input and output.

One cell implementation serves four macro skeletons (`search_spaces/nb201.toml`):
- `classify2d`: NB201's own (stem, N cells, residual stride-2 block, N cells, residual block,
  N cells, BN-ReLU, global pool, linear), module for module as in the reference implementation
  (`xautodl.models.cell_infers.TinyNetwork`), so parameter counts and outputs match it;
- `dense2d`: resolution kept everywhere: the two residual blocks become stride-1 *cells* whose
  edges out of the cell input double the channels, and a 1x1 convolution maps every pixel to the
  outputs. This is NAS-Bench-360's own Darcy Flow network (its `precompute/darcyflow` TinyNetwork,
  built from the reference cell with every reduction turned off and a per-pixel linear head);
- `classify1d` / `dense1d`: the same with 1D convolutions and pooling, for sequences.

`Network` takes a cell factory, so the same skeletons hold the weight-sharing supernet of
`nb360.search.oneshot` (a mixed operation on every edge) as well as the network of one cell.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Callable, Iterable

import torch
from torch import nn

from nb360 import cards
from nb360.spaces.nb201 import EDGES, NUM_NODES, OPS, Arch, ArchLike

_SPACE = cards.load("search_spaces", "nb201")
SKELETONS: tuple[str, ...] = tuple(_SPACE["skeletons"])
DEFAULT_C: int = int(_SPACE["defaults"]["C"])
DEFAULT_N: int = int(_SPACE["defaults"]["N"])


@dataclass(frozen=True)
class Spec:
    """What a network must take and give: the task's side of `build`.

    kind: one of SKELETONS; in_channels and in_shape (spatial size, (H, W) or (L,)) describe one
    input; out_size is the number of classes / labels (classify) or output channels (dense).
    """

    kind: str
    in_channels: int
    in_shape: tuple[int, ...]
    out_size: int

    def __post_init__(self) -> None:
        if self.kind not in SKELETONS:
            raise ValueError(f"unknown network kind {self.kind!r}; expected one of {', '.join(SKELETONS)}")
        dims = int(_SPACE["skeletons"][self.kind]["dims"])
        if len(self.in_shape) != dims or min(self.in_shape) < 1:
            raise ValueError(f"{self.kind} takes a {dims}-D positive input shape, got {self.in_shape}")
        if self.in_channels < 1 or self.out_size < 1:
            raise ValueError(f"in_channels and out_size must be positive, got {self.in_channels}, {self.out_size}")

    @property
    def dims(self) -> int:
        return len(self.in_shape)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input, channels first."""
        return (self.in_channels, *self.in_shape)


# NB201 on CIFAR-10, the reference skeleton of the search space.
CIFAR10 = Spec("classify2d", 3, (32, 32), 10)


class Layers:
    """The torch layer classes for 1D or 2D data. Batch norm has affine weights and running
    statistics unless told otherwise (a search supernet's operations go without both)."""

    def __init__(self, dims: int, affine: bool = True, track_running_stats: bool = True):
        self.conv = {1: nn.Conv1d, 2: nn.Conv2d}[dims]
        self.bn = partial({1: nn.BatchNorm1d, 2: nn.BatchNorm2d}[dims], affine=affine,
                          track_running_stats=track_running_stats)
        self.dims = dims
        self.avg = {1: nn.AvgPool1d, 2: nn.AvgPool2d}[dims]
        self.global_avg = {1: nn.AdaptiveAvgPool1d, 2: nn.AdaptiveAvgPool2d}[dims]


class ReLUConvBN(nn.Module):
    def __init__(self, L: Layers, c_in: int, c_out: int, kernel: int, stride: int):
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            L.conv(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
            L.bn(c_out),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class AvgPool3(nn.Module):
    """The `avg_pool_3x3` edge: the mean over each 3-wide (3x3) window at stride 1 of the entries
    inside the input, as `AvgPool2d(3, 1, 1, count_include_pad=False)` computes it (same values up
    to float rounding, about 1e-7).

    Summed as three shifted slices per axis, then divided by each window's count: on the small maps
    and few channels of a table build, torch's CPU kernel for count_include_pad=False took 3 to 5
    times as long forward and backward, and pooling edges were a quarter of a build's time."""

    def __init__(self, dims: int):
        super().__init__()
        self.dims = dims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        counts = None
        for axis in range(x.dim() - self.dims, x.dim()):
            padded = nn.functional.pad(x.movedim(axis, -1), (1, 1)).movedim(-1, axis)
            n = x.shape[axis]
            x = padded.narrow(axis, 0, n) + padded.narrow(axis, 1, n) + padded.narrow(axis, 2, n)
            # entries of each window inside the input along this axis: 2 at both ends, 3 between
            along = torch.full((n,), 3.0, dtype=x.dtype, device=x.device)
            along[0] = along[-1] = min(n, 2)
            shape = [1] * x.dim()
            shape[axis] = n
            counts = along.view(shape) if counts is None else counts * along.view(shape)
        return x / counts


class Zero(nn.Module):
    """The `none` operation. Kept as a module that outputs zeros (as the reference does) so that a
    node fed only by `none` edges is a zero tensor that later operations still see."""

    def __init__(self, c_out: int):
        super().__init__()
        self.c_out = c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == self.c_out:
            return x.mul(0.0)
        return x.new_zeros((x.shape[0], self.c_out, *x.shape[2:]))


class ConvBN(nn.Module):
    """skip_connect between different widths: 1x1 conv + BN, no ReLU (the reference's stride-1
    FactorizedReduce)."""

    def __init__(self, L: Layers, c_in: int, c_out: int):
        super().__init__()
        self.conv = L.conv(c_in, c_out, 1, bias=False)
        self.bn = L.bn(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


def operation(name: str, L: Layers, c_in: int, c_out: int) -> nn.Module:
    """An edge at stride 1, as in the reference's OPS; c_in != c_out only on the input edges of a
    widening cell, where skip_connect and pooling get a 1x1 projection."""
    if name == "none":
        return Zero(c_out)
    if name == "skip_connect":
        return nn.Identity() if c_in == c_out else ConvBN(L, c_in, c_out)
    if name == "nor_conv_1x1":
        return ReLUConvBN(L, c_in, c_out, 1, 1)
    if name == "nor_conv_3x3":
        return ReLUConvBN(L, c_in, c_out, 3, 1)
    if name == "avg_pool_3x3":
        pool = AvgPool3(L.dims)
        return pool if c_in == c_out else nn.Sequential(ReLUConvBN(L, c_in, c_out, 1, 1), pool)
    raise ValueError(f"unknown operation {name!r}; expected one of {', '.join(OPS)}")


def edge_widths(c_in: int, c_out: int) -> list[tuple[int, int]]:
    """(input, output) channels of each edge of a cell: edges out of the cell input map c_in to
    c_out channels, all others c_out to c_out."""
    return [(c_in if src == 0 else c_out, c_out) for _, src in EDGES]


# What `Network` calls to make each cell: (layers, c_in, c_out) -> module.
CellFactory = Callable[[Layers, int, int], nn.Module]


class Cell(nn.Module):
    """An NB201 cell: node i is the sum of its incoming edges; `edges[e]` is the module on edge e
    (EDGES order). `Cell.of(arch, ...)` is the cell of one architecture (the reference's InferCell)."""

    def __init__(self, edges: Iterable[nn.Module]):
        super().__init__()
        self.edges = nn.ModuleList(edges)
        if len(self.edges) != len(EDGES):
            raise ValueError(f"an NB201 cell has {len(EDGES)} edges, got {len(self.edges)} modules")

    @classmethod
    def of(cls, arch: Arch, L: Layers, c_in: int, c_out: int) -> Cell:
        return cls(operation(op, L, i, o) for op, (i, o) in zip(arch.op_names, edge_widths(c_in, c_out)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for node in range(1, NUM_NODES):
            nodes.append(sum(self.edges[e](nodes[src]) for e, (to, src) in enumerate(EDGES) if to == node))
        return nodes[-1]


class ResidualBlock(nn.Module):
    """NB201's ResNetBasicblock between stages, at stride 2: two ReLU-conv-BN plus a shortcut of
    average pooling and a 1x1 conv that matches the new width."""

    def __init__(self, L: Layers, c_in: int, c_out: int):
        super().__init__()
        self.conv_a = ReLUConvBN(L, c_in, c_out, 3, 2)
        self.conv_b = ReLUConvBN(L, c_out, c_out, 3, 1)
        # ceil_mode: odd lengths halve like the strided conv_a does (same as the reference on even ones)
        pool = L.avg(2, stride=2, padding=0, ceil_mode=True)
        self.downsample = nn.Sequential(pool, L.conv(c_in, c_out, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))


class Network(nn.Module):
    """Stem, three stages of N cells with two widening blocks between them, and a head.

    `cell(L, c_in, c_out)` makes every cell, in order (including the widening cells of the dense
    skeletons): `build` passes `Cell.of` for one architecture.
    """

    def __init__(self, spec: Spec, C: int, N: int, cell: CellFactory):
        super().__init__()
        if C < 1 or N < 1:
            raise ValueError(f"C and N must be positive integers, got C={C}, N={N}")
        skeleton = _SPACE["skeletons"][spec.kind]
        L = Layers(spec.dims)
        self.spec, self.C, self.N = spec, C, N
        self.stem = nn.Sequential(L.conv(spec.in_channels, C, 3, padding=1, bias=False), L.bn(C))
        layers: list[nn.Module] = []
        for stage, width in enumerate((C, 2 * C, 4 * C)):
            if stage:
                layers.append(self._widen(skeleton["between_stages"], cell, L, width // 2, width))
            layers.extend(cell(L, width, width) for _ in range(N))
        self.cells = nn.Sequential(*layers)
        self.lastact = nn.Sequential(L.bn(4 * C), nn.ReLU(inplace=True))
        if skeleton["head"] == "global_linear":
            self.pool: nn.Module = nn.Sequential(L.global_avg(1), nn.Flatten())
            self.classifier: nn.Module = nn.Linear(4 * C, spec.out_size)
        elif skeleton["head"] == "pointwise_linear":
            self.pool = nn.Identity()
            self.classifier = L.conv(4 * C, spec.out_size, 1)
        else:
            raise ValueError(f"search_spaces/nb201.toml: skeleton {spec.kind!r} has unknown head {skeleton['head']!r}")

    @staticmethod
    def _widen(kind: str, cell: CellFactory, L: Layers, c_in: int, c_out: int) -> nn.Module:
        if kind == "residual":
            return ResidualBlock(L, c_in, c_out)
        if kind == "cell":
            return cell(L, c_in, c_out)
        raise ValueError(f"search_spaces/nb201.toml: unknown between_stages {kind!r}; expected 'residual' or 'cell'")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.lastact(self.cells(self.stem(x)))))


def build(arch: ArchLike, spec: Spec, C: int = DEFAULT_C, N: int = DEFAULT_N) -> Network:
    """The network for `arch` (an Arch, NB201 string or official index) shaped for `spec`."""
    return Network(spec, C, N, cell=partial(Cell.of, Arch.parse(arch)))
