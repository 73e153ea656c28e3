import numpy as np
import torch

from nb360 import build, fit, load_task
from nb360.data import digits
from nb360.spaces.nb201 import Arch


def test_splits_are_disjoint_fixed_and_standardised():
    task = load_task("digits")
    assert [len(s) for s in (task.train, task.val, task.test)] == [897, 450, 450]
    train, val, test = digits.split_indices(1797)
    assert len(set(train) | set(val) | set(test)) == 1797
    assert np.array_equal(train, digits.split_indices(1797)[0])
    x, y = task.train.tensors
    assert x.shape == (897, 1, 8, 8) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert abs(x.mean().item()) < 1e-5 and abs(x.std().item() - 1) < 1e-3
    assert set(y.tolist()) == set(range(10))
    assert task.spec.kind == "classify2d" and task.spec.in_shape == (8, 8) and task.spec.out_size == 10


def test_a_cell_learns_the_digits():
    task = load_task("digits")
    model = build(Arch.from_str("|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"),
                  task.spec, C=8, N=1)
    records = fit(model, task.splits, task.loss, task.metric, epochs=3, batch_size=task.batch_size, seed=0, progress=False)
    assert records[-1]["val_metric"] < 0.5  # chance is 0.9


def test_an_option_the_task_does_not_take_is_a_clear_error():
    import pytest

    with pytest.raises(ValueError, match=r"task 'digits' takes no option resolution \(its options: none\)"):
        load_task("digits", resolution=15)
