"""Federated training benchmarks (the parts built so far; one table each, same run).

1. Time to target accuracy with log-normal stragglers: FedBuff async vs sync
   wait-for-all vs sync with a deadline (virtual time; breast cancer).
2. Secure aggregation vs plain aggregation at n = 10, 50, 100 clients and
   10^5 parameters: time (all clients' masking + the server's unmasking, one
   core) and bytes per client.
3. Robustness: final accuracy with 10/20/30 % scaling attackers for FedAvg,
   median, trimmed mean, Krum, FLTrust.
4. Contribution scoring: GTG-Shapley time and rank correlation vs exact
   Shapley for n = 4..10.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, machine, write_section
from sklearn.datasets import load_breast_cancer

from neuroledger.federated import (
    CoordinateMedian,
    FedAvg,
    FLTrust,
    Krum,
    SecAggClient,
    TrimmedMean,
    Update,
    quantize,
    unmask_sum,
)
from neuroledger.federated.contribution import exact_shapley, gtg_shapley
from neuroledger.federated.models import LogisticModel, local_train
from neuroledger.federated.simulation import SimConfig, simulate


def bench_async(target: float = 0.95, seeds: int = 5) -> str:
    data = load_breast_cancer()
    times: dict[str, list[float]] = {"sync": [], "deadline": [], "async": []}
    for seed in range(seeds):
        common = dict(clients=10, rounds=60, alpha=0.5, delay_sigma=1.0, seed=seed)
        for mode in times:
            cfg = SimConfig(mode=mode, deadline=1.5, buffer=3, **common)
            t = simulate(data.data, data.target, cfg).time_to(target)
            times[mode].append(t if t is not None else float("inf"))
    med = {k: statistics.median(v) for k, v in times.items()}
    rows = [
        f"time to {target:.0%} test accuracy, breast cancer, 10 clients, Dirichlet 0.5, log-normal delays "
        f"(median 1 s, sigma 1), median of {seeds} seeds (virtual seconds)",
        "",
        "| schedule | time to target | speed-up vs sync wait-for-all |",
        "|---|---:|---:|",
    ]
    for mode, label in (
        ("async", "FedBuff async (buffer 3)"),
        ("deadline", "sync, 1.5 s deadline"),
        ("sync", "sync wait-for-all (baseline)"),
    ):
        rows.append(f"| {label} | {med[mode]:.1f} | {med['sync'] / med[mode]:.1f}x |")
    rows.append(f"\nTarget: async ≥ 2x faster than sync wait-for-all: {med['sync'] / med['async']:.1f}x "
                f"({'met' if med['sync'] / med['async'] >= 2 else 'MISSED'}).")  # fmt: skip
    return "\n".join(rows)


def bench_secagg(size: int = 100_000) -> str:
    rows = [
        f"secure aggregation vs plain, {size:,} parameters, one core (masking by every client + unmasking)",
        "",
        "| clients | plain sum (s) | SecAgg, no dropout (s) | SecAgg, 10 % dropped (s) | bytes per client, plain / SecAgg |",
        "|---:|---:|---:|---:|---:|",
    ]
    rng = np.random.default_rng(0)
    for n in (10, 50, 100):
        updates = [rng.normal(0, 1, size) for _ in range(n)]
        start = time.perf_counter()
        np.sum(updates, axis=0)
        plain = time.perf_counter() - start
        timings = []
        for dropped in (set(), set(range(1, n // 10 + 1))):
            t = max(2, int(0.6 * n))
            clients = {
                i: SecAggClient(index=i, n=n, threshold=t, round_id=b"bench")
                for i in range(1, n + 1)
            }
            start = time.perf_counter()
            public = {i: c.public_key for i, c in clients.items()}
            dealt = {i: c.deal_shares() for i, c in clients.items()}
            survivors = [i for i in clients if i not in dropped]
            masked = {
                i: clients[i].masked_input(
                    quantize(updates[i - 1], clip=10.0, scale=2.0**16), public
                )
                for i in survivors
            }
            seeds = {i: [dealt[i][x][0] for x in survivors] for i in survivors}
            keys = {d: [dealt[d][x][1] for x in survivors] for d in dropped}
            unmask_sum(masked, public, seeds, keys, threshold=t, round_id=b"bench")
            timings.append(time.perf_counter() - start)
        share_bytes = 2 * (n - 1) * 2 * 66  # two shares (x, y in GF(2^521-1)) per peer
        rows.append(
            f"| {n} | {plain:.3f} | {timings[0]:.2f} | {timings[1]:.2f} | {8 * size:,} / {4 * size + 32 + share_bytes:,} |"
        )
    rows.append(
        "\nFlower's SecAgg+ baseline: not measured; the `flwr` extra is not installed here yet."
    )
    return "\n".join(rows)


def bench_robust() -> str:
    data = load_breast_cancer()
    rules = {
        "FedAvg": lambda f: FedAvg(),
        "median": lambda f: CoordinateMedian(),
        "trimmed mean (beta 0.35)": lambda f: TrimmedMean(beta=0.35),
        "Krum (m 3)": lambda f: Krum(f=max(f, 1), m=3),
        "FLTrust": None,
    }
    rows = ["final test accuracy, breast cancer, 10 clients, 20 rounds, attackers scale their update by -10", "",
            "| rule | 10 % attackers | 20 % | 30 % |", "|---|---:|---:|---:|"]  # fmt: skip
    for name, make in rules.items():
        accs = []
        for attackers in (1, 2, 3):
            if make is None:
                accs.append(_fltrust_accuracy(data, attackers))
                continue
            cfg = SimConfig(
                clients=10,
                rounds=20,
                attackers=attackers,
                attack="scale",
                aggregator=make(attackers),
                seed=0,
            )
            accs.append(simulate(data.data, data.target, cfg).rounds[-1].accuracy)
        rows.append(f"| {name} | " + " | ".join(f"{a:.3f}" for a in accs) + " |")
    return "\n".join(rows)


def _fltrust_accuracy(data, attackers: int) -> float:
    """FLTrust needs the server's own delta each round: a small clean root set (30 rows)."""
    x = (data.data - data.data.mean(axis=0)) / data.data.std(axis=0)
    y = data.target.astype(np.int64)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(y))
    test, root, train = order[:142], order[142:172], order[172:]
    model = LogisticModel(features=30, classes=2)
    parts = np.array_split(train, 10)
    w = model.init()
    rule = FLTrust()
    for _ in range(20):
        rule.server_delta = local_train(model, w, x[root], y[root], epochs=5) - w
        ups = []
        for c, idx in enumerate(parts):
            d = local_train(model, w, x[idx], y[idx], epochs=5) - w
            ups.append(Update(f"c{c}", -10 * d if c < attackers else d))
        w = w + rule.aggregate(ups)
    return model.accuracy(w, x[test], y[test])


def bench_shapley() -> str:
    rows = ["GTG-Shapley vs exact Shapley, utility = validation accuracy of the round's aggregate over a coalition",
            "", "| n | exact (s) | GTG (s) | speed-up | Spearman rank correlation |", "|---:|---:|---:|---:|---:|"]  # fmt: skip
    data = load_breast_cancer()
    x = (data.data - data.data.mean(axis=0)) / data.data.std(axis=0)
    y = data.target.astype(np.int64)
    model = LogisticModel(features=30, classes=2)
    for n in range(4, 11):
        rng = np.random.default_rng(n)
        order = rng.permutation(len(y))
        val, rest = order[:120], order[120:]
        parts = np.array_split(rest, n)
        w0 = model.init()
        deltas = {}
        for i, idx in enumerate(parts):
            labels = y[idx] if i % 3 else rng.integers(0, 2, len(idx))  # some clients are noisy
            deltas[f"c{i}"] = local_train(model, w0, x[idx], labels, epochs=10) - w0

        def u(s: frozenset[str], w0=w0, val=val, deltas=deltas) -> float:
            if not s:
                return model.accuracy(w0, x[val], y[val])
            return model.accuracy(
                w0 + FedAvg().aggregate([Update(c, deltas[c]) for c in sorted(s)]), x[val], y[val]
            )

        players = sorted(deltas)
        start = time.perf_counter()
        exact = exact_shapley(players, u)
        t_exact = time.perf_counter() - start
        start = time.perf_counter()
        approx = gtg_shapley(players, u, rng=np.random.default_rng(0))
        t_gtg = time.perf_counter() - start
        a = np.argsort(np.argsort([approx[p] for p in players]))
        e = np.argsort(np.argsort([exact[p] for p in players]))
        rho = float(np.corrcoef(a, e)[0, 1])
        rows.append(f"| {n} | {t_exact:.3f} | {t_gtg:.3f} | {t_exact / t_gtg:.1f}x | {rho:.2f} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    parts = [bench_async(), bench_secagg(), bench_robust(), bench_shapley()]
    text = "\n\n".join(parts)
    print(text)
    if not args.no_write:
        write_section(
            ROOT / "docs" / "benchmarks.md",
            "bench_fl",
            f"bench_fl (issue 5 in progress: the ledger-overhead table needs the on-chain coordinator)\n\n"
            f"Machine: {machine()}\n\n{text}",
        )


if __name__ == "__main__":
    main()
