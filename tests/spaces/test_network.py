import numpy as np
import pytest
import torch

from nb360.spaces.nb201 import Arch
from nb360.spaces.network import CIFAR10, AvgPool3, Spec, build


def load_reference_weights(ours: torch.nn.Module, ref: torch.nn.Module) -> None:
    """Give the reference non-trivial BN statistics and affine weights (so that eval mode is tested
    too), then copy its state into ours entry by entry: both list their modules in the same order."""
    for m in ref.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.normal_()
    state = ours.state_dict()
    assert len(state) == len(ref.state_dict())
    for ours_value, ref_value in zip(state.values(), ref.state_dict().values()):
        # equal shapes, but for a linear layer's (out, in) weight held as a 1x1 conv's (out, in, 1, 1)
        trailing = ours_value.shape[ref_value.dim():]
        assert ours_value.shape[: ref_value.dim()] == ref_value.shape and all(d == 1 for d in trailing)
    ours.load_state_dict({k: v.reshape(state[k].shape) for k, v in zip(state, ref.state_dict().values())})


def test_param_counts_match_reference(reference_net):
    rng = np.random.default_rng(0)
    archs = [Arch.random(rng) for _ in range(300)]
    for a in archs:
        ours = sum(p.numel() for p in build(a, CIFAR10).parameters())
        ref = sum(p.numel() for p in reference_net(a).parameters())
        assert ours == ref, str(a)


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_same_weights_same_outputs(reference_net, mode):
    rng = np.random.default_rng(1)
    archs = [Arch.from_str("|none~0|+|nor_conv_3x3~0|none~1|+|none~0|avg_pool_3x3~1|nor_conv_1x1~2|")]
    archs += [Arch.random(rng) for _ in range(4)]
    for a in archs:
        torch.manual_seed(0)
        ref = reference_net(a, C=8, N=2)
        ours = build(a, CIFAR10, C=8, N=2)
        load_reference_weights(ours, ref)
        getattr(ref, mode)()
        getattr(ours, mode)()
        x = torch.randn(4, 3, 32, 32)
        with torch.no_grad():
            _, ref_logits = ref(x)
            our_logits = ours(x)
        torch.testing.assert_close(our_logits, ref_logits, rtol=1e-5, atol=1e-5)


def test_dense2d_is_nb360_darcy_network(reference_dense_net):
    rng = np.random.default_rng(4)
    spec = Spec("dense2d", 3, (11, 11), 1)
    for a in [Arch.random(rng) for _ in range(100)]:
        ours = sum(p.numel() for p in build(a, spec, C=4, N=2).parameters())
        assert ours == sum(p.numel() for p in reference_dense_net(a, C=4, N=2).parameters()), str(a)
    archs = [Arch.from_str("|skip_connect~0|+|avg_pool_3x3~0|none~1|+|none~0|nor_conv_1x1~1|skip_connect~2|")]
    for a in archs + [Arch.random(rng) for _ in range(4)]:
        torch.manual_seed(0)
        ref = reference_dense_net(a, C=4, N=2)
        ours = build(a, spec, C=4, N=2)
        load_reference_weights(ours, ref)  # the per-pixel linear head becomes a 1x1 convolution
        for mode in ("train", "eval"):
            getattr(ref, mode)()
            getattr(ours, mode)()
            x = torch.randn(3, 3, 11, 11)
            with torch.no_grad():
                expected = ref(x.permute(0, 2, 3, 1))[1].permute(0, 3, 1, 2)
                torch.testing.assert_close(ours(x), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "spec, out_shape",
    [
        (Spec("dense2d", 3, (21, 19), 2), (2, 2, 21, 19)),
        (Spec("classify1d", 4, (50,), 7), (2, 7)),
        (Spec("dense1d", 1, (33,), 3), (2, 3, 33)),
        (Spec("classify2d", 1, (16, 52), 18), (2, 18)),
    ],
)
def test_skeletons_fit_the_task(spec, out_shape):
    a = Arch.from_str("|nor_conv_3x3~0|+|skip_connect~0|avg_pool_3x3~1|+|nor_conv_1x1~0|none~1|nor_conv_3x3~2|")
    net = build(a, spec, C=4, N=1)
    y = net(torch.randn(2, *spec.input_shape))
    assert y.shape == out_shape
    y.sum().backward()
    assert all(p.grad is not None for p in net.parameters())


def test_dense_keeps_resolution_and_doubles_channels():
    net = build(0, Spec("dense2d", 3, (17, 17), 1), C=4, N=1)
    widths = []
    x = net.stem(torch.randn(1, 3, 17, 17))
    for layer in net.cells:
        x = layer(x)
        widths.append(x.shape[1])
        assert x.shape[2:] == (17, 17)
    assert widths == [4, 8, 8, 16, 16]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(kind="classify3d", in_channels=3, in_shape=(8, 8), out_size=2), "unknown network kind"),
        (dict(kind="classify2d", in_channels=3, in_shape=(8,), out_size=2), "2-D"),
        (dict(kind="dense1d", in_channels=0, in_shape=(8,), out_size=2), "positive"),
    ],
)
def test_bad_spec(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Spec(**kwargs)


def test_bad_width():
    with pytest.raises(ValueError, match="C and N"):
        build(0, CIFAR10, C=0)


@pytest.mark.parametrize("shape", [(2, 3, 15, 15), (2, 3, 1, 1), (1, 2, 2, 7), (3, 4, 5, 1), (2, 3, 15), (2, 3, 1),
                                   (1, 2, 2)])
def test_avg_pool_edge_is_torchs_pool_without_padding(shape):
    """AvgPool3 computes what AvgPool(3, 1, 1, count_include_pad=False) does, values and gradients,
    on maps down to one entry (where the window holds only the entry itself)."""
    dims = len(shape) - 2
    torch_pool = {1: torch.nn.functional.avg_pool1d, 2: torch.nn.functional.avg_pool2d}[dims]
    x = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    weights = torch.randn(*shape, dtype=torch.float64)
    ours = AvgPool3(dims)(x)
    (grad_ours,) = torch.autograd.grad((ours * weights).sum(), x)
    expected = torch_pool(x, 3, 1, 1, count_include_pad=False)
    (grad_expected,) = torch.autograd.grad((expected * weights).sum(), x)
    torch.testing.assert_close(ours, expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(grad_ours, grad_expected, rtol=1e-12, atol=1e-12)
