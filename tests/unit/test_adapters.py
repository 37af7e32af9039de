"""Framework adapters: scikit-learn linear models and state_dicts round-trip through vectors."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

from neuroledger.errors import FederatedError
from neuroledger.federated._adapters import (
    sklearn_to_vector,
    state_dict_to_vector,
    vector_to_sklearn,
    vector_to_state_dict,
)


def test_sklearn_round_trip_keeps_predictions() -> None:
    data = load_breast_cancer()
    x = (data.data - data.data.mean(axis=0)) / data.data.std(axis=0)  # scaled: lbfgs converges
    clf = LogisticRegression(max_iter=2000).fit(x, data.target)
    flat = sklearn_to_vector(clf)
    assert flat.shape == (31,)
    clone = LogisticRegression(max_iter=2000).fit(x[:50], data.target[:50])
    vector_to_sklearn(clone, flat)
    assert (clone.predict(x) == clf.predict(x)).all()
    with pytest.raises(FederatedError, match="needs 31"):
        vector_to_sklearn(clone, flat[:-1])
    with pytest.raises(FederatedError, match="not a fitted linear model"):
        sklearn_to_vector(object())


def test_state_dict_round_trip() -> None:
    state = OrderedDict(
        [
            ("layer.weight", np.arange(6, dtype=np.float32).reshape(2, 3)),
            ("layer.bias", np.ones(2, dtype=np.float32)),
        ]
    )
    flat, layout = state_dict_to_vector(state)
    assert flat.tolist() == [0, 1, 2, 3, 4, 5, 1, 1]
    back = vector_to_state_dict(flat, layout)
    assert list(back) == ["layer.weight", "layer.bias"]
    assert np.asarray(back["layer.weight"]).tolist() == [[0, 1, 2], [3, 4, 5]]
    with pytest.raises(FederatedError, match="layout needs 8"):
        vector_to_state_dict(flat[:-1], layout)
