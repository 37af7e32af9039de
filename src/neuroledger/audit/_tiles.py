"""The C2SP tlog-tiles layout: tile paths, entry bundles, tile widths.

>>> tile_path(0, 1234067)
'tile/0/x001/x234/067'
>>> tile_path(1, 5, width=17)
'tile/1/005.p/17'
>>> entries_path(0, width=3)
'tile/entries/000.p/3'
>>> decode_bundle(encode_bundle([b"a", b""]))
[b'a', b'']
"""

from __future__ import annotations

from collections.abc import Sequence

from neuroledger.errors import AuditError, LogCorruptError

__all__ = [
    "MAX_ENTRY_SIZE",
    "TILE_WIDTH",
    "decode_bundle",
    "encode_bundle",
    "entries_path",
    "partial_width",
    "tile_path",
]

#: Hashes per full tile, entries per full bundle.
TILE_WIDTH = 256
#: Entries are length-prefixed with a big-endian uint16.
MAX_ENTRY_SIZE = 0xFFFF


def _index(n: int) -> str:
    parts = []
    while True:
        parts.append(n % 1000)
        n //= 1000
        if n == 0:
            break
    parts.reverse()
    return "/".join([f"x{p:03d}" for p in parts[:-1]] + [f"{parts[-1]:03d}"])


def tile_path(level: int, index: int, *, width: int | None = None) -> str:
    """Path of the Merkle tile at ``level``, ``index`` (partial when ``width`` < 256)."""
    suffix = f".p/{width}" if width is not None and width < TILE_WIDTH else ""
    return f"tile/{level}/{_index(index)}{suffix}"


def entries_path(index: int, *, width: int | None = None) -> str:
    """Path of entry bundle ``index`` (partial when ``width`` < 256)."""
    suffix = f".p/{width}" if width is not None and width < TILE_WIDTH else ""
    return f"tile/entries/{_index(index)}{suffix}"


def partial_width(size: int, level: int) -> int:
    """Width of the partial tile at ``level`` for a tree of ``size`` (0: none)."""
    return int(size // TILE_WIDTH**level) % TILE_WIDTH


def encode_bundle(entries: Sequence[bytes]) -> bytes:
    """Entries as a bundle: each one prefixed by its length as a big-endian uint16."""
    out = bytearray()
    for entry in entries:
        if len(entry) > MAX_ENTRY_SIZE:
            raise AuditError(
                f"an entry of {len(entry)} bytes is over the {MAX_ENTRY_SIZE}-byte limit of "
                "tlog-tiles entry bundles; store big payloads in the content store and log "
                "their digest"
            )
        out += len(entry).to_bytes(2, "big")
        out += entry
    return bytes(out)


def decode_bundle(data: bytes, *, where: str = "entry bundle") -> list[bytes]:
    """Split a bundle into its entries; a truncated bundle is a :class:`LogCorruptError`."""
    entries: list[bytes] = []
    position = 0
    while position < len(data):
        if position + 2 > len(data):
            raise LogCorruptError(f"{where}: truncated length prefix at byte {position}")
        length = int.from_bytes(data[position : position + 2], "big")
        start = position + 2
        if start + length > len(data):
            raise LogCorruptError(
                f"{where}: entry {len(entries)} claims {length} bytes but the file ends first"
            )
        entries.append(data[start : start + length])
        position = start + length
    return entries
