"""The building blocks of the fake data sets."""

from __future__ import annotations

import numpy as np

from nb360.data.fake import balanced_labels, class_signal, spread_classes


def test_classes_span_the_published_range():
    assert spread_classes(100, 5).tolist() == [0, 25, 50, 74, 99]
    assert spread_classes(4, 10).tolist() == [0, 1, 2, 3]


def test_labels_are_balanced_and_shuffled():
    labels = balanced_labels(np.random.default_rng(0), 22, [3, 7])
    assert sorted(np.bincount(labels)[[3, 7]]) == [11, 11] and labels[:11].tolist() != [3, 7] * 5 + [3]


def test_signal_frequency_and_level_follow_the_class():
    rng = np.random.default_rng(0)
    labels = np.array([5, 9, 5, 9])
    x = class_signal(rng, labels, (3, 8, 64), noise=0.0)
    assert x.shape == (4, 3, 8, 64)
    spectrum = np.abs(np.fft.rfft(x[:, 0, 0], axis=-1))
    assert spectrum[:, 1:].argmax(axis=1).tolist() == [0, 1, 0, 1]  # one and two periods along the last axis
    assert np.allclose(x.mean(axis=(1, 2, 3)), [0.0, 0.5, 0.0, 0.5])  # whole periods average out: the level remains
    assert np.allclose(x[:, 0], x[:, 1])  # the same wave in every channel
