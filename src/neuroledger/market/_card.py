"""The ERC-8004 registration file ("agent card"): built, encoded, read back and checked.

The file is JSON of type ``https://eips.ethereum.org/EIPS/eip-8004#registration-v1``. A
NeuroLedger agent's file names its ``did:ethr`` as the ``DID`` service and may name its
audit log and its model asset as services of their own. It travels as a ``data:`` URI
(the file is then on chain) or from an ``https`` URL; either way its Keccak-256 is pinned
on chain as the agent's ``registrationHash`` metadata, so a changed byte is caught.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

import httpx

from neuroledger._json import loads_bounded
from neuroledger.core import canonical
from neuroledger.errors import MarketError

__all__ = ["REGISTRATION_TYPE", "AgentCard", "Service", "data_uri", "read_uri"]

REGISTRATION_TYPE = "https://eips.ethereum.org/EIPS/eip-8004#registration-v1"
#: The largest registration file read (the registry holds URIs up to 8 KiB).
MAX_CARD_BYTES = 64 * 1024
_MAX_TEXT = 2048
_MAX_SERVICES = 32
_DATA_PREFIX = "data:application/json;base64,"


@dataclass(frozen=True)
class Service:
    """One service of an agent: a name (``A2A``, ``MCP``, ``DID``, ``web``…) and its endpoint."""

    name: str
    endpoint: str
    version: str | None = None

    def to_json(self) -> dict[str, str]:
        out = {"name": self.name, "endpoint": self.endpoint}
        return out | ({"version": self.version} if self.version else {})


@dataclass(frozen=True)
class AgentCard:
    """An ERC-8004 registration file."""

    name: str
    description: str
    services: tuple[Service, ...]
    registrations: tuple[dict[str, Any], ...] = ()
    x402_support: bool = False
    active: bool = True
    supported_trust: tuple[str, ...] = ("reputation",)
    extra: dict[str, Any] = field(default_factory=dict)  # fields of other tools, kept as read

    def service(self, name: str) -> Service | None:
        return next((s for s in self.services if s.name == name), None)

    def to_json(self) -> dict[str, Any]:
        return {**self.extra, "type": REGISTRATION_TYPE, "name": self.name,
                "description": self.description,
                "services": [s.to_json() for s in self.services],
                "x402Support": self.x402_support, "active": self.active,
                "registrations": list(self.registrations),
                "supportedTrust": list(self.supported_trust)}  # fmt: skip

    def encode(self) -> bytes:
        """The file's bytes: RFC 8785 canonical JSON, so its hash is reproducible."""
        return canonical(self.to_json())

    @classmethod
    def decode(cls, raw: bytes) -> AgentCard:
        """Parse and check a registration file; :class:`MarketError` names what is wrong."""
        try:
            doc = loads_bounded(raw, max_bytes=MAX_CARD_BYTES, max_depth=8)
        except ValueError as e:
            raise MarketError(f"the registration file is not JSON we can read: {e}") from None
        if not isinstance(doc, dict) or doc.get("type") != REGISTRATION_TYPE:
            raise MarketError(f"the registration file's `type` is not {REGISTRATION_TYPE}")
        services = doc.get("services", doc.get("endpoints", []))  # `endpoints`: before 2026
        if not isinstance(services, list) or len(services) > _MAX_SERVICES:
            raise MarketError(f"`services` must be a list of at most {_MAX_SERVICES} entries")
        registrations = doc.get("registrations", [])
        trust = doc.get("supportedTrust", [])
        if not isinstance(registrations, list) or not all(
            isinstance(r, dict) for r in registrations
        ):
            raise MarketError("`registrations` must be a list of objects")
        if not isinstance(trust, list) or not all(isinstance(t, str) for t in trust):
            raise MarketError("`supportedTrust` must be a list of strings")
        known = {"type", "name", "description", "services", "endpoints", "x402Support",
                 "active", "registrations", "supportedTrust"}  # fmt: skip
        return cls(
            name=_text(doc.get("name"), "name"),
            description=_text(doc.get("description", ""), "description"),
            services=tuple(_service(s) for s in services),
            registrations=tuple(registrations),
            x402_support=doc.get("x402Support") is True,
            active=doc.get("active", True) is not False,
            supported_trust=tuple(trust),
            extra={k: v for k, v in doc.items() if k not in known},
        )


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or len(value) > _MAX_TEXT:
        raise MarketError(f"`{what}` must be text of at most {_MAX_TEXT} characters")
    return value


def _service(entry: Any) -> Service:
    if not isinstance(entry, dict):
        raise MarketError("each service must be an object with `name` and `endpoint`")
    version = entry.get("version")
    return Service(_text(entry.get("name"), "services[].name"),
                   _text(entry.get("endpoint"), "services[].endpoint"),
                   None if version is None else _text(str(version), "services[].version"))  # fmt: skip


def data_uri(raw: bytes) -> str:
    """A ``data:application/json;base64,…`` URI of a file."""
    return _DATA_PREFIX + base64.b64encode(raw).decode()


def read_uri(uri: str, *, timeout: float = 10.0) -> bytes:
    """The bytes behind a registration URI: ``data:`` (decoded here) or ``https`` (fetched,
    at most 64 KiB). Other schemes (``ipfs://`` included) are refused with the fix."""
    if uri.startswith(_DATA_PREFIX):
        try:
            raw = base64.b64decode(uri[len(_DATA_PREFIX) :], validate=True)
        except ValueError:
            raise MarketError("the data: URI is not valid base64") from None
        if len(raw) > MAX_CARD_BYTES:
            raise MarketError(f"the registration file is over {MAX_CARD_BYTES} bytes")
        return raw
    if not uri.startswith(("https://", "http://127.0.0.1", "http://localhost")):
        raise MarketError(f"cannot read {uri[:80]!r}: give a data: or an https:// URI")
    return fetch_bounded(uri, MAX_CARD_BYTES, timeout=timeout)


def fetch_bounded(url: str, limit: int, *, timeout: float = 10.0) -> bytes:
    """The body at ``url``, refused once it passes ``limit`` bytes (streamed, no redirects)."""
    try:
        with httpx.stream("GET", url, timeout=timeout, follow_redirects=False) as response:
            response.raise_for_status()
            chunks, size = [], 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > limit:
                    raise MarketError(f"{url} serves more than {limit} bytes")
                chunks.append(chunk)
    except httpx.HTTPError as e:
        raise MarketError(f"cannot fetch {url}: {e}") from None
    return b"".join(chunks)
