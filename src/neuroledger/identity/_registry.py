"""Calls to the ERC-1056 DID registry: direct and signed (meta-transaction) forms."""

from __future__ import annotations

import time
from dataclasses import dataclass

from eth_account.signers.local import LocalAccount
from eth_typing import Hash32
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from web3 import Web3

from neuroledger.chain import Call, ContractClient
from neuroledger.errors import IdentityError
from neuroledger.identity._did import DELEGATE_TYPES

__all__ = [
    "DELEGATE_TYPES",
    "X25519_ATTRIBUTE",
    "RegistryClient",
    "Signature",
    "to_bytes32",
]

#: The attribute name under which an identity publishes its X25519 key-agreement key.
X25519_ATTRIBUTE = "did/pub/X25519/enc/base64"

#: Delegate types resolvers understand: verification keys and signature authenticators.


def to_bytes32(text: str) -> bytes:
    """Encode an attribute or delegate-type name as bytes32 (UTF-8, zero-padded)."""
    raw = text.encode()
    if len(raw) > 32:
        raise IdentityError(f"{text!r} is {len(raw)} bytes; names are at most 32 bytes")
    return raw.ljust(32, b"\0")


@dataclass(frozen=True)
class Signature:
    """An owner's signature over a registry message, split as the contract wants it."""

    v: int
    r: bytes
    s: bytes


class RegistryClient(ContractClient):
    """Builds transactions for, and reads, one deployed DID registry."""

    # -- reads -----------------------------------------------------------------------
    def identity_owner(self, identity: str) -> str:
        """Current owner of ``identity``."""
        return str(self.contract.functions.identityOwner(identity).call())

    def changed(self, identity: str) -> int:
        """Block of the identity's latest change (0 if never changed)."""
        return int(self.contract.functions.changed(identity).call())

    def nonce(self, owner: str) -> int:
        """Number of signed changes made by ``owner``."""
        return int(self.contract.functions.nonce(owner).call())

    def valid_delegate(self, identity: str, delegate_type: str, delegate: str) -> bool:
        """Whether ``delegate`` is now a valid delegate of ``identity``: by the chain's clock
        (``validDelegate``) *and* by this machine's, since an idle chain's clock stands still."""
        valid_to = int(
            self.contract.functions.delegates(
                identity, Web3.keccak(to_bytes32(delegate_type)), delegate
            ).call()
        )
        if valid_to <= time.time():
            return False
        return bool(
            self.contract.functions.validDelegate(
                identity, to_bytes32(delegate_type), delegate
            ).call()
        )

    # -- direct calls (sent by the owner) --------------------------------------------
    def change_owner(self, identity: str, new_owner: str) -> Call:
        """Call that makes ``new_owner`` the owner of ``identity``."""
        return self._call("changeOwner", [identity, new_owner], f"changeOwner({identity})")

    def add_delegate(self, identity: str, delegate_type: str, delegate: str, validity: int) -> Call:
        """Call that appoints ``delegate`` for ``validity`` seconds."""
        self._check_type(delegate_type)
        return self._call(
            "addDelegate",
            [identity, to_bytes32(delegate_type), delegate, validity],
            f"addDelegate({identity}, {delegate_type})",
        )

    def revoke_delegate(self, identity: str, delegate_type: str, delegate: str) -> Call:
        """Call that ends a delegation now."""
        self._check_type(delegate_type)
        return self._call(
            "revokeDelegate",
            [identity, to_bytes32(delegate_type), delegate],
            f"revokeDelegate({identity}, {delegate_type})",
        )

    def set_attribute(self, identity: str, name: str, value: bytes, validity: int) -> Call:
        """Call that publishes attribute ``name`` = ``value``."""
        return self._call(
            "setAttribute",
            [identity, to_bytes32(name), value, validity],
            f"setAttribute({identity}, {name})",
        )

    def revoke_attribute(self, identity: str, name: str, value: bytes) -> Call:
        """Call that revokes attribute ``name`` = ``value``."""
        return self._call(
            "revokeAttribute",
            [identity, to_bytes32(name), value],
            f"revokeAttribute({identity}, {name})",
        )

    # -- signed calls (any account may submit them) -------------------------------------
    def signed_message(self, identity: str, nonce: int, action: str, payload: bytes) -> bytes:
        """The digest an owner signs: keccak(0x19 0x00 registry nonce identity action payload)."""
        return keccak(
            b"\x19\x00"
            + bytes.fromhex(self.address[2:])
            + nonce.to_bytes(32, "big")
            + bytes.fromhex(to_checksum_address(identity)[2:])
            + action.encode()
            + payload
        )

    def sign(self, owner: LocalAccount, identity: str, action: str, payload: bytes) -> Signature:
        """Sign a registry message as ``owner`` with the owner's current nonce."""
        digest = self.signed_message(identity, self.nonce(str(owner.address)), action, payload)
        sig = owner.unsafe_sign_hash(Hash32(digest))
        return Signature(
            v=int(sig.v), r=int(sig.r).to_bytes(32, "big"), s=int(sig.s).to_bytes(32, "big")
        )

    def change_owner_signed(self, owner: LocalAccount, identity: str, new_owner: str) -> Call:
        """Call that changes the owner, authorised by ``owner``'s signature."""
        sig = self.sign(owner, identity, "changeOwner", bytes.fromhex(new_owner[2:]))
        return self._call(
            "changeOwnerSigned",
            [identity, sig.v, sig.r, sig.s, new_owner],
            f"changeOwnerSigned({identity})",
        )

    def set_attribute_signed(
        self, owner: LocalAccount, identity: str, name: str, value: bytes, validity: int
    ) -> Call:
        """Call that sets an attribute, authorised by ``owner``'s signature."""
        payload = to_bytes32(name) + value + validity.to_bytes(32, "big")
        sig = self.sign(owner, identity, "setAttribute", payload)
        return self._call(
            "setAttributeSigned",
            [identity, sig.v, sig.r, sig.s, to_bytes32(name), value, validity],
            f"setAttributeSigned({identity}, {name})",
        )

    def add_delegate_signed(
        self, owner: LocalAccount, identity: str, delegate_type: str, delegate: str, validity: int
    ) -> Call:
        """Call that appoints a delegate, authorised by ``owner``'s signature."""
        self._check_type(delegate_type)
        payload = (
            to_bytes32(delegate_type) + bytes.fromhex(delegate[2:]) + validity.to_bytes(32, "big")
        )
        sig = self.sign(owner, identity, "addDelegate", payload)
        return self._call(
            "addDelegateSigned",
            [identity, sig.v, sig.r, sig.s, to_bytes32(delegate_type), delegate, validity],
            f"addDelegateSigned({identity}, {delegate_type})",
        )

    @staticmethod
    def _check_type(delegate_type: str) -> None:
        if delegate_type not in DELEGATE_TYPES:
            raise IdentityError(
                f"delegate type {delegate_type!r} is not one resolvers understand; "
                f"use {' or '.join(DELEGATE_TYPES)}"
            )
