"""Open the explorer's index for a chain's deployed suite."""

from __future__ import annotations

from pathlib import Path

from neuroledger.chain import Chain, load_artifact
from neuroledger.explorer._events import EventCatalog
from neuroledger.explorer._index import ExplorerIndex

__all__ = ["open_index"]


def open_index(chain: Chain, path: Path) -> ExplorerIndex:
    """The index of every contract the chain's deployment record names."""
    contracts = chain.deployment().contracts
    addresses = {name: str(entry["address"]) for name, entry in contracts.items()}
    abis = {name: load_artifact(name).abi for name in addresses}
    start = min((int(entry.get("block", 0)) for entry in contracts.values()), default=0)
    return ExplorerIndex(path, chain_id=chain.chain_id, catalog=EventCatalog(abis, addresses),
                         start_block=start)  # fmt: skip
