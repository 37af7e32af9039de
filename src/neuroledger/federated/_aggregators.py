"""Server-side aggregation of client updates: FedAvg, adaptive server optimizers, robust rules.

Updates are *deltas* (a client's model minus the global model it started
from), as flat float64 arrays. An aggregator turns the round's deltas into
one delta; a :class:`ServerOptimizer` applies it to the global model (plain
FedAvg adds it; FedAdam, FedYogi and FedAdagrad use it as a pseudo-gradient,
Reddi et al., "Adaptive Federated Optimization", ICLR 2021).

>>> import numpy as np
>>> ups = [Update("a", np.array([1.0, 0.0]), 1.0), Update("b", np.array([3.0, 2.0]), 3.0)]
>>> FedAvg().aggregate(ups)
array([2.5, 1.5])
>>> CoordinateMedian().aggregate(ups + [Update("c", np.array([100.0, 1.0]), 1.0)])
array([3., 1.])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from neuroledger.errors import FederatedError

__all__ = [
    "RULES",
    "Aggregator",
    "CoordinateMedian",
    "FLTrust",
    "FedAvg",
    "Krum",
    "ServerOptimizer",
    "TrimmedMean",
    "Update",
    "make_aggregator",
    "staleness_weight",
    "validate_updates",
]

Vector = NDArray[np.float64]


@dataclass(frozen=True)
class Update:
    """One client's delta for a round, with its weight (usually its number of examples)."""

    client: str
    delta: Vector
    weight: float = 1.0
    staleness: int = 0  # rounds between the model it trained on and the current one


def validate_updates(
    updates: Sequence[Update], *, size: int, max_staleness: int | None = None
) -> tuple[list[Update], list[tuple[str, str]]]:
    """Split updates into accepted ones and (client, reason) rejections.

    Rejected: a wrong shape, NaN or infinite values, a non-positive weight, a
    second update from the same client, or one staler than ``max_staleness``.
    """
    accepted: list[Update] = []
    rejected: list[tuple[str, str]] = []
    seen: set[str] = set()
    for u in updates:
        delta = np.asarray(u.delta)
        if delta.shape != (size,):
            rejected.append((u.client, f"update has shape {delta.shape}, the model has ({size},)"))
        elif not np.all(np.isfinite(delta)):
            rejected.append((u.client, "update holds NaN or infinite values"))
        elif not (u.weight > 0 and np.isfinite(u.weight)):
            rejected.append((u.client, f"update weight {u.weight} is not a positive number"))
        elif u.client in seen:
            rejected.append((u.client, "a second update from the same client in one round"))
        elif max_staleness is not None and u.staleness > max_staleness:
            rejected.append(
                (u.client, f"update is {u.staleness} rounds stale (limit {max_staleness})")
            )
        else:
            seen.add(u.client)
            accepted.append(u)
    return accepted, rejected


def staleness_weight(staleness: int) -> float:
    """FedBuff's down-weighting of stale updates: 1 / sqrt(1 + staleness)."""
    return float(1.0 / np.sqrt(1.0 + staleness))


def _stack(updates: Sequence[Update]) -> Vector:
    if not updates:
        raise FederatedError("no updates to aggregate; wait for more clients or lower the quorum")
    return np.stack([np.asarray(u.delta, dtype=np.float64) for u in updates])


class Aggregator(Protocol):
    """Turns a round's updates into one delta."""

    def aggregate(self, updates: Sequence[Update]) -> Vector:
        """The aggregate delta."""
        ...


@dataclass(frozen=True)
class FedAvg:
    """Weighted mean of the deltas (McMahan et al., 2017); stale updates down-weighted."""

    def aggregate(self, updates: Sequence[Update]) -> Vector:
        """Mean weighted by examples (and staleness)."""
        deltas = _stack(updates)
        w = np.array([u.weight * staleness_weight(u.staleness) for u in updates])
        return np.asarray((w[:, None] * deltas).sum(axis=0) / w.sum(), dtype=np.float64)


@dataclass(frozen=True)
class CoordinateMedian:
    """Coordinate-wise median (Yin et al., 2018): robust to a minority of arbitrary updates."""

    def aggregate(self, updates: Sequence[Update]) -> Vector:
        """Per-coordinate median."""
        return np.asarray(np.median(_stack(updates), axis=0), dtype=np.float64)


@dataclass(frozen=True)
class TrimmedMean:
    """Coordinate-wise trimmed mean: drop the ``beta`` fraction lowest and highest per coordinate."""

    beta: float = 0.1

    def aggregate(self, updates: Sequence[Update]) -> Vector:
        """Mean of what is left after trimming each coordinate."""
        deltas = np.sort(_stack(updates), axis=0)
        n = len(updates)
        k = int(np.floor(self.beta * n))
        if n - 2 * k <= 0:
            raise FederatedError(
                f"trimming {k} of {n} updates from each side leaves nothing; lower beta"
            )
        return np.asarray(deltas[k : n - k].mean(axis=0), dtype=np.float64)


@dataclass(frozen=True)
class Krum:
    """Krum and Multi-Krum (Blanchard et al., 2017).

    Each update is scored by the summed squared distances to its ``n - f - 2``
    nearest neighbours; Krum keeps the best one, Multi-Krum averages the ``m``
    best. Needs ``n > 2f + 2``.
    """

    f: int = 1
    m: int = 1

    def scores(self, updates: Sequence[Update]) -> Vector:
        """Krum score of every update (lower is more central)."""
        deltas = _stack(updates)
        n = len(updates)
        if n <= 2 * self.f + 2:
            raise FederatedError(
                f"Krum with f={self.f} needs more than {2 * self.f + 2} updates, got {n}"
            )
        sq = (deltas**2).sum(axis=1)
        dist = np.maximum(sq[:, None] + sq[None, :] - 2 * deltas @ deltas.T, 0.0)
        np.fill_diagonal(dist, np.inf)
        k = n - self.f - 2
        return np.asarray(np.sort(dist, axis=1)[:, :k].sum(axis=1), dtype=np.float64)

    def aggregate(self, updates: Sequence[Update]) -> Vector:
        """The best update (m = 1) or the mean of the m best."""
        order = np.argsort(self.scores(updates), kind="stable")[: self.m]
        return np.asarray(_stack(updates)[order].mean(axis=0), dtype=np.float64)


@dataclass
class FLTrust:
    """FLTrust (Cao et al., NDSS 2021): trust by agreement with the server's own update.

    Each client delta gets trust ``ReLU(cos(delta, server_delta))`` and is
    rescaled to the server delta's norm; the aggregate is the trust-weighted
    mean. ``server_delta`` must be set each round (from the task owner's small
    clean root dataset) before :meth:`aggregate`.
    """

    server_delta: Vector | None = None

    def trust(self, updates: Sequence[Update]) -> Vector:
        """Trust score of every update."""
        if self.server_delta is None:
            raise FederatedError(
                "FLTrust needs the server's update on its root dataset for this round"
            )
        g0 = np.asarray(self.server_delta, dtype=np.float64)
        deltas = _stack(updates)
        norms = np.linalg.norm(deltas, axis=1)
        cos = deltas @ g0 / np.maximum(norms * np.linalg.norm(g0), 1e-12)
        return np.asarray(np.maximum(cos, 0.0), dtype=np.float64)

    def aggregate(self, updates: Sequence[Update]) -> Vector:
        """Trust-weighted mean of the norm-aligned deltas (zero if nobody is trusted)."""
        ts = self.trust(updates)  # raises without the server's update
        g0 = np.asarray(self.server_delta, dtype=np.float64)
        if ts.sum() == 0:
            return np.zeros_like(g0)
        deltas = _stack(updates)
        g0_norm = np.linalg.norm(g0)
        scaled = deltas * (g0_norm / np.maximum(np.linalg.norm(deltas, axis=1), 1e-12))[:, None]
        return np.asarray((ts[:, None] * scaled).sum(axis=0) / ts.sum(), dtype=np.float64)


@dataclass
class ServerOptimizer:
    """Applies an aggregate delta to the global model: ``sgd`` (FedAvg), ``adam``, ``yogi``, ``adagrad``.

    The adaptive variants follow Reddi et al. (2021): the aggregate delta is a
    pseudo-gradient with momentum ``beta1``; the second moment is updated the
    Adam, Yogi or Adagrad way; the step is ``lr * m / (sqrt(v) + tau)``.
    """

    kind: str = "sgd"
    lr: float = 1.0
    beta1: float = 0.9
    beta2: float = 0.99
    tau: float = 1e-3
    m: Vector | None = field(default=None, repr=False)
    v: Vector | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.kind not in ("sgd", "adam", "yogi", "adagrad"):
            raise FederatedError(
                f"unknown server optimizer {self.kind!r}; use sgd, adam, yogi or adagrad"
            )

    def step(self, model: Vector, delta: Vector) -> Vector:
        """The new global model."""
        if self.kind == "sgd":
            return np.asarray(model + self.lr * delta, dtype=np.float64)
        if self.m is None or self.v is None:
            self.m = np.zeros_like(delta)
            self.v = np.full_like(delta, self.tau**2)
        self.m = self.beta1 * self.m + (1 - self.beta1) * delta
        d2 = delta**2
        if self.kind == "adam":
            self.v = self.beta2 * self.v + (1 - self.beta2) * d2
        elif self.kind == "yogi":
            self.v = self.v - (1 - self.beta2) * d2 * np.sign(self.v - d2)
        else:
            self.v = self.v + d2
        return np.asarray(model + self.lr * self.m / (np.sqrt(self.v) + self.tau), dtype=np.float64)


#: Rules a task or a simulation can name (FLTrust needs the server's root data: Python API only).
RULES = ("fedavg", "median", "trimmed-mean", "krum")


def make_aggregator(name: str, clients: int, attackers: int = 0) -> Aggregator:
    """The rule called ``name``, sized for ``clients`` of whom up to ``attackers`` may lie."""
    f = max(attackers, 1)
    if name == "fedavg":
        return FedAvg()
    if name == "median":
        return CoordinateMedian()
    if name == "trimmed-mean":
        return TrimmedMean(beta=min(0.45, (attackers + 1) / max(clients, 1)))
    if name == "krum":
        return Krum(f=f, m=max(1, clients - 2 * f - 2))
    raise FederatedError(f"unknown aggregator {name!r}; use one of {', '.join(RULES)}")
