"""Shared by the task loader tests: one training epoch of a small NB201 network on a task."""

from __future__ import annotations

import math

import pytest


@pytest.fixture
def one_epoch():
    """``one_epoch(task, batch_size=None, lr=0.05)``: trains an NB201 network (C=4, N=1, a cell with
    every operation) on the task's training split for one epoch on the CPU, checks that the losses and
    metrics are finite, and returns fit's record."""
    import torch

    from nb360.spaces.nb201 import Arch
    from nb360.spaces.network import build
    from nb360.train import fit

    arch = Arch.from_str("|nor_conv_3x3~0|+|skip_connect~0|avg_pool_3x3~1|+|nor_conv_1x1~0|none~1|nor_conv_3x3~2|")

    def train(task, batch_size: int | None = None, lr: float = 0.05) -> dict:
        torch.manual_seed(0)
        model = build(arch, task.spec, C=4, N=1)
        (record,) = fit(model, task.splits, task.loss, task.metric, epochs=1, batch_size=batch_size or task.batch_size,
                        lr=lr, seed=0, device="cpu", progress=False)
        for key in ("train_loss", "train_metric", "val_metric", "test_metric"):
            assert math.isfinite(record[key]), (key, record)
        return record

    # One thread: these networks are too small to gain from more, and on a busy machine the threads
    # of several test processes contend (measured: log-mel features 40x slower with 2 threads under load).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield train
    torch.set_num_threads(threads)
