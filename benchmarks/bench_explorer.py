"""The explorer's index catching up: 100,000 events of the suite's contracts, read from a
bare anvil into SQLite, against web3.py's own event decoding of the same logs, same run.

The events are ERC-20 ``Transfer``s of the suite's credits token (one per transaction, 1,000
transactions a block). Ours: :meth:`ExplorerIndex.sync` (``eth_getLogs`` in chunks, ABI
decoding, block times in JSON-RPC batches, SQLite writes). Baseline: web3.py's
``contract.events.Transfer().get_logs`` over the same range, which decodes and stores
nothing. Target (issue 17): catch-up on 100,000 events in under 60 s.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from web3 import Web3

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, machine, write_section
from gas_credits import _deployed

from neuroledger.chain import load_artifact
from neuroledger.chain._anvil import start_dev_anvil
from neuroledger.explorer import EventCatalog, ExplorerIndex

EVENTS = 100_000
PER_BLOCK = 1_000


def _fill(w3: Web3, admin: str) -> str:
    token = _deployed(w3, "Credits", admin, 10**30)
    tx = token.functions.mint(admin, 10**24).transact({"from": admin})
    w3.eth.wait_for_transaction_receipt(tx)
    w3.provider.make_request("evm_setAutomine", [False])  # type: ignore[arg-type]
    call = token.functions.transfer("0x" + "00" * 19 + "01", 1)
    data = call._encode_transaction_data()
    nonce = w3.eth.get_transaction_count(admin)
    provider: object = w3.provider
    for start in range(0, EVENTS, PER_BLOCK):
        batch = [("eth_sendTransaction", [{"from": admin, "to": token.address, "data": data,
                   "gas": hex(60_000), "nonce": hex(nonce + start + i)}])
                 for i in range(PER_BLOCK)]  # fmt: skip
        provider.make_batch_request(batch)  # type: ignore[attr-defined]
        w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    return str(token.address)


def main() -> None:
    proc, url = start_dev_anvil("--auto-impersonate", "--gas-limit", "100000000")
    try:
        w3 = Web3(Web3.HTTPProvider(url))
        admin = w3.eth.accounts[0]
        started = time.monotonic()
        address = _fill(w3, admin)
        filled = time.monotonic() - started
        catalog = EventCatalog({"Credits": load_artifact("Credits").abi}, {"Credits": address})
        with tempfile.TemporaryDirectory() as tmp:
            index = ExplorerIndex(Path(tmp) / "x.sqlite", chain_id=31337, catalog=catalog)
            started = time.monotonic()
            stored = index.sync(w3)
            ours = time.monotonic() - started
        token = w3.eth.contract(address=address, abi=load_artifact("Credits").abi)
        started = time.monotonic()
        head = w3.eth.block_number
        seen = 0
        for start in range(0, head + 1, 5000):
            seen += len(
                token.events.Transfer().get_logs(from_block=start, to_block=min(start + 4999, head))
            )
        theirs = time.monotonic() - started
    finally:
        proc.kill()
    assert stored >= EVENTS and seen >= EVENTS, (stored, seen)
    lines = [
        f"| index catch-up, {stored:,} events | NeuroLedger `ExplorerIndex.sync` (decode + SQLite) | baseline: web3.py `events.Transfer().get_logs` (decode only, same logs, same run) | ratio | target |",
        "|---|---:|---:|---:|---:|",
        f"| seconds | {ours:.1f} | {theirs:.1f} | {ours / theirs:.2f} | under 60 s ({'met' if ours < 60 else 'MISSED'}) |",
        f"| events per second | {stored / ours:,.0f} | {seen / theirs:,.0f} | | |",
    ]  # fmt: skip
    table = "\n".join(lines)
    print(table)
    print(f"(filling the chain took {filled:.0f} s)")
    intro = ("The explorer's index catching up on a bare anvil, same run "
             f"(`python benchmarks/bench_explorer.py`).\n\nMachine: {machine()}\n\n")  # fmt: skip
    write_section(
        ROOT / "docs" / "benchmarks.md", "bench_explorer", "bench_explorer: " + intro + table
    )


if __name__ == "__main__":
    main()
