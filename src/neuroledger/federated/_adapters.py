"""Adapters between ML frameworks and the flat parameter vectors aggregators work on.

>>> import numpy as np
>>> from sklearn.linear_model import SGDClassifier
>>> clf = SGDClassifier().fit(np.array([[0.0], [1.0], [2.0], [3.0]]), [0, 0, 1, 1])
>>> flat = sklearn_to_vector(clf)
>>> flat.shape
(2,)
>>> vector_to_sklearn(clf, flat * 0).coef_.tolist()
[[0.0]]

PyTorch (an optional extra, ``pip install 'neuroledger[torch]'``) is supported
by :func:`state_dict_to_vector` and :func:`vector_to_state_dict`.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np
from numpy.typing import NDArray

from neuroledger.errors import FederatedError

__all__ = [
    "sklearn_to_vector",
    "state_dict_to_vector",
    "vector_to_sklearn",
    "vector_to_state_dict",
]

Vector = NDArray[np.float64]


def sklearn_to_vector(estimator: Any) -> Vector:
    """``coef_`` then ``intercept_`` of a fitted scikit-learn linear model, as one vector."""
    if not hasattr(estimator, "coef_"):
        raise FederatedError(f"{type(estimator).__name__} is not a fitted linear model (no coef_)")
    parts = [np.ravel(estimator.coef_)]
    if getattr(estimator, "intercept_", None) is not None:
        parts.append(np.ravel(estimator.intercept_))
    return np.concatenate(parts).astype(np.float64)


def vector_to_sklearn(estimator: Any, vector: Vector) -> Any:
    """Set a fitted linear model's ``coef_`` and ``intercept_`` from a vector; return it."""
    coef = np.asarray(estimator.coef_)
    intercept = np.asarray(getattr(estimator, "intercept_", np.zeros(0)))
    if vector.shape != (coef.size + intercept.size,):
        raise FederatedError(
            f"vector has {vector.size} values; {type(estimator).__name__} needs {coef.size + intercept.size}"
        )
    estimator.coef_ = vector[: coef.size].reshape(coef.shape).copy()
    if intercept.size:
        estimator.intercept_ = vector[coef.size :].reshape(intercept.shape).copy()
    return estimator


def state_dict_to_vector(
    state: OrderedDict[str, Any],
) -> tuple[Vector, list[tuple[str, tuple[int, ...]]]]:
    """A PyTorch ``state_dict`` as one float64 vector, with the layout to rebuild it."""
    layout = []
    parts = []
    for name, tensor in state.items():
        array = tensor.detach().cpu().numpy() if hasattr(tensor, "detach") else np.asarray(tensor)
        layout.append((name, tuple(array.shape)))
        parts.append(array.astype(np.float64).ravel())
    return (np.concatenate(parts) if parts else np.zeros(0)), layout


def vector_to_state_dict(
    vector: Vector, layout: list[tuple[str, tuple[int, ...]]]
) -> OrderedDict[str, Any]:
    """Rebuild a ``state_dict`` (torch tensors when torch is installed, else numpy arrays)."""
    try:
        import torch
    except ImportError:  # numpy arrays serve the same purpose in tests and tools
        torch = None
    needed = sum(int(np.prod(shape)) if shape else 1 for _, shape in layout)
    if needed != vector.size:
        raise FederatedError(f"vector has {vector.size} values; the layout needs {needed}")
    out: OrderedDict[str, Any] = OrderedDict()
    offset = 0
    for name, shape in layout:
        count = int(np.prod(shape)) if shape else 1
        chunk = vector[offset : offset + count].reshape(shape)
        out[name] = (
            torch.tensor(chunk, dtype=torch.float32)
            if torch is not None
            else chunk.astype(np.float32)
        )
        offset += count
    return out
