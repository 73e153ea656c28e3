"""BANANAS: Bayesian optimisation with an ensemble of neural predictors on the path encoding.

White, Neiswanger & Savani, "BANANAS: Bayesian Optimization with Neural Architectures for Neural
Architecture Search", AAAI 2021; the original code is naszilla/naszilla (`nas_algorithms.py`
`bananas`, `acquisition_functions.py`, `meta_neural_net.py`, `params.py` 'standard',
`nas_benchmarks.py` `get_candidates`, `nas_bench_201/cell_201.py` `mutate`), also in NASLib
(naslib/optimizers/discrete/bananas/optimizer.py). The loop, with the original's defaults:

1. `num_init` = 10 random architectures;
2. each round, train `num_ensemble` = 5 feed-forward networks (10 hidden layers of 20 ReLUs,
   Glorot-uniform weights, mean absolute error, Adam lr 0.01 with betas (0.9, 0.99), 150 epochs,
   batches of 32) on the path encodings (`Arch.path_encoding`) of everything told so far;
3. make `num_candidates` = 100 candidates by mutating the best architectures so far (the best 5,
   in order, until the pool is full; each edge changes with probability 1/4, naszilla's
   `mutation_rate / (OP_SPOTS - 2)` for NB201);
4. score candidates with independent Thompson sampling (a draw from N(mean, std) of the ensemble's
   predictions per candidate; `acquisition="its"`, the default) or a lower confidence bound
   (`"ucb"`: mean - 0.5 std, naszilla's `ucb` for losses), and propose the `k` = 10 best as the
   next batch, asked one by one.

Scores are validation errors, lower is better, as in naszilla (which minimises validation loss).
Two deliberate differences, both about what a table makes pointless: the targets are
standardised before training (tables hold errors on very different scales, from 0-1 errors to
relative L2 of a few percent, where fixed Adam settings would otherwise fit nothing), and
candidates are distinct isomorphism classes never asked before (naszilla dedupes exact strings;
isomorphic cells share one run, so asking a twin would waste a query). An evaluation told as inf
(failed) is not a training target; its class is still never asked again.

The ensemble is a few NumPy arrays: the five members are trained at once as stacked matrices, with
products that give the same bits on every CPU (`_matmul`), so that a seed gives one trajectory on
any machine; a 100-query search takes a few seconds on one core.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from nb360.search.base import RngLike, Searcher, as_scores
from nb360.search.space import all_archs, index_of, op_table
from nb360.spaces import nb201
from nb360.spaces.nb201 import NUM_ARCHS, NUM_EDGES, NUM_OPS, Arch, iso_class_ids

ACQUISITIONS = ("its", "ucb")
# naszilla acquisition_functions.py, `ucb`: mean - explore_factor * std for a loss.
UCB_FACTOR = 0.5
# ParEGO's augmented Chebyshev scalarisation: max_i w_i f_i + rho * sum_i w_i f_i (Knowles 2006)
PAREGO_RHO = 0.05
# Keras's Adam epsilon (naszilla's meta network is a Keras model).
ADAM_EPSILON = 1e-7
_PLACES = NUM_OPS ** np.arange(NUM_EDGES - 1, -1, -1)  # base-5 place values of the generator position


def _matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Stacked matrix products (m, n, k) x (m, k, p) that give the same bits on every x86-64 CPU.

    NumPy's `@` calls OpenBLAS, which picks its kernel by the CPU it runs on (and by
    OPENBLAS_CORETYPE); kernels sum in different orders, and the predictor's training amplifies the
    last-bit differences until a search's trajectory depends on the machine (measured: BANANAS's
    regret on the shipped Darcy table moved from 0.0021 to 0.0031 between two kernels). `einsum`
    without `optimize` uses NumPy's own loops, the same on every machine (as the Darcy solver's
    inner products do); it costs about 4x the search time of BLAS, the price of a seed meaning one
    trajectory."""
    return np.einsum("mnk,mkp->mnp", a, b)


@cache
def path_encodings() -> np.ndarray:
    """(15625, 84) float32: the path encoding of every cell, rows in official index order."""
    table = np.stack([a.path_encoding() for a in all_archs()])
    table.setflags(write=False)
    return table


class MLPEnsemble:
    """`members` ReLU networks of `layers` hidden layers of `width` units and one linear output,
    trained at once (each with its own initial weights and batch order) by Adam on the mean
    absolute error. Parameters of all members live in one (members, P) array, so that Adam is a
    handful of array operations per step."""

    def __init__(self, members: int, inputs: int, layers: int, width: int, rng: np.random.Generator):
        self.rng = rng
        sizes = [inputs] + [width] * layers + [1]
        self.shapes = list(zip(sizes[:-1], sizes[1:]))
        total = sum(i * o + o for i, o in self.shapes)
        self.theta = np.zeros((members, total), dtype=np.float32)
        self.weights, self.biases = self._views(self.theta)
        for w, (i, o) in zip(self.weights, self.shapes):
            limit = np.sqrt(6.0 / (i + o))  # Glorot uniform, Keras's default; biases start at 0
            w[...] = rng.uniform(-limit, limit, size=w.shape)

    def _views(self, flat: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Per-layer (members, in, out) weight and (members, 1, out) bias views of a flat array."""
        weights, biases, offset = [], [], 0
        for i, o in self.shapes:
            weights.append(flat[:, offset:offset + i * o].reshape(len(flat), i, o))
            offset += i * o
            biases.append(flat[:, offset:offset + o].reshape(len(flat), 1, o))
            offset += o
        return weights, biases

    def _forward(self, x: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """Outputs (members, n) for inputs (members, n, d), and each layer's input."""
        inputs = []
        h = x
        last = len(self.weights) - 1
        for layer, (w, b) in enumerate(zip(self.weights, self.biases)):
            inputs.append(h)
            h = _matmul(h, w) + b
            if layer < last:
                np.maximum(h, 0.0, out=h)
        return h[..., 0], inputs

    def fit(self, x: np.ndarray, y: np.ndarray, epochs: int, batch_size: int, lr: float,
            betas: tuple[float, float] = (0.9, 0.99)) -> None:
        """Train every member on all of (x (n, d), y (n,)), `epochs` passes in shuffled batches."""
        n = len(x)
        grad = np.zeros_like(self.theta)
        grad_w, grad_b = self._views(grad)
        m, v = np.zeros_like(self.theta), np.zeros_like(self.theta)
        (b1, b2), step = betas, 0
        for _ in range(epochs):
            order = np.argsort(self.rng.random((len(self.theta), n)), axis=1)  # one permutation per member
            for start in range(0, n, batch_size):
                batch = order[:, start:start + batch_size]
                out, inputs = self._forward(x[batch])
                # d(mean |out - y|)/d(out), then back through the layers
                g = (np.sign(out - y[batch]) / batch.shape[1])[..., None].astype(np.float32)
                for layer in range(len(self.weights) - 1, -1, -1):
                    h = inputs[layer]
                    grad_w[layer][...] = _matmul(h.transpose(0, 2, 1), g)
                    grad_b[layer][...] = g.sum(axis=1, keepdims=True)
                    if layer:
                        g = _matmul(g, self.weights[layer].transpose(0, 2, 1)) * (h > 0)
                step += 1
                m *= b1
                m += (1 - b1) * grad
                v *= b2
                v += (1 - b2) * grad * grad
                rate = lr * np.sqrt(1 - b2**step) / (1 - b1**step)
                self.theta -= rate * m / (np.sqrt(v) + ADAM_EPSILON)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """(members, n) predictions for inputs (n, d)."""
        return self._forward(np.broadcast_to(x, (len(self.theta), *x.shape)))[0]


class Bananas(Searcher):
    """BANANAS on official indices: random start, then batches of `k` proposals, each batch chosen
    by an ensemble retrained on everything told so far. Asks made before enough results are told
    (fewer than `num_init` finite scores) are random, so batched asks never block."""

    def __init__(self, rng: RngLike = 0, num_init: int = 10, k: int = 10, num_ensemble: int = 5,
                 num_candidates: int = 100, num_arches_to_mutate: int = 5, mutation_prob: float = 0.25,
                 acquisition: str = "its", layers: int = 10, width: int = 20, epochs: int = 150,
                 mlp_batch_size: int = 32, lr: float = 0.01):
        super().__init__(rng)
        if acquisition not in ACQUISITIONS:
            raise ValueError(f"unknown acquisition {acquisition!r}; expected one of {', '.join(ACQUISITIONS)}")
        if min(num_init, k, num_ensemble, num_candidates, num_arches_to_mutate, layers, width, epochs,
               mlp_batch_size) < 1 or not 0 < mutation_prob <= 1 or not lr > 0:
            raise ValueError("num_init, k, num_ensemble, num_candidates, num_arches_to_mutate, layers, width, epochs "
                             "and mlp_batch_size must be >= 1, mutation_prob in (0, 1] and lr > 0")
        self.num_init, self.k, self.num_ensemble = num_init, k, num_ensemble
        self.num_candidates, self.num_arches_to_mutate = num_candidates, num_arches_to_mutate
        self.mutation_prob = mutation_prob
        self.acquisition = acquisition
        self.mlp = {"layers": layers, "width": width, "epochs": epochs, "batch_size": mlp_batch_size, "lr": lr}
        self.history: list[tuple[float, int]] = []  # (score, index) of every finite result told
        self._asked_classes: set[int] = set()  # iso classes asked (told or pending): never asked again
        self._queue: list[int] = []  # the current batch of proposals, popped from the end
        self._archs = all_archs()
        self._iso = iso_class_ids()
        self._ops = op_table()

    def ask(self) -> Arch:
        if not self._queue:
            self._queue = self._propose()[::-1] if len(self.history) >= self.num_init else [self._random()]
        index = self._queue.pop()
        self._asked_classes.add(int(self._iso[index]))
        return self._archs[index]

    def tell(self, arch: Arch, score: float, budget: int | None = None) -> None:
        index = index_of(arch)
        self._asked_classes.add(int(self._iso[index]))
        if np.isfinite(score):
            self.history.append((float(score), index))

    # ---- one round ---------------------------------------------------------------------------
    def _targets(self) -> list[tuple[float, int]]:
        """The (score, index) pairs that this round's predictor learns and its parents come from."""
        return self.history

    def _propose(self) -> list[int]:
        """The next `k` archs: the candidates with the best acquisition values, best first."""
        targets = self._targets()
        candidates = self._candidates(targets)
        if not candidates:
            return [self._random()]
        scores = np.array([s for s, _ in targets], dtype=np.float64)
        x = path_encodings()[[i for _, i in targets]]
        y = ((scores - scores.mean()) / (scores.std() or 1.0)).astype(np.float32)
        ensemble = MLPEnsemble(self.num_ensemble, x.shape[1], self.mlp["layers"], self.mlp["width"], self.rng)
        ensemble.fit(x, y, self.mlp["epochs"], self.mlp["batch_size"], self.mlp["lr"])
        predictions = ensemble.predict(path_encodings()[candidates]).astype(np.float64)
        mean, std = predictions.mean(axis=0), predictions.std(axis=0)
        if self.acquisition == "its":
            values = self.rng.normal(mean, std)
        else:
            values = mean - UCB_FACTOR * std
        return [candidates[i] for i in np.argsort(values, kind="stable")[:self.k]]

    def _candidates(self, targets: list[tuple[float, int]]) -> list[int]:
        """Up to `num_candidates` mutations of the best archs of `targets`, best parent first, each
        of an iso class neither asked nor already a candidate. Each parent gets `num_candidates` tries."""
        parents = [i for _, i in sorted(targets)[:self.num_arches_to_mutate]]
        classes = set(self._asked_classes)
        pool: list[int] = []
        index_of_code = nb201._index_of_code()  # generator position -> official index
        for parent in parents:
            if len(pool) >= self.num_candidates:
                break
            mutated = self._mutations(self._ops[parent], self.num_candidates)
            for index in index_of_code[mutated @ _PLACES].tolist():
                iso = int(self._iso[index])
                if iso not in classes and len(pool) < self.num_candidates:
                    classes.add(iso)
                    pool.append(index)
        return pool

    def _mutations(self, ops: np.ndarray, n: int) -> np.ndarray:
        """(n, 6) operation rows: `ops` with each edge changed to a different operation, drawn
        uniformly, with probability `mutation_prob`."""
        change = self.rng.random((n, NUM_EDGES)) < self.mutation_prob
        shift = self.rng.integers(1, NUM_OPS, size=(n, NUM_EDGES))  # a different op: ops + shift mod 5
        return np.where(change, (ops + shift) % NUM_OPS, ops)

    def _random(self) -> int:
        """A uniformly drawn arch of a class not yet asked (any arch once nearly all were)."""
        for _ in range(100):
            index = int(self.rng.integers(NUM_ARCHS))
            if int(self._iso[index]) not in self._asked_classes:
                return index
        return index

    def __repr__(self) -> str:
        return (f"Bananas(num_init={self.num_init}, k={self.k}, num_ensemble={self.num_ensemble}, "
                f"acquisition={self.acquisition!r})")



class ScalarizedBananas(Bananas):
    """BANANAS on random scalarisations of several objectives, as ParEGO does for Bayesian
    optimisation (Knowles, "ParEGO: a hybrid algorithm with on-line landscape approximation for
    expensive multiobjective optimization problems", IEEE TEC 2006).

    Each round draws weights uniformly from the simplex and turns every result told so far into
    one score, the augmented Chebyshev function max_i w_i f_i + 0.05 sum_i w_i f_i of its
    objectives, each scaled to [0, 1] over the results told (costs, after the error, on a log
    scale, since they span decades); the round is then BANANAS's on those scores (predictor,
    mutations of the best, Thompson sampling). Over rounds the weights sweep the front. Options
    and their defaults are BANANAS's."""

    multi_objective = True

    def __init__(self, rng: RngLike = 0, **options):
        super().__init__(rng, **options)
        self.told: list[tuple[tuple[float, ...], int]] = []  # (objectives, index) of every finite result

    def tell(self, arch: Arch, score, budget: int | None = None) -> None:
        scores = as_scores(score)
        super().tell(arch, scores[0], budget)  # history (error alone) counts results; asked classes
        if np.isfinite(scores).all():
            self.told.append((scores, index_of(arch)))

    def _targets(self) -> list[tuple[float, int]]:
        values = np.array([scores for scores, _ in self.told], dtype=np.float64)
        values[:, 1:] = np.log10(np.maximum(values[:, 1:], 1e-300))
        low, high = values.min(axis=0), values.max(axis=0)
        scaled = (values - low) / np.where(high > low, high - low, 1.0)
        weighted = scaled * self.rng.dirichlet(np.ones(values.shape[1]))
        scalar = weighted.max(axis=1) + PAREGO_RHO * weighted.sum(axis=1)
        return list(zip(scalar.tolist(), [index for _, index in self.told]))

    def __repr__(self) -> str:
        return "Scalarized" + super().__repr__()
