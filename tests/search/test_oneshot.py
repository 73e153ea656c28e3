"""One-shot search: the supernet on every skeleton, its equivalence with the discrete network,
GDAS's sampling, and DARTS / GDAS runs on generated Darcy Flow data with table lookup."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from nb360.data import darcy
from nb360.data.task import load_task
from nb360.search.oneshot import ALPHA_LR, SuperNet, derive, gdas_tau, search_oneshot, unrolled_alpha_grad
from nb360.spaces.nb201 import NUM_EDGES, NUM_OPS, Arch
from nb360.spaces.network import Cell, Spec, build
from nb360.table.schema import TableWriter, create
from nb360.train import fit, seed_everything

pytestmark = pytest.mark.usefixtures("one_thread")

SPECS = [
    Spec("classify2d", 1, (8, 8), 5),
    Spec("dense2d", 3, (9, 9), 2),
    Spec("classify1d", 4, (20,), 3),
    Spec("dense1d", 1, (17,), 2),
]
ARCHS = [
    Arch.from_str("|nor_conv_3x3~0|+|skip_connect~0|avg_pool_3x3~1|+|nor_conv_1x1~0|none~1|skip_connect~2|"),
    Arch.from_str("|avg_pool_3x3~0|+|none~0|nor_conv_1x1~1|+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|"),
]


@pytest.fixture(scope="module")
def darcy_task(tmp_path_factory):
    """Generated Darcy Flow at 15 x 15: 21 training, 3 validation and 30 test samples."""
    root = tmp_path_factory.mktemp("darcy")
    darcy.generate(root, n=30, resolution=15, solver_resolution=29, progress=False)
    return load_task("darcyflow", root, resolution=15)


def one_hot_alphas(net: SuperNet, arch: Arch) -> None:
    """alpha 0 on the arch's operations and -inf elsewhere: softmax (and GDAS's draw) is exactly one-hot."""
    with torch.no_grad():
        net.alphas.copy_(torch.where(torch.from_numpy(arch.onehot()) > 0, 0.0, -math.inf))


@pytest.mark.parametrize("method", ["darts", "gdas"])
@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.kind)
def test_supernet_fits_every_skeleton(spec, method):
    torch.manual_seed(0)
    net = SuperNet(spec, C=4, N=1, method=method)
    x = torch.randn(3, *spec.input_shape)
    y = net(x)
    assert y.shape == build(ARCHS[0], spec, C=4, N=1)(x).shape
    y.square().mean().backward()
    # DARTS trains every operation; GDAS only the drawn one on each edge (and the skeleton)
    idle = set()
    if method == "gdas":
        idle = {id(p) for cell in net.cells if isinstance(cell, Cell) for e, mixed in enumerate(cell.edges)
                for k, op in enumerate(mixed.ops) if k != net.mixing.sampled[e] for p in op.parameters()}
    assert all((p.grad is not None) == (id(p) not in idle) for p in net.weights())
    assert torch.isfinite(net.alphas.grad).all() and (net.alphas.grad != 0).any(dim=1).all()


@pytest.mark.parametrize("method", ["darts", "gdas"])
@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.kind)
def test_one_hot_alphas_give_the_discrete_network(spec, method):
    """With NATS-Bench's batch norm (no affine weights, no running statistics) the two agree in
    training mode, the mode the search runs in."""
    torch.manual_seed(1)
    net = SuperNet(spec, C=4, N=1, method=method).train()
    x = torch.randn(4, *spec.input_shape)
    for arch in ARCHS:
        one_hot_alphas(net, arch)
        discrete = net.discretize(arch).train()
        with torch.no_grad():
            expected = discrete(x)
            torch.testing.assert_close(net(x), expected, rtol=1e-6, atol=1e-6)
            # the check can fail: another cell's network computes something else
            other = net.discretize(arch.neighbors()[0]).train()
            assert not torch.allclose(other(x), expected, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.kind)
def test_discretize_copies_every_weight_and_statistic(spec):
    """With affine, tracked batch norm everywhere, every tensor of the discrete network comes from
    the supernet, and the two agree in evaluation mode too."""
    torch.manual_seed(2)
    net = SuperNet(spec, C=4, N=1, affine=True, track_running_stats=True)
    for m in net.modules():
        if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.normal_()
    x = torch.randn(4, *spec.input_shape)
    for arch in ARCHS:
        one_hot_alphas(net, arch)
        discrete = net.discretize(arch)
        norms = [m for m in discrete.modules() if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d))]
        assert norms and all((m.running_mean != 0).all() for m in norms)  # statistics copied, not fresh
        for mode in ("train", "eval"):
            getattr(net, mode)()
            getattr(discrete, mode)()
            with torch.no_grad():
                torch.testing.assert_close(net(x), discrete(x), rtol=1e-6, atol=1e-6)


def record_calls(net: SuperNet) -> list[tuple[int, int, int]]:
    """A list that every forward pass of `net` fills with (cell, edge, operation) of each operation run."""
    calls = []
    for c, cell in enumerate(net.cells):
        for e, mixed in enumerate(cell.edges):
            for k, op in enumerate(mixed.ops):
                op.register_forward_hook(lambda *_, key=(c, e, k): calls.append(key))
    return calls


def test_gdas_runs_one_operation_per_edge():
    spec = SPECS[1]  # dense2d: its widening cells are mixed cells too
    torch.manual_seed(3)
    net = SuperNet(spec, C=4, N=1, method="gdas")
    calls = record_calls(net)
    x = torch.randn(2, *spec.input_shape)
    drawn = set()
    for _ in range(8):
        calls.clear()
        net(x).mean().backward()
        sampled = net.mixing.sampled
        assert sorted(calls) == sorted((c, e, sampled[e]) for c in range(len(net.cells)) for e in range(NUM_EDGES))
        drawn.add(tuple(sampled))
    assert len(drawn) > 1  # near-uniform alpha at tau 10: the draws vary
    # the straight-through weights give every entry of alpha a gradient, not only the drawn ones
    assert (net.alphas.grad != 0).all()

    darts = SuperNet(spec, C=4, N=1, method="darts")
    calls = record_calls(darts)
    darts(x)
    assert len(set(calls)) == len(calls) == len(darts.cells) * NUM_EDGES * NUM_OPS


def test_darts_alphas_learn_on_darcy(darcy_task):
    result = search_oneshot(darcy_task, "darts", epochs=3, C=4, N=1, batch_size=8, seed=0, progress=False,
                            train_epochs=0)
    assert result.alphas.shape == (4, NUM_EDGES, NUM_OPS) and result.source == "none"
    assert all(not np.array_equal(a, b) for a, b in zip(result.alphas[:-1], result.alphas[1:]))
    # Adam moves every entry by about its learning rate per step, weight decay alone included, so
    # look for learning: entries that moved several steps' worth away from zero, against the decay
    start, moved = result.alphas[0], result.alphas[-1] - result.alphas[0]
    assert ((moved * start > 0) & (np.abs(moved) > 3 * ALPHA_LR)).any()
    assert result.arch == derive(result.alphas[-1]) and str(result.arch) == result.records[-1]["arch"]
    assert [r["epoch"] for r in result.records] == [1, 2, 3]
    for r in result.records:
        assert math.isfinite(r["train_loss"]) and math.isfinite(r["alpha_loss"]) and 0 < r["val_metric"] < 10
        assert math.isnan(r["tau"])
    assert result.records[0]["lr"] > result.records[-1]["lr"] > 0


def test_gdas_is_reproducible_and_looked_up_in_a_table(darcy_task, tmp_path):
    options = dict(method="gdas", epochs=2, C=4, N=1, batch_size=8, seed=5, progress=False)
    first = search_oneshot(darcy_task, train_epochs=0, **options)
    assert [r["tau"] for r in first.records] == [10.0, pytest.approx(0.1)]

    # a small table of real runs: the derived cell and two others
    path = create(tmp_path / "t.h5", task="darcyflow", metric="relative_l2", seeds=[0], epochs=1,
                  protocol={"C": 4, "N": 1}, provenance={"command": "test"})
    others = first.arch.neighbors()[:2]
    scores = {}
    with TableWriter(path) as writer:
        for arch in [first.arch, *others]:
            seed_everything(0)
            records = fit(build(arch, darcy_task.spec, 4, 1), darcy_task.splits, darcy_task.loss, darcy_task.metric,
                          epochs=1, batch_size=8, seed=0, progress=False)
            writer.write_run(arch.index, 0, records)
            scores[arch] = records[-1]["test_metric"]

    looked_up = search_oneshot(darcy_task, table=path, **options)
    assert looked_up.arch == first.arch
    np.testing.assert_array_equal(looked_up.alphas, first.alphas)
    assert [{k: v for k, v in r.items() if not k.endswith("seconds")} for r in looked_up.records] == \
        [{k: v for k, v in r.items() if not k.endswith("seconds")} for r in first.records]
    assert looked_up.source == "table" and looked_up.table == str(path)
    assert looked_up.test_metric == pytest.approx(scores[first.arch])
    assert looked_up.regret >= 0
    assert looked_up.regret == pytest.approx(scores[first.arch] - min(scores.values()))

    other_seed = search_oneshot(darcy_task, train_epochs=0, **{**options, "seed": 6})
    assert not np.array_equal(other_seed.alphas[-1], first.alphas[-1])


def test_derived_cell_is_trained_without_a_table(darcy_task):
    result = search_oneshot(darcy_task, "gdas", epochs=1, C=4, N=1, batch_size=8, seed=2, progress=False,
                            train_epochs=2)
    assert result.source == "trained" and len(result.train_records) == 2 and math.isnan(result.regret)
    seed_everything(2)
    again = fit(build(result.arch, darcy_task.spec, 4, 1), darcy_task.splits, darcy_task.loss, darcy_task.metric,
                epochs=2, batch_size=8, seed=2, progress=False)
    assert result.test_metric == again[-1]["test_metric"] and result.val_metric == again[-1]["val_metric"]


def test_a_missing_cell_has_no_regret(darcy_task, tmp_path):
    path = create(tmp_path / "t.h5", task="darcyflow", metric="relative_l2", seeds=[0], epochs=1,
                  protocol={}, provenance={"command": "test"})
    with TableWriter(path) as writer:  # one real run, of cell 0
        writer.write_run(0, 0, fit(build(0, darcy_task.spec, 4, 1), darcy_task.splits, darcy_task.loss,
                                   darcy_task.metric, epochs=1, batch_size=8, progress=False))
    result = search_oneshot(darcy_task, "gdas", epochs=1, C=4, N=1, batch_size=8, progress=False, table=path)
    assert result.arch.index != 0
    assert result.source == "table" and math.isnan(result.regret) and math.isnan(result.test_metric)


def test_bad_input(darcy_task, tmp_path):
    with pytest.raises(ValueError, match="unknown one-shot method 'enas'"):
        search_oneshot(darcy_task, "enas", epochs=1)
    with pytest.raises(ValueError, match="epochs"):
        search_oneshot(darcy_task, "darts", epochs=0)
    other = create(tmp_path / "digits.h5", task="digits", metric="zero_one", seeds=[0], epochs=1, protocol={},
                   provenance={"command": "test"})
    with pytest.raises(ValueError, match="holds task 'digits', but the search runs on 'darcyflow'"):
        search_oneshot(darcy_task, "darts", epochs=1, table=other)
    empty = create(tmp_path / "empty.h5", task="darcyflow", metric="relative_l2", seeds=[0], epochs=1, protocol={},
                   provenance={"command": "test"})
    with pytest.raises(ValueError, match="no finished run"):
        search_oneshot(darcy_task, "darts", epochs=1, table=empty)
    with pytest.raises(ValueError, match=r"shape \(6, 5\)"):
        derive(np.zeros((5, 6)))
    with pytest.raises(ValueError, match="unknown one-shot method"):
        SuperNet(SPECS[0], method="random")
    with pytest.raises(ValueError, match="order must be 1, or 2 with method 'darts'"):
        search_oneshot(darcy_task, "gdas", epochs=1, order=2)


def test_second_order_gradient_is_the_exact_hypergradient():
    """DARTS-V2's finite-difference estimate against autograd through the virtual weight step, in
    float64 with a small step (the default step, 0.01, crosses ReLU kinks of a network this small),
    and with a momentum buffer in play."""
    spec = Spec("classify1d", 2, (8,), 3)
    torch.manual_seed(4)
    net = SuperNet(spec, C=2, N=1).double().train()
    with torch.no_grad():
        net.alphas.normal_()  # away from uniform, so that the second-order term matters
    loss = lambda out, target: (out - target).square().mean()  # noqa: E731
    x, y, xv, yv = torch.randn(3, *spec.input_shape).double(), torch.randn(3, 3).double(), \
        torch.randn(3, *spec.input_shape).double(), torch.randn(3, 3).double()
    optimizer = torch.optim.SGD(net.weights(), lr=0.05, momentum=0.9, weight_decay=5e-4, nesterov=True)
    for _ in range(2):  # fills the momentum buffer
        optimizer.zero_grad()
        loss(net(x), y).backward()
        optimizer.step()
    before = [p.detach().clone() for p in net.weights()]

    _, estimate = unrolled_alpha_grad(net, optimizer, loss, (x, y), (xv, yv), r=1e-6)
    assert all(torch.equal(a, b) for a, b in zip(before, net.weights()))  # weights restored

    names = [n for n, _ in net.named_parameters() if n != "alphas"]
    grads = torch.autograd.grad(loss(net(x), y), net.weights(), create_graph=True)
    unrolled = {n: w - 0.05 * (g + 5e-4 * w + 0.9 * optimizer.state[w]["momentum_buffer"])
                for n, w, g in zip(names, net.weights(), grads)}
    exact = torch.autograd.grad(loss(torch.func.functional_call(net, unrolled, (xv,)), yv), net.alphas)[0]
    torch.testing.assert_close(estimate, exact, rtol=1e-5, atol=1e-8)
    first_order = torch.autograd.grad(loss(torch.func.functional_call(net, {k: v.detach() for k, v in unrolled.items()},
                                                                      (xv,)), yv), net.alphas)[0]
    assert not torch.allclose(first_order, exact, rtol=1e-3, atol=0)


def test_second_order_search_on_darcy(darcy_task):
    options = dict(epochs=1, C=4, N=1, batch_size=11, seed=0, progress=False, train_epochs=0)
    second = search_oneshot(darcy_task, "darts", order=2, **options)
    first = search_oneshot(darcy_task, "darts", **options)
    assert np.abs(second.alphas[-1] - second.alphas[0]).max() > ALPHA_LR
    assert not np.array_equal(second.alphas[-1], first.alphas[-1])
    np.testing.assert_array_equal(second.alphas[0], first.alphas[0])


def test_tau_schedule():
    assert [round(gdas_tau(e, 3), 6) for e in range(3)] == [10.0, 5.05, 0.1]
    assert gdas_tau(0, 1) == 10.0
