"""Self-supervised pretraining of a student on unlabeled inputs of its task: latent knowledge for weak
labels to elicit.

Burns et al.'s students are pretrained language models; weak labels elicit what pretraining put
there. nb360's students start from random weights, so before weak-to-strong training they can learn
from the task's inputs alone, with one objective per kind of network, each the simplest that fits
the network as built for the task (no extra decoder, the same cell and skeleton):

- dense prediction (`dense2d`, `dense1d`; Darcy Flow): **masked reconstruction**. The network, whose
  output is already one value per position, reconstructs the first input channel (Darcy's
  coefficient field) from the input with random square patches of every channel set to zero
  (`MASK_FRACTION` of the positions in patches of `PATCH` x `PATCH`), under mean squared error.
  The whole network, head included, carries over.
- classification (`classify2d`; digits, CIFAR-100): **rotation prediction** (Gidaris, Singh &
  Komodakis, "Unsupervised Representation Learning by Predicting Image Rotations", ICLR 2018): each
  input in its four rotations by 90 degrees, the network trained to say which, with a four-way
  output layer; everything but that layer carries over (the student's own output layer keeps its
  seeded initial weights).

Pretraining uses `nb360.train.fit` (NB201's optimiser, the task's learning rate) for `epochs`
epochs on the inputs given (nb360's protocol: both halves of the training split, labels dropped),
and is checkpointed like every other training.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn
from torch.utils.data import Dataset

MASK_FRACTION = 0.5
PATCH = 3
ROTATIONS = 4
DENSE = ("dense2d", "dense1d")
CLASSIFY = ("classify2d",)


def objective(spec) -> str:
    """"masked" or "rotation" for a network spec; an error for a kind with no objective here."""
    if spec.kind in DENSE:
        return "masked"
    if spec.kind in CLASSIFY:
        return "rotation"
    raise ValueError(f"no pretraining objective for {spec.kind} networks; nb360 pretrains dense networks "
                     f"({', '.join(DENSE)}) by masked reconstruction and {', '.join(CLASSIFY)} by rotation prediction")


class MaskedInputs(Dataset):
    """(input with random patches zeroed, first input channel): a fresh mask at every access, drawn
    from torch's global generator (seeded by `fit`), so one seed gives one sequence of masks."""

    def __init__(self, x: torch.Tensor):
        self.x = x

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int):
        x = self.x[i]
        shape = x.shape[1:]
        coarse = [max(1, -(-s // PATCH)) for s in shape]  # patches per axis
        keep = (torch.rand(coarse) >= MASK_FRACTION).float()
        for axis, s in enumerate(shape):
            keep = keep.repeat_interleave(PATCH, dim=axis).narrow(axis, 0, s)
        return x * keep, x[:1]


class Rotations(Dataset):
    """Every input in its four rotations by 90 degrees in the last two axes, labelled 0..3."""

    def __init__(self, x: torch.Tensor):
        self.x = x

    def __len__(self) -> int:
        return ROTATIONS * len(self.x)

    def __getitem__(self, i: int):
        k = i % ROTATIONS
        return torch.rot90(self.x[i // ROTATIONS], k, dims=(-2, -1)), k


def pretext(spec, x: torch.Tensor) -> tuple[Dataset, object, nn.Module]:
    """(data, spec of the pretraining network, loss) for pretraining on unlabeled inputs `x`."""
    if objective(spec) == "masked":
        return MaskedInputs(x), spec, nn.MSELoss()
    return Rotations(x), dataclasses.replace(spec, out_size=ROTATIONS), nn.CrossEntropyLoss()


def transferable(state: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """The entries of a pretrained state that fit `model` (all of them, but a rotation head)."""
    own = model.state_dict()
    return {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
