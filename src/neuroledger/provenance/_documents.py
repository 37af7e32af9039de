"""The JSON documents of provenance: asset metadata and SLSA v1 training-run statements.

Every document is canonicalised with RFC 8785 (:mod:`neuroledger.core`) before it is
hashed, so the same document has the same digest everywhere.

>>> check_size({"b": 1, "a": [1.0, "x"]})
b'{"a":[1,"x"],"b":1}'
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from neuroledger.core import canonical
from neuroledger.errors import EncodingError, MetadataError

__all__ = [
    "MAX_METADATA_BYTES",
    "SLSA_BUILD_TYPE",
    "SLSA_PREDICATE_TYPE",
    "RunInput",
    "blob_uri",
    "load_metadata_file",
    "training_run_statement",
]

#: Largest metadata document accepted (after canonicalisation).
MAX_METADATA_BYTES = 64 * 1024

SLSA_PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
#: The build type of a NeuroLedger training run.
SLSA_BUILD_TYPE = "https://neuroledger.dev/training-run/v1"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"


def blob_uri(digest: str) -> str:
    """The URI under which a document is found in any NeuroLedger content store."""
    return f"sha256:{digest}"


def load_metadata_file(path: Path) -> dict[str, Any]:
    """Read a JSON object from ``path`` for use as asset metadata, with clear errors."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise MetadataError(f"metadata file {path} does not exist") from None
    if size > MAX_METADATA_BYTES:
        raise MetadataError(
            f"metadata file {path} is {size} bytes, over the {MAX_METADATA_BYTES}-byte limit; "
            "register large documents as their own asset and link them as a parent"
        )
    try:
        data = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MetadataError(f"metadata file {path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise MetadataError(
            f"metadata file {path} must hold a JSON object, not {type(data).__name__}"
        )
    return data


def check_size(document: Any) -> bytes:
    """Canonical bytes of ``document``, refusing documents over the size limit."""
    try:
        raw = canonical(document)
    except EncodingError as exc:
        raise MetadataError(f"metadata {exc}") from None
    if len(raw) > MAX_METADATA_BYTES:
        raise MetadataError(
            f"metadata is {len(raw)} bytes once canonicalised, over the {MAX_METADATA_BYTES}-byte "
            "limit; keep large content in its own asset"
        )
    return raw


@dataclass(frozen=True)
class RunInput:
    """An input of a training run: a registered asset."""

    asset_id: str
    kind: str
    name: str
    digest: str = ""  # its content digest (the SHA-256 SLSA records); the id when not given


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def training_run_statement(
    *,
    model_name: str,
    model_digest: str,
    inputs: Sequence[RunInput],
    builder: str,
    started: datetime,
    finished: datetime,
    parameters: dict[str, Any] | None = None,
    invocation_id: str | None = None,
) -> dict[str, Any]:
    """A SLSA v1 provenance statement for a training run.

    The subject is the trained model (its manifest digest); the resolved
    dependencies are the dataset and code assets it was trained from; the
    builder is the identity (a DID) that ran it.
    """
    if finished < started:
        raise MetadataError("a training run cannot finish before it starts; check the times")
    run_details: dict[str, Any] = {
        "builder": {"id": builder},
        "metadata": {"startedOn": _iso(started), "finishedOn": _iso(finished)},
    }
    if invocation_id:
        run_details["metadata"]["invocationId"] = invocation_id
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": model_name, "digest": {"sha256": model_digest}}],
        "predicateType": SLSA_PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": SLSA_BUILD_TYPE,
                "externalParameters": parameters or {},
                "resolvedDependencies": [
                    {
                        "name": i.name,
                        "uri": f"neuroledger:asset:{i.asset_id}",
                        "digest": {"sha256": i.digest or i.asset_id},
                        "annotations": {"kind": i.kind},
                    }
                    for i in inputs
                ],
            },
            "runDetails": run_details,
        },
    }
