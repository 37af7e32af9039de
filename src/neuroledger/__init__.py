"""NeuroLedger: a trust layer for the AI lifecycle on an EVM blockchain.

>>> import neuroledger
>>> from pathlib import Path
>>> settings = neuroledger.Settings(home=Path("/tmp/nl-example"))
>>> settings.embedded
True

The capability services are here: :class:`Identities`, :class:`Provenance`,
:class:`AuditLog` (one agent's log) and :class:`AuditLogs` (a home's logs),
:class:`PrivateData` and :class:`FederatedTasks`; each package's face
(``neuroledger.provenance``, …) holds the rest.

Names are imported on first use (see :mod:`neuroledger._lazy`), so that a command
that does not talk to a chain does not pay for importing web3.
"""

from typing import TYPE_CHECKING

from neuroledger._lazy import lazy_exports

if TYPE_CHECKING:
    from neuroledger.audit import AuditLog, AuditLogs
    from neuroledger.chain import Chain
    from neuroledger.config import EMBEDDED_CHAIN_ID, KdfParams, Settings
    from neuroledger.errors import NeuroLedgerError
    from neuroledger.federated import FederatedTasks
    from neuroledger.governance import Governance
    from neuroledger.identity import Identities, Keystore
    from neuroledger.privacy import PrivateData
    from neuroledger.provenance import Provenance

__getattr__, __dir__ = lazy_exports(__name__, __file__)

__version__ = "0.1.0"

__all__ = [
    "EMBEDDED_CHAIN_ID",
    "AuditLog",
    "AuditLogs",
    "Chain",
    "FederatedTasks",
    "Governance",
    "Identities",
    "KdfParams",
    "Keystore",
    "NeuroLedgerError",
    "PrivateData",
    "Provenance",
    "Settings",
    "__version__",
]
