"""Source selection: spend a labelling budget on the unlabeled source richest in overlap points.

Shin, Cooper & Sala (ICLR 2025), SprocketLab/datacentric_w2s,
`scripts/llm_probing_data_selection/data_selection_with_linear_probing.py` with `Arm` and
`detect_easy_hard_overlap` from `w2s/data_source_selection_linear_probing.py`. Each round draws a
batch (without replacement, in an order shuffled once per source) from one source and runs overlap
detection on it; the detected overlap fraction is the round's reward. Policies:
- "ucb": every source once, then the source with the largest o_k + sqrt(2 ln T) / n_k, where o_k is
  the source's detected overlap fraction over all its rounds so far, n_k its number of rounds and T
  the number of rounds (the reference's `Arm.compute_ucb`; note the bonus decays as 1 / n_k, not
  the textbook UCB1's sqrt(1 / n_k), and we keep the reference's form);
- "random": a source uniformly at random each round;
- "fixed": one source throughout (`fixed_source`); without it, the best fixed source in hindsight:
  every source is played for the whole budget and the one with the highest detected overlap
  density is returned (what the reference's "optimal" baseline knows in advance).
As in the reference, the hard-only points detected in a strategy's earlier rounds join each new
batch's hard points when overlap scores are computed.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from nb360.w2s.detect import detect_overlap

POLICIES = ("ucb", "random", "fixed")


def select_sources(sources: Sequence[np.ndarray], weak: np.ndarray, strong_features: np.ndarray, budget: int,
                   policy: str = "ucb", batch_size: int = 20, seed: int = 0,
                   fixed_source: int | None = None) -> tuple[np.ndarray, list[dict]]:
    """Choose `budget` points (rounds of `batch_size`) from `sources`.

    `sources`: K arrays of row indices into the pool; `weak`: (n, k) weak-model probabilities of the
    pool; `strong_features`: (n, d) strong representations of the pool. Returns the chosen row
    indices (in the order drawn) and one log entry per round: round, source, drawn, the detected
    overlap and hard fractions of the batch, and for UCB the index of every source before the draw.
    """
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}; expected one of {', '.join(POLICIES)}")
    weak = np.asarray(weak)
    n = len(weak)
    if len(strong_features) != n:
        raise ValueError(f"weak has {n} rows but strong_features has {len(strong_features)}")
    sources = [np.asarray(s, dtype=np.int64) for s in sources]
    if not sources or any(s.ndim != 1 or len(s) == 0 for s in sources):
        raise ValueError("sources must be a non-empty list of non-empty 1-D index arrays")
    if any(s.min() < 0 or s.max() >= n for s in sources):
        raise ValueError(f"source indices must lie in [0, {n})")
    if batch_size < 4 or budget < batch_size:
        raise ValueError(f"need batch_size >= 4 (overlap detection) and budget >= batch_size; got {batch_size}, {budget}")
    if fixed_source is not None and not 0 <= fixed_source < len(sources):
        raise ValueError(f"fixed_source must be in [0, {len(sources)}), got {fixed_source}")
    rounds = budget // batch_size
    if policy == "fixed" and fixed_source is None:
        runs = [_play(sources, weak, strong_features, rounds, batch_size, "fixed", seed, k) for k in range(len(sources))]
        return max(runs, key=lambda run: np.mean([r["overlap_fraction"] for r in run[1]]))
    return _play(sources, weak, strong_features, rounds, batch_size, policy, seed, fixed_source)


def _play(sources, weak, features, rounds: int, batch_size: int, policy: str, seed: int,
          fixed_source: int | None) -> tuple[np.ndarray, list[dict]]:
    """One strategy for `rounds` rounds (fewer if the sources run out of batches)."""
    rng = np.random.default_rng(seed)
    queues = [rng.permutation(s) for s in sources]  # each source's draw order
    drawn = np.zeros(len(sources), dtype=np.int64)  # points taken from each source so far
    plays = np.zeros(len(sources), dtype=np.int64)
    found_overlap = np.zeros(len(sources))
    found_total = np.zeros(len(sources))
    chosen: list[np.ndarray] = []
    hard_seen: list[np.ndarray] = []
    log: list[dict] = []
    bonus = math.sqrt(2 * math.log(rounds)) if rounds > 1 else 0.0
    for t in range(rounds):
        open_ = np.flatnonzero(drawn + batch_size <= np.array([len(q) for q in queues]))
        if len(open_) == 0:
            break  # every source is exhausted
        ucb = None
        if policy == "fixed":
            if fixed_source not in open_:
                break
            k = fixed_source
        elif policy == "random":
            k = int(rng.choice(open_))
        elif (unplayed := [j for j in open_ if plays[j] == 0]):
            k = unplayed[0]  # the reference plays every source once first
        else:
            ucb = found_overlap / np.maximum(found_total, 1) + bonus / np.maximum(plays, 1)
            k = int(open_[np.argmax(ucb[open_])])
        batch = queues[k][drawn[k]:drawn[k] + batch_size]
        drawn[k] += batch_size
        hard_reference = features[np.concatenate(hard_seen)] if hard_seen else None
        found = detect_overlap(weak[batch], features[batch], hard_reference=hard_reference)
        plays[k] += 1
        found_overlap[k] += found.overlap.sum()
        found_total[k] += len(batch)
        hard_seen.append(batch[found.hard])
        chosen.append(batch)
        log.append({"round": t, "source": k, "drawn": len(batch), "overlap_fraction": float(found.overlap.mean()),
                    "hard_fraction": float(found.hard.mean()), "ucb": None if ucb is None else ucb.tolist()})
    return np.concatenate(chosen) if chosen else np.empty(0, dtype=np.int64), log
