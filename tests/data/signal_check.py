"""Whether a fake data set carries a learnable signal: a linear classifier on the loaded inputs' spectra
separates its classes (shared by the loader tests of the classification tasks)."""

from __future__ import annotations

import numpy as np


def spectral_accuracy(task) -> tuple[float, float]:
    """(validation accuracy of a logistic regression fitted on the training split, the share of the
    most frequent validation class), both on the magnitude spectra along the inputs' last axis."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def arrays(ds):
        xs, ys = zip(*(ds[i] for i in range(len(ds))))
        x = np.abs(np.fft.rfft(np.stack([np.asarray(v) for v in xs]), axis=-1)).reshape(len(xs), -1)
        y = np.array([int(np.asarray(v).reshape(-1)[0]) for v in ys])  # ecg targets: [label, record]
        return x, y

    (x_train, y_train), (x_val, y_val) = arrays(task.train), arrays(task.val)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(x_train, y_train)
    chance = np.bincount(y_val).max() / len(y_val)
    return float(model.score(x_val, y_val)), float(chance)
