"""Differential privacy: clipping, noise scale, and epsilon as dp-accounting computes it."""

from __future__ import annotations

import dp_accounting
import numpy as np
import pytest
from dp_accounting import pld, rdp

from neuroledger.errors import FederatedError
from neuroledger.federated._aggregators import Update
from neuroledger.federated._dp import DPFedAvg, PrivacyAccountant, clip_update


def reference_epsilon(sigma: float, q: float, rounds: int, delta: float, kind: str) -> float:
    event = dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(sigma))
    acc = rdp.RdpAccountant() if kind == "rdp" else pld.PLDAccountant()
    acc.compose(event, rounds)
    return float(acc.get_epsilon(delta))


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["rdp", "pld"])
@pytest.mark.parametrize(("sigma", "q"), [(1.1, 0.1), (0.8, 1.0), (2.0, 0.05)])
def test_epsilon_matches_dp_accounting_round_by_round(kind: str, sigma: float, q: float) -> None:
    acc = PrivacyAccountant(noise_multiplier=sigma, sampling_probability=q, delta=1e-5, kind=kind)
    assert acc.epsilon() == 0.0
    previous = 0.0
    for rounds in (1, 5, 20):
        acc.step(rounds - acc.rounds)
        eps = acc.epsilon()
        assert eps == pytest.approx(reference_epsilon(sigma, q, rounds, 1e-5, kind), rel=1e-9)
        assert eps > previous
        previous = eps


def test_bad_dp_settings() -> None:
    with pytest.raises(FederatedError, match="noise multiplier"):
        PrivacyAccountant(noise_multiplier=0, sampling_probability=0.1)
    with pytest.raises(FederatedError, match="sampling probability"):
        PrivacyAccountant(noise_multiplier=1, sampling_probability=1.5)


def test_clipping() -> None:
    clipped, was = clip_update(np.array([3.0, 4.0]), 1.0)
    assert was and clipped.tolist() == pytest.approx([0.6, 0.8])
    same, was = clip_update(np.array([0.3, 0.4]), 1.0)
    assert not was and same.tolist() == [0.3, 0.4]


def test_noise_has_the_promised_scale() -> None:
    rule = DPFedAvg(
        clip_norm=2.0, noise_multiplier=1.5, expected_clients=1.0, rng=np.random.default_rng(3)
    )
    out = rule.aggregate([Update("a", np.zeros(200_000))])
    assert out.std() == pytest.approx(3.0, rel=0.02)  # sigma * C
    assert abs(out.mean()) < 0.05
    big = DPFedAvg(clip_norm=1.0, noise_multiplier=1e-9, expected_clients=2.0)
    result = big.aggregate([Update("a", np.array([10.0, 0.0])), Update("b", np.array([0.0, 0.5]))])
    assert big.clipped_last_round == 1
    assert result == pytest.approx([0.5, 0.25])
