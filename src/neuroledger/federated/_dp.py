"""Differential privacy for federated rounds: per-client clipping, Gaussian noise, an accountant.

DP-FedAvg (McMahan et al., ICLR 2018): every client's delta is clipped to L2
norm ``clip_norm``; the server adds Gaussian noise of standard deviation
``noise_multiplier * clip_norm`` to the sum and divides by the expected number
of clients (a fixed denominator keeps the sensitivity at ``clip_norm``). The
privacy spent is tracked by Google's ``dp-accounting`` (RDP or PLD) for
Poisson-sampled Gaussian rounds and reported as (epsilon, delta).

>>> acc = PrivacyAccountant(noise_multiplier=1.1, sampling_probability=0.1, delta=1e-5)
>>> acc.step(10)
>>> round(acc.epsilon(), 2)
2.84
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from neuroledger.errors import FederatedError
from neuroledger.federated._aggregators import Update

__all__ = ["DPFedAvg", "PrivacyAccountant", "clip_update"]

Vector = NDArray[np.float64]


def clip_update(delta: Vector, clip_norm: float) -> tuple[Vector, bool]:
    """``delta`` scaled down to L2 norm ``clip_norm`` if longer; and whether it was clipped."""
    norm = float(np.linalg.norm(delta))
    if norm <= clip_norm:
        return delta, False
    return np.asarray(delta * (clip_norm / norm), dtype=np.float64), True


@dataclass
class PrivacyAccountant:
    """(epsilon, delta) spent by ``rounds`` Poisson-sampled Gaussian rounds, via dp-accounting."""

    noise_multiplier: float
    sampling_probability: float
    delta: float = 1e-5
    kind: str = "rdp"
    rounds: int = 0
    #: Rounds run at another noise multiplier (a dropout leaves less noise in the sum).
    other: list[tuple[float, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.noise_multiplier <= 0:
            raise FederatedError("the noise multiplier must be positive for any privacy guarantee")
        if not 0 < self.sampling_probability <= 1:
            raise FederatedError("the sampling probability must be in (0, 1]")
        if self.kind not in ("rdp", "pld"):
            raise FederatedError("the accountant is 'rdp' or 'pld'")

    def step(self, rounds: int = 1, *, noise_multiplier: float | None = None) -> None:
        """Record ``rounds`` more rounds (at another noise multiplier if given)."""
        if noise_multiplier is None or noise_multiplier == self.noise_multiplier:
            self.rounds += rounds
        elif noise_multiplier <= 0:
            raise FederatedError("a round without noise has no privacy guarantee")
        else:
            self.other.append((noise_multiplier, rounds))

    def epsilon(self) -> float:
        """Epsilon spent so far, at this accountant's delta."""
        if self.rounds == 0 and not self.other:
            return 0.0
        import dp_accounting
        from dp_accounting import pld, rdp

        logging.getLogger("absl").setLevel(logging.ERROR)  # convergence chatter of RDP orders
        accountant = rdp.RdpAccountant() if self.kind == "rdp" else pld.PLDAccountant()
        for sigma, count in [(self.noise_multiplier, self.rounds), *self.other]:
            if count:
                event = dp_accounting.PoissonSampledDpEvent(
                    self.sampling_probability, dp_accounting.GaussianDpEvent(sigma)
                )
                accountant.compose(event, count)
        return float(accountant.get_epsilon(self.delta))


@dataclass
class DPFedAvg:
    """FedAvg with per-client clipping and central Gaussian noise (fixed denominator)."""

    clip_norm: float
    noise_multiplier: float
    expected_clients: float
    rng: np.random.Generator = field(default_factory=np.random.default_rng)
    clipped_last_round: int = 0

    def aggregate(self, updates: Sequence[Update]) -> Vector:
        """Noisy mean of the clipped deltas."""
        if not updates:
            raise FederatedError("no updates to aggregate")
        total = np.zeros_like(np.asarray(updates[0].delta, dtype=np.float64))
        self.clipped_last_round = 0
        for u in updates:
            clipped, was = clip_update(np.asarray(u.delta, dtype=np.float64), self.clip_norm)
            total += clipped
            self.clipped_last_round += was
        noise = self.rng.normal(0.0, self.noise_multiplier * self.clip_norm, total.shape)
        return np.asarray((total + noise) / self.expected_clients, dtype=np.float64)
