"""Ancestors of an asset in a 10,000-asset registry: the SQLite index vs raw chain logs.

Registers ``--assets`` assets on the embedded anvil of a temporary home, in
generations of 500: the first generation has no parents, every later asset
has one to three random parents from the generation before it, so that the
newest assets have deep lineages with thousands of ancestors. Then, in the same
run, for the same assets (the last of each of the final ``--queries``):

- ``index``: LineageIndex.ancestors (recursive SQL over the synced index);
- ``raw logs`` (baseline): one eth_getLogs over the registry's AssetRegistered
  events, decoding, and a breadth-first walk in Python — what a client without
  an index does.

Also reports the time to build the index from the chain. Usage:
``python benchmarks/bench_lineage.py [--assets 10000]``.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, machine, write_section
from eth_account import Account
from eth_utils.crypto import keccak
from web3.types import RPCEndpoint

from neuroledger.chain._client import Chain
from neuroledger.config import Settings
from neuroledger.provenance import AssetRegistryClient, LineageIndex
from neuroledger.provenance._registry import decode_log

GENERATION = 500
TARGET_MS = 50.0


def ancestors_from_logs(chain: Chain, address: str, start: int, asset_id: str) -> set[str]:
    """The baseline: read every registration from the chain and walk parents."""
    topic = (
        "0x"
        + keccak(
            text="AssetRegistered(bytes32,address,uint8,bytes32,string,bytes32[],string,address)"
        ).hex()
    )
    raw = chain.w3.provider.make_request(
        RPCEndpoint("eth_getLogs"),
        [{"address": address, "fromBlock": hex(start), "toBlock": "latest", "topics": [topic]}],
    )
    parents: dict[str, list[str]] = {}
    for log in raw["result"]:
        event = decode_log(log)
        assert event is not None
        parents[event.args["id"]] = event.args["parents"]
    seen: set[str] = set()
    frontier = list(parents.get(asset_id, []))
    while frontier:
        nxt = frontier.pop()
        if nxt not in seen:
            seen.add(nxt)
            frontier.extend(parents.get(nxt, []))
    return seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks.md")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="nl-bench-lineage-"))
    chain = Chain.connect(Settings(home=home))
    try:
        entry = chain.deployment().contracts["AssetRegistry"]
        registry = AssetRegistryClient(chain.contract("AssetRegistry"))
        owner = Account.create()
        chain.fund(owner.address, 1000 * 10**18)
        sender = chain.sender(owner)
        rng = random.Random(7)
        ids: list[str] = []
        t0 = time.perf_counter()
        while len(ids) < args.assets:
            earlier = ids[-GENERATION:]
            batch = []
            for _ in range(min(GENERATION, args.assets - len(ids))):
                asset_id = hashlib.sha256(f"asset-{len(ids) + len(batch)}".encode()).hexdigest()
                parents = (
                    rng.sample(earlier, k=min(len(earlier), rng.randint(1, 3))) if earlier else []
                )
                batch.append((asset_id, parents))
            sender.send_batch(
                [
                    registry.register(owner.address, a, 1, a, "sha256:" + a, p, "CC0-1.0")
                    for a, p in batch
                ]
            )
            ids.extend(a for a, _ in batch)
            print(f"registered {len(ids)} assets", file=sys.stderr)
        register_s = time.perf_counter() - t0

        index = LineageIndex(
            home / "index.sqlite", chain_id=chain.chain_id, contract=registry.address,
            start_block=int(entry["block"]),
        )  # fmt: skip
        t0 = time.perf_counter()
        index.sync(chain.w3, registry.address)
        sync_s = time.perf_counter() - t0
        assert index.count() == args.assets

        targets = ids[-args.queries :]
        idx_ms, raw_ms, sizes = [], [], []
        for target in targets:
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                found = index.ancestors(target)
                idx_ms.append((time.perf_counter() - t0) * 1000)
                t0 = time.perf_counter()
                baseline = ancestors_from_logs(chain, registry.address, int(entry["block"]), target)
                raw_ms.append((time.perf_counter() - t0) * 1000)
                assert set(found) == baseline, "index and raw logs disagree"
            sizes.append(len(found))
    finally:
        assert chain.node is not None
        chain.node.stop()

    idx, raw = statistics.median(idx_ms), statistics.median(raw_ms)
    table = "\n".join(
        [
            f"bench_lineage: ancestors of the {args.queries} newest assets of a {args.assets:,}-asset "
            f"registry (median {statistics.median(sizes):.0f} ancestors each), {args.repeat} runs "
            "per asset, same embedded anvil",
            "",
            "| method | median ms | p95 ms | speed-up vs raw logs |",
            "|---|---:|---:|---:|",
            f"| index (SQLite recursive query) | {idx:.2f} | "
            f"{statistics.quantiles(idx_ms, n=20)[-1]:.2f} | {raw / idx:.0f}x |",
            f"| raw chain logs (baseline: eth_getLogs + walk) | {raw:.1f} | "
            f"{statistics.quantiles(raw_ms, n=20)[-1]:.1f} | 1x |",
            "",
            f"Target: under {TARGET_MS:.0f} ms from the index: {idx:.2f} ms "
            f"({'met' if idx < TARGET_MS else 'MISSED'}). Building the index from the chain took "
            f"{sync_s:.1f} s ({args.assets / sync_s:,.0f} assets/s); registering took {register_s:.0f} s "
            f"({args.assets / register_s:,.0f} assets/s, pipelined batches of {GENERATION}).",
        ]
    )
    print(table)
    if not args.no_write:
        write_section(
            ROOT / "docs" / "benchmarks.md", "bench_lineage", f"Machine: {machine()}\n\n{table}"
        )


if __name__ == "__main__":
    main()
