"""Model vectors in the content store, and a participant's data file.

>>> import tempfile
>>> import numpy as np
>>> from neuroledger.store import FileStore
>>> store = FileStore(Path(tempfile.mkdtemp()))
>>> digest = put_vector(store, np.array([1.0, 2.0]))
>>> get_vector(store, digest, 2)
array([1., 2.])
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from neuroledger.errors import FederatedError
from neuroledger.store import BlobStore

__all__ = ["Vector", "get_vector", "load_party_data", "put_vector"]

Vector = NDArray[np.float64]


def put_vector(store: BlobStore, vector: NDArray[Any]) -> str:
    """Store a float64 vector; return its digest."""
    return store.put(np.ascontiguousarray(vector, dtype="<f8").tobytes())


def get_vector(store: BlobStore, digest: str, size: int, *, dtype: str = "<f8") -> NDArray[Any]:
    """A stored vector of ``size`` elements (``FederatedError`` for any other length)."""
    raw = store.get(digest)
    if len(raw) != size * 8:
        raise FederatedError(
            f"blob {digest[:12]} holds {len(raw) // 8} values, the model has {size}"
        )
    return np.frombuffer(raw, dtype=dtype).copy()


def load_party_data(
    path: Path, *, features: int | None = None, classes: int | None = None
) -> tuple[Vector, NDArray[np.int64]]:
    """A participant's data: a ``.npz`` with ``x`` (rows x features) and ``y`` (integer labels)."""
    hint = "make one with `neuroledger fl prepare`"
    try:
        with np.load(path, allow_pickle=False) as data:
            x = np.asarray(data["x"], dtype=np.float64)
            y_raw = np.asarray(data["y"])
    except FileNotFoundError:
        raise FederatedError(f"no data file at {path}; {hint}") from None
    except (OSError, ValueError, KeyError) as exc:
        raise FederatedError(
            f"{path} is not a .npz with arrays x and y ({type(exc).__name__}); {hint}"
        ) from None
    if x.ndim != 2 or y_raw.ndim != 1 or len(x) != len(y_raw) or len(y_raw) == 0:
        raise FederatedError(
            f"{path}: x must be rows x features and y one label per row (got {x.shape}, {y_raw.shape})"
        )
    if not np.issubdtype(y_raw.dtype, np.integer):
        raise FederatedError(f"{path}: labels y must be integers 0..classes-1, not {y_raw.dtype}")
    y = y_raw.astype(np.int64)
    if not np.all(np.isfinite(x)):
        raise FederatedError(f"{path}: x holds NaN or infinite values; clean the data first")
    if features is not None and x.shape[1] != features:
        raise FederatedError(f"{path} has {x.shape[1]} features, the task's model takes {features}")
    if y.min() < 0 or (classes is not None and y.max() >= classes):
        raise FederatedError(f"{path}: labels must lie in 0..{(classes or 1) - 1}")
    return x, y
