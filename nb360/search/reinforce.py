"""REINFORCE over the six categorical edge choices.

Williams, "Simple statistical gradient-following algorithms for connectionist reinforcement
learning", Machine Learning 1992; as NATS-Bench runs it (AutoDL-Projects
exps/NATS-algos/reinforce.py): a 6 x 5 table of logits initialised at 1e-3 * N(0, 1), one softmax
per edge, Adam with learning rate 0.01 (run-all.sh), an exponential-moving-average baseline of
momentum 0.9 (bias-corrected, updated with the reward before the advantage is taken), and one
policy step per evaluated arch.

The reward is minus the validation score (NATS-Bench uses accuracy in percent; Adam's update is
invariant to the reward's scale, so the sign is what matters). A failed evaluation (inf) updates
nothing. Written in NumPy: the gradient of log p(arch) with respect to edge e's logits is
onehot(op_e) - softmax(logits_e). The step uses the policy at the time of `tell`, which is the
policy that sampled the arch when asks and tells alternate.
"""

from __future__ import annotations

import math

import numpy as np

from nb360.search.base import RngLike, Searcher
from nb360.search.space import UniformStream, index_of, op_table
from nb360.spaces.nb201 import NUM_EDGES, NUM_OPS, Arch

# Adam's defaults (Kingma & Ba 2015; torch.optim.Adam), which NATS-Bench's script uses.
_BETA1, _BETA2, _EPS = 0.9, 0.999, 1e-8


class Reinforce(Searcher):
    """Policy-gradient search with a factorised categorical policy over the edges."""

    def __init__(self, rng: RngLike = 0, learning_rate: float = 0.01, baseline_momentum: float = 0.9):
        super().__init__(rng)
        if not learning_rate > 0 or not 0 <= baseline_momentum < 1:
            raise ValueError(f"need learning_rate > 0 and 0 <= baseline_momentum < 1, got {learning_rate}, {baseline_momentum}")
        self.learning_rate = learning_rate
        self.baseline_momentum = baseline_momentum
        self.logits = 1e-3 * self.rng.standard_normal((NUM_EDGES, NUM_OPS))
        self._m = np.zeros_like(self.logits)
        self._v = np.zeros_like(self.logits)
        self._steps = 0
        self._ema = [0.0, 0.0]  # numerator, denominator of the bias-corrected moving average
        self._uniform = UniformStream(self.rng)

    def probabilities(self) -> np.ndarray:
        """(6, 5) the policy: a softmax over operations for each edge."""
        z = np.exp(self.logits - self.logits.max(axis=1, keepdims=True))
        return z / z.sum(axis=1, keepdims=True)

    def ask(self) -> Arch:
        cumulative = np.cumsum(self.probabilities(), axis=1)
        ops = tuple(min(int(np.searchsorted(row, self._uniform.uniform(), side="right")), NUM_OPS - 1)
                    for row in cumulative)
        return Arch(ops)

    def tell(self, arch: Arch, score: float, budget: int | None = None) -> None:
        if not math.isfinite(score):
            return
        reward = -score
        numerator, denominator = self._ema
        m = self.baseline_momentum
        self._ema = [m * numerator + (1 - m) * reward, m * denominator + (1 - m)]
        advantage = reward - self._ema[0] / self._ema[1]
        onehot = np.zeros_like(self.logits)
        onehot[np.arange(NUM_EDGES), op_table()[index_of(arch)]] = 1.0
        grad = -advantage * (onehot - self.probabilities())  # of the loss -log p(arch) * advantage
        self._steps += 1
        self._m = _BETA1 * self._m + (1 - _BETA1) * grad
        self._v = _BETA2 * self._v + (1 - _BETA2) * grad**2
        m_hat = self._m / (1 - _BETA1**self._steps)
        v_hat = self._v / (1 - _BETA2**self._steps)
        self.logits -= self.learning_rate * m_hat / (np.sqrt(v_hat) + _EPS)

    def __repr__(self) -> str:
        return f"Reinforce(learning_rate={self.learning_rate}, baseline_momentum={self.baseline_momentum})"
