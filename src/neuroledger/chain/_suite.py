"""The contract suite on one chain: deployed where missing, looked up by name.

Three pieces keep chain access apart: the transport (:class:`~neuroledger.chain.Chain`:
web3, nonces, senders, funding), the deployment records (:mod:`~neuroledger.chain._records`,
files only) and the suite here, which uses both: :class:`Suite` deploys what a record
lacks and returns web3 contract objects for what it holds.

``deployments/<chain id>.json`` holds, for each contract, its address and the
hash of its deployed code, the chain's genesis hash when it was first deployed
(for information only), and the RPC URLs seen for that chain.

Deployment is idempotent and never forgets: a contract whose recorded address
holds the expected code is left alone, and a contract the record does not name
yet is deployed and added. A recorded contract whose address holds other code,
or none, is *never* silently replaced: the application's data lives at the
recorded addresses, and a new suite would orphan it. The error says so and
names ``neuroledger deploy --force``, which keeps the old record beside the new
one (``<chain id>.<time>.json.replaced``) and deploys a fresh suite.

Earlier versions compared block 0's hash and redeployed on a difference, but
anvil gives block 0 a new hash on some restarts from a saved state: the code at
the recorded addresses is the only reliable check.

Governance: the suite includes a ``Timelock`` (snekmate's TimelockController)
that owns the contracts holding value or gating access (``FederatedTask``,
``AccessGrants``). A :class:`GovernanceSetup` names its proposer and executor (the
governor), the guardian that may pause, and the minimum delay. A suite deployed
with ``--from NAME`` is governed by NAME; the throw-away deployer of the
embedded chain governs nothing, so such a suite has no governor and no guardian:
its parameters are frozen and nobody can pause it.
"""

from __future__ import annotations

import hashlib
import time
from typing import TYPE_CHECKING, Any

from eth_abi.abi import encode as abi_encode
from eth_account import Account

from neuroledger._fs import file_lock
from neuroledger.chain._artifacts import Artifact, load_artifact
from neuroledger.chain._records import (
    DeploymentRecord,
    DeploymentStore,
    GovernanceSetup,
)
from neuroledger.chain._tx import Call
from neuroledger.errors import (
    ContractsNotDeployedError,
    DeploymentMismatchError,
)

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount
    from web3.contract import Contract

    from neuroledger.chain._client import Chain

__all__ = ["CREDITS_FAUCET_LIMIT", "SUITE", "Suite", "ensure_deployed"]

#: What the embedded node gives a throw-away deployer: the suite costs about 0.01 ETH.
_DEPLOYER_FUNDING_WEI = 10**18


#: The most one call of the credits faucet mints on the embedded chain (10,000 credits of
#: 6 decimals); a suite on an external chain has no faucet (limit 0).
CREDITS_FAUCET_LIMIT = 10_000 * 10**6

#: The contract suite in deployment order: each contract with its constructor's
#: arguments, either a suite contract (its address) or a deployment value
#: (``@delay``, ``@governors``: the proposers and executors, ``@guardian``,
#: ``@faucet``: the credits faucet's limit).
SUITE: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("DIDRegistry", ()),
    ("AssetRegistry", ("DIDRegistry",)),
    ("AuditAnchor", ()),
    ("Timelock", ("@delay", "@governors", "@governors")),
    ("FederatedTask", ("Timelock", "@guardian")),
    ("AccessGrants", ("DIDRegistry", "AssetRegistry", "Timelock", "@guardian")),
    ("Credits", ("@faucet",)),
    ("AgentRegistry", ()),
    ("JobEscrow", ("Credits", "Timelock", "@guardian")),
    ("PaymentSettler", ()),
    ("ReputationRegistry", ("AgentRegistry", "JobEscrow", "PaymentSettler", "Credits")),
    ("ValidationRegistry", ("AgentRegistry", "JobEscrow", "Timelock", "@guardian")),
    (
        "Marketplace",
        (
            "Credits",
            "DIDRegistry",
            "AssetRegistry",
            "AccessGrants",
            "FederatedTask",
            "Timelock",
            "@guardian",
        ),
    ),
)


def _code_hash(code: bytes) -> str:
    return hashlib.sha256(code).hexdigest()


class Suite:
    """The suite of one chain, as recorded in one home's deployment records."""

    def __init__(self, chain: Chain, store: DeploymentStore) -> None:
        self.chain = chain
        self.store = store
        self._record: DeploymentRecord | None = None

    def deployment(
        self,
        *,
        deployer: LocalAccount | None = None,
        force: bool = False,
        governance: GovernanceSetup | None = None,
    ) -> DeploymentRecord:
        """The suite's record on this chain, deploying what it lacks where allowed
        (see :func:`ensure_deployed`); read once, then kept."""
        if self._record is None or deployer is not None or force:
            self._record = ensure_deployed(self.chain, self.store, deployer=deployer,
                                           force=force, governance=governance)  # fmt: skip
        return self._record

    def contract(self, name: str) -> Contract:
        """A web3 contract object for suite contract ``name``."""
        address = self.deployment().contracts[name]["address"]
        contract: Contract = self.chain.w3.eth.contract(
            address=address, abi=load_artifact(name).abi
        )
        return contract


def ensure_deployed(
    chain: Chain,
    store: DeploymentStore,
    *,
    deployer: LocalAccount | None = None,
    names: list[str] | None = None,
    force: bool = False,
    governance: GovernanceSetup | None = None,
) -> DeploymentRecord:
    """Make sure every contract of the suite is on ``chain``; return the record.

    On the embedded chain, missing contracts are deployed from a throw-away key
    that the node funds (so each home's suite has addresses of its own). On an external chain they are deployed only when a
    ``deployer`` account is given; otherwise :class:`ContractsNotDeployedError`
    names the command that deploys them.

    A recorded contract whose code is not at its address raises
    :class:`DeploymentMismatchError`; only ``force=True`` sets the record aside
    and deploys a new suite.

    ``governance`` applies to a suite deployed now; by default a given
    ``deployer`` governs (and guards) it, and a throw-away deployer leaves it
    ungoverned. A suite already recorded keeps the governance it was deployed with.
    """
    wanted = set(names or [name for name, _ in SUITE])
    with file_lock(store.directory / ".lock"):
        record = store.load(chain.chain_id)
        if force and record is not None:
            if not chain.is_embedded and deployer is None:
                raise ContractsNotDeployedError(
                    "`deploy --force` on an external chain needs `--from NAME` (a funded identity)"
                )
            store.set_aside(chain.chain_id)
            record = None
        changed = False
        if record is None:
            genesis = chain.w3.eth.get_block(0)["hash"].hex()
            record = DeploymentRecord(chain_id=chain.chain_id, genesis_hash=genesis)
            changed = True
        if record.governance is None:
            record.governance = governance or GovernanceSetup(
                governor=deployer.address if deployer else None,
                guardian=deployer.address if deployer else None,
            )
            changed = True
        if record.faucet_limit is None:  # fixed once, by the home that deploys
            record.faucet_limit = CREDITS_FAUCET_LIMIT if chain.is_embedded else 0
            changed = True
        if chain.url not in record.rpc_urls and not chain.is_embedded:
            record.rpc_urls.append(chain.url)
            changed = True
        for name, dependencies in SUITE:
            if name not in wanted:
                continue
            artifact = load_artifact(name)
            args = _constructor_args(record, artifact, dependencies)
            entry = record.contracts.get(name)
            if entry:
                _check_recorded(chain, name, entry, artifact, args)
                continue
            if not chain.is_embedded and deployer is None:
                raise ContractsNotDeployedError(
                    f"contract {name} is not deployed on chain {chain.chain_id} at {chain.url}; "
                    f"deploy the suite with `neuroledger deploy --from NAME` "
                    f"(NAME: a funded identity)"
                )
            if deployer is None:
                deployer = _throwaway_deployer(chain)
            record.contracts[name] = _deploy(chain, artifact, args, deployer)
            changed = True
        if changed:
            store.save(record)
    return record


def _check_recorded(
    chain: Chain, name: str, entry: dict[str, Any], artifact: Artifact, args: bytes
) -> None:
    """Raise unless the recorded address of ``name`` holds the suite's code.

    The deployed code is the artifact's runtime code followed by its immutables
    (constructor arguments, EIP-712 domain caches); its hash is recorded.
    """
    address = entry["address"]
    code = bytes(chain.w3.eth.get_code(address))
    recorded = _code_hash(code) == entry.get("code_sha256")
    if (
        recorded
        and code.startswith(artifact.runtime_bytecode)
        and entry.get("args", "0x" + args.hex()) == "0x" + args.hex()
    ):
        return
    fix = (
        "`neuroledger deploy --force` deploys a new suite and sets this record aside "
        "(data written to the old contracts stays there, unreachable from this home)"
    )
    if not code:
        why = (
            "there is no code there: the chain was reset or replaced "
            "(restore its saved state to get the data back)"
        )
    elif recorded:
        why = "it holds the contract of an older NeuroLedger version"
    else:
        why = "it holds other code"
    raise DeploymentMismatchError(
        f"{name} recorded at {address} on chain {chain.chain_id} is not there: {why}; {fix}"
    )


def _constructor_args(
    record: DeploymentRecord, artifact: Artifact, arguments: tuple[str, ...]
) -> bytes:
    """The ABI-encoded constructor arguments of a suite contract."""
    governance = record.governance or GovernanceSetup(governor=None)
    governors = [governance.governor] if governance.governor else []
    zero = "0x" + "00" * 20
    values = {"@delay": governance.delay, "@governors": governors,
              "@guardian": governance.guardian or zero,
              "@faucet": record.faucet_limit or 0}  # fmt: skip
    constructor: dict[str, Any] = next(
        (e for e in artifact.abi if e["type"] == "constructor"), {"inputs": []}
    )
    types = [i["type"] for i in constructor["inputs"]]
    args = [values[a] if a.startswith("@") else record.contracts[a]["address"] for a in arguments]
    return abi_encode(types, args)


def _deployed_code(chain: Chain, address: str, artifact: Artifact) -> bytes | None:
    """The code at ``address`` when it is the artifact's runtime code (with its immutables)."""
    code = bytes(chain.w3.eth.get_code(address))  # type: ignore[arg-type]
    return code if code.startswith(artifact.runtime_bytecode) else None


def _throwaway_deployer(chain: Chain) -> LocalAccount:
    """A fresh key, funded by the embedded node, that deploys the suite and is then forgotten.

    Every embedded home shares the chain id and anvil's well-known development
    accounts; deployed from those, every home's suite would sit at the same
    addresses, and a signed DID change (its EIP-191 message names the registry's
    address and chain id) made for one home would replay in another. A random
    deployer gives each home its own addresses. The key is never stored: it
    governs nothing (the suite it deploys has no governor), so nothing needs it again.
    """
    account: LocalAccount = Account.create()
    chain.fund(account.address, _DEPLOYER_FUNDING_WEI)
    return account


def _deploy(
    chain: Chain, artifact: Artifact, args: bytes, deployer: LocalAccount
) -> dict[str, Any]:
    initcode = artifact.bytecode + args
    call = Call(to="", data=initcode, label=f"deployment of {artifact.name}")
    receipt = chain.sender(deployer).send(call)
    address, tx_hash, block = receipt.contract_address, receipt.tx_hash, receipt.block_number
    code = _deployed_code(chain, address, artifact) if address else None
    if code is None:
        raise ContractsNotDeployedError(
            f"deploying {artifact.name} on chain {chain.chain_id} left no matching code at "
            f"{address}; check the node's EVM version (needs Cancun) and retry"
        )
    return {
        "address": address,
        "code_sha256": _code_hash(code),
        "args": "0x" + args.hex(),
        "source_sha256": artifact.source_sha256,
        "tx": tx_hash,
        "block": block,
        "deployed_at": int(time.time()),
    }
