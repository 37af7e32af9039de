"""Signed access requests: EIP-712 typed data bound to one chain and one grants contract.

A requester proves control of an identity by signing, with the identity's
owner key or a ``veriKey`` delegate, an ``AccessRequest``::

    AccessRequest(bytes32 asset,address identity,string action,string purpose,
                  bytes32 nonce,uint64 expiry,bytes32 body)

in the domain ``{name: "NeuroLedger Gateway", version: "1", chainId,
verifyingContract: <AccessGrants>}``, which clients read from the contract's
EIP-5267 ``eip712Domain()`` (:meth:`Domain.from_eip5267`) instead of assuming it. ``body`` is the SHA-256 of what the
request carries (an algorithm, a job id), so a signature covers exactly one
request; the gateway accepts each nonce once and refuses expired requests.
Hashing is done here (not through eth-account's general encoder) because the
gateway hashes every request; a test checks both give the same digest.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from coincurve import PublicKey
from eth_abi.abi import encode as abi_encode
from eth_account.signers.local import LocalAccount
from eth_typing import Hash32
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from neuroledger.errors import AccessDeniedError
from neuroledger.privacy._grants import PURPOSE_PATTERN

__all__ = [
    "ACTIONS",
    "DOMAIN_NAME",
    "AccessRequest",
    "Domain",
    "new_request",
    "recover_signer",
    "sign_request",
]

DOMAIN_NAME = "NeuroLedger Gateway"
DOMAIN_VERSION = "1"

#: Each action and the access mode it needs.
ACTIONS: dict[str, str] = {
    "keywrap": "download",
    "download": "download",
    "job-submit": "compute",
    "job-status": "compute",
    "job-result": "compute",
}

_DOMAIN_TYPE = keccak(
    text="EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
_REQUEST_TYPE = keccak(
    text="AccessRequest(bytes32 asset,address identity,string action,string purpose,"
    "bytes32 nonce,uint64 expiry,bytes32 body)"
)
_HEX32 = re.compile(r"[0-9a-f]{64}")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_FIELDS = ("asset", "identity", "action", "purpose", "nonce", "expiry", "body")


@dataclass(frozen=True)
class Domain:
    """The EIP-712 domain: one chain, one grants contract."""

    chain_id: int
    contract: str
    name: str = DOMAIN_NAME
    version: str = DOMAIN_VERSION

    @classmethod
    def from_eip5267(cls, answer: Sequence[Any], *, chain_id: int, contract: str) -> Domain:
        """The domain a contract's ``eip712Domain()`` answers, checked against where it was asked.

        Raises :class:`AccessDeniedError` when the answer does not describe a
        name/version/chainId/verifyingContract domain of this chain and contract.
        """
        fields, name, version, answered_chain, answered_contract, _salt, extensions = answer
        if bytes(fields) != b"\x0f" or extensions:
            raise AccessDeniedError(
                f"the grants contract at {contract} announces an EIP-712 domain with fields "
                f"0x{bytes(fields).hex()}; this client signs only name, version, chainId and "
                "verifyingContract (0x0f): check the deployment"
            )
        if int(answered_chain) != chain_id or answered_contract.lower() != contract.lower():
            raise AccessDeniedError(
                f"the grants contract at {contract} announces the domain of chain "
                f"{answered_chain} and contract {answered_contract}; check --rpc-url"
            )
        return cls(chain_id, to_checksum_address(contract), str(name), str(version))

    @property
    def separator(self) -> bytes:
        """The domain separator."""
        return keccak(
            abi_encode(
                ["bytes32", "bytes32", "bytes32", "uint256", "address"],
                [
                    _DOMAIN_TYPE,
                    keccak(text=self.name),
                    keccak(text=self.version),
                    self.chain_id,
                    to_checksum_address(self.contract),
                ],
            )
        )

    def to_json(self) -> dict[str, Any]:
        """The domain as eth-account's typed-data dict."""
        return {
            "name": self.name,
            "version": self.version,
            "chainId": self.chain_id,
            "verifyingContract": to_checksum_address(self.contract),
        }


@dataclass(frozen=True)
class AccessRequest:
    """One request: which asset, for which identity, what action and purpose, until when."""

    asset: str  # 64 hex digits
    identity: str  # 0x address
    action: str
    purpose: str
    nonce: str  # 64 hex digits
    expiry: int  # unix seconds
    body: str  # SHA-256 of the carried content, 64 hex digits

    @classmethod
    def from_json(cls, data: Any) -> AccessRequest:
        """Parse and validate a request object; raise :class:`AccessDeniedError` if malformed."""
        if not isinstance(data, dict) or set(data) != set(_FIELDS):
            raise AccessDeniedError(f"a request has exactly the fields {', '.join(_FIELDS)}")
        for name in ("asset", "nonce", "body"):
            if not isinstance(data[name], str) or not _HEX32.fullmatch(data[name]):
                raise AccessDeniedError(f"request field {name} must be 64 lowercase hex digits")
        if not isinstance(data["identity"], str) or not _ADDRESS.fullmatch(data["identity"]):
            raise AccessDeniedError("request field identity must be a 0x address")
        if data["action"] not in ACTIONS:
            raise AccessDeniedError(f"unknown action; use one of {', '.join(ACTIONS)}")
        if not isinstance(data["purpose"], str) or not PURPOSE_PATTERN.fullmatch(data["purpose"]):
            raise AccessDeniedError(
                "request field purpose must be 1-32 lowercase letters, digits, '.', '_' or '-'"
            )
        expiry = data["expiry"]
        if not isinstance(expiry, int) or isinstance(expiry, bool) or not 0 < expiry < 2**64:
            raise AccessDeniedError("request field expiry must be unix seconds")
        return cls(**{k: data[k] for k in _FIELDS})

    def to_json(self) -> dict[str, Any]:
        """The request as a JSON object."""
        return {k: getattr(self, k) for k in _FIELDS}

    @property
    def mode(self) -> str:
        """The access mode the action needs."""
        return ACTIONS[self.action]

    def struct_hash(self) -> bytes:
        """EIP-712 ``hashStruct`` of the request (every member is one 32-byte word)."""
        return keccak(
            _REQUEST_TYPE
            + bytes.fromhex(self.asset)
            + bytes(12) + bytes.fromhex(self.identity[2:])
            + keccak(text=self.action)
            + keccak(text=self.purpose)
            + bytes.fromhex(self.nonce)
            + self.expiry.to_bytes(32, "big")
            + bytes.fromhex(self.body)
        )  # fmt: skip

    def digest(self, domain: Domain | bytes) -> bytes:
        """The EIP-712 digest that is signed."""
        separator = domain.separator if isinstance(domain, Domain) else domain
        return keccak(b"\x19\x01" + separator + self.struct_hash())


def new_request(
    asset: str, identity: str, action: str, purpose: str, *, body: bytes = b"", ttl: int = 60
) -> AccessRequest:
    """A fresh request with a random nonce, valid for ``ttl`` seconds."""
    return AccessRequest(
        asset=asset, identity=to_checksum_address(identity), action=action, purpose=purpose,
        nonce=secrets.token_hex(32), expiry=int(time.time()) + ttl,
        body=hashlib.sha256(body).hexdigest(),
    )  # fmt: skip


def sign_request(request: AccessRequest, account: LocalAccount, domain: Domain) -> str:
    """The 65-byte signature (hex) of ``request`` by ``account``."""
    signed = account.unsafe_sign_hash(Hash32(request.digest(domain)))
    return "0x" + bytes(signed.signature).hex()


def recover_signer(request: AccessRequest, signature: str, separator: bytes) -> str:
    """The address (lowercase hex) that signed ``request`` in the domain with ``separator``."""
    try:
        raw = bytes.fromhex(signature.removeprefix("0x"))
    except (ValueError, AttributeError):
        raise AccessDeniedError("the signature is not hex") from None
    if len(raw) != 65 or raw[64] not in (27, 28):
        raise AccessDeniedError("the signature must be 65 bytes with v 27 or 28")
    try:
        key = PublicKey.from_signature_and_message(
            raw[:64] + bytes([raw[64] - 27]), request.digest(separator), hasher=None
        )
    except Exception:
        raise AccessDeniedError("the signature does not recover to a key") from None
    return "0x" + keccak(key.format(compressed=False)[1:])[-20:].hex()
