"""Identity attribute writes per second: NeuroLedger's pipelined sender vs a naive web3.py loop.

Both write the same ``setAttribute`` calls to the same DID registry on the same
embedded anvil node in the same run. The naive baseline is what a web3.py user
writes first: ``contract.functions.f(...).transact()`` through web3's
sign-and-send middleware, then ``wait_for_transaction_receipt``, one at a time.
NeuroLedger's figure includes its durability cost (the node's journal fsynced
after each confirmed batch).

With ``--history``, a second table: durable writes/s after 0, 10k, 50k and 100k
prior writes on one chain (the prior writes are made the same way, batch by batch),
with the ratio to the empty chain and the naive loop measured at the same point.

Usage: python benchmarks/bench_tx.py [--writes N] [--batch B] [--history 0,10000,50000,100000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from eth_account import Account
from web3 import Web3
from web3.middleware import SignAndSendRawMiddlewareBuilder

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, machine, write_section

from neuroledger.chain._client import Chain
from neuroledger.config import Settings
from neuroledger.identity._registry import RegistryClient, to_bytes32


def pipelined(chain: Chain, writes: int, batch: int) -> float:
    account = Account.create()
    chain.fund(account.address, 100 * 10**18)
    reg = RegistryClient(chain.contract("DIDRegistry"))
    sender = chain.sender(account)
    calls = [
        reg.set_attribute(account.address, "did/svc/Bench", f"v{i}".encode(), 3600)
        for i in range(writes)
    ]
    start = time.perf_counter()
    for i in range(0, writes, batch):
        receipts = sender.send_batch(calls[i : i + batch])
        assert all(r.status == 1 for r in receipts)
    return writes / (time.perf_counter() - start)


def naive(chain: Chain, writes: int, poll: float = 0.1) -> float:
    account = Account.create()
    chain.fund(account.address, 100 * 10**18)
    w3 = Web3(Web3.HTTPProvider(chain.url))
    w3.middleware_onion.inject(SignAndSendRawMiddlewareBuilder.build(account), layer=0)
    contract = chain.contract("DIDRegistry")
    registry = w3.eth.contract(address=contract.address, abi=contract.abi)
    name = to_bytes32("did/svc/Bench")
    start = time.perf_counter()
    for i in range(writes):
        tx = registry.functions.setAttribute(
            account.address, name, f"v{i}".encode(), 3600
        ).transact({"from": account.address})
        assert w3.eth.wait_for_transaction_receipt(tx, poll_latency=poll)["status"] == 1
    return writes / (time.perf_counter() - start)


def history(points: list[int], writes: int, batch: int, naive_writes: int) -> str:
    """Durable writes/s as the chain's history grows; the table."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        chain = Chain.connect(Settings(home=Path(tmp)))
        assert chain.node is not None
        account = Account.create()
        chain.fund(account.address, 10_000 * 10**18)
        reg = RegistryClient(chain.contract("DIDRegistry"))
        sender = chain.sender(account)
        done = 0
        try:
            for point in points:
                fill_start = time.perf_counter()
                while done < point:
                    size = min(batch, point - done)
                    sender.send_batch([
                        reg.set_attribute(account.address, "did/svc/History", f"h{done + k}".encode(), 3600)
                        for k in range(size)
                    ])  # fmt: skip
                    done += size
                    if done % 10_000 == 0:
                        print(
                            f"  {done:,} prior writes ({time.perf_counter() - fill_start:.0f} s)",
                            flush=True,
                        )
                ours = statistics.median(pipelined(chain, writes, batch) for _ in range(3))
                base = naive(chain, naive_writes)
                status = chain.node.status()
                rows.append((point, status.block_number or 0, ours, base, status.state_bytes or 0,
                             status.journal_bytes))  # fmt: skip
                print(
                    f"  at {point:,}: {ours:,.0f} durable writes/s, naive {base:,.0f}", flush=True
                )
        finally:
            chain.node.stop()
    empty = rows[0][2]
    lines = [
        f"bench_tx history: durable setAttribute writes/s (batch {batch}, {writes} writes, median of 3) "
        f"after N prior writes on one embedded chain; naive loop ({naive_writes} writes) at the same point",
        "",
        "| prior writes | blocks | NeuroLedger writes/s | ratio to empty chain | naive web3.py writes/s | NeuroLedger / naive | snapshot MB | journal MB |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for point, blocks, ours, base, state, journal in rows:
        lines.append(
            f"| {point:,} | {blocks:,} | {ours:,.0f} | {ours / empty:.2f} | {base:,.0f} | {ours / base:.1f}x "
            f"| {state / 1e6:.1f} | {journal / 1e6:.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=500)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--history", default="", help="prior-write counts, e.g. 0,10000,50000,100000"
    )
    parser.add_argument("--naive-writes", type=int, default=100)
    args = parser.parse_args()
    if args.history:
        points = [int(p) for p in args.history.split(",")]
        table = history(points, args.writes, args.batch, args.naive_writes)
        print(table)
        write_section(
            ROOT / "docs" / "benchmarks.md", "bench_tx_history", f"Machine: {machine()}\n\n{table}"
        )
        return
    with tempfile.TemporaryDirectory() as tmp:
        chain = Chain.connect(Settings(home=Path(tmp)))
        try:
            ours, base, tuned = [], [], []
            for _ in range(args.repeats):  # interleaved, so drift hits all alike
                base.append(naive(chain, args.writes))
                tuned.append(naive(chain, args.writes, poll=0.001))
                ours.append(pipelined(chain, args.writes, args.batch))
        finally:
            assert chain.node is not None
            chain.node.stop()
    o, b, t = statistics.median(ours), statistics.median(base), statistics.median(tuned)
    table = "\n".join(
        [
            f"bench_tx: {args.writes} setAttribute writes, median of {args.repeats} interleaved runs, same embedded anvil",
            "",
            "| sender | writes/s | ratio |",
            "|---|---:|---:|",
            f"| NeuroLedger pipelined (batch {args.batch}, durable: journal fsync per batch) | {o:,.0f} | {o / b:.1f}x |",
            f"| naive web3.py `transact()` + `wait_for_transaction_receipt` (default 0.1 s poll) | {b:,.0f} | 1.0x |",
            f"| same naive loop, receipt poll tuned to 1 ms | {t:,.0f} | {t / b:.1f}x |",
        ]
    )
    print(table)
    write_section(ROOT / "docs" / "benchmarks.md", "bench_tx", f"Machine: {machine()}\n\n{table}")


if __name__ == "__main__":
    main()
