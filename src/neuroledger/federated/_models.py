"""A small numpy model for clients: multinomial logistic regression on flat parameters.

Parameters travel as one flat vector (weights, then biases), the form every
aggregator takes. :func:`local_train` runs full-batch gradient descent with an
optional FedProx proximal term ``mu/2 * ||w - w_global||^2`` (Li et al., 2020).

>>> import numpy as np
>>> x = np.array([[0.0], [1.0], [2.0], [3.0]]); y = np.array([0, 0, 1, 1])
>>> model = LogisticModel(features=1, classes=2)
>>> w = local_train(model, model.init(), x, y, epochs=300, lr=1.0)
>>> model.accuracy(w, x, y)
1.0
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["LogisticModel", "local_train"]

Vector = NDArray[np.float64]


@dataclass(frozen=True)
class LogisticModel:
    """Softmax regression with ``features`` inputs and ``classes`` outputs."""

    features: int
    classes: int

    @property
    def size(self) -> int:
        """Number of parameters."""
        return (self.features + 1) * self.classes

    def init(self) -> Vector:
        """All-zero parameters."""
        return np.zeros(self.size)

    def _split(self, w: Vector) -> tuple[Vector, Vector]:
        k = self.features * self.classes
        return w[:k].reshape(self.features, self.classes), w[k:]

    def probabilities(self, w: Vector, x: Vector) -> Vector:
        """Class probabilities for rows of ``x``."""
        weights, bias = self._split(w)
        z = x @ weights + bias
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return np.asarray(e / e.sum(axis=1, keepdims=True), dtype=np.float64)

    def loss(self, w: Vector, x: Vector, y: NDArray[np.int64]) -> float:
        """Mean cross-entropy."""
        p = self.probabilities(w, x)
        return float(-np.log(np.maximum(p[np.arange(len(y)), y], 1e-12)).mean())

    def gradient(self, w: Vector, x: Vector, y: NDArray[np.int64]) -> Vector:
        """Gradient of the mean cross-entropy."""
        p = self.probabilities(w, x)
        p[np.arange(len(y)), y] -= 1.0
        p /= len(y)
        return np.concatenate([(x.T @ p).ravel(), p.sum(axis=0)])

    def accuracy(self, w: Vector, x: Vector, y: NDArray[np.int64]) -> float:
        """Share of rows classified right."""
        return float((self.probabilities(w, x).argmax(axis=1) == y).mean())


def local_train(
    model: LogisticModel,
    w_global: Vector,
    x: Vector,
    y: NDArray[np.int64],
    *,
    epochs: int = 20,
    lr: float = 0.5,
    mu: float = 0.0,
) -> Vector:
    """Client training from the global model; returns the new local parameters."""
    w = w_global.copy()
    for _ in range(epochs):
        grad = model.gradient(w, x, y)
        if mu:
            grad = grad + mu * (w - w_global)
        w -= lr * grad
    return w
