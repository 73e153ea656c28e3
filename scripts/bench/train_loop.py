"""Throughput of `nb360.train.fit` against a hand-written minimal torch loop.

Both train the same network, from the same initial weights, on the same data, with the same
optimizer and batch size; `fit` additionally keeps its records (loss, training predictions for the
metric, cosine schedule). Only training time is compared (fit's evaluation is excluded: its
`train_seconds` field). Runs alternate and the median of several repeats is reported.

    python scripts/bench/train_loop.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
from torch.utils.data import DataLoader, TensorDataset

from nb360.metrics import RelativeL2, zero_one_error
from nb360.spaces.network import Spec, build
from nb360.train import fit, seed_everything

ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
CASES = {
    # name: (spec, C, N, samples, batch, target maker, loss, metric)
    "classify2d 32x32": (Spec("classify2d", 3, (32, 32), 10), 16, 1, 512, 64,
                         lambda n: torch.randint(0, 10, (n,)), torch.nn.CrossEntropyLoss(), zero_one_error),
    "dense2d 29x29": (Spec("dense2d", 3, (29, 29), 1), 8, 1, 256, 16,
                      lambda n: torch.randn(n, 1, 29, 29), RelativeL2(), RelativeL2()),
}


def minimal_loop(model, ds, loss_fn, batch_size, epochs, seed):
    g = torch.Generator().manual_seed(seed)
    loader = DataLoader(ds, batch_size=batch_size, shuffle=True, generator=g)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=True)
    model.train()
    start = time.perf_counter()
    for _ in range(epochs):
        for x, y in loader:
            opt.zero_grad()
            loss_fn(model(x), y).backward()
            opt.step()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    print(f"{'case':<18} {'minimal s':>10} {'fit s':>8} {'fit/minimal throughput':>24}")
    for name, (spec, C, N, n, batch, target, loss_fn, metric) in CASES.items():
        torch.manual_seed(0)
        ds = TensorDataset(torch.randn(n, *spec.input_shape), target(n))
        seed_everything(0)
        initial = build(ARCH, spec, C, N)
        t_min, t_fit = [], []
        for r in range(args.repeats):
            t_min.append(minimal_loop(copy.deepcopy(initial), ds, loss_fn, batch, args.epochs, r))
            records = fit(copy.deepcopy(initial), (ds, None, None), loss_fn, metric, args.epochs, batch,
                          seed=r, device="cpu", progress=False)
            t_fit.append(records[-1]["train_seconds"])
        a, b = statistics.median(t_min), statistics.median(t_fit)
        print(f"{name:<18} {a:>10.3f} {b:>8.3f} {a / b:>24.3f}")


if __name__ == "__main__":
    main()
