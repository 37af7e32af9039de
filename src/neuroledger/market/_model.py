"""A model served per call: the softmax-regression models federated training writes.

:func:`model_handler` loads a model directory (``weights.f64`` and ``config.json``) and
returns a handler for :class:`~neuroledger.market.AgentService`: ``{"features": [[...]]}``
(standardised feature rows) in, ``{"classes": [...], "probabilities": [[...]]}`` out.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from neuroledger.errors import MarketError

__all__ = ["MAX_ROWS", "load_softmax", "model_handler"]

#: The most rows one call classifies.
MAX_ROWS = 1000


def load_softmax(directory: Path) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """The weights (features by classes), biases and config (with ``digest``: the SHA-256 of
    its weights) of the softmax-regression model in ``directory``."""
    try:
        config = json.loads((directory / "config.json").read_text())
        raw = (directory / "weights.f64").read_bytes()
    except (OSError, ValueError) as exc:
        raise MarketError(f"{directory} is not a model directory (config.json and weights.f64 "
                          f"from `neuroledger fl`): {exc}") from None  # fmt: skip
    if not isinstance(config, dict) or config.get("type") != "softmax-regression":
        kind = config.get("type") if isinstance(config, dict) else None
        raise MarketError(f"{directory}: model type {kind!r} is not supported; "
                          "use a softmax-regression model from `neuroledger fl`")  # fmt: skip
    try:
        features, classes = int(config["features"]), int(config["classes"])
    except (KeyError, TypeError, ValueError):
        raise MarketError(
            f"{directory}: config.json lacks whole `features` and `classes`"
        ) from None
    w = np.frombuffer(raw, dtype="<f8")
    if features < 1 or classes < 1 or w.size != features * classes + classes:
        raise MarketError(f"{directory}: weights.f64 holds {w.size} numbers, the config says "
                          f"{features * classes + classes}")  # fmt: skip
    weights, bias = w[: features * classes].reshape(features, classes), w[features * classes :]
    return weights, bias, {**config, "digest": "sha256:" + hashlib.sha256(raw).hexdigest()}


def model_handler(directory: Path) -> tuple[Any, dict[str, Any]]:
    """A handler classifying rows with the model in ``directory``, and the model's config
    (with ``digest``: the SHA-256 of its weights)."""
    weights, bias, config = load_softmax(directory)
    features = weights.shape[0]

    def check(body: Any) -> None:
        rows = body.get("features") if isinstance(body, dict) else None
        if (not isinstance(rows, list) or not 0 < len(rows) <= MAX_ROWS
                or not all(isinstance(r, list) and len(r) == features for r in rows)):  # fmt: skip
            raise ValueError(f"send {{\"features\": [[{features} numbers], ...]}} with 1 to "
                             f"{MAX_ROWS} rows")  # fmt: skip
        if not all(isinstance(v, int | float) and math.isfinite(v) for r in rows for v in r):
            raise ValueError("every feature must be a finite number")

    def classify(body: Any) -> dict[str, Any]:
        check(body)
        logits = np.asarray(body["features"], dtype=np.float64) @ weights + bias
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        return {"classes": p.argmax(axis=1).tolist(), "probabilities": np.round(p, 6).tolist()}

    classify.check = check  # type: ignore[attr-defined]
    return classify, config
