"""Federated simulation: accuracy close to centralized, async faster with stragglers, robustness."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_digits

from neuroledger.errors import FederatedError
from neuroledger.federated import FedAvg
from neuroledger.federated._aggregators import CoordinateMedian, Krum
from neuroledger.federated._models import LogisticModel, local_train
from neuroledger.federated._simulation import SimConfig, dirichlet_split, simulate


def centralized_accuracy(x: np.ndarray, y: np.ndarray, seed: int = 0) -> float:
    """The same model trained on all the training rows at once, same test split."""
    rng = np.random.default_rng(seed)
    x = (x - x.mean(axis=0)) / np.maximum(x.std(axis=0), 1e-12)
    order = rng.permutation(len(y))
    cut = int(len(y) * 0.25)
    test, train = order[:cut], order[cut:]
    model = LogisticModel(features=x.shape[1], classes=int(y.max()) + 1)
    w = local_train(model, model.init(), x[train], y[train], epochs=400, lr=0.5)
    return model.accuracy(w, x[test], y[test])


@pytest.mark.parametrize(
    "loader", [load_breast_cancer, load_digits], ids=["breast-cancer", "digits"]
)
def test_federated_reaches_centralized_accuracy_within_two_points(loader) -> None:
    data = loader()
    central = centralized_accuracy(data.data, data.target)
    result = simulate(data.data, data.target, SimConfig(clients=5, rounds=40, alpha=1.0, seed=0))
    assert result.rounds[-1].accuracy >= central - 0.02, (result.rounds[-1].accuracy, central)


def test_async_reaches_the_target_at_least_twice_as_fast_with_stragglers() -> None:
    data = load_breast_cancer()
    common = dict(clients=10, rounds=40, alpha=0.5, delay_sigma=1.0, seed=0)
    sync = simulate(data.data, data.target, SimConfig(mode="sync", **common))
    fedbuff = simulate(data.data, data.target, SimConfig(mode="async", buffer=3, **common))
    t_sync, t_async = sync.time_to(0.95), fedbuff.time_to(0.95)
    assert t_sync is not None and t_async is not None
    assert t_sync / t_async >= 2.0, (t_sync, t_async)


def test_robust_aggregation_holds_against_30_percent_attackers() -> None:
    data = load_breast_cancer()

    def run(rule):
        cfg = SimConfig(clients=10, rounds=20, attackers=3, attack="scale", aggregator=rule, seed=0)
        return simulate(data.data, data.target, cfg).rounds[-1].accuracy

    assert run(FedAvg()) < 0.6  # the attack works on plain averaging
    assert run(CoordinateMedian()) > 0.93
    assert run(Krum(f=3, m=3)) > 0.93


def test_label_flippers_and_bad_settings() -> None:
    data = load_breast_cancer()
    flipped = simulate(data.data, data.target, SimConfig(clients=10, rounds=15, attackers=2, seed=0,
                                                         aggregator=CoordinateMedian()))  # fmt: skip
    assert flipped.rounds[-1].accuracy > 0.9
    with pytest.raises(FederatedError, match="unknown mode"):
        simulate(data.data, data.target, SimConfig(mode="gossip"))
    with pytest.raises(FederatedError, match="deadline"):
        simulate(data.data, data.target, SimConfig(mode="deadline"))
    with pytest.raises(FederatedError, match="no data"):
        dirichlet_split(np.zeros(5, dtype=np.int64), 10, 0.1, np.random.default_rng(0))
