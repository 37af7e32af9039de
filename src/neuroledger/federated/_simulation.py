"""In-process simulation of federated training: non-IID splits, stragglers, attackers, sync or async.

Time is virtual: each client's local work takes a log-normal delay, so runs are
fast and repeatable while the schedule is that of real stragglers.

- ``sync``: every round waits for all clients (wait-for-all);
- ``deadline``: a round closes at ``deadline`` seconds with whoever finished;
- ``async``: FedBuff (Nguyen et al., AISTATS 2022): clients train without
  waiting; the server aggregates every ``buffer`` arrivals, down-weighting stale
  updates, and a client restarts at once from the newest model.

>>> from sklearn.datasets import load_breast_cancer
>>> data = load_breast_cancer()
>>> result = simulate(data.data, data.target, SimConfig(clients=4, rounds=5, seed=1))
>>> result.rounds[-1].accuracy > 0.85
True
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from neuroledger.errors import FederatedError
from neuroledger.federated._aggregators import (
    Aggregator,
    FedAvg,
    ServerOptimizer,
    Update,
    validate_updates,
)
from neuroledger.federated._models import LogisticModel, local_train

__all__ = ["RoundResult", "SimConfig", "SimResult", "dirichlet_split", "simulate"]


@dataclass
class SimConfig:
    """What to simulate."""

    clients: int = 10
    rounds: int = 30
    mode: str = "sync"  # sync | deadline | async
    alpha: float = 100.0  # Dirichlet concentration of the label split (small = non-IID)
    local_epochs: int = 5
    lr: float = 0.5
    mu: float = 0.0  # FedProx
    delay_median: float = 1.0  # seconds of local work, median
    delay_sigma: float = 1.0  # log-normal spread: stragglers
    deadline: float | None = None
    buffer: int = 3  # async: aggregate every `buffer` arrivals
    attackers: int = 0
    attack: str = "label-flip"  # label-flip | scale
    test_fraction: float = 0.25
    seed: int = 0
    aggregator: Aggregator = field(default_factory=FedAvg)
    server: ServerOptimizer = field(default_factory=ServerOptimizer)


@dataclass(frozen=True)
class RoundResult:
    """One aggregation."""

    round: int
    time: float
    accuracy: float
    loss: float
    updates: int
    rejected: int


@dataclass
class SimResult:
    """The run: per-round results and the final model."""

    rounds: list[RoundResult]
    model: NDArray[np.float64]

    def time_to(self, accuracy: float) -> float | None:
        """Virtual time at which the test accuracy first reached ``accuracy``."""
        for r in self.rounds:
            if r.accuracy >= accuracy:
                return r.time
        return None


def dirichlet_split(
    y: NDArray[np.int64], clients: int, alpha: float, rng: np.random.Generator, *, tries: int = 100
) -> list[NDArray[np.int64]]:
    """Row indices per client: each label's rows shared out by Dirichlet(alpha) proportions.

    Draws again (up to ``tries`` times) when a client would get no rows.
    """
    for _ in range(tries):
        parts: list[list[int]] = [[] for _ in range(clients)]
        for label in np.unique(y):
            rows = rng.permutation(np.flatnonzero(y == label))
            shares = rng.dirichlet(np.full(clients, alpha))
            cuts = (np.cumsum(shares)[:-1] * len(rows)).astype(int)
            for c, chunk in enumerate(np.split(rows, cuts)):
                parts[c].extend(chunk.tolist())
        if all(parts):
            return [np.array(sorted(p), dtype=np.int64) for p in parts]
    raise FederatedError("a client got no data; raise alpha or lower the number of clients")


def simulate(x: NDArray[np.float64], y: NDArray[np.int64], config: SimConfig) -> SimResult:
    """Run a simulation on features ``x`` and integer labels ``y``."""
    rng = np.random.default_rng(config.seed)
    x = (x - x.mean(axis=0)) / np.maximum(x.std(axis=0), 1e-12)
    y = np.asarray(y, dtype=np.int64)
    order = rng.permutation(len(y))
    cut = int(len(y) * config.test_fraction)
    test, train = order[:cut], order[cut:]
    xt, yt = x[test], y[test]
    model = LogisticModel(features=x.shape[1], classes=int(y.max()) + 1)
    splits = dirichlet_split(y[train], config.clients, config.alpha, rng)
    data = []
    for c, idx in enumerate(splits):
        labels = y[train][idx].copy()
        if c < config.attackers and config.attack == "label-flip":
            labels = (model.classes - 1) - labels
        data.append((x[train][idx], labels))
    w = model.init()
    results: list[RoundResult] = []

    def delay() -> float:
        return float(config.delay_median * np.exp(rng.normal(0.0, config.delay_sigma)))

    def work(c: int, start: NDArray[np.float64]) -> NDArray[np.float64]:
        xs, ys = data[c]
        delta = (
            local_train(
                model, start, xs, ys, epochs=config.local_epochs, lr=config.lr, mu=config.mu
            )
            - start
        )
        if c < config.attackers and config.attack == "scale":
            delta = -10.0 * delta
        return delta

    def record(round_: int, now: float, updates: list[Update], rejected: int) -> None:
        results.append(
            RoundResult(
                round_,
                now,
                model.accuracy(w, xt, yt),
                model.loss(w, xt, yt),
                len(updates),
                rejected,
            )
        )

    if config.mode in ("sync", "deadline"):
        now = 0.0
        for r in range(1, config.rounds + 1):
            delays = [delay() for _ in range(config.clients)]
            if config.mode == "deadline":
                if config.deadline is None:
                    raise FederatedError("deadline mode needs a deadline in seconds")
                chosen = [c for c in range(config.clients) if delays[c] <= config.deadline] or [
                    int(np.argmin(delays))
                ]
                now += config.deadline if len(chosen) < config.clients else max(delays)
            else:
                chosen = list(range(config.clients))
                now += max(delays)
            raw = [Update(f"c{c}", work(c, w), float(len(data[c][1]))) for c in chosen]
            updates, rejected = validate_updates(raw, size=model.size)
            w = config.server.step(w, config.aggregator.aggregate(updates))
            record(r, now, updates, len(rejected))
    elif config.mode == "async":
        version = 0
        events: list[
            tuple[float, int, int, NDArray[np.float64]]
        ] = []  # (finish, client, version, start)
        for c in range(config.clients):
            heapq.heappush(events, (delay(), c, 0, w.copy()))
        buffer: list[Update] = []
        r = jobs = 0
        while r < config.rounds:
            now, c, started_at, start = heapq.heappop(events)
            jobs += 1  # a fast client may land twice in one buffer: each job is its own update
            buffer.append(
                Update(
                    f"c{c}/{jobs}",
                    work(c, start),
                    float(len(data[c][1])),
                    staleness=version - started_at,
                )
            )
            heapq.heappush(events, (now + delay(), c, version, w.copy()))
            if len(buffer) >= config.buffer:
                updates, rejected = validate_updates(buffer, size=model.size)
                w = config.server.step(w, config.aggregator.aggregate(updates))
                version += 1
                r += 1
                record(r, now, updates, len(rejected))
                buffer = []
    else:
        raise FederatedError(f"unknown mode {config.mode!r}; use sync, deadline or async")
    return SimResult(rounds=results, model=w)
