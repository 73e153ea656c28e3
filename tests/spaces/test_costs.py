import numpy as np
import pytest

from nb360.spaces.costs import costs, count_flops, table_costs
from nb360.spaces.nb201 import Arch
from nb360.spaces.network import CIFAR10, Spec

ALL_CONV3 = Arch.from_str("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|")


def test_reference_figures():
    c = costs(ALL_CONV3, CIFAR10)
    assert c.params == 1_531_546
    assert round(c.flops / 1e6, 2) == 220.12


def test_flops_match_reference(reference_net):
    from xautodl.utils.flop_benchmark import get_model_infos

    rng = np.random.default_rng(2)
    for a in [ALL_CONV3] + [Arch.random(rng) for _ in range(15)]:
        ref_mflops, ref_mparams = get_model_infos(reference_net(a), (1, 3, 32, 32))
        c = costs(a, CIFAR10)
        assert c.flops / 1e6 == pytest.approx(ref_mflops, rel=1e-9), str(a)
        assert c.params / 1e6 == pytest.approx(ref_mparams, rel=1e-12), str(a)


@pytest.mark.parametrize(
    "spec",
    [CIFAR10, Spec("dense2d", 3, (29, 29), 1), Spec("classify1d", 4, (100,), 36), Spec("dense1d", 1, (46,), 2)],
)
def test_table_costs_equal_direct_counts(spec):
    params, flops = table_costs(spec, C=4, N=2)
    assert params.shape == flops.shape == (15625,)
    rng = np.random.default_rng(3)
    for i in rng.choice(15625, 12, replace=False):
        c = costs(int(i), spec, C=4, N=2)
        assert (params[i], flops[i]) == (c.params, c.flops)


def test_flops_grow_with_resolution_params_do_not():
    small, large = Spec("dense2d", 3, (16, 16), 1), Spec("dense2d", 3, (32, 32), 1)
    a, b = costs(ALL_CONV3, small, C=4, N=1), costs(ALL_CONV3, large, C=4, N=1)
    assert a.params == b.params and b.flops == 4 * a.flops


def test_latency_is_measured():
    c = costs(ALL_CONV3, CIFAR10, C=4, N=1, latency=True)
    assert 0 < c.latency_ms < 1e4


def test_count_flops_linear_only():
    import torch

    model = torch.nn.Linear(10, 3)
    assert count_flops(model, (10,)) == 33
