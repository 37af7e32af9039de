"""Calls to, reads of, and events from the deployed asset registry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from neuroledger.chain import Call, ContractClient
from neuroledger.errors import ProvenanceError

__all__ = [
    "KINDS",
    "STATUSES",
    "AssetEvent",
    "AssetRegistryClient",
    "asset_id_for",
    "kind_code",
    "kind_name",
]

#: Asset kinds and their on-chain codes. New kinds take new codes; the contract
#: only requires a code other than zero.
KINDS: dict[str, int] = {
    "dataset": 1,
    "code": 2,
    "model": 3,
    "training-run": 4,
    "evaluation": 5,
    "deployment": 6,
    "agent": 7,
    "federated-round": 8,
    "job-output": 9,
}

#: On-chain status codes.
STATUSES: dict[int, str] = {0: "unregistered", 1: "active", 2: "deprecated", 3: "revoked"}

#: Bounds the contract enforces, checked here first for a clear message.
MAX_PARENTS = 16
MAX_URI_BYTES = 256
MAX_LICENSE_BYTES = 128
MAX_REASON_BYTES = 256


def kind_code(kind: str) -> int:
    """The on-chain code of ``kind`` (a name, or ``kind-N`` for an unnamed code)."""
    if kind in KINDS:
        return KINDS[kind]
    if kind.startswith("kind-") and kind[5:].isdigit() and 0 < int(kind[5:]) < 256:
        return int(kind[5:])
    raise ProvenanceError(
        f"unknown asset kind {kind!r}; use one of {', '.join(KINDS)} (or kind-N for a code N "
        "between 1 and 255)"
    )


def kind_name(code: int) -> str:
    """The name of kind ``code``."""
    for name, value in KINDS.items():
        if value == code:
            return name
    return f"kind-{code}"


def asset_id_for(identity: str, digest: str) -> str:
    """The id content ``digest`` gets when ``identity`` registers it (hex, no 0x).

    ``keccak256(abi.encode(identity, digest))``, as ``AssetRegistry.assetId`` computes
    it: an id belongs to its registrant, so nobody can take another identity's id by
    registering the same content first.
    """
    raw = bytes(12) + bytes.fromhex(to_checksum_address(identity)[2:]) + _b32(digest)
    return keccak(raw).hex().removeprefix("0x")


@dataclass(frozen=True)
class AssetEvent:
    """One decoded registry event, with where it happened."""

    name: str
    block: int
    log_index: int
    tx: str
    block_hash: str
    args: dict[str, Any]


# name -> (indexed fields with ABI types, data fields with ABI types)
_EVENTS: dict[str, tuple[list[tuple[str, str]], list[tuple[str, str]]]] = {
    "AssetRegistered": (
        [("id", "bytes32"), ("owner", "address"), ("digest", "bytes32")],
        [
            ("kind", "uint8"),
            ("metadataDigest", "bytes32"),
            ("metadataURI", "string"),
            ("parents", "bytes32[]"),
            ("license", "string"),
            ("sender", "address"),
        ],
    ),
    "AssetDeprecated": (
        [("id", "bytes32"), ("owner", "address")],
        [("reason", "string"), ("sender", "address")],
    ),
    "AssetRevoked": (
        [("id", "bytes32"), ("owner", "address")],
        [("reason", "string"), ("sender", "address")],
    ),
    "AssetTransferred": (
        [("id", "bytes32"), ("previousOwner", "address"), ("newOwner", "address")],
        [("sender", "address")],
    ),
    "AssetAttested": (
        [("id", "bytes32"), ("attester", "address")],
        [("statementDigest", "bytes32"), ("statementURI", "string"), ("sender", "address")],
    ),
}


def _topic(name: str) -> str:
    indexed, data = _EVENTS[name]
    signature = f"{name}({','.join(t for _, t in indexed + data)})"
    return "0x" + keccak(text=signature).hex()


_TOPICS: dict[str, str] = {_topic(name): name for name in _EVENTS}


def _plain(value: Any, abi_type: str) -> Any:
    if abi_type == "bytes32":
        return bytes(value).hex()
    if abi_type == "bytes32[]":
        return [bytes(v).hex() for v in value]
    if abi_type == "address":
        return to_checksum_address(value)
    return value


def decode_log(log: dict[str, Any]) -> AssetEvent | None:
    """Decode a raw ``eth_getLogs`` entry of the registry; None for other events."""
    topics = [t if isinstance(t, str) else "0x" + bytes(t).hex() for t in log["topics"]]
    name = _TOPICS.get(topics[0].lower()) if topics else None
    if name is None:
        return None
    indexed, data_fields = _EVENTS[name]
    args: dict[str, Any] = {}
    for (field, abi_type), topic in zip(indexed, topics[1:], strict=True):
        raw = bytes.fromhex(topic[2:])
        args[field] = _plain(abi_decode([abi_type], raw)[0], abi_type)
    data = log["data"]
    raw_data = bytes.fromhex(data[2:]) if isinstance(data, str) else bytes(data)
    values = abi_decode([t for _, t in data_fields], raw_data)
    for (field, abi_type), value in zip(data_fields, values, strict=True):
        args[field] = _plain(value, abi_type)

    def num(v: Any) -> int:
        return int(v, 16) if isinstance(v, str) else int(v)

    def hexstr(v: Any) -> str:
        return v if isinstance(v, str) else "0x" + bytes(v).hex()

    return AssetEvent(
        name=name,
        block=num(log["blockNumber"]),
        log_index=num(log["logIndex"]),
        tx=hexstr(log["transactionHash"]),
        block_hash=hexstr(log["blockHash"]),
        args=args,
    )


def _b32(hex_id: str) -> bytes:
    return bytes.fromhex(hex_id.removeprefix("0x"))


def _check_len(text: str, limit: int, what: str) -> None:
    if len(text.encode()) > limit:
        raise ProvenanceError(
            f"{what} is {len(text.encode())} bytes; the registry takes at most {limit}"
        )


class AssetRegistryClient(ContractClient):
    """Builds transactions for, and reads, one deployed asset registry."""

    # -- reads -----------------------------------------------------------------------
    def asset_of(self, asset_id: str) -> tuple[str, int, int]:
        """Owner identity, kind code and status code of ``asset_id`` (zeros if unknown)."""
        owner, kind, status = self.contract.functions.assetOf(_b32(asset_id)).call()
        return str(owner), int(kind), int(status)

    # -- writes ----------------------------------------------------------------------
    def register(
        self,
        identity: str,
        digest: str,
        kind: int,
        metadata_digest: str,
        metadata_uri: str,
        parents: list[str],
        license: str,
    ) -> Call:
        """Call that registers content ``digest`` as an asset (id: ``asset_id_for``)."""
        if len(parents) > MAX_PARENTS:
            raise ProvenanceError(
                f"{len(parents)} parents given; an asset has at most {MAX_PARENTS}. Group inputs "
                "into a dataset asset, or record them in a training-run asset"
            )
        _check_len(metadata_uri, MAX_URI_BYTES, "the metadata URI")
        _check_len(license, MAX_LICENSE_BYTES, "the license reference")
        return self._call(
            "register",
            [
                identity,
                _b32(digest),
                kind,
                _b32(metadata_digest),
                metadata_uri,
                [_b32(p) for p in parents],
                license,
            ],
            f"register({digest[:12]}…)",
        )

    def deprecate(self, asset_id: str, reason: str) -> Call:
        """Call that deprecates an active asset."""
        _check_len(reason, MAX_REASON_BYTES, "the reason")
        return self._call("deprecate", [_b32(asset_id), reason], f"deprecate({asset_id[:12]}…)")

    def revoke(self, asset_id: str, reason: str) -> Call:
        """Call that revokes an asset for good."""
        _check_len(reason, MAX_REASON_BYTES, "the reason")
        return self._call("revoke", [_b32(asset_id), reason], f"revoke({asset_id[:12]}…)")

    def transfer(self, asset_id: str, new_owner: str) -> Call:
        """Call that passes an asset to another identity."""
        return self._call("transfer", [_b32(asset_id), new_owner], f"transfer({asset_id[:12]}…)")

    def attest(self, asset_id: str, attester: str, statement_digest: str, uri: str) -> Call:
        """Call that records an attestation by ``attester``."""
        _check_len(uri, MAX_URI_BYTES, "the statement URI")
        return self._call(
            "attest",
            [_b32(asset_id), attester, _b32(statement_digest), uri],
            f"attest({asset_id[:12]}…)",
        )
