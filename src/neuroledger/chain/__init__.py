"""Chain access: the embedded anvil node, connections, transactions, deployment.

>>> from neuroledger.chain import Call, load_artifact
>>> load_artifact("DIDRegistry").name
'DIDRegistry'
"""

from typing import TYPE_CHECKING

from neuroledger._lazy import lazy_exports

if TYPE_CHECKING:
    from neuroledger.chain._artifacts import Artifact, artifact_names, load_artifact
    from neuroledger.chain._client import DEV_FUNDING_WEI, Chain
    from neuroledger.chain._energy import (
        CAPABILITIES,
        GAS_SENT,
        WH_PER_GAS_POS,
        WH_PER_GAS_POW,
        EnergyReport,
        energy_report,
    )
    from neuroledger.chain._node import EmbeddedNode, NodeStatus
    from neuroledger.chain._nonces import FeePolicy, NonceManager
    from neuroledger.chain._records import DeploymentRecord, DeploymentStore, GovernanceSetup
    from neuroledger.chain._suite import Suite
    from neuroledger.chain._tx import (
        Call,
        ContractClient,
        Receipt,
        TransactionSender,
        contract_call,
    )

__getattr__, __dir__ = lazy_exports(__name__, __file__)

__all__ = [
    "CAPABILITIES",
    "DEV_FUNDING_WEI",
    "GAS_SENT",
    "WH_PER_GAS_POS",
    "WH_PER_GAS_POW",
    "Artifact",
    "Call",
    "Chain",
    "ContractClient",
    "DeploymentRecord",
    "DeploymentStore",
    "EmbeddedNode",
    "EnergyReport",
    "FeePolicy",
    "GovernanceSetup",
    "NodeStatus",
    "NonceManager",
    "Receipt",
    "Suite",
    "TransactionSender",
    "artifact_names",
    "contract_call",
    "energy_report",
    "load_artifact",
]
