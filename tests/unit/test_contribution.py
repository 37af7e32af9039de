"""Contribution scoring: GTG-Shapley against exact Shapley; a random-label client scores lowest."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer

from neuroledger.federated import FedAvg, Update
from neuroledger.federated._contribution import exact_shapley, gtg_shapley, leave_one_out
from neuroledger.federated._models import LogisticModel, local_train


def test_exact_shapley_by_hand() -> None:
    # A glove game: a pair of left and right gloves is worth 1.
    def u(s: frozenset[str]) -> float:
        return float(min(len(s & {"L"}), len(s & {"R1", "R2"})))

    values = exact_shapley(["L", "R1", "R2"], u)
    assert values == pytest.approx({"L": 2 / 3, "R1": 1 / 6, "R2": 1 / 6})
    assert sum(values.values()) == pytest.approx(1.0)  # efficiency
    assert leave_one_out(["L", "R1", "R2"], u) == {"L": 1.0, "R1": 0.0, "R2": 0.0}


@pytest.mark.parametrize("n", [3, 4, 5, 6])
def test_gtg_shapley_is_close_to_exact_for_small_n(n: int) -> None:
    rng = np.random.default_rng(n)
    weights = rng.uniform(0.1, 1.0, n)
    players = [f"c{i}" for i in range(n)]

    def u(s: frozenset[str]) -> float:  # diminishing returns, like accuracy
        total = sum(weights[int(p[1:])] for p in s)
        return float(1 - np.exp(-total))

    exact = exact_shapley(players, u)
    approx = gtg_shapley(players, u, truncation=1e-6, convergence=0.002, max_permutations=3000,
                         min_permutations=40 * n, rng=np.random.default_rng(0))  # fmt: skip
    for p in players:  # Monte-Carlo error: within 5 % of the largest value
        assert approx[p] == pytest.approx(exact[p], abs=0.05 * max(exact.values()))
    # the rankings agree (Spearman, ties aside)
    a = np.argsort(np.argsort([approx[p] for p in players]))
    e = np.argsort(np.argsort([exact[p] for p in players]))
    assert np.corrcoef(a, e)[0, 1] >= 0.8


def breast_cancer_clients(n: int, noisy: int) -> tuple[list[tuple[np.ndarray, np.ndarray]], tuple]:
    data = load_breast_cancer()
    x = (data.data - data.data.mean(axis=0)) / data.data.std(axis=0)
    y = data.target.astype(np.int64)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(y))
    x, y = x[order], y[order]
    val = (x[:120], y[:120])
    parts = np.array_split(np.arange(120, len(y)), n)
    clients = []
    for i, idx in enumerate(parts):
        labels = y[idx].copy()
        if i == noisy:
            labels = rng.integers(0, 2, len(labels))  # random labels
        clients.append((x[idx], labels))
    return clients, val


def test_a_client_with_random_labels_scores_lowest() -> None:
    model = LogisticModel(features=30, classes=2)
    clients, (xv, yv) = breast_cancer_clients(5, noisy=2)
    w0 = model.init()
    deltas = {
        f"h{i}": local_train(model, w0, x, y, epochs=30, lr=0.5) - w0
        for i, (x, y) in enumerate(clients)
    }

    def u(s: frozenset[str]) -> float:
        if not s:
            return model.accuracy(w0, xv, yv)
        agg = FedAvg().aggregate([Update(c, deltas[c]) for c in sorted(s)])
        return model.accuracy(w0 + agg, xv, yv)

    players = sorted(deltas)
    for values in (
        exact_shapley(players, u),
        gtg_shapley(players, u, rng=np.random.default_rng(1)),
    ):
        assert min(values, key=values.__getitem__) == "h2", values


def test_shapley_is_exact_for_small_coalitions_and_estimated_beyond() -> None:
    from neuroledger.federated._contribution import EXACT_UP_TO, shapley

    def utility(s: frozenset[str]) -> float:
        return float(len(s) ** 2)

    few = [f"p{i}" for i in range(EXACT_UP_TO)]
    assert shapley(few, utility) == exact_shapley(few, utility)
    many = [f"p{i}" for i in range(EXACT_UP_TO + 2)]
    estimated = shapley(many, utility, rng=np.random.default_rng(0))
    # Symmetric players: each deserves n of U(all) = n^2; the Monte-Carlo estimates are
    # efficient (they add up to U(all) - U(empty)) and near n each.
    n = len(many)
    assert sum(estimated.values()) == pytest.approx(n * n)
    assert all(abs(v - n) < 0.25 * n for v in estimated.values())
