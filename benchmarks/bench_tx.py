"""Identity attribute writes per second: NeuroLedger's pipelined sender vs a naive web3.py loop.

Both write the same ``setAttribute`` calls to the same DID registry on the same
embedded anvil node in the same run. The naive baseline is what a web3.py user
writes first: ``contract.functions.f(...).transact()`` through web3's
sign-and-send middleware, then ``wait_for_transaction_receipt``, one at a time.
NeuroLedger's figure includes its durability cost (a state dump after each
confirmed batch).

Usage: python benchmarks/bench_tx.py [--writes N] [--batch B]
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

from neuroledger.chain.client import Chain
from neuroledger.config import Settings
from neuroledger.identity.registry import RegistryClient, to_bytes32


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=500)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
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
            f"| NeuroLedger pipelined (batch {args.batch}, durable state dump per batch) | {o:,.0f} | {o / b:.1f}x |",
            f"| naive web3.py `transact()` + `wait_for_transaction_receipt` (default 0.1 s poll) | {b:,.0f} | 1.0x |",
            f"| same naive loop, receipt poll tuned to 1 ms | {t:,.0f} | {t / b:.1f}x |",
        ]
    )
    print(table)
    write_section(ROOT / "docs" / "benchmarks.md", "bench_tx", f"Machine: {machine()}\n\n{table}")


if __name__ == "__main__":
    main()
