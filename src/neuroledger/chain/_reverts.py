"""Revert reasons: decoded from revert data, mapped to typed exceptions.

Every revert reason in the suite starts with the name of the contract (or the
snekmate or NeuroLedger module) that raised it, e.g. ``"AccessGrants: grantee
is the zero address"``. The reason maps to a
:class:`~neuroledger.errors.TransactionRevertedError` subclass by what it says
(the caller is not allowed, a signature is refused, the contract is paused),
and the exception's ``contract`` names its source.

>>> err = revert_error("FederatedTask: caller is not the task owner", label="finish")
>>> type(err).__name__, err.contract
('NotAuthorizedError', 'FederatedTask')
>>> type(revert_error("pausable: contract is paused", label="grant")).__name__
'ContractPausedError'
"""

from __future__ import annotations

import re

from eth_abi.abi import decode as abi_decode

from neuroledger.errors import (
    ContractPausedError,
    NotAuthorizedError,
    SignatureRejectedError,
    TransactionRevertedError,
)

__all__ = ["REVERT_SOURCES", "decode_revert", "reason_of", "revert_error"]

_ERROR_SELECTOR = bytes.fromhex("08c379a0")  # Error(string)
_PANIC_SELECTOR = bytes.fromhex("4e487b71")  # Panic(uint256)

#: Every source of revert reasons in the suite: a reason starts with the name of
#: the contract, or of the snekmate or NeuroLedger module, that raised it.
REVERT_SOURCES = frozenset({
    "DIDRegistry", "AssetRegistry", "AuditAnchor", "FederatedTask", "AccessGrants", "Credits",
    "AgentRegistry", "JobEscrow", "PaymentSettler", "ReputationRegistry", "ValidationRegistry", "AgentAccount",
    "Marketplace",
    "erc721",
    "governed", "ecdsa", "pausable", "ownable", "ownable_2step", "access_control",
    "timelock_controller", "erc20",
})  # fmt: skip

# What a reason says (after its prefix), and the exception type it maps to; first match wins.
_REASON_TYPES: list[tuple[re.Pattern[str], type[TransactionRevertedError]]] = [
    (re.compile(r"caller is not|account is missing role|access is denied"), NotAuthorizedError),
    (re.compile(r"^ecdsa:|^\w+: signature|^\w+: invalid signature$"), SignatureRejectedError),
    (re.compile(r"^pausable: contract is paused"), ContractPausedError),
]


def decode_revert(data: str | bytes | None) -> str | None:
    """Decode revert data (``Error(string)`` or ``Panic(uint256)``) into a reason."""
    if data is None:
        return None
    raw = bytes.fromhex(data.removeprefix("0x")) if isinstance(data, str) else bytes(data)
    if raw.startswith(_ERROR_SELECTOR):
        try:
            return str(abi_decode(["string"], raw[4:])[0])
        except Exception:
            return None
    if raw.startswith(_PANIC_SELECTOR):
        try:
            return f"panic 0x{abi_decode(['uint256'], raw[4:])[0]:02x}"
        except Exception:
            return None
    return None


def revert_error(
    reason: str | None, *, label: str, tx_hash: str | None = None
) -> TransactionRevertedError:
    cls: type[TransactionRevertedError] = TransactionRevertedError
    source, _, _ = (reason or "").partition(":")
    contract = source if source in REVERT_SOURCES else None
    for pattern, kind in _REASON_TYPES:
        if contract and reason and pattern.search(reason):
            cls = kind
            break
    text = reason or "no reason given"
    if cls is ContractPausedError:
        text += " (its guardian paused it; `neuroledger gov status` shows why and when)"
    return cls(
        f"{label} was rejected by the contract: {text}",
        reason=reason, tx_hash=tx_hash, contract=contract,
    )  # fmt: skip


def reason_of(data: str | None, message: str) -> str | None:
    """The revert reason from revert data, else from the node's error message."""
    decoded = decode_revert(data)
    if decoded is not None:
        return decoded
    marker = "execution reverted: "
    if marker in message:
        return message.split(marker, 1)[1].strip().strip("'\"") or None
    return None
