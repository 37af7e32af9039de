"""Data sets for federated experiments: scikit-learn's bundled ones, split non-IID across parties.

>>> parties, (xv, yv) = split_dataset("breast-cancer", parties=3, alpha=0.5, seed=0)
>>> len(parties), xv.shape[1]
(3, 30)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from neuroledger.errors import FederatedError
from neuroledger.federated._simulation import dirichlet_split

__all__ = ["DATASETS", "load_dataset", "split_dataset", "write_parties"]

#: Data sets that ship with scikit-learn (no download).
DATASETS = ("breast-cancer", "digits")

Split = tuple[NDArray[np.float64], NDArray[np.int64]]


def load_dataset(name: str) -> Split:
    """Features (standardised) and labels of a bundled data set."""
    from sklearn.datasets import load_breast_cancer, load_digits

    if name not in DATASETS:
        raise FederatedError(f"unknown data set {name!r}; use {' or '.join(DATASETS)}")
    data = load_breast_cancer() if name == "breast-cancer" else load_digits()
    x = np.asarray(data.data, dtype=np.float64)
    x = (x - x.mean(axis=0)) / np.maximum(x.std(axis=0), 1e-12)
    return x, np.asarray(data.target, dtype=np.int64)


def split_dataset(
    name: str, *, parties: int, alpha: float, seed: int = 0, validation: float = 0.25
) -> tuple[list[Split], Split]:
    """Rows for each party (labels split by Dirichlet(alpha)) and the owner's validation rows."""
    if parties < 1:
        raise FederatedError("split the data among at least 1 party")
    if not 0 < validation < 1:
        raise FederatedError("the validation fraction must lie between 0 and 1")
    x, y = load_dataset(name)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y))
    cut = int(len(y) * validation)
    held, train = order[:cut], order[cut:]
    splits = dirichlet_split(y[train], parties, alpha, rng)
    return [(x[train][idx], y[train][idx]) for idx in splits], (x[held], y[held])


def write_parties(out: Path, name: str, *, parties: int, alpha: float, seed: int = 0) -> list[Path]:
    """Write ``party-N.npz`` for each party and ``validation.npz`` for the owner; return the paths."""
    split, (xv, yv) = split_dataset(name, parties=parties, alpha=alpha, seed=seed)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, (x, y) in enumerate(split, 1):
        path = out / f"party-{i}.npz"
        np.savez(path, x=x, y=y)
        paths.append(path)
    np.savez(out / "validation.npz", x=xv, y=yv)
    return [*paths, out / "validation.npz"]
