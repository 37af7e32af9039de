"""Open the explorer's index for a chain's deployed suite."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from neuroledger.chain import Chain, load_artifact
from neuroledger.errors import StoreError
from neuroledger.explorer._events import EventCatalog
from neuroledger.explorer._index import ExplorerIndex
from neuroledger.store import BlobStore

__all__ = ["open_index"]


def open_index(chain: Chain, path: Path, stores: Sequence[BlobStore] = ()) -> ExplorerIndex:
    """The index of every contract the chain's deployment record names; with the home's
    ``stores`` (its own, and the one its federated tasks share), it also learns the round
    documents registered there (for the charts)."""
    contracts = chain.deployment().contracts
    addresses = {name: str(entry["address"]) for name, entry in contracts.items()}
    abis = {name: load_artifact(name).abi for name in addresses}
    start = min((int(entry.get("block", 0)) for entry in contracts.values()), default=0)

    def read(digest: str, max_size: int) -> bytes | None:
        for store in stores:
            if store.has(digest):
                try:
                    return store.get(digest, max_size=max_size)
                except StoreError:  # too large, or damaged on disk: not a document to chart
                    return None
        return None

    return ExplorerIndex(path, chain_id=chain.chain_id, catalog=EventCatalog(abis, addresses),
                         start_block=start, documents=read if stores else None)  # fmt: skip
