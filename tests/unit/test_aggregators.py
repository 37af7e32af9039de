"""Aggregation rules and server optimizers against hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from neuroledger.errors import FederatedError
from neuroledger.federated import FedAvg, Update
from neuroledger.federated._aggregators import (
    CoordinateMedian,
    FLTrust,
    Krum,
    ServerOptimizer,
    TrimmedMean,
    staleness_weight,
    validate_updates,
)


def u(client: str, *values: float, weight: float = 1.0, staleness: int = 0) -> Update:
    return Update(client, np.array(values, dtype=np.float64), weight, staleness)


def test_fedavg_weights_by_examples() -> None:
    # (1*[1,0] + 3*[3,2]) / 4 = [2.5, 1.5]
    assert FedAvg().aggregate([u("a", 1, 0, weight=1), u("b", 3, 2, weight=3)]).tolist() == [
        2.5,
        1.5,
    ]


def test_fedavg_down_weights_stale_updates() -> None:
    # weights 1 and 1/sqrt(1+3) = 0.5: (1*[0] + 0.5*[3]) / 1.5 = [1]
    assert staleness_weight(3) == 0.5
    assert FedAvg().aggregate([u("a", 0), u("b", 3, staleness=3)]).tolist() == [1.0]


def test_median_and_trimmed_mean_ignore_an_outlier() -> None:
    ups = [u("a", 1, 10), u("b", 2, 20), u("c", 3, 30), u("d", 4, 40), u("evil", 1000, -1000)]
    assert CoordinateMedian().aggregate(ups).tolist() == [3.0, 20.0]
    # beta 0.2 of 5 drops one from each side per coordinate: x: [2,3,4] -> 3; y: [10,20,30] -> 20
    assert TrimmedMean(beta=0.2).aggregate(ups).tolist() == [3.0, 20.0]
    with pytest.raises(FederatedError, match="leaves nothing"):
        TrimmedMean(beta=0.5).aggregate(ups[:2])


def test_krum_scores_by_hand() -> None:
    # n=5, f=1: each score sums the 2 smallest squared distances to the others.
    ups = [u("a", 0), u("b", 1), u("c", 2), u("d", 3), u("evil", 100)]
    scores = Krum(f=1).scores(ups)
    assert scores.tolist() == [1 + 4, 1 + 1, 1 + 1, 1 + 4, 97**2 + 98**2]
    assert Krum(f=1).aggregate(ups).tolist() == [1.0]  # first of the two best (stable)
    assert Krum(f=1, m=2).aggregate(ups).tolist() == [1.5]
    with pytest.raises(FederatedError, match="needs more than 4"):
        Krum(f=1).aggregate(ups[:4])


def test_fltrust_by_hand() -> None:
    server = np.array([1.0, 0.0])
    ups = [u("good", 2, 0), u("half", 1, 1), u("flipped", -5, 0)]
    rule = FLTrust(server_delta=server)
    trust = rule.trust(ups)
    assert trust.tolist() == pytest.approx([1.0, math.sqrt(0.5), 0.0])
    # rescaled to |server| = 1: good -> [1,0]; half -> [1/sqrt2, 1/sqrt2]
    t = math.sqrt(0.5)
    expected = (np.array([1.0, 0.0]) + t * np.array([t, t])) / (1 + t)
    assert rule.aggregate(ups) == pytest.approx(expected)
    assert FLTrust(server_delta=server).aggregate([u("flipped", -5, 0)]).tolist() == [0.0, 0.0]
    with pytest.raises(FederatedError, match="root dataset"):
        FLTrust().aggregate(ups)


def test_server_optimizers_first_steps_by_hand() -> None:
    model = np.zeros(2)
    delta = np.array([2.0, -1.0])
    assert ServerOptimizer("sgd", lr=0.5).step(model, delta).tolist() == [1.0, -0.5]
    # Adam, first step: m = 0.1*d; v = 0.99*tau^2 + 0.01*d^2; x = lr * m / (sqrt(v) + tau)
    tau = 1e-3
    adam = ServerOptimizer("adam", lr=1.0, tau=tau)
    m = 0.1 * delta
    v = 0.99 * tau**2 + 0.01 * delta**2
    assert adam.step(model, delta) == pytest.approx(m / (np.sqrt(v) + tau))
    # Yogi, first step: v = tau^2 - 0.01 * d^2 * sign(tau^2 - d^2) = tau^2 + 0.01 d^2
    yogi = ServerOptimizer("yogi", lr=1.0, tau=tau)
    v_yogi = tau**2 + 0.01 * delta**2
    assert yogi.step(model, delta) == pytest.approx(m / (np.sqrt(v_yogi) + tau))
    # Adagrad: v = tau^2 + d^2
    ada = ServerOptimizer("adagrad", lr=1.0, tau=tau)
    assert ada.step(model, delta) == pytest.approx(m / (np.sqrt(tau**2 + delta**2) + tau))
    with pytest.raises(FederatedError, match="unknown server optimizer"):
        ServerOptimizer("rmsprop")


def test_bad_updates_are_rejected_with_reasons() -> None:
    ups = [
        u("ok", 1, 2),
        u("short", 1),
        u("nan", float("nan"), 1),
        u("inf", float("inf"), 1),
        u("zero-weight", 1, 1, weight=0),
        u("ok", 3, 4),
        u("stale", 1, 1, staleness=9),
    ]
    accepted, rejected = validate_updates(ups, size=2, max_staleness=5)
    assert [a.client for a in accepted] == ["ok"]
    reasons = dict(rejected[:-2] + rejected[-1:])
    assert "shape (1,)" in reasons["short"]
    assert "NaN or infinite" in reasons["nan"] and "NaN or infinite" in reasons["inf"]
    assert "positive" in reasons["zero-weight"]
    assert rejected[-2] == ("ok", "a second update from the same client in one round")
    assert "9 rounds stale" in reasons["stale"]
    with pytest.raises(FederatedError, match="no updates"):
        FedAvg().aggregate([])


def test_robust_rules_hold_against_scaled_attackers() -> None:
    rng = np.random.default_rng(0)
    honest = [Update(f"h{i}", np.ones(50) + 0.1 * rng.standard_normal(50)) for i in range(7)]
    attackers = [Update(f"a{i}", -20 * np.ones(50)) for i in range(2)]
    ups = honest + attackers
    assert FedAvg().aggregate(ups).mean() < 0  # plain averaging is dragged away
    for rule in (
        CoordinateMedian(),
        TrimmedMean(beta=0.25),
        Krum(f=2, m=3),
        FLTrust(server_delta=np.ones(50)),
    ):
        assert rule.aggregate(ups).mean() == pytest.approx(1.0, abs=0.15), type(rule).__name__
