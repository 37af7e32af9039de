"""Log entries: structured events in RFC 8785 canonical JSON, and salted commitments.

An event follows the record-keeping duties of the EU AI Act (Art. 12): which
system and model acted, when, on what input, with which reference data, what
it produced, who operated and who verified it, and whether it was flagged as
a risk. Personal or secret payloads never enter the log: they are replaced by
a salted commitment ``SHA-256(salt || payload)``, and the payload with its salt
goes to the content store, where it can be deleted later (crypto-shredding)
without touching the tree.

>>> event = AuditEvent(system="triage", event_type="decision", output_digest="ab" * 32)
>>> encode_event(event)[:40]
b'{"event_type":"decision","output_digest"'
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from dataclasses import asdict, dataclass, field
from typing import Any

from neuroledger._json import loads_bounded
from neuroledger.core import canonical
from neuroledger.errors import AuditError, EncodingError
from neuroledger.store import BlobStore

__all__ = [
    "AI_ACT_FIELDS",
    "AuditEvent",
    "Commitment",
    "commit",
    "decode_event",
    "digest_of_value",
    "encode_event",
    "open_commitment",
]

#: The EU AI Act Art. 12 record fields, in the order of the auditor's export.
AI_ACT_FIELDS = (
    "system", "model_digest", "event_type", "start", "end", "input_digest", "reference_data_id",
    "output_digest", "operator", "human_verifier", "risk_flag",
)  # fmt: skip


@dataclass(frozen=True)
class AuditEvent:
    """One logged event, with the EU AI Act Art. 12 record fields."""

    system: str
    event_type: str
    model_digest: str | None = None
    start: str | None = None  # ISO 8601 UTC
    end: str | None = None
    input_digest: str | None = None
    reference_data_id: str | None = None
    output_digest: str | None = None
    operator: str | None = None  # a DID
    human_verifier: str | None = None  # a DID
    risk_flag: bool = False
    details: dict[str, Any] = field(default_factory=dict)
    commitments: dict[str, str] = field(default_factory=dict)  # name -> commitment hex

    def to_json(self) -> dict[str, Any]:
        """The event as a JSON object, without empty fields."""
        data = {k: v for k, v in asdict(self).items() if v not in (None, {}, [])}
        if not self.risk_flag:
            data.pop("risk_flag", None)
        return data


def encode_event(event: AuditEvent | dict[str, Any]) -> bytes:
    """The canonical bytes of an event (what is logged)."""
    data = event.to_json() if isinstance(event, AuditEvent) else event
    if not isinstance(data, dict):
        raise AuditError("an event must be a JSON object")
    try:
        return canonical(data)
    except EncodingError as exc:
        raise AuditError(f"the event cannot be logged: {exc}") from None


def decode_event(entry: bytes) -> dict[str, Any]:
    """Parse a logged entry back into a JSON object."""
    try:
        data = loads_bounded(entry)
    except ValueError as exc:
        raise AuditError(f"entry is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise AuditError("entry is not a JSON object")
    return data


def digest_of_value(value: Any) -> str:
    """SHA-256 of a value: bytes as they are, anything else as canonical JSON (or its repr)."""
    if isinstance(value, bytes | bytearray):
        raw = bytes(value)
    else:
        try:
            raw = canonical(value)
        except EncodingError:
            raw = repr(value).encode()
    return hashlib.sha256(raw).hexdigest()


@dataclass(frozen=True)
class Commitment:
    """A salted commitment and where its opening is stored."""

    digest: str
    opening: str  # digest of the stored {salt, payload} blob


def commit(payload: bytes, store: BlobStore) -> Commitment:
    """Commit to ``payload``: keep it and a fresh salt in the store, return the commitment."""
    salt = secrets.token_bytes(32)
    digest = hashlib.sha256(salt + payload).hexdigest()
    opening = store.put(
        canonical(
            {"salt": base64.b64encode(salt).decode(), "payload": base64.b64encode(payload).decode()}
        )
    )
    return Commitment(digest=digest, opening=opening)


def open_commitment(commitment: Commitment, store: BlobStore) -> bytes:
    """The payload behind a commitment, checked; fails once it was shredded."""
    data = json.loads(store.get(commitment.opening))
    salt, payload = base64.b64decode(data["salt"]), base64.b64decode(data["payload"])
    if hashlib.sha256(salt + payload).hexdigest() != commitment.digest:
        raise AuditError("the stored opening does not match the commitment")
    return payload
