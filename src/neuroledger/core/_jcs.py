"""RFC 8785 (JSON Canonicalization Scheme): one byte string per JSON value.

Every document NeuroLedger hashes or signs (asset metadata, SLSA statements, audit
events, board messages) is canonicalised first, so the same value has the same digest
on every machine.

>>> canonical({"b": 1, "a": [1.0, "x"]})
b'{"a":[1,"x"],"b":1}'
>>> digest_of({"a": 1})[:16]
'015abd7f5cc57a2d'
"""

from __future__ import annotations

import hashlib
from typing import Any

import rfc8785

from neuroledger.errors import EncodingError

__all__ = ["canonical", "digest_of"]


def canonical(document: Any) -> bytes:
    """RFC 8785 canonical bytes of a JSON value; :class:`EncodingError` when it has none
    (NaN, infinities, integers beyond IEEE 754 doubles' exact range, non-JSON types)."""
    try:
        return rfc8785.dumps(document)
    except (rfc8785.CanonicalizationError, TypeError, ValueError, RecursionError) as exc:
        raise EncodingError(f"the value cannot be canonicalised as JSON: {exc}") from None


def digest_of(document: Any) -> str:
    """SHA-256 (hex) of the canonical form of ``document``."""
    return hashlib.sha256(canonical(document)).hexdigest()
