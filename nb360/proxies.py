"""Zero-cost proxies: scores of an untrained network, from one batch at most, that predict how well
it will train.

Every proxy takes the network of a cell built for a task (`nb360.spaces.network.build`, any kind:
classify2d, dense2d, classify1d, dense1d), one batch of the task's training data and the task's
loss. The definitions follow the reference implementations:

- `grad_norm`, `snip`, `grasp`, `fisher`, `jacob_cov`, `synflow`: Abdelfattah et al., "Zero-Cost
  Proxies for Lightweight NAS" (ICLR 2021), code SamsungLabs/zero-cost-nas
  (`foresight/pruners/measures/*.py`, summed per network as `find_measures` does), also in NASLib
  (`naslib/predictors/utils/pruners/measures/`). `synflow` is stored log-scaled, as NASLib's
  `ZeroCost.query` reports it, because raw values span hundreds of orders of magnitude.
- `naswot`: Mellor et al., "Neural Architecture Search without Training" (ICML 2021, second
  version), code BayesWatch/nas-without-training (`score_networks.py`, `hook_logdet`), as NASLib's
  `nwot.py`.
- `zen`: Lin et al., "Zen-NAS" (ICCV 2021), code idstcv/ZenNAS
  (`ZeroShotProxy/compute_zen_score.py`), as NASLib's `zen.py`.
- `params`, `flops`: the trivial baselines (`nb360.spaces.costs`).

Weighted layers are the convolutions (1D and 2D) and linear layers; only their weights count,
as in the references. Every proxy runs on its own copy of the freshly initialised network in
training mode (batch statistics in BN), as the references do, so no proxy sees another's changes.

Direction. Table scores are errors, lower is better; proxies are reported as the literature
defines them, where higher predicts a better network (`nb360.proxy_names`, torch-free, says so
for each proxy and converts). The table stores the raw values.

Tasks without classes (dense prediction, regression). No proxy here needs class labels as such:
- `grad_norm`, `snip`, `grasp` and `fisher` differentiate the task's own loss (relative L2 for
  Darcy Flow, cross-entropy for classification, ...), so they are defined for any loss. GraSP's
  original class-balanced batch and temperature (T=200) apply to logits only; the zero-cost
  references use a random batch and T=1, which is what is done for every task here.
- `jacob_cov` and `naswot` never read targets: `jacob_cov` takes the gradient of the *sum of all
  outputs* (every pixel of a dense map) with respect to each input, `naswot` the ReLU activation
  patterns. For a dense network these span per-pixel outputs, which is the natural reading of the
  reference's `y.backward(ones_like(y))`.
- `zen` uses Gaussian inputs of the batch's shape and the features before the head (the global
  pool of classify kinds, the per-pixel map of dense kinds).

Degenerate cells (no path from input to output): the output does not depend on the input, so
`synflow` and `zen` are log(0) = -inf, `jacob_cov` is NaN (correlations of zero Jacobians are
undefined; the reference returns NaN too), and `grad_norm`, `snip` and `grasp` are 0 (no weight
reaches the output). `naswot` counts every ReLU, as NASLib's version does, so ReLUs on dead branches
still separate the samples; it is -inf only where no ReLU does (the all-`none` cell).

Everything is deterministic for a seed: the seed sets the network's initial weights and the
Gaussian draws of `zen`; on the CPU the same seed gives the same values bit for bit.
"""

from __future__ import annotations

import copy
import math
from typing import Callable

import numpy as np
import torch
from torch import nn

from nb360.proxy_names import direction, parse_names
from nb360.spaces.costs import count_flops, count_params
from nb360.spaces.nb201 import ArchLike
from nb360.spaces.network import DEFAULT_C, DEFAULT_N, Network, Spec, build

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
# Zen-NAS's default perturbation of the input (compute_zen_score.py, --mixup_gamma).
ZEN_MIXUP_GAMMA = 1e-2
# jacob_cov's regulariser of the eigenvalues (zero-cost-nas jacob_cov.py, eval_score).
JACOB_COV_K = 1e-5
_WEIGHTED = (nn.Conv1d, nn.Conv2d, nn.Linear)
_BATCHNORM = (nn.BatchNorm1d, nn.BatchNorm2d)


# ---- the proxies, each on a network it may modify ------------------------------------------------
def _weighted_layers(net: nn.Module) -> list[nn.Module]:
    return [m for m in net.modules() if isinstance(m, _WEIGHTED)]


def _loss_backward(net: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, loss: Loss) -> None:
    net.zero_grad()
    loss(net(inputs), targets).backward()


def _grad_norm(net: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, loss: Loss, seed: int) -> float:
    """Sum over weighted layers of the L2 norm of the loss gradient of the layer's weight."""
    _loss_backward(net, inputs, targets, loss)
    return math.fsum(float(m.weight.grad.norm()) for m in _weighted_layers(net) if m.weight.grad is not None)


def _snip(net: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, loss: Loss, seed: int) -> float:
    """sum |dL/dm| over weights, m a multiplicative mask at 1 (Lee et al., SNIP). The reference
    makes the mask a parameter; dL/dm = w * dL/dw at m = 1, which is computed here directly."""
    _loss_backward(net, inputs, targets, loss)
    return _saliency(net)


def _saliency(net: nn.Module) -> float:
    """sum over weighted layers of |w * w.grad| (SNIP's and SynFlow's per-weight saliency)."""
    return math.fsum(float((m.weight.detach() * m.weight.grad).abs().sum())
                     for m in _weighted_layers(net) if m.weight.grad is not None)


def _grasp(net: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, loss: Loss, seed: int) -> float:
    """sum of -w * (H g) over weights (Wang et al., GraSP), H the Hessian and g the gradient of
    the loss; with the reference's sign, so that higher is better."""
    weights = [m.weight for m in _weighted_layers(net)]
    net.zero_grad()
    grad_w = torch.autograd.grad(loss(net(inputs), targets), weights, allow_unused=True)
    grad_f = torch.autograd.grad(loss(net(inputs), targets), weights, create_graph=True, allow_unused=True)
    z = sum((gw.detach() * gf).sum() for gw, gf in zip(grad_w, grad_f) if gw is not None and gf is not None)
    if not isinstance(z, torch.Tensor):  # no weight reaches the loss
        return 0.0
    z.backward()  # w.grad = H g
    return math.fsum(float((-w.detach() * w.grad).sum()) for w in weights if w.grad is not None)


def _fisher(net: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, loss: Loss, seed: int) -> float:
    """Fisher pruning saliency (Theis et al.): per output channel k of a weighted layer, with a its
    activation and g = dL/da, 0.5 * mean over samples of (sum over positions of a * g)^2.

    The reference spreads each channel's value over that channel's weights and sums them, so a
    channel counts fan-in times (in_channels x kernel size); kept, to give the reference's numbers.
    """
    total: list[float] = []

    def capture(layer: nn.Module, args, out: torch.Tensor) -> None:
        fan_in = layer.weight[0].numel()
        act = out.detach()

        def on_grad(grad: torch.Tensor) -> None:
            per_channel = (act * grad).flatten(2).sum(2) if act.dim() > 2 else act * grad
            total.append(fan_in * float(per_channel.pow(2).mean(0).mul(0.5).sum()))

        out.register_hook(on_grad)

    handles = [m.register_forward_hook(capture) for m in _weighted_layers(net)]
    try:
        _loss_backward(net, inputs, targets, loss)
    finally:
        for h in handles:
            h.remove()
    return math.fsum(total)


def _jacob_cov(net: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, loss: Loss, seed: int) -> float:
    """-sum(log(v + k) + 1 / (v + k)) over the eigenvalues v of the correlation matrix of the
    per-sample input gradients of the summed output (k = 1e-5). NaN when undefined."""
    x = inputs.detach().clone().requires_grad_(True)
    net.zero_grad()
    y = net(x)
    y.backward(torch.ones_like(y))
    if x.grad is None:  # the output does not depend on the input at all
        return float("nan")
    return jacob_cov_score(x.grad.reshape(len(x), -1).double().cpu().numpy())


def jacob_cov_score(jacobians: np.ndarray) -> float:
    """The jacob_cov score of per-sample Jacobians, one row per sample."""
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.corrcoef(jacobians)
    if not np.isfinite(corr).all():
        return float("nan")
    v = np.linalg.eigvalsh(corr)
    return float(-np.sum(np.log(v + JACOB_COV_K) + 1.0 / (v + JACOB_COV_K)))


def _synflow(net: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, loss: Loss, seed: int) -> float:
    """log of sum |w * dR/dw| over weights, R the summed output of the network with BN removed,
    every parameter replaced by its absolute value, in float64, for an all-ones input (Tanaka et
    al., SynFlow). Data-free: only the input's shape is used. log(0) = -inf."""
    _remove_batchnorm(net)
    net.double()
    with torch.no_grad():
        for p in net.parameters():
            p.abs_()
    net.zero_grad()
    net(torch.ones((1, *inputs.shape[1:]), dtype=torch.float64, device=inputs.device)).sum().backward()
    total = _saliency(net)
    return math.log(total) if total > 0 else -math.inf


def _remove_batchnorm(net: nn.Module) -> None:
    """BN layers become identities (the reference's `bn=False` copy)."""
    for module in list(net.modules()):
        for name, child in module.named_children():
            if isinstance(child, _BATCHNORM):
                setattr(module, name, nn.Identity())


def _naswot(net: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, loss: Loss, seed: int) -> float:
    """log |K|, K[i, j] = sum over ReLU units of [c_i == c_j], c the binary code (pre-activation
    > 0) of sample i: K = C C^T + (1 - C)(1 - C)^T, units minus Hamming distances. -inf when K
    is singular (two samples with the same code).

    Every `nn.ReLU` counts once. The original hooks every module whose type name contains "ReLU",
    which also catches ReLU-conv-BN wrappers and counts their input a second time; NASLib excludes
    its own wrappers for that reason, and so does this (checked against NASLib's nwot.py, which it
    matches once the wrappers are excluded)."""
    kernel = torch.zeros(len(inputs), len(inputs), dtype=torch.float64, device=inputs.device)

    def count(module: nn.Module, args, out: torch.Tensor) -> None:
        # An in-place ReLU has already overwritten its input; its sign pattern is the same.
        codes = (args[0].detach().flatten(1) > 0).double()
        kernel.add_(codes @ codes.T + (1 - codes) @ (1 - codes).T)

    handles = [m.register_forward_hook(count) for m in net.modules() if isinstance(m, nn.ReLU)]
    try:
        with torch.no_grad():
            net(inputs)
    finally:
        for h in handles:
            h.remove()
    return float(np.linalg.slogdet(kernel.cpu().numpy())[1])


def _zen(net: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, loss: Loss, seed: int) -> float:
    """log E|f(x) - f(x + gamma * e)|_1 + sum over BN layers of log sqrt(mean running variance),
    f the features before the head, x and e standard Gaussian, weights redrawn N(0, 1), BN affine
    reset (Zen-NAS). As the reference: training-mode BN, running variances read after the two
    forward passes (default momentum), one repeat (NASLib's)."""
    if not isinstance(net, Network):
        raise ValueError(f"zen needs an nb360 Network (features before the head), got {type(net).__name__}")
    generator = torch.Generator().manual_seed(seed)

    def gaussian(shape: torch.Size) -> torch.Tensor:
        # drawn on the CPU so that the values do not depend on the device
        return torch.randn(shape, generator=generator).to(inputs.device)

    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, _WEIGHTED):
                m.weight.copy_(gaussian(m.weight.shape))
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, _BATCHNORM):
                m.weight.fill_(1.0)
                m.bias.zero_()
        x, e = gaussian(inputs.shape), gaussian(inputs.shape)
        difference = (_features(net, x) - _features(net, x + ZEN_MIXUP_GAMMA * e)).abs().flatten(1).sum(1).mean()
        log_bn = sum(float(torch.log(torch.sqrt(m.running_var.mean()))) for m in net.modules()
                     if isinstance(m, _BATCHNORM))
    return float(torch.log(difference)) + log_bn


def _features(net: Network, x: torch.Tensor) -> torch.Tensor:
    """The network's features before its head (the input of the global pool, or of the per-pixel map)."""
    return net.lastact(net.cells(net.stem(x)))


def _params(net: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, loss: Loss, seed: int) -> float:
    return float(count_params(net))


def _flops(net: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, loss: Loss, seed: int) -> float:
    return float(count_flops(net, tuple(inputs.shape[1:])))


_IMPLEMENTATIONS: dict[str, Callable[[nn.Module, torch.Tensor, torch.Tensor, Loss, int], float]] = {
    "grad_norm": _grad_norm, "snip": _snip, "grasp": _grasp, "fisher": _fisher, "jacob_cov": _jacob_cov,
    "synflow": _synflow, "naswot": _naswot, "zen": _zen, "params": _params, "flops": _flops,
}


# ---- public entry points ---------------------------------------------------------------------
def score(name: str, net: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, loss: Loss, seed: int = 0) -> float:
    """One proxy of `net` (left unchanged: the proxy runs on a copy) for a batch of `inputs` and
    `targets` on the network's device. `seed` drives zen's random draws."""
    direction(name)
    return _run(name, copy.deepcopy(net), inputs, targets, loss, seed)


def _run(name: str, net: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, loss: Loss, seed: int) -> float:
    """One proxy on a network it may change, in training mode."""
    with torch.enable_grad():
        return _IMPLEMENTATIONS[name](net.train(), inputs, targets, loss, seed)


def compute(
    arch: ArchLike,
    spec: Spec,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    loss: Loss,
    names: str | list[str] | tuple[str, ...] | None = None,
    C: int = DEFAULT_C,
    N: int = DEFAULT_N,
    seed: int = 0,
) -> dict[str, float]:
    """The proxies `names` (default: all) of `arch`'s network for `spec`, initialised with `seed`,
    on the batch (`inputs`, `targets`), on the device of `inputs`. Global RNG states are left as
    they were."""
    names = parse_names(names)
    if tuple(inputs.shape[1:]) != spec.input_shape:
        raise ValueError(f"inputs have shape {tuple(inputs.shape[1:])} per sample, the spec expects {spec.input_shape}")
    if isinstance(loss, nn.Module):
        loss.to(inputs.device)

    def fresh() -> Network:
        # the same initial weights for every proxy: building again is cheaper than a deep copy
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return build(arch, spec, C, N).to(inputs.device)

    return {name: _run(name, fresh(), inputs, targets, loss, seed) for name in names}
