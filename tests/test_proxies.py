"""Zero-cost proxies: finite on every network kind, equal to hand computations on tiny models,
SynFlow's invariances, NASWOT on known activation patterns, determinism, direction."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from nb360.metrics import RelativeL2
from nb360.proxies import JACOB_COV_K, compute, jacob_cov_score, score
from nb360.proxy_names import PROXIES
from nb360.spaces.costs import count_flops, count_params
from nb360.spaces.network import Spec, build

pytestmark = pytest.mark.usefixtures("one_thread")

ARCH = "|nor_conv_3x3~0|+|skip_connect~0|avg_pool_3x3~1|+|nor_conv_1x1~0|nor_conv_3x3~1|skip_connect~2|"
DEGENERATE = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|none~0|none~1|none~2|"
EMPTY = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
# One spec per network kind, with a loss and a target maker of the task type it serves.
KINDS = {
    "classify2d": (Spec("classify2d", 3, (8, 8), 5), nn.CrossEntropyLoss(), lambda g, b: torch.randint(0, 5, (b,), generator=g)),
    "dense2d": (Spec("dense2d", 3, (7, 7), 1), RelativeL2(), lambda g, b: torch.randn(b, 1, 7, 7, generator=g)),
    "classify1d": (Spec("classify1d", 1, (20,), 4), nn.CrossEntropyLoss(), lambda g, b: torch.randint(0, 4, (b,), generator=g)),
    "dense1d": (Spec("dense1d", 4, (16,), 3), RelativeL2(), lambda g, b: torch.randn(b, 3, 16, generator=g)),
}


def batch(kind: str, size: int = 8, seed: int = 0):
    spec, loss, target = KINDS[kind]
    g = torch.Generator().manual_seed(seed)
    return spec, torch.randn(size, *spec.input_shape, generator=g), target(g, size), loss


# ---- every proxy on every kind ----------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_every_proxy_is_finite_on_every_network_kind(kind):
    spec, x, y, loss = batch(kind)
    values = compute(ARCH, spec, x, y, loss, C=2, N=1, seed=0)
    assert list(values) == list(PROXIES)
    assert all(math.isfinite(v) for v in values.values()), values
    model = build(ARCH, spec, 2, 1)
    assert values["params"] == count_params(model) and values["flops"] == count_flops(model, spec.input_shape)


@pytest.mark.parametrize("kind", ["classify2d", "dense2d"])
def test_a_cell_without_input_output_path_gets_the_documented_extremes(kind):
    spec, x, y, loss = batch(kind)
    values = compute(DEGENERATE, spec, x, y, loss, C=2, N=1)
    assert values["synflow"] == values["zen"] == -math.inf and math.isnan(values["jacob_cov"])
    assert values["grad_norm"] == values["snip"] == values["grasp"] == 0.0  # no weight reaches the output
    assert math.isfinite(values["naswot"])  # the ReLUs of the dead branches still see the inputs
    assert compute(EMPTY, spec, x, y, loss, C=2, N=1, names="naswot") == {"naswot": -math.inf}


def test_same_seed_same_values_other_seed_other_network():
    spec, x, y, loss = batch("classify2d")
    first = compute(ARCH, spec, x, y, loss, C=2, N=1, seed=3)
    assert compute(ARCH, spec, x, y, loss, C=2, N=1, seed=3) == first
    other = compute(ARCH, spec, x, y, loss, C=2, N=1, seed=4)
    assert other["grad_norm"] != first["grad_norm"] and other["params"] == first["params"]


def test_score_leaves_the_network_and_global_rng_unchanged():
    spec, x, y, loss = batch("classify1d")
    net = build(ARCH, spec, 2, 1)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    rng_state = torch.get_rng_state()
    for name in PROXIES:
        score(name, net, x, y, loss)
    compute(ARCH, spec, x, y, loss, C=2, N=1, seed=7)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert torch.equal(torch.get_rng_state(), rng_state)


# ---- hand computations on one- and two-layer models ------------------------------------------------
@pytest.fixture
def linear_case():
    """A linear layer (3 -> 2, with bias), 5 samples, mean squared error: everything by hand."""
    g = torch.Generator().manual_seed(0)
    net = nn.Linear(3, 2)
    with torch.no_grad():
        net.weight.copy_(torch.randn(2, 3, generator=g))
        net.bias.copy_(torch.randn(2, generator=g))
    x, y = torch.randn(5, 3, generator=g), torch.randn(5, 2, generator=g)
    W, b = net.weight.detach().double().numpy(), net.bias.detach().double().numpy()
    X, Y = x.double().numpy(), y.double().numpy()
    out = X @ W.T + b
    dout = 2 * (out - Y) / out.size  # d mean((out - y)^2) / d out
    return net, x, y, W, X, out, dout


def test_grad_norm_and_snip_by_hand(linear_case):
    net, x, y, W, X, out, dout = linear_case
    grad_W = dout.T @ X
    assert score("grad_norm", net, x, y, nn.MSELoss()) == pytest.approx(np.linalg.norm(grad_W), rel=1e-5)
    assert score("snip", net, x, y, nn.MSELoss()) == pytest.approx(np.abs(W * grad_W).sum(), rel=1e-5)


def test_grad_norm_sums_the_norms_of_the_layers():
    """Two layers: the sum of per-layer gradient norms, not the norm of all gradients."""
    g = torch.Generator().manual_seed(1)
    net = nn.Sequential(nn.Linear(3, 4, bias=False), nn.Linear(4, 2, bias=False))
    with torch.no_grad():
        for m in net:
            m.weight.copy_(torch.randn(m.weight.shape, generator=g))
    x, y = torch.randn(6, 3, generator=g), torch.randn(6, 2, generator=g)
    W1, W2 = (m.weight.detach().double().numpy() for m in net)
    X = x.double().numpy()
    H = X @ W1.T
    dout = 2 * (H @ W2.T - y.double().numpy()) / (6 * 2)
    expected = np.linalg.norm(dout.T @ H) + np.linalg.norm((dout @ W2).T @ X)
    assert score("grad_norm", net, x, y, nn.MSELoss()) == pytest.approx(expected, rel=1e-5)


def test_grasp_by_hand(linear_case):
    """For MSE on a linear layer the weight Hessian acts as H[V] = 2/(n*o) V X^T X."""
    net, x, y, W, X, out, dout = linear_case
    grad_W = dout.T @ X
    Hg = 2 / out.size * grad_W @ (X.T @ X)
    assert score("grasp", net, x, y, nn.MSELoss()) == pytest.approx(-(W * Hg).sum(), rel=1e-5)


def test_fisher_by_hand(linear_case):
    """Per output channel 0.5 * mean over samples of (activation * its gradient)^2, times the fan-in."""
    net, x, y, W, X, out, dout = linear_case
    per_channel = 0.5 * ((out * dout) ** 2).mean(axis=0)
    assert score("fisher", net, x, y, nn.MSELoss()) == pytest.approx(3 * per_channel.sum(), rel=1e-5)


def test_synflow_by_hand():
    """Linear-ReLU-linear with biases, |parameters|, all-ones input: R = 1^T (|W2| h + |b2|),
    h = |W1| 1 + |b1|; synflow = sum |W2| * h (per output row) + sum |W1| * column sums of |W2|."""
    g = torch.Generator().manual_seed(2)
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
    W1, b1, W2, b2 = (np.abs(p.detach().double().numpy()) for p in net.parameters())
    h = W1.sum(axis=1) + b1
    expected = (W2 * h[None, :]).sum() + (W1 * W2.sum(axis=0)[:, None]).sum()
    x = torch.randn(5, 3)
    assert score("synflow", net, x, None, None) == pytest.approx(math.log(expected), rel=1e-12)


def test_jacob_cov_by_hand():
    """A linear map without bias gives every sample the same Jacobian w: all correlations are 1,
    eigenvalues (n, 0, ..., 0)."""
    net = nn.Linear(6, 1, bias=False)
    x = torch.randn(4, 6, generator=torch.Generator().manual_seed(3))
    k = JACOB_COV_K
    expected = -(math.log(4 + k) + 1 / (4 + k)) - 3 * (math.log(k) + 1 / k)
    assert score("jacob_cov", net, x, None, None) == pytest.approx(expected, rel=1e-9)
    # uncorrelated rows: identity correlation, every eigenvalue 1
    assert jacob_cov_score(np.array([[1.0, -1, 0, 0], [0, 0, 1, -1]])) == pytest.approx(-2 * (math.log(1 + k) + 1 / (1 + k)))
    assert math.isnan(jacob_cov_score(np.zeros((3, 4))))


# ---- SynFlow's invariances ----------------------------------------------------------------------
def test_synflow_ignores_signs_batchnorm_and_data():
    spec, x, y, loss = batch("classify2d")
    net = build(ARCH, spec, 2, 1)
    reference = score("synflow", net, x, y, loss)
    g = torch.Generator().manual_seed(5)
    changed = build(ARCH, spec, 2, 1)
    changed.load_state_dict(net.state_dict())
    with torch.no_grad():
        for m in changed.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):  # flip the sign of random weights
                m.weight.mul_(torch.randint(0, 2, m.weight.shape, generator=g) * 2.0 - 1.0)
            if isinstance(m, nn.BatchNorm2d):  # BN is removed: its parameters and statistics do not count
                m.weight.uniform_(0.1, 3.0, generator=g)
                m.bias.normal_(generator=g)
                m.running_var.uniform_(0.5, 2.0, generator=g)
    other_x, other_y = torch.randn(3, *x.shape[1:], generator=g), torch.randint(0, 5, (3,), generator=g)
    assert score("synflow", changed, other_x, other_y, loss) == pytest.approx(reference, rel=1e-12)


def test_synflow_conserves_rescaling_between_layers():
    """Scaling one layer by a and the next by 1/a leaves a bias-free ReLU net's SynFlow unchanged."""
    g = torch.Generator().manual_seed(6)
    net = nn.Sequential(nn.Linear(3, 5, bias=False), nn.ReLU(), nn.Linear(5, 2, bias=False))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
    x = torch.randn(4, 3)
    reference = score("synflow", net, x, None, None)
    with torch.no_grad():
        net[0].weight.mul_(8.0)  # a power of two: exact in float32
        net[2].weight.div_(8.0)
    assert score("synflow", net, x, None, None) == pytest.approx(reference, rel=1e-12)


# ---- NASWOT on known activation patterns -----------------------------------------------------------
def test_naswot_on_known_codes():
    """Codes are the rows of I3: K[i, j] = units - Hamming distance = [[3,1,1],[1,3,1],[1,1,3]],
    det 20. Two ReLUs see the same codes: K doubles, det 8 * 20. Equal codes: K is singular."""
    x = 2 * torch.eye(3) - 1
    assert score("naswot", nn.Sequential(nn.ReLU()), x, None, None) == pytest.approx(math.log(20))
    assert score("naswot", nn.Sequential(nn.ReLU(), nn.ReLU(inplace=True)), x, None, None) == pytest.approx(math.log(160))
    assert score("naswot", nn.Sequential(nn.ReLU()), torch.ones(3, 3), None, None) == -math.inf


# ---- zen ----------------------------------------------------------------------------------------
def test_zen_redraws_the_weights_so_the_initialisation_does_not_matter():
    spec, x, y, loss = batch("dense1d")
    torch.manual_seed(0)
    a = build(ARCH, spec, 2, 1)
    torch.manual_seed(1)
    b = build(ARCH, spec, 2, 1)
    assert score("zen", a, x, y, loss, seed=0) == score("zen", b, x, y, loss, seed=0)
    assert score("zen", a, x, y, loss, seed=1) != score("zen", a, x, y, loss, seed=0)
    with pytest.raises(ValueError, match="zen needs an nb360 Network"):
        score("zen", nn.Linear(3, 1), torch.randn(2, 3), None, None)


# ---- names ----------------------------------------------------------------------------------------
def test_unknown_names_and_wrong_shapes_are_refused():
    with pytest.raises(ValueError, match="unknown proxy 'nope'"):
        compute(ARCH, *batch("dense2d"), names="snip,nope", C=2, N=1)
    with pytest.raises(ValueError, match="unknown proxy 'nope'"):
        score("nope", nn.Linear(3, 1), torch.randn(2, 3), None, None)
    spec, x, y, loss = batch("dense2d")
    with pytest.raises(ValueError, match="the spec expects"):
        compute(ARCH, spec, x[:, :2], y, loss, C=2, N=1)


def test_the_example_of_the_docs_runs(capsys):
    """The example block of docs/search.md's proxies section, executed as written."""
    import re
    from pathlib import Path

    doc = Path(__file__).resolve().parents[1] / "docs" / "search.md"
    block = re.search(r"## Zero-cost proxies.*?```python\n(.*?)```", doc.read_text(), re.S).group(1)
    namespace = {}
    exec(compile(block, str(doc), "exec"), namespace)
    scores = namespace["scores"]
    assert set(scores) == set(PROXIES) and all(math.isfinite(v) for v in scores.values())
    assert "synflow" in capsys.readouterr().out
