"""Governance: the guardian's pause, timelocked parameter changes, two-step ownership.

``FederatedTask`` and ``AccessGrants`` hold value or gate access, so the suite's
``Timelock`` owns them: a change is proposed, announced on chain, and runs only
after the delay. A guardian can pause new work at once, and no pause ever blocks
a claim, a refund, a revocation or a withdrawal of consent. The registries of
identities, assets and anchors have no owner at all.

A suite deployed on the embedded chain without ``--from`` has no governor, so
its status shows no guardian and an empty queue:

>>> from neuroledger.governance import GOVERNED, CHANGES
>>> GOVERNED
('FederatedTask', 'AccessGrants', 'JobEscrow', 'ValidationRegistry', 'Marketplace')
>>> sorted(CHANGES["FederatedTask"])
['setGuardian', 'setMaxDuration', 'transfer_ownership']

With a chain and a keystore (see ``docs/governance.md``)::

    gov = Governance(chain, keystore)
    gov.pause("AccessGrants", by="guardian")
    op = gov.propose("FederatedTask", "setMaxDuration", ["2592000"], by="operator")
    gov.execute(op.id, by="operator")  # after the delay
"""

from typing import TYPE_CHECKING

from neuroledger._lazy import lazy_exports

if TYPE_CHECKING:
    from neuroledger.governance._service import (
        CHANGES,
        GOVERNED,
        ContractState,
        Governance,
        GovernanceStatus,
        Operation,
    )

__getattr__, __dir__ = lazy_exports(__name__, __file__)

__all__ = ["CHANGES", "GOVERNED", "ContractState", "Governance", "GovernanceStatus", "Operation"]
