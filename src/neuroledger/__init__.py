"""NeuroLedger: a trust layer for the AI lifecycle on an EVM blockchain.

>>> import neuroledger
>>> from pathlib import Path
>>> settings = neuroledger.Settings(home=Path("/tmp/nl-example"))
>>> settings.embedded
True
"""

import eth_account as _eth_account  # noqa: F401  (imports py_ecc, which raises the limit)

from neuroledger._json import sane_recursion_limit as _sane_recursion_limit

_sane_recursion_limit()

from neuroledger.chain import Chain  # noqa: E402
from neuroledger.config import EMBEDDED_CHAIN_ID, KdfParams, Settings  # noqa: E402
from neuroledger.errors import NeuroLedgerError  # noqa: E402
from neuroledger.identity import Identities, Keystore  # noqa: E402

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
