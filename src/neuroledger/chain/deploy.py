"""Deployment of the contract suite, recorded per chain id in the home.

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
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eth_abi.abi import encode as abi_encode
from eth_account import Account

from neuroledger._fs import atomic_write, file_lock
from neuroledger.chain.artifacts import Artifact, load_artifact
from neuroledger.chain.tx import Call
from neuroledger.errors import (
    ChainIdMismatchError,
    ContractsNotDeployedError,
    DeploymentMismatchError,
)

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

    from neuroledger.chain.client import Chain

__all__ = ["SUITE", "DeploymentRecord", "DeploymentStore", "ensure_deployed"]

#: What the embedded node gives a throw-away deployer: the suite costs about 0.01 ETH.
_DEPLOYER_FUNDING_WEI = 10**18

#: The contract suite in deployment order: each contract with the suite
#: contracts whose addresses its constructor takes.
SUITE: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("DIDRegistry", ()),
    ("AssetRegistry", ("DIDRegistry",)),
    ("AuditAnchor", ()),
    ("FederatedTask", ()),
    ("AccessGrants", ("DIDRegistry", "AssetRegistry")),
)


@dataclass
class DeploymentRecord:
    """Where the suite lives on one chain."""

    chain_id: int
    genesis_hash: str
    contracts: dict[str, dict[str, Any]] = field(default_factory=dict)
    rpc_urls: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """Return the record as stored on disk."""
        return {
            "chain_id": self.chain_id,
            "genesis_hash": self.genesis_hash,
            "contracts": self.contracts,
            "rpc_urls": self.rpc_urls,
        }


class DeploymentStore:
    """The per-chain deployment records of one home."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, chain_id: int) -> Path:
        """File of the record for ``chain_id``."""
        return self.directory / f"{chain_id}.json"

    def load(self, chain_id: int) -> DeploymentRecord | None:
        """Return the record for ``chain_id``, or None."""
        try:
            data = json.loads(self.path(chain_id).read_text())
        except FileNotFoundError:
            return None
        return DeploymentRecord(
            chain_id=int(data["chain_id"]),
            genesis_hash=str(data["genesis_hash"]),
            contracts=dict(data.get("contracts", {})),
            rpc_urls=list(data.get("rpc_urls", [])),
        )

    def set_aside(self, chain_id: int) -> Path | None:
        """Move the record of ``chain_id`` aside (never deleted); return where it went."""
        path = self.path(chain_id)
        if not path.exists():
            return None
        aside = self.directory / f"{chain_id}.{time.strftime('%Y%m%dT%H%M%S')}.json.replaced"
        n = 1
        while aside.exists():
            n += 1
            aside = aside.with_name(
                f"{chain_id}.{time.strftime('%Y%m%dT%H%M%S')}-{n}.json.replaced"
            )
        os.replace(path, aside)
        return aside

    def save(self, record: DeploymentRecord) -> None:
        """Write a record atomically."""
        text = json.dumps(record.to_json(), indent=2, sort_keys=True)
        atomic_write(self.path(record.chain_id), text.encode(), mode=0o644)

    def check_url(self, url: str, chain_id: int) -> None:
        """Raise if ``url`` was recorded for another chain id than the one it serves now."""
        if not self.directory.exists():
            return
        for path in sorted(self.directory.glob("*.json")):
            try:
                data = json.loads(path.read_text())
            except ValueError:
                continue
            if url in data.get("rpc_urls", []) and int(data["chain_id"]) != chain_id:
                raise ChainIdMismatchError(
                    f"{url} now serves chain id {chain_id}, but this home recorded it as chain "
                    f"{data['chain_id']}; point --rpc-url at the node of chain {data['chain_id']}, "
                    f"or deploy to chain {chain_id} with `neuroledger deploy --from NAME`"
                )


def _code_hash(code: bytes) -> str:
    return hashlib.sha256(code).hexdigest()


def ensure_deployed(
    chain: Chain,
    *,
    deployer: LocalAccount | None = None,
    names: list[str] | None = None,
    force: bool = False,
) -> DeploymentRecord:
    """Make sure every contract of the suite is on ``chain``; return the record.

    On the embedded chain, missing contracts are deployed from a throw-away key
    that the node funds (so each home's suite has addresses of its own). On an external chain they are deployed only when a
    ``deployer`` account is given; otherwise :class:`ContractsNotDeployedError`
    names the command that deploys them.

    A recorded contract whose code is not at its address raises
    :class:`DeploymentMismatchError`; only ``force=True`` sets the record aside
    and deploys a new suite.
    """
    store = DeploymentStore(chain.settings.deployments_dir)
    wanted = set(names or [name for name, _ in SUITE])
    with file_lock(chain.settings.deployments_dir / ".lock"):
        record = store.load(chain.chain_id)
        if force and record is not None:
            if not chain.embedded and deployer is None:
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
        if chain.url not in record.rpc_urls and not chain.embedded:
            record.rpc_urls.append(chain.url)
            changed = True
        for name, dependencies in SUITE:
            if name not in wanted:
                continue
            artifact = load_artifact(name)
            args = _constructor_args(record, dependencies)
            entry = record.contracts.get(name)
            if entry:
                _check_recorded(chain, name, entry, artifact, args)
                continue
            if not chain.embedded and deployer is None:
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
    """Raise unless the recorded address of ``name`` holds the suite's code."""
    address = entry["address"]
    code = bytes(chain.w3.eth.get_code(address))
    if code == artifact.runtime_bytecode + args:
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
    elif _code_hash(code) == entry.get("code_sha256"):
        why = "it holds the contract of an older NeuroLedger version"
    else:
        why = "it holds other code"
    raise DeploymentMismatchError(
        f"{name} recorded at {address} on chain {chain.chain_id} is not there: {why}; {fix}"
    )


def _constructor_args(record: DeploymentRecord, dependencies: tuple[str, ...]) -> bytes:
    """ABI-encoded addresses of the suite contracts a constructor takes."""
    addresses = [record.contracts[dep]["address"] for dep in dependencies]
    return abi_encode(["address"] * len(addresses), addresses)


def _deployed_matches(chain: Chain, address: str, artifact: Artifact, args: bytes) -> bool:
    # Vyper appends immutables (here: the constructor's addresses) to the runtime code.
    code = bytes(chain.w3.eth.get_code(address))  # type: ignore[arg-type]
    return code == artifact.runtime_bytecode + args


def _throwaway_deployer(chain: Chain) -> LocalAccount:
    """A fresh key, funded by the embedded node, that deploys the suite and is then forgotten.

    Every embedded home shares the chain id and anvil's well-known development
    accounts; deployed from those, every home's suite would sit at the same
    addresses, and a signed DID change (its EIP-191 message names the registry's
    address and chain id) made for one home would replay in another. A random
    deployer gives each home its own addresses. The key is never stored: the
    contracts have no owner, so nothing ever needs it again.
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
    if not address or not _deployed_matches(chain, address, artifact, args):
        raise ContractsNotDeployedError(
            f"deploying {artifact.name} on chain {chain.chain_id} left no matching code at "
            f"{address}; check the node's EVM version (needs Cancun) and retry"
        )
    return {
        "address": address,
        "code_sha256": _code_hash(artifact.runtime_bytecode + args),
        "source_sha256": artifact.source_sha256,
        "tx": tx_hash,
        "block": block,
        "deployed_at": int(time.time()),
    }
