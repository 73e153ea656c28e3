"""Successive halving and Hyperband over training epochs.

Hyperband (Li, Jamieson, DeSalvo, Rostamizadeh & Talwalkar, JMLR 2018, Algorithm 1): with
R = max_epochs / min_epochs and s_max = floor(log_eta R), bracket s starts
n = ceil((s_max + 1) / (s + 1) * eta^s) random archs at r = max_epochs * eta^-s epochs; each rung
keeps the best floor(n_i / eta) and trains them eta times longer, up to max_epochs. Hyperband
cycles s = s_max, ..., 0; successive halving (Jamieson & Talwalkar, AISTATS 2016; Karnin et al.
2013) runs the most exploratory bracket, s = s_max, again and again.

Defaults: eta = 3 and min_epochs = 1, as NATS-Bench runs BOHB (AutoDL-Projects
exps/NATS-algos/bohb.py: `eta=3, min_budget=1`); epochs are rounded down, as NATS-Bench's worker
does (`iepoch=int(budget) - 1`). `max_epochs` is the full training length: the tabular runner
passes the table's.

Rungs are synchronous: a rung is promoted once all its archs are told. When every open bracket
waits for results (batched asks), the next bracket opens, so `ask` never blocks. Each evaluation
is a separate training run from scratch, as NATS-Bench's `simulate_train_eval` charges it.
"""

from __future__ import annotations

import math
from collections import deque

from nb360.search.base import RngLike, Searcher, Trial
from nb360.search.space import UniformStream, all_archs, index_of
from nb360.spaces.nb201 import NUM_ARCHS, Arch


class _Bracket:
    """One successive-halving run: rungs of (archs, epochs), promoted when all results are in."""

    def __init__(self, candidates: list[int], epochs: list[int], eta: int):
        self.epochs = epochs
        self.eta = eta
        self.rung = 0
        self.queue = deque(candidates)  # to ask at the current rung
        self.waiting = 0  # asked at the current rung, not yet told
        self.results: list[tuple[float, int]] = []
        self.finished = False

    def ask(self) -> tuple[int, int] | None:
        if not self.queue:
            return None
        self.waiting += 1
        return self.queue.popleft(), self.epochs[self.rung]

    def tell(self, index: int, score: float) -> None:
        self.results.append((score, index))
        self.waiting -= 1
        if self.waiting == 0 and not self.queue:
            self._promote()

    def _promote(self) -> None:
        keep = len(self.results) // self.eta
        if self.rung == len(self.epochs) - 1 or keep == 0:
            self.finished = True
            return
        self.rung += 1
        self.queue = deque(index for _, index in sorted(self.results)[:keep])
        self.results = []


class SuccessiveHalving(Searcher):
    """Successive halving over epochs: the bracket s = s_max, started afresh when it ends."""

    multi_fidelity = True

    def __init__(self, rng: RngLike = 0, max_epochs: int = 200, min_epochs: int = 1, eta: int = 3):
        super().__init__(rng)
        if not 1 <= min_epochs <= max_epochs or eta < 2:
            raise ValueError(f"need 1 <= min_epochs <= max_epochs and eta >= 2, got min_epochs={min_epochs}, "
                             f"max_epochs={max_epochs}, eta={eta}")
        self.max_epochs, self.min_epochs, self.eta = max_epochs, min_epochs, eta
        # floor(log_eta R) without float error for exact powers (log(9, 3) = 2.0000000000000004)
        self.s_max = 0
        while eta ** (self.s_max + 1) * min_epochs <= max_epochs:
            self.s_max += 1
        self._brackets: list[_Bracket] = []
        self._asked: dict[int, deque[_Bracket]] = {}  # index -> brackets waiting for its result
        self._bracket_count = 0
        self._uniform = UniformStream(self.rng)
        self._archs = all_archs()

    def bracket_plan(self, s: int) -> tuple[int, list[int]]:
        """(number of archs started, epochs of each rung) of bracket s."""
        n = math.ceil((self.s_max + 1) / (s + 1) * self.eta**s)
        epochs = [max(self.min_epochs, int(self.max_epochs * self.eta ** (i - s))) for i in range(s)]
        return n, [*epochs, self.max_epochs]

    def _next_s(self) -> int:
        return self.s_max

    def ask_trial(self) -> Trial:
        for bracket in self._brackets:
            asked = bracket.ask()
            if asked is not None:
                return self._record(bracket, *asked)
        n, epochs = self.bracket_plan(self._next_s())
        self._bracket_count += 1
        bracket = _Bracket([self._uniform.integer(NUM_ARCHS) for _ in range(n)], epochs, self.eta)
        self._brackets.append(bracket)
        return self._record(bracket, *bracket.ask())

    def _record(self, bracket: _Bracket, index: int, epochs: int) -> Trial:
        self._asked.setdefault(index, deque()).append(bracket)
        return Trial(self._archs[index], epochs)

    def ask(self) -> Arch:
        """The next arch without its budget: prefer `ask_trial`, which says how long to train."""
        return self.ask_trial().arch

    def tell(self, arch: Arch, score: float, budget: int | None = None) -> None:
        index = index_of(arch)
        waiting = self._asked.get(index)
        if not waiting:
            raise ValueError(f"{type(self).__name__}.tell: {arch} was not asked (or was already told)")
        bracket = waiting.popleft()
        if not waiting:
            del self._asked[index]
        bracket.tell(index, score)
        if bracket.finished:
            self._brackets.remove(bracket)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(max_epochs={self.max_epochs}, min_epochs={self.min_epochs}, eta={self.eta})"


class Hyperband(SuccessiveHalving):
    """Hyperband: brackets s = s_max, s_max - 1, ..., 0 in turn, then again."""

    def _next_s(self) -> int:
        return self.s_max - self._bracket_count % (self.s_max + 1)
