"""The explorer: an index of every NeuroLedger contract's events, for auditors, regulators
and buyers who do not run the CLI (a REST API and pages are to come on top of it).

On a chain::

    index = open_index(chain, home / "explorer.sqlite")
    index.sync(chain.w3, confirmations=chain.confirmations)
    index.count("Marketplace", "Sold")
"""

from typing import TYPE_CHECKING

from neuroledger._lazy import lazy_exports

if TYPE_CHECKING:
    from neuroledger.explorer._api import create_api
    from neuroledger.explorer._energy import follow
    from neuroledger.explorer._events import DecodedEvent, EventCatalog
    from neuroledger.explorer._index import ExplorerIndex
    from neuroledger.explorer._open import open_index

__getattr__, __dir__ = lazy_exports(__name__, __file__)

__all__ = ["DecodedEvent", "EventCatalog", "ExplorerIndex", "create_api", "follow", "open_index"]
