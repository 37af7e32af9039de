"""Identities on chain: create, publish keys, rotate owners, appoint delegates, resolve."""

from __future__ import annotations

import base64
from dataclasses import dataclass

from neuroledger.chain import Chain
from neuroledger.errors import (
    ContractsNotDeployedError,
    IdentityError,
    InsufficientFundsError,
    MalformedDIDError,
)
from neuroledger.identity._did import format_did, parse_did
from neuroledger.identity._keystore import IdentityRecord, Keystore
from neuroledger.identity._registry import X25519_ATTRIBUTE, RegistryClient
from neuroledger.identity._resolver import ResolvedDID, resolve_did

__all__ = ["KEY_VALIDITY_SECONDS", "Identities", "Rotation", "published_x25519"]

#: How long a published key-agreement key stays valid: ten years.
KEY_VALIDITY_SECONDS = 10 * 365 * 24 * 3600

REGISTRY = "DIDRegistry"


def published_x25519(chain: Chain, identity: str) -> bytes:
    """The X25519 key-agreement key that ``identity`` (an address) published in the DID registry."""
    did = format_did(chain.chain_id, identity)
    document = resolve_did(
        chain.w3, chain.contract(REGISTRY), did, chain_id=chain.chain_id
    ).document
    keys = [
        m["publicKeyBase64"]
        for m in document.get("verificationMethod", [])
        if m.get("type") == "X25519KeyAgreementKey2019" and "publicKeyBase64" in m
    ]
    if not keys:
        raise IdentityError(
            f"{did} has published no X25519 key; its owner runs `neuroledger identity publish NAME`"
        )
    return base64.b64decode(keys[-1])


@dataclass(frozen=True)
class Rotation:
    """The outcome of an owner rotation."""

    name: str
    identity: str
    old_owner: str
    new_owner: str
    tx_hash: str


class Identities:
    """The identities of one home, on one chain."""

    def __init__(self, chain: Chain, keystore: Keystore) -> None:
        self.chain = chain
        self.keystore = keystore
        self._registry: RegistryClient | None = None

    @property
    def registry(self) -> RegistryClient:
        """Client of the deployed DID registry."""
        if self._registry is None:
            self._registry = RegistryClient(self.chain.contract(REGISTRY))
        return self._registry

    def did(self, name: str) -> str:
        """The ``did:ethr`` of identity ``name`` on this chain."""
        return format_did(self.chain.chain_id, self.keystore.get(name).identity)

    def create(self, name: str, kind: str, *, publish: bool = True) -> IdentityRecord:
        """Create identity ``name``; fund it where the chain can (the embedded chain, or a payer
        named with :meth:`Chain.fund_from`); publish its X25519 key.

        On an external chain the key is published only when it can be (the suite is
        deployed and the owner key holds gas); otherwise :meth:`publish_blocker` says what
        to do first, and creating the identity is still a success.
        """
        record = self.keystore.create(name, kind)
        if self.chain.can_fund:
            self.chain.fund(record.owner)
        if publish and self.publish_blocker(name) is None:
            try:
                self.publish_key(name)
            except InsufficientFundsError as exc:
                raise InsufficientFundsError(
                    f"identity {name!r} was created ({record.identity}) but its key is not "
                    f"published: {exc}; then run `neuroledger identity publish {name}`"
                ) from None
        return record

    def publish_blocker(self, name: str) -> str | None:
        """What must happen before the key of ``name`` can be published (None: nothing)."""
        record = self.keystore.get(name)
        chain_id = self.chain.chain_id
        then = f"then run `neuroledger identity publish {name}`"
        if not self.chain.is_embedded:
            funded = (
                int(self.chain.w3.eth.get_balance(self.chain.w3.to_checksum_address(record.owner)))
                > 0
            )
            try:
                self.chain.deployment()
            except ContractsNotDeployedError:
                fund = "" if funded else f"send gas to its owner key {record.owner}, "
                return (
                    f"the contracts are not deployed on chain {chain_id} yet: {fund}deploy them "
                    f"with `neuroledger deploy --from {name}` (or from another funded identity), {then}"
                )
            if not funded:
                return (
                    f"its owner key {record.owner} holds no gas on chain {chain_id}: send it some "
                    f"(0.001 ETH pays for many writes), {then}"
                )
        return None

    def publish_key(self, name: str) -> str:
        """Publish the X25519 key-agreement key of ``name``; return the transaction hash."""
        record = self.keystore.get(name)
        owner = self.keystore.owner_account(name)
        call = self.registry.set_attribute(
            record.identity,
            X25519_ATTRIBUTE,
            base64.b64decode(record.x25519_public),
            KEY_VALIDITY_SECONDS,
        )
        return self.chain.sender(owner).send(call).tx_hash

    def rotate(self, name: str) -> Rotation:
        """Move control of ``name`` to a fresh owner key; the DID stays the same."""
        record = self.keystore.get(name)
        on_chain = self.registry.identity_owner(record.identity)
        if record.pending_owner and on_chain.lower() == record.pending_owner.lower():
            # A previous rotation was confirmed but not recorded (crash): finish it.
            self.keystore.commit_owner(name, record.pending_owner)
            record = self.keystore.get(name)
        if on_chain.lower() != record.owner.lower():
            raise IdentityError(
                f"identity {name!r} is owned on chain by {on_chain}, not by the key this home "
                "holds; it cannot be rotated from here"
            )
        old = self.keystore.owner_account(name)
        new = self.keystore.new_owner_key(name)
        receipt = self.chain.sender(old).send(
            self.registry.change_owner(record.identity, str(new.address))
        )
        if self.chain.can_fund:
            self.chain.fund(str(new.address))
        self.keystore.commit_owner(name, str(new.address))
        return Rotation(
            name=name,
            identity=record.identity,
            old_owner=str(old.address),
            new_owner=str(new.address),
            tx_hash=receipt.tx_hash,
        )

    def add_delegate(self, name: str, delegate: str, delegate_type: str, validity: int) -> str:
        """Appoint ``delegate`` (an address or an identity name) for ``validity`` seconds."""
        record = self.keystore.get(name)
        address = self._address_of(delegate)
        owner = self.keystore.owner_account(name)
        call = self.registry.add_delegate(record.identity, delegate_type, address, validity)
        return self.chain.sender(owner).send(call).tx_hash

    def revoke_delegate(self, name: str, delegate: str, delegate_type: str) -> str:
        """End the delegation of ``delegate`` now."""
        record = self.keystore.get(name)
        address = self._address_of(delegate)
        owner = self.keystore.owner_account(name)
        call = self.registry.revoke_delegate(record.identity, delegate_type, address)
        return self.chain.sender(owner).send(call).tx_hash

    def resolve(self, did_or_name: str) -> ResolvedDID:
        """Resolve a DID, or the DID of a local identity name, into its document."""
        did = did_or_name if did_or_name.startswith("did:") else self.did(did_or_name)
        return resolve_did(self.chain.w3, self.registry.contract, did, chain_id=self.chain.chain_id)

    def _address_of(self, who: str) -> str:
        if who.startswith("did:"):
            return parse_did(who).address
        if who.startswith("0x"):
            if len(who) != 42:
                raise MalformedDIDError(f"{who!r} is not a 20-byte hex address")
            return who
        return self.keystore.get(who).identity
