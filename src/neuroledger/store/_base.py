"""The interface every blob store backend implements."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import BinaryIO, Protocol, runtime_checkable

__all__ = ["BlobStore", "is_digest"]

_DIGEST = re.compile(r"[0-9a-f]{64}")


def is_digest(text: str) -> bool:
    """Whether ``text`` is a lowercase hex SHA-256 digest."""
    return _DIGEST.fullmatch(text) is not None


@runtime_checkable
class BlobStore(Protocol):
    """Blobs addressed by the hex SHA-256 of their bytes.

    ``put`` is idempotent and durable when it returns; reads raise
    :class:`~neuroledger.errors.BlobCorruptError` rather than return bytes that
    do not hash to the digest asked for.
    """

    def put(self, data: bytes) -> str:
        """Store ``data``; return its digest."""
        ...

    def put_stream(self, stream: BinaryIO) -> str:
        """Store everything ``stream`` yields, in bounded memory; return its digest."""
        ...

    def get(self, digest: str, *, max_size: int | None = None) -> bytes:
        """Return the blob's bytes (refusing blobs over ``max_size``)."""
        ...

    def chunks(self, digest: str) -> Iterator[bytes]:
        """Yield the blob in chunks; the digest is checked before the last one is yielded."""
        ...

    def has(self, digest: str) -> bool:
        """Whether the blob is in the store."""
        ...

    def delete(self, digest: str) -> bool:
        """Remove the blob (crypto-shredding, garbage collection); True if it was there."""
        ...
