"""NeuroLedger: a trust layer for the AI lifecycle on an EVM blockchain.

>>> import neuroledger
>>> from pathlib import Path
>>> settings = neuroledger.Settings(home=Path("/tmp/nl-example"))
>>> settings.embedded
True
"""

from neuroledger.chain import Chain
from neuroledger.config import EMBEDDED_CHAIN_ID, KdfParams, Settings
from neuroledger.errors import NeuroLedgerError
from neuroledger.identity import Identities, Keystore

__version__ = "0.1.0"

__all__ = [
    "EMBEDDED_CHAIN_ID",
    "Chain",
    "Identities",
    "KdfParams",
    "Keystore",
    "NeuroLedgerError",
    "Settings",
    "__version__",
]
