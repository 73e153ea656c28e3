"""NAS-Bench-360's baseline networks: parameter counts from the definitions, output shapes, padding."""

from __future__ import annotations

import pytest
import torch

from nb360.spaces.costs import count_params
from nb360.spaces.network import Spec
from nb360.spaces.wrn import BasicBlock, ResNet1D, WideResNet, build_wrn


def wrn_params(c_in: int, outputs: int, depth: int = 16, widen: int = 4) -> int:
    """Parameters of WRN-depth-widen as NB360's Backbone_Pt (and, stride aside, its dense Backbone without
    the unused modules): 3x3 stem; per basic block two BNs (2 per channel), two 3x3 convs and a 1x1
    projection where the width changes; final BN; linear head (per pixel for the dense one)."""
    n = (depth - 4) // 6
    widths = [16, 16 * widen, 32 * widen, 64 * widen]
    total = 9 * c_in * 16
    for a, b in zip(widths[:-1], widths[1:]):
        for i in range(n):
            c = a if i == 0 else b
            total += 2 * c + 9 * c * b + 2 * b + 9 * b * b + (c * b if c != b else 0)
    return total + 2 * widths[-1] + widths[-1] * outputs + outputs


def resnet1d_params(c_in: int, outputs: int, mid: int = 64) -> int:
    """NB360's ResNet1D: blocks (c_in, 64), (64, 128), (128, 128) of convs k = 8, 5, 3 with bias and BN,
    a 1x1 conv (with bias) + BN shortcut where the width changes; linear head."""
    total = 0
    for a, b in ((c_in, mid), (mid, 2 * mid), (2 * mid, 2 * mid)):
        widths = [a, b, b, b]
        total += sum(widths[i] * widths[i + 1] * k + 3 * widths[i + 1] for i, k in enumerate((8, 5, 3)))
        total += a * b + 3 * b if a != b else 0
    return total + 2 * mid * outputs + outputs


@pytest.mark.parametrize("spec", [Spec("classify2d", 3, (32, 32), 100), Spec("classify2d", 1, (16, 52), 18),
                                  Spec("classify2d", 3, (60, 60), 100), Spec("dense2d", 3, (9, 9), 1)])
def test_wrn_16_4_parameters_and_shapes(spec):
    model = build_wrn(spec)
    assert isinstance(model, WideResNet)
    assert count_params(model) == wrn_params(spec.in_channels, spec.out_size)
    assert sum(isinstance(m, BasicBlock) for m in model.modules()) == 6  # (16 - 4) / 6 = 2 blocks per group
    out = model(torch.randn(2, *spec.input_shape))
    expected = (2, spec.out_size, *spec.in_shape) if spec.kind == "dense2d" else (2, spec.out_size)
    assert out.shape == expected


def test_wrn_16_4_on_cifar100_has_its_published_size():
    # Zagoruyko & Komodakis list WRN-16-4 at 2.7M parameters on CIFAR
    assert count_params(build_wrn(Spec("classify2d", 3, (32, 32), 100))) == 2_772_020


def test_wrn_downsamples_twice_and_the_dense_one_never():
    features = {}
    for kind in ("classify2d", "dense2d"):
        model = build_wrn(Spec(kind, 1, (16, 52), 2))
        model.blocks.register_forward_hook(lambda m, i, o, kind=kind: features.__setitem__(kind, o.shape))
        model(torch.randn(1, 1, 16, 52))
    assert features == {"classify2d": (1, 256, 4, 13), "dense2d": (1, 256, 16, 52)}


@pytest.mark.parametrize("spec", [Spec("classify1d", 1, (1000,), 4), Spec("classify1d", 1, (46,), 24),
                                  Spec("classify1d", 4, (1000,), 36)])
def test_1d_baseline_parameters_and_shapes(spec):
    model = build_wrn(spec)
    assert isinstance(model, ResNet1D)
    assert count_params(model) == resnet1d_params(spec.in_channels, spec.out_size)
    assert model(torch.randn(3, *spec.input_shape)).shape == (3, spec.out_size)


def test_same_padding_keeps_the_length_with_the_odd_zero_on_the_right():
    block = build_wrn(Spec("classify1d", 1, (10,), 2)).layers[0].layers[0][0]  # kernel 8: 3 zeros left, 4 right
    x = torch.zeros(1, 1, 10)
    x[0, 0, 0] = 1.0
    with torch.no_grad():
        block.weight.zero_()
        block.bias.zero_()
        block.weight[0, 0, 3] = 1.0  # picks input position t + 3 - 3 = t
        assert block(x)[0, 0].tolist() == x[0, 0].tolist()


def test_no_baseline_for_1d_dense_tasks():
    with pytest.raises(ValueError, match="no baseline network for 'dense1d'"):
        build_wrn(Spec("dense1d", 1, (100,), 1))

