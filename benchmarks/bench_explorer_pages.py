"""The explorer's pages and API under a full index: p50 and p95 latency over real HTTP on
loopback, with 10,000 assets (in lineages), 1,000 identities and 100,000 audit-log
checkpoints (``Anchored`` events: 1,000 logs x 100) indexed.

The index is filled through the indexer's own storing path (events decoded as the chain
would give them), then `explorer serve`'s app runs under uvicorn in this process and one
client asks each page or endpoint 200 times. Baseline, same server and run: a static file
(`/static/style.css`), the floor that the framework and HTTP alone cost. Target (issue 17):
under 150 ms per page at p95.
"""

from __future__ import annotations

import random
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import uvicorn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, machine, write_section

from neuroledger.chain import load_artifact
from neuroledger.explorer import DecodedEvent, EventCatalog, ExplorerIndex, create_api

ASSETS, IDENTITIES, LOGS, CHECKPOINTS = 10_000, 1_000, 1_000, 100
REQUESTS = 200
ADDRESSES = {"DIDRegistry": "0x" + "11" * 20, "AssetRegistry": "0x" + "22" * 20,
             "AuditAnchor": "0x" + "33" * 20}  # fmt: skip


def _h(rng: random.Random, n: int = 32) -> str:
    return "0x" + rng.randbytes(n).hex()


def _fill(index: ExplorerIndex) -> dict[str, str]:
    rng = random.Random(17)
    block, events, times = 1, [], {}
    identities = [_h(rng, 20) for _ in range(IDENTITIES)]

    def add(contract: str, name: str, args: dict) -> None:
        nonlocal block
        events.append(DecodedEvent(block=block, log_index=len(events) % 1000, tx=_h(rng),
                                   block_hash="", address=ADDRESSES[contract], contract=contract,
                                   name=name, args=args))  # fmt: skip
        times[block] = 1_790_000_000 + block * 12
        if len(events) % 1000 == 0:
            index._store(events, times)  # the indexer's own path: events, entities, search
            events.clear()
            block += 1

    for who in identities:
        add("DIDRegistry", "DIDOwnerChanged", {"identity": who, "owner": who, "previousChange": 0})
    assets: list[str] = []
    for i in range(ASSETS):
        parents = rng.sample(assets[-500:], k=min(len(assets), rng.choice((0, 1, 2, 3))))
        asset = _h(rng)
        add("AssetRegistry", "AssetRegistered", {
            "id": asset, "owner": rng.choice(identities), "digest": _h(rng), "kind": 1 + i % 6,
            "metadataURI": f"sha256:{_h(rng)[2:]} cohort {i}", "metadataDigest": _h(rng),
            "parents": parents, "license": "Apache-2.0"})  # fmt: skip
        assets.append(asset)
    logs = [_h(rng) for _ in range(LOGS)]
    for size in range(1, CHECKPOINTS + 1):
        for log in logs:
            add("AuditAnchor", "Anchored", {"logId": log, "owner": identities[hash(log) % IDENTITIES],
                                            "treeSize": size * 10, "rootHash": _h(rng)})  # fmt: skip
    if events:
        index._store(events, times)
    with index.db:
        index.set_meta("final_block", str(block))
    middle = assets[ASSETS // 2]
    return {"asset": middle, "identity": identities[7], "log": logs[3]}


def _serve(app: object) -> tuple[uvicorn.Server, str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, log_level="warning")  # type: ignore[arg-type]
    server = uvicorn.Server(config)
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return server, f"http://127.0.0.1:{sock.getsockname()[1]}"


def _latency(client: httpx.Client, path: str) -> tuple[float, float]:
    for _ in range(5):
        assert client.get(path).status_code == 200, path
    took = []
    for _ in range(REQUESTS):
        started = time.perf_counter()
        response = client.get(path)
        took.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, path
    took.sort()
    return statistics.median(took), took[int(0.95 * len(took)) - 1]


def main() -> None:
    abis = {name: load_artifact(name).abi for name in ADDRESSES}
    with tempfile.TemporaryDirectory() as tmp:
        index = ExplorerIndex(Path(tmp) / "x.sqlite", chain_id=1,
                              catalog=EventCatalog(abis, ADDRESSES))  # fmt: skip
        started = time.monotonic()
        keys = _fill(index)
        filled = time.monotonic() - started
        count = index.count()
        server, base = _serve(create_api(index))
        pages = {
            "home": "/",
            "asset list (first 100)": "/asset",
            "asset with its lineage": f"/asset/{keys['asset']}",
            "identity with what it owns": f"/identity/{keys['identity']}",
            "audit log with 100 checkpoints": f"/log/{keys['log']}",
            "search": "/search?q=cohort+4242",
            "governance": "/governance",
            "API: events page (100)": "/api/v1/events?limit=100",
            "API: assets page (100)": "/api/v1/entities/asset?limit=100",
            "API: asset detail": f"/api/v1/entities/asset/{keys['asset']}",
        }
        try:
            with httpx.Client(base_url=base, timeout=30) as client:
                floor = _latency(client, "/static/style.css")
                measured = {name: _latency(client, path) for name, path in pages.items()}
        finally:
            server.should_exit = True
    lines = [
        f"| page ({count:,} events: {ASSETS:,} assets, {IDENTITIES:,} identities, {LOGS * CHECKPOINTS:,} log checkpoints) | NeuroLedger p50 ms | NeuroLedger p95 ms | baseline: static file p95 ms (same server, same run) | ratio (p95) | target p95 < 150 ms |",
        "|---|---:|---:|---:|---:|---:|",
    ]  # fmt: skip
    for name, (p50, p95) in measured.items():
        lines.append(f"| {name} | {p50:.1f} | {p95:.1f} | {floor[1]:.1f} | {p95 / floor[1]:.1f} | "
                     f"{'met' if p95 < 150 else 'MISSED'} |")  # fmt: skip
    table = "\n".join(lines)
    print(table)
    print(
        f"(filling the index took {filled:.0f} s, {count / filled:,.0f} events/s through the indexer's storing path)"
    )
    intro = ("The explorer's pages and API over real HTTP on loopback with a full index, "
             f"{REQUESTS} requests each (`python benchmarks/bench_explorer_pages.py`).\n\n"
             f"Machine: {machine()}\n\n")  # fmt: skip
    write_section(ROOT / "docs" / "benchmarks.md", "bench_explorer_pages",
                  "bench_explorer_pages: " + intro + table)  # fmt: skip


if __name__ == "__main__":
    main()
