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
5. Ledger overhead: wall time per round of the same task with and without
   the on-chain recording (recordRound, k attestations, a round asset), on
   the embedded anvil chain; the owner and the parties are threads of one
   process in both cases.
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

from neuroledger.federated import FedAvg, Update
from neuroledger.federated._aggregators import CoordinateMedian, FLTrust, Krum, TrimmedMean
from neuroledger.federated._contribution import exact_shapley, gtg_shapley
from neuroledger.federated._models import LogisticModel, local_train
from neuroledger.federated._secagg import SecAggClient, quantize, unmask_sum
from neuroledger.federated._simulation import SimConfig, simulate


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


def flower_secaggplus_seconds(n: int, size: int, num_shares: int) -> float:
    """One Flower SecAgg+ round (flwr's own workflow and client mod), in this process.

    The transport is :class:`InProcessGrid`: each message copied (as gRPC would)
    and handed to the node's ClientApp; clients return a fixed update, so
    the time is the protocol's: key setup, share exchange, masking, unmasking.
    """

    from flwr.app import Context, RecordDict
    from flwr.client import NumPyClient
    from flwr.client.mod import secaggplus_mod
    from flwr.clientapp import ClientApp
    from flwr.common import ndarrays_to_parameters
    from flwr.server import ServerConfig
    from flwr.server.compat.legacy_context import LegacyContext
    from flwr.server.strategy import FedAvg as FlowerFedAvg
    from flwr.server.workflow import DefaultWorkflow, SecAggPlusWorkflow

    from neuroledger.federated.flower import InProcessGrid

    rng = np.random.default_rng(0)
    updates = {i: rng.normal(0, 0.1, size).astype(np.float32) for i in range(1, n + 1)}

    class Fixed(NumPyClient):  # type: ignore[misc]
        def __init__(self, node: int) -> None:
            self.node = node

        def fit(self, parameters, config):  # type: ignore[no-untyped-def]
            return [updates[self.node]], 1, {}

    app = ClientApp(
        client_fn=lambda context: Fixed(context.node_id).to_client(), mods=[secaggplus_mod]
    )
    import logging

    logging.getLogger("flwr").setLevel(logging.WARNING)
    strategy = FlowerFedAvg(min_fit_clients=n, min_available_clients=n, fraction_evaluate=0.0,
                            initial_parameters=ndarrays_to_parameters([np.zeros(size, np.float32)]))  # fmt: skip
    context = LegacyContext(
        context=Context(run_id=1, node_id=0, node_config={}, state=RecordDict(), run_config={}),
        config=ServerConfig(num_rounds=1), strategy=strategy,
    )  # fmt: skip
    workflow = DefaultWorkflow(fit_workflow=SecAggPlusWorkflow(
        num_shares=num_shares, reconstruction_threshold=max(2, int(0.6 * num_shares)),
        clipping_range=1.0,
    ))  # fmt: skip
    start = time.perf_counter()
    workflow(InProcessGrid(app, range(1, n + 1)), context)
    return time.perf_counter() - start


def bench_secagg(size: int = 100_000) -> str:
    rows = [
        f"secure aggregation vs plain, {size:,} parameters, one core (masking by every client + unmasking)",
        "",
        "| clients | plain sum (s) | SecAgg, no dropout (s) | SecAgg, 10 % dropped (s) | Flower SecAgg+, every pair (s) | ratio | Flower SecAgg+, 2⌈log2 n⌉+1 neighbours (s) | bytes per client, plain / SecAgg |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
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
        try:
            full = flower_secaggplus_seconds(n, size, n)
            sparse = flower_secaggplus_seconds(n, size, min(n, 2 * int(np.ceil(np.log2(n))) + 1))
            flower = f"{full:.2f} | {full / timings[0]:.1f}x | {sparse:.2f}"
        except ImportError:
            flower = "— | — | —"
        rows.append(
            f"| {n} | {plain:.3f} | {timings[0]:.2f} | {timings[1]:.2f} | {flower} | {8 * size:,} / {4 * size + 32 + share_bytes:,} |"
        )
    rows.append(
        "\nFlower: flwr 1.41.0's SecAggPlusWorkflow and secaggplus_mod, one round in this process over "
        "InProcessGrid (messages deep-copied as gRPC would), clients returning a fixed update. "
        "ratio = Flower (every pair) time / ours (no dropout): above 1 means ours is faster. "
        "SecAgg+ with few neighbours trades the O(n^2) pairs for a sparse graph."
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


def _ledger_run(
    tmp: Path, spec_kw: dict, parties: list, validation: tuple, *, external: bool
) -> tuple[float, float, int]:
    """One task on a fresh chain; (seconds to the last round's result, to the end, gas).

    ``external``: a separately started anvil node (how a consortium runs: the node
    persists its own state); otherwise the embedded chain, which dumps its state to
    disk from our process after every transaction.
    """
    import tempfile

    from neuroledger.chain._anvil import start_dev_anvil
    from neuroledger.chain._client import Chain
    from neuroledger.config import KdfParams, Settings
    from neuroledger.federated._local import Workers
    from neuroledger.federated._service import FederatedTasks
    from neuroledger.identity._keystore import Keystore
    from neuroledger.identity._service import Identities
    from neuroledger.provenance import Provenance

    home = Path(tempfile.mkdtemp(dir=tmp))
    node, url = start_dev_anvil() if external else (None, None)
    settings = Settings(home=home, kdf=KdfParams.light(), rpc_url=url)
    chain = Chain.connect(settings)
    try:
        keystore = Keystore(settings.keystore_dir, passphrase=lambda: "bench", kdf=settings.kdf)
        ids = Identities(chain, keystore)
        names = [f"party-{i}" for i in range(len(parties))]
        for name in ["owner", *names]:
            if external:
                record = keystore.create(name, "org")
                chain.w3.provider.make_request("anvil_setBalance", [record.owner, hex(10**20)])  # type: ignore[arg-type]
                if name == "owner":
                    chain.deployment(deployer=keystore.owner_account(name))
                ids.publish_key(name)
            else:
                ids.create(name, "org")
        data = home / "data"
        data.mkdir()
        for i, (x, y) in enumerate(parties):
            np.savez(data / f"party-{i}.npz", x=x, y=y)
        np.savez(data / "validation.npz", x=validation[0], y=validation[1])

        def open_tasks(c: Chain, ks: Keystore) -> FederatedTasks:
            return FederatedTasks.open(
                c, ks, home / "shared",
                lambda store: Provenance(c, ks, store=store, index_path=settings.index_path),
            )  # fmt: skip

        tasks = open_tasks(chain, keystore)
        spec = tasks.create("owner", data / "validation.npz", pool_wei=10**15, **spec_kw)

        def party(i: int) -> None:  # in its own process, with its own connection and keys
            c = Chain.connect(settings)
            ks = Keystore(settings.keystore_dir, passphrase=lambda: "bench", kdf=settings.kdf)
            open_tasks(c, ks).join(spec.task_id, names[i], data / f"party-{i}.npz").run()

        workers = Workers([lambda i=i: party(i) for i in range(len(names))], processes=True)
        report = tasks.run(spec.task_id, data / "validation.npz")
        workers.join()
        return report.rounds[-1]["seconds"], report.seconds, sum(r["gas"] for r in report.rounds)
    finally:
        if chain.node is not None:
            chain.node.stop()
        if node is not None:
            node.kill()
            node.wait()


def bench_ledger(
    rounds: int = 10, repeats: int = 3, epochs: tuple[int, ...] = (100, 1000), external: bool = True
) -> str:
    import tempfile

    from neuroledger.federated import TaskSpec, run_local
    from neuroledger.federated._data import split_dataset

    parties, validation = split_dataset("digits", parties=4, alpha=0.5, seed=0)
    tmp = Path(tempfile.mkdtemp(prefix="bench-fl-ledger-"))
    rows = [
        f"wall time per round, digits (64 features, 10 classes), 4 parties, {rounds} rounds, "
        f"owner and each party its own process (2 cores shared with anvil), median "
        f"of {repeats} interleaved runs; ledger = recordRound + 2 attestations per round on "
        f"{'a separately started anvil node' if external else 'the embedded chain'}, then a round "
        "asset per round, the final model and the rewards once training is over",
        "",
        "| local epochs per round | no ledger (baseline), s/round | with ledger: critical path "
        "(to the last round's result), s/round | added | with ledger: until final on chain and "
        "registered, s/round | added |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    verdicts = []
    gas = 0.0
    for e in epochs:
        spec_kw = dict(rounds=rounds, validators=2, min_participants=4, local_epochs=e, lr=0.5)
        template = TaskSpec(
            task_id=1, owner="", features=64, classes=10, initial_model="", **spec_kw
        )
        plain: list[float] = []
        ledger: list[tuple[float, float, int]] = []
        for i in range(repeats):  # interleaved
            report = run_local(
                tmp / f"plain-{e}-{i}", template, parties, validation, processes=True
            )
            plain.append(report.rounds[-1]["seconds"])
            ledger.append(_ledger_run(tmp, spec_kw, parties, validation, external=external))
        p = statistics.median(plain) / rounds
        c = statistics.median(x[0] for x in ledger) / rounds
        end = statistics.median(x[1] for x in ledger) / rounds
        gas = ledger[0][2] / rounds
        rows.append(f"| {e} | {p:.3f} | {c:.3f} | {100 * (c / p - 1):+.1f}% | {end:.3f} | "
                    f"{100 * (end / p - 1):+.1f}% |")  # fmt: skip
        verdicts.append(
            f"{e} epochs: {'met' if c / p - 1 < 0.05 else 'missed'} ({100 * (c / p - 1):+.1f}%)"
        )
    rows += ["", f"Gas per round (recordRound, paid by the owner): {gas:,.0f}. Target: under 5% added "
             f"on the critical path: {'; '.join(verdicts)}."]  # fmt: skip
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--only", choices=["async", "secagg", "robust", "shapley", "ledger"])
    args = parser.parse_args()
    benches = {"async": bench_async, "secagg": bench_secagg, "robust": bench_robust,
               "shapley": bench_shapley, "ledger": bench_ledger}  # fmt: skip
    if args.only:
        print(benches[args.only]())
        return
    parts = [bench() for bench in benches.values()]
    text = "\n\n".join(parts)
    print(text)
    if not args.no_write:
        write_section(
            ROOT / "docs" / "benchmarks.md",
            "bench_fl",
            f"bench_fl\n\nMachine: {machine()}\n\n{text}",
        )


if __name__ == "__main__":
    main()
