"""Decode any NeuroLedger contract's events from raw ``eth_getLogs`` entries, by ABI.

One :class:`EventCatalog` maps each event's topic 0 to its contract, name and argument
types, built from the suite's artifacts. Decoding uses ``eth_abi`` directly (web3's
contract event machinery is several times slower), and every value becomes plain JSON:
addresses checksummed, bytes as 0x hex, integers above 2**53 as decimal strings so that a
browser reads them exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

__all__ = ["DecodedEvent", "EventCatalog", "plain"]

_SAFE_INT = 2**53


@dataclass(frozen=True)
class _EventType:
    contract: str
    name: str
    indexed: tuple[tuple[str, str], ...]
    data: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class DecodedEvent:
    """One event: where it is on chain, which contract and event, its arguments."""

    block: int
    log_index: int
    tx: str
    block_hash: str
    address: str
    contract: str
    name: str
    args: dict[str, Any]


def _type_of(item: dict[str, Any]) -> str:
    """The canonical ABI type of an input (tuples spelled out)."""
    kind = str(item["type"])
    if kind.startswith("tuple"):
        inner = ",".join(_type_of(c) for c in item["components"])
        return f"({inner}){kind[len('tuple') :]}"
    return kind


def plain(value: Any, abi_type: str = "") -> Any:
    """A decoded ABI value as JSON-safe data."""
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if -_SAFE_INT < value < _SAFE_INT else str(value)
    if isinstance(value, (list, tuple)):
        inner = abi_type[: abi_type.rfind("[")] if abi_type.endswith("]") else ""
        return [plain(v, inner) for v in value]
    if isinstance(value, str) and abi_type == "address":
        return to_checksum_address(value)
    return value


class EventCatalog:
    """Every event of the given contracts' ABIs, keyed by topic 0 and contract address."""

    def __init__(self, abis: dict[str, list[dict[str, Any]]], addresses: dict[str, str]) -> None:
        self._by_topic: dict[tuple[str, str], _EventType] = {}
        self.addresses = {a.lower(): name for name, a in addresses.items()}
        for name, address in addresses.items():
            for item in abis[name]:
                if item.get("type") != "event" or item.get("anonymous"):
                    continue
                inputs = item["inputs"]
                signature = f"{item['name']}({','.join(_type_of(i) for i in inputs)})"
                topic = "0x" + keccak(text=signature).hex()
                self._by_topic[(address.lower(), topic)] = _EventType(
                    contract=name,
                    name=str(item["name"]),
                    indexed=tuple((i["name"], _type_of(i)) for i in inputs if i["indexed"]),
                    data=tuple((i["name"], _type_of(i)) for i in inputs if not i["indexed"]),
                )

    def decode(self, log: dict[str, Any]) -> DecodedEvent | None:
        """Decode one raw log; None when no known contract logged it or it does not parse."""
        topics = [t if isinstance(t, str) else "0x" + bytes(t).hex() for t in log["topics"]]
        address = str(log["address"]).lower()
        if not topics:
            return None
        kind = self._by_topic.get((address, topics[0].lower()))
        if kind is None or len(topics) - 1 != len(kind.indexed):
            return None
        args: dict[str, Any] = {}
        try:
            for (field, abi_type), topic in zip(kind.indexed, topics[1:], strict=True):
                raw = bytes.fromhex(topic[2:])
                dynamic = (
                    abi_type in ("string", "bytes") or abi_type.endswith("]") or "(" in abi_type
                )
                # an indexed dynamic value is stored as its hash: keep the hash
                args[field] = (
                    "0x" + raw.hex() if dynamic else plain(abi_decode([abi_type], raw)[0], abi_type)
                )
            data = log["data"]
            raw_data = bytes.fromhex(data[2:]) if isinstance(data, str) else bytes(data)
            values = abi_decode([t for _, t in kind.data], raw_data)
        except Exception:  # a log that does not parse is not ours to trust
            return None
        for (field, abi_type), value in zip(kind.data, values, strict=True):
            args[field] = plain(value, abi_type)

        def num(v: Any) -> int:
            return int(v, 16) if isinstance(v, str) else int(v)

        def hexstr(v: Any) -> str:
            return v if isinstance(v, str) else "0x" + bytes(v).hex()

        return DecodedEvent(
            block=num(log["blockNumber"]),
            log_index=num(log["logIndex"]),
            tx=hexstr(log["transactionHash"]),
            block_hash=hexstr(log["blockHash"]),
            address=to_checksum_address(address),
            contract=kind.contract,
            name=kind.name,
            args=args,
        )
