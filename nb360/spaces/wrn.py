"""The hand-designed baseline of NAS-Bench-360: its "WRN" backbone, fitted to a task spec.

NAS-Bench-360 trains one fixed network per task family next to the searched ones (the "WRN" rows of
its baseline table). Three definitions, each as the repository has it:

- ``classify2d``: WRN-16-4 (Zagoruyko & Komodakis, 2016) as ``backbone/backbone_pt.py`` (Backbone_Pt,
  after xternalz/WideResNet-pytorch): a 3x3 stem to 16 channels, three groups of (depth - 4) / 6
  pre-activation basic blocks of 16k, 32k, 64k channels (stride 1, 2, 2; a 1x1 projection where the
  width or stride changes), BN-ReLU, average pooling, a linear classifier. NB360 pools with a fixed
  kernel chosen by the final map's shape, which is global pooling for CIFAR (8x8), NinaPro (4x13) and
  FSD50K; on Spherical's 15x15 map its ``avg_pool2d(out, 8)`` averages only the top-left 8x8 window.
  Here pooling is global for every input.
- ``dense2d``: WRN-16-4 with every stride 1 and a linear map per pixel, as
  ``backbone/backbone_grid_wrn.py`` (Backbone) for Darcy Flow, PSICOV and Cosmic. The modules that
  NB360 defines there but never calls in ``forward`` (``in_layer``'s batch norm, ``out_conv``) are left out.
- ``classify1d``: NB360's 1D backbone, ``backbone_1d/backbone_1d.py`` (ResNet1D, the ResNet baseline of
  Wang et al. 2017 via okrasolar/pytorch-timeseries), which NB360 calls its 1D-customised WRN: three
  residual blocks of 64, 128, 128 channels, each three "same"-padded convolutions of kernel 8, 5, 3
  with bias, BN and ReLU, a 1x1 conv + BN shortcut where the width changes (and, as NB360 has it, no
  shortcut where it does not), the mean over positions, a linear classifier.

NAS-Bench-360 has no 1D dense task, so there is no ``dense1d`` baseline. Initialisation as NB360's:
Kaiming-normal (fan out) convolutions, unit BN weights, zero biases of the linear layers (WRN); torch
defaults (ResNet1D).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nb360.spaces.network import Spec

DEPTH, WIDEN = 16, 4  # NAS-Bench-360's `backbone: 16,4` in every backbone/scripts/*.yaml
MID_CHANNELS = 64  # backbone_1d/model_def.py: ResNet1D(in_channels, 64, n_classes)


class BasicBlock(nn.Module):
    """Pre-activation basic block. Where the width changes, BN-ReLU is applied to the input before it
    is split between the convolutions and the 1x1 projection (the WideResNet-pytorch block)."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.bn1, self.conv1 = nn.BatchNorm2d(c_in), nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn2, self.conv2 = nn.BatchNorm2d(c_out), nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.equal = c_in == c_out
        self.shortcut = None if self.equal else nn.Conv2d(c_in, c_out, 1, stride, 0, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        activated = F.relu(self.bn1(x))
        out = self.conv2(F.relu(self.bn2(self.conv1(activated))))
        return out + (x if self.equal else self.shortcut(activated))


class WideResNet(nn.Module):
    """WRN-depth-widen on 2D inputs; ``dense`` keeps the resolution and maps every pixel to the outputs."""

    def __init__(self, spec: Spec, depth: int = DEPTH, widen: int = WIDEN, dense: bool = False):
        super().__init__()
        if (depth - 4) % 6:
            raise ValueError(f"a WideResNet has depth 6n + 4, got {depth}")
        n = (depth - 4) // 6
        widths = [16, 16 * widen, 32 * widen, 64 * widen]
        strides = [1, 1, 1] if dense else [1, 2, 2]
        self.stem = nn.Conv2d(spec.in_channels, widths[0], 3, 1, 1, bias=False)
        blocks = []
        for c_in, c_out, stride in zip(widths[:-1], widths[1:], strides):
            blocks += [BasicBlock(c_in if i == 0 else c_out, c_out, stride if i == 0 else 1) for i in range(n)]
        self.blocks = nn.Sequential(*blocks)
        self.bn = nn.BatchNorm2d(widths[-1])
        self.dense = dense
        # NB360's dense head is nn.Linear on channels-last features: the same map as a 1x1 convolution
        self.head = nn.Conv2d(widths[-1], spec.out_size, 1) if dense else nn.Linear(widths[-1], spec.out_size)
        for m in self.modules():
            if isinstance(m, nn.Conv2d) and m is not self.head:
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.zeros_(self.head.bias)  # the head keeps torch's default weights, as NB360's nn.Linear does

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn(self.blocks(self.stem(x))))
        return self.head(out) if self.dense else self.head(out.mean(dim=(2, 3)))


class SameConv1d(nn.Conv1d):
    """TensorFlow's "same" padding at stride 1: k - 1 zeros, the odd one on the right (NB360's
    Conv1dSamePadding)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        total = self.kernel_size[0] - 1
        return F.conv1d(F.pad(x, [total // 2, total - total // 2]), self.weight, self.bias)


class ResNet1DBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        widths = [c_in, c_out, c_out, c_out]
        self.layers = nn.Sequential(*(
            nn.Sequential(SameConv1d(widths[i], widths[i + 1], kernel), nn.BatchNorm1d(widths[i + 1]), nn.ReLU())
            for i, kernel in enumerate((8, 5, 3))
        ))
        self.residual = None if c_in == c_out else nn.Sequential(SameConv1d(c_in, c_out, 1), nn.BatchNorm1d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.layers(x)
        return out if self.residual is None else out + self.residual(x)


class ResNet1D(nn.Module):
    """NAS-Bench-360's 1D backbone (see the module docstring)."""

    def __init__(self, spec: Spec, mid_channels: int = MID_CHANNELS):
        super().__init__()
        self.layers = nn.Sequential(ResNet1DBlock(spec.in_channels, mid_channels),
                                    ResNet1DBlock(mid_channels, 2 * mid_channels),
                                    ResNet1DBlock(2 * mid_channels, 2 * mid_channels))
        self.final = nn.Linear(2 * mid_channels, spec.out_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.final(self.layers(x).mean(dim=-1))


def build_wrn(spec: Spec, depth: int = DEPTH, widen: int = WIDEN) -> nn.Module:
    """NAS-Bench-360's baseline network for a task spec: WRN-depth-widen for 2D tasks (classification or
    dense), its 1D ResNet for sequence classification (``depth``/``widen`` do not apply there)."""
    if spec.kind == "classify2d":
        return WideResNet(spec, depth, widen)
    if spec.kind == "dense2d":
        return WideResNet(spec, depth, widen, dense=True)
    if spec.kind == "classify1d":
        return ResNet1D(spec)
    raise ValueError(f"NAS-Bench-360 has no baseline network for {spec.kind!r} tasks; "
                     "it defines one for classify2d, dense2d and classify1d")
