import math

import pytest
import torch
from torch.utils.data import TensorDataset

from nb360.metrics import zero_one_error
from nb360.spaces.network import Spec, build
from nb360.train import TIME_FIELDS, fit, seed_everything

SPEC = Spec("classify2d", 1, (8, 8), 3)
ARCH = "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"


def toy_data(n=96, seed=0):
    """Three classes told apart by which third of the image is bright."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=g)
    x = 0.3 * torch.randn(n, 1, 8, 8, generator=g)
    for c in range(3):
        x[y == c, :, :, 3 * c : 3 * c + 2] += 1.0
    return TensorDataset(x, y)


def splits():
    return toy_data(96, 0), toy_data(48, 1), toy_data(48, 2)


def run(seed=0, epochs=3, device="cpu", **kw):
    """Bit-identity is promised on the CPU, so the tests pin it (the default device is the GPU if any)."""
    seed_everything(seed)
    model = build(ARCH, SPEC, C=4, N=1)
    records = fit(model, splits(), torch.nn.CrossEntropyLoss(), zero_one_error, epochs=epochs, batch_size=16,
                  lr=0.05, seed=seed, progress=False, device=device, **kw)
    return model, records


def strip_times(records):
    return [{k: v for k, v in r.items() if k not in TIME_FIELDS} for r in records]


def test_it_learns():
    _, records = run(epochs=6)
    assert records[-1]["val_metric"] < 0.2 < 2 / 3  # chance is 2/3
    assert records[-1]["train_loss"] < records[0]["train_loss"]
    assert [r["epoch"] for r in records] == list(range(1, 7))
    assert records[-1]["lr"] == pytest.approx(0.0, abs=1e-12)
    times = [r["train_seconds"] for r in records]
    assert all(b > a for a, b in zip(times, times[1:]))


def test_same_seed_bit_identical_other_seed_differs():
    m1, r1 = run(seed=3)
    m2, r2 = run(seed=3)
    _, r3 = run(seed=4)
    assert strip_times(r1) == strip_times(r2)
    assert all(torch.equal(a, b) for a, b in zip(m1.state_dict().values(), m2.state_dict().values()))
    assert strip_times(r1) != strip_times(r3)


class Jittered(torch.utils.data.Dataset):
    """An augmenting dataset: each sample gets noise from the global RNG, as random crops draw theirs."""

    def __init__(self, base):
        self.base = base

    def __len__(self):
        return len(self.base)

    def __getitem__(self, i):
        x, y = self.base[i]
        return x + 0.1 * torch.randn(x.shape), y


def test_test_every_scores_test_only_then_and_leaves_training_alone():
    def records(test_every):
        seed_everything(0)
        model = build(ARCH, SPEC, C=4, N=1)
        train, val, test = splits()
        return fit(model, (Jittered(train), val, test), torch.nn.CrossEntropyLoss(), zero_one_error, epochs=5,
                   batch_size=16, lr=0.05, seed=0, progress=False, device="cpu", test_every=test_every)

    every, sparse = records(1), records(2)
    assert [math.isnan(r["test_metric"]) for r in sparse] == [True, False, True, False, False]  # 2, 4 and the last
    for a, b in zip(strip_times(every), strip_times(sparse)):
        assert {k: v for k, v in a.items() if k != "test_metric"} == {k: v for k, v in b.items() if k != "test_metric"}
        assert math.isnan(b["test_metric"]) or a["test_metric"] == b["test_metric"]
    with pytest.raises(ValueError, match="test_every"):
        records(0)


def test_resume_from_checkpoint_matches_uninterrupted(tmp_path):
    full_model, full = run(seed=5, epochs=4)
    ckpt = tmp_path / "run.pt"

    class Interrupt(Exception):
        pass

    def stop_after_two(record):
        if record["epoch"] == 2:
            raise Interrupt

    with pytest.raises(Interrupt):
        run(seed=5, epochs=4, checkpoint=ckpt, callback=stop_after_two)
    seen = []
    resumed_model, resumed = run(seed=5, epochs=4, checkpoint=ckpt, callback=seen.append)
    assert [r["epoch"] for r in seen] == [3, 4]  # only the missing epochs were trained
    assert strip_times(resumed) == strip_times(full)
    assert all(torch.equal(a, b) for a, b in zip(full_model.state_dict().values(), resumed_model.state_dict().values()))


def test_checkpoint_of_other_protocol_is_refused(tmp_path):
    ckpt = tmp_path / "run.pt"
    run(epochs=2, checkpoint=ckpt)
    with pytest.raises(ValueError, match="2-epoch run"):
        run(epochs=3, checkpoint=ckpt)


def test_missing_splits_give_nan_and_bad_sizes_raise():
    model = build(ARCH, SPEC, C=4, N=1)
    records = fit(model, (toy_data(32), None, None), torch.nn.CrossEntropyLoss(), zero_one_error, 1, 16, progress=False)
    assert math.isnan(records[0]["val_metric"]) and math.isnan(records[0]["test_metric"])
    with pytest.raises(ValueError, match="positive"):
        fit(model, (toy_data(32), None, None), torch.nn.CrossEntropyLoss(), zero_one_error, 0, 16)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_trains_on_gpu_like_on_cpu():
    _, cpu = run(seed=1, epochs=6, device="cpu")
    model, gpu = run(seed=1, epochs=6, device=None)  # the default device is the GPU when there is one
    assert next(model.parameters()).is_cuda
    assert gpu[-1]["val_metric"] < 0.2
    # same initial weights and batches: the first epoch's loss agrees up to the precision of the GPU's
    # convolutions (cuDNN may use TF32, 10-bit mantissa)
    assert gpu[0]["train_loss"] == pytest.approx(cpu[0]["train_loss"], rel=1e-2)
