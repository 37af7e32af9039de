"""The age v1 file format (c2sp.org/age) with X25519 recipients, streamed.

An age file is a text header that wraps a 16-byte *file key* for each
recipient, then a binary payload: a 16-byte nonce and the plaintext in 64 KiB
chunks, each sealed with ChaCha20-Poly1305 under a key derived from the file
key. Because the payload depends only on the file key, access for a new party
is granted by writing a new header (:func:`rewrap`) in front of the same
payload: the data is never re-encrypted.

Files written here decrypt with the ``age`` tool and ``rage``/``pyrage``, and
theirs decrypt here (tested both ways). Memory stays bounded by one block of
chunks whatever the file size.

>>> import io, os
>>> key = os.urandom(32)
>>> out = io.BytesIO()
>>> _ = encrypt_stream(io.BytesIO(b"hello"), out, [x25519_public(key)])
>>> plain = io.BytesIO()
>>> _ = decrypt_stream(io.BytesIO(out.getvalue()), plain, key)
>>> plain.getvalue()
b'hello'
"""

from __future__ import annotations

import base64
import hmac
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path
from typing import BinaryIO, cast

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from neuroledger._fs import ReportingReader, atomic_writer
from neuroledger.errors import DecryptError, PrivacyError
from neuroledger.privacy._age_keys import (
    identity_string,
    parse_identity,
    parse_recipient,
    recipient_string,
    x25519_public,
)

__all__ = [
    "CHUNK",
    "Header",
    "Stanza",
    "decrypt_file",
    "decrypt_payload",
    "decrypt_stream",
    "encrypt_file",
    "encrypt_stream",
    "identity_string",
    "make_header",
    "new_file_key",
    "parse_identity",
    "parse_recipient",
    "read_header",
    "recipient_string",
    "rewrap",
    "seal_payload",
    "unwrap_file_key",
    "x25519_public",
]

VERSION_LINE = b"age-encryption.org/v1\n"
X25519_INFO = b"age-encryption.org/v1/X25519"
FILE_KEY_SIZE = 16
#: Plaintext bytes per payload chunk.
CHUNK = 64 * 1024
TAG = 16
NONCE_SIZE = 16
#: Chunks sealed per read/write: 2 MiB of plaintext in memory at most.
BATCH = 32
#: The longest header accepted: bounded so that a hostile file cannot exhaust memory.
MAX_HEADER = 64 * 1024
MAX_STANZAS = 256
_ZERO_NONCE = bytes(12)
_B64_LINE = 64


# -- header --------------------------------------------------------------------------------
def _b64encode(data: bytes) -> bytes:
    return base64.b64encode(data).rstrip(b"=")


def _b64decode(text: bytes, what: str) -> bytes:
    try:
        data = base64.b64decode(text + b"=" * (-len(text) % 4), validate=True)
    except ValueError:
        raise DecryptError(f"the header's {what} is not base64; the file is corrupt") from None
    if b"=" in text or _b64encode(data) != text:
        raise DecryptError(f"the header's {what} is not canonical base64; the file is corrupt")
    return data


def _hkdf(ikm: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt or None, info=info).derive(ikm)


@dataclass(frozen=True)
class Stanza:
    """One recipient stanza: its arguments and its body."""

    args: tuple[str, ...]
    body: bytes

    def encode(self) -> bytes:
        """The stanza's lines, body wrapped at 64 columns and ended by a short line."""
        text = _b64encode(self.body)
        lines = [b"-> " + " ".join(self.args).encode()]
        lines += [text[i : i + _B64_LINE] for i in range(0, len(text), _B64_LINE)]
        if len(text) % _B64_LINE == 0:
            lines.append(b"")
        return b"\n".join(lines) + b"\n"


@dataclass(frozen=True)
class Header:
    """A parsed header: its stanzas, its MAC, and the exact bytes the MAC covers."""

    stanzas: tuple[Stanza, ...]
    mac: bytes
    mac_input: bytes

    def check_mac(self, file_key: bytes) -> None:
        """Raise :class:`DecryptError` unless the MAC matches ``file_key``."""
        expected = hmac.new(_hkdf(file_key, b"", b"header"), self.mac_input, sha256).digest()
        if not hmac.compare_digest(expected, self.mac):
            raise DecryptError("the header's MAC does not match; the file was tampered with")


def _wrap(file_key: bytes, recipient: bytes) -> Stanza:
    ephemeral = X25519PrivateKey.generate()
    share = ephemeral.public_key().public_bytes_raw()
    shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(recipient))
    wrap_key = _hkdf(shared, share + recipient, X25519_INFO)
    body = ChaCha20Poly1305(wrap_key).encrypt(_ZERO_NONCE, file_key, None)
    return Stanza(("X25519", _b64encode(share).decode()), body)


def _header_bytes(file_key: bytes, stanzas: Sequence[Stanza]) -> bytes:
    mac_input = VERSION_LINE + b"".join(s.encode() for s in stanzas) + b"---"
    mac = hmac.new(_hkdf(file_key, b"", b"header"), mac_input, sha256).digest()
    return mac_input + b" " + _b64encode(mac) + b"\n"


def make_header(file_key: bytes, recipients: Sequence[bytes]) -> bytes:
    """A header wrapping ``file_key`` for each 32-byte X25519 recipient."""
    if not recipients:
        raise PrivacyError("encryption needs at least one recipient; name who may decrypt")
    for r in recipients:
        if len(r) != 32:
            raise PrivacyError("an X25519 recipient key is 32 bytes; check the published key")
    return _header_bytes(file_key, [_wrap(file_key, r) for r in recipients])


def _readline(src: BinaryIO, budget: int) -> bytes:
    line = src.readline(min(budget, MAX_HEADER) + 1)
    if len(line) > budget:
        raise DecryptError("the age header is longer than 64 KiB; refused (not an age file?)")
    if not line.endswith(b"\n"):
        raise DecryptError("the file ends inside the age header; it is truncated or not age")
    return line


def read_header(src: BinaryIO) -> Header:
    """Read an age v1 header, leaving ``src`` at the first payload byte."""
    budget = MAX_HEADER
    first = _readline(src, budget)
    if first != VERSION_LINE:
        raise DecryptError("not an age v1 file (its first line is not age-encryption.org/v1)")
    consumed = [first]
    budget -= len(first)
    stanzas: list[Stanza] = []
    line = _readline(src, budget)
    while line.startswith(b"-> "):
        consumed.append(line)
        budget -= len(line)
        args = tuple(a.decode("ascii", "replace") for a in line[3:-1].split(b" "))
        if not args or any(not a for a in args):
            raise DecryptError("an age stanza has an empty argument; the file is corrupt")
        body_lines = []
        while True:
            body = _readline(src, budget)
            consumed.append(body)
            budget -= len(body)
            body_lines.append(body[:-1])
            if len(body) - 1 > _B64_LINE:
                raise DecryptError("an age stanza line is longer than 64 columns; corrupt file")
            if len(body) - 1 < _B64_LINE:
                break
        stanzas.append(Stanza(args, _b64decode(b"".join(body_lines), "stanza body")))
        if len(stanzas) > MAX_STANZAS:
            raise DecryptError(f"the age header has more than {MAX_STANZAS} stanzas; refused")
        line = _readline(src, budget)
    if not line.startswith(b"--- ") or not stanzas:
        raise DecryptError("the age header has no stanza or no MAC line; the file is corrupt")
    mac = _b64decode(line[4:-1], "MAC")
    if len(mac) != 32:
        raise DecryptError("the age header's MAC has the wrong length; the file is corrupt")
    return Header(tuple(stanzas), mac, b"".join(consumed) + b"---")


def unwrap_file_key(header: Header, identity: bytes) -> bytes:
    """The file key of ``header`` for X25519 private key ``identity`` (MAC checked)."""
    private = X25519PrivateKey.from_private_bytes(identity)
    ours = private.public_key().public_bytes_raw()
    for stanza in header.stanzas:
        if stanza.args[0] != "X25519":
            continue  # other recipient types: not ours to open
        if len(stanza.args) != 2:
            raise DecryptError("an X25519 stanza must have two arguments; the file is corrupt")
        share = _b64decode(stanza.args[1].encode(), "ephemeral share")
        if len(share) != 32 or len(stanza.body) != FILE_KEY_SIZE + TAG:
            raise DecryptError("an X25519 stanza has the wrong sizes; the file is corrupt")
        shared = private.exchange(X25519PublicKey.from_public_bytes(share))
        if shared == bytes(32):
            raise DecryptError("an X25519 stanza has a low-order share; the file is hostile")
        wrap_key = _hkdf(shared, share + ours, X25519_INFO)
        try:
            file_key = ChaCha20Poly1305(wrap_key).decrypt(_ZERO_NONCE, stanza.body, None)
        except InvalidTag:
            continue  # addressed to another recipient
        header.check_mac(file_key)
        return file_key
    raise DecryptError(
        "this file is not encrypted to the given key; ask the owner for a grant (a re-wrap)"
    )


def rewrap(src: BinaryIO, identity: bytes, recipients: Sequence[bytes]) -> bytes:
    """A new header giving ``recipients`` the file key that ``identity`` opens in ``src``.

    Only the header changes: the new header followed by the original payload
    is a valid age file for the new recipients, and the payload is untouched.
    """
    file_key = unwrap_file_key(read_header(src), identity)
    return make_header(file_key, recipients)


# -- payload -------------------------------------------------------------------------------
def _read_full(src: BinaryIO, n: int) -> bytes:
    data = src.read(n)
    if data is None:
        raise PrivacyError("the input stream is non-blocking; give a blocking file or pipe")
    if len(data) == n or not data:
        return data
    parts = [data]
    got = len(data)
    while got < n:
        more = src.read(n - got)
        if not more:
            break
        parts.append(more)
        got += len(more)
    return b"".join(parts)


def _nonce(counter: int, last: bool) -> bytes:
    return counter.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


def encrypt_stream(src: BinaryIO, dst: BinaryIO, recipients: Sequence[bytes]) -> int:
    """Encrypt ``src`` to ``recipients`` (32-byte X25519 keys) into ``dst``; return plaintext bytes."""
    file_key = new_file_key()
    dst.write(make_header(file_key, recipients))
    return seal_payload(src, dst, file_key)


def new_file_key() -> bytes:
    """A fresh 16-byte file key (never reuse one for two files)."""
    return os.urandom(FILE_KEY_SIZE)


def seal_payload(src: BinaryIO, dst: BinaryIO, file_key: bytes) -> int:
    """Write the payload (nonce and sealed chunks) of ``src`` under ``file_key``; return its size."""
    nonce = os.urandom(NONCE_SIZE)
    dst.write(nonce)
    aead = ChaCha20Poly1305(_hkdf(file_key, nonce, b"payload"))
    counter = 0
    total = 0
    pending = _read_full(src, CHUNK)  # held back until we know whether it is the last
    while True:
        block = _read_full(src, CHUNK * BATCH)
        if not block:
            dst.write(aead.encrypt(_nonce(counter, True), pending, None))
            return total + len(pending)
        sealed = [aead.encrypt(_nonce(counter, False), pending, None)]
        counter += 1
        total += len(pending)
        view = memoryview(block)
        tail = (len(block) - 1) // CHUNK * CHUNK  # where the block's last chunk starts
        for offset in range(0, tail, CHUNK):
            sealed.append(aead.encrypt(_nonce(counter, False), view[offset : offset + CHUNK], None))
            counter += 1
        total += tail
        pending = bytes(view[tail:])
        dst.write(b"".join(sealed) if len(sealed) > 1 else sealed[0])


def decrypt_payload(src: BinaryIO, dst: BinaryIO, file_key: bytes) -> int:
    """Decrypt the payload that follows a header; return plaintext bytes."""
    nonce = _read_full(src, NONCE_SIZE)
    if len(nonce) != NONCE_SIZE:
        raise DecryptError("the age payload is truncated (no nonce)")
    aead = ChaCha20Poly1305(_hkdf(file_key, nonce, b"payload"))
    sealed_chunk = CHUNK + TAG
    counter = 0
    total = 0

    def open_chunk(data: bytes | memoryview, last: bool) -> bytes:
        try:
            return aead.decrypt(_nonce(counter, last), data, None)
        except InvalidTag:
            raise DecryptError(
                f"chunk {counter} of the payload fails authentication; the ciphertext was "
                "corrupted or truncated"
            ) from None

    pending = _read_full(src, sealed_chunk)
    while True:
        block = _read_full(src, sealed_chunk * BATCH)
        if not block:
            if len(pending) < TAG:
                raise DecryptError("the age payload is truncated (no final chunk)")
            plain = open_chunk(pending, True)
            if not plain and counter > 0:
                raise DecryptError("the age payload ends with an empty chunk; the file is corrupt")
            dst.write(plain)
            return total + len(plain)
        opened = [open_chunk(pending, False)]
        counter += 1
        view = memoryview(block)
        tail = (len(block) - 1) // sealed_chunk * sealed_chunk
        for offset in range(0, tail, sealed_chunk):
            opened.append(open_chunk(view[offset : offset + sealed_chunk], False))
            counter += 1
        pending = bytes(view[tail:])
        data = b"".join(opened)
        total += len(data)
        dst.write(data)


def decrypt_stream(src: BinaryIO, dst: BinaryIO, identity: bytes) -> int:
    """Decrypt age ``src`` with X25519 private key ``identity`` into ``dst``.

    Plaintext is written as it is authenticated; on a :class:`DecryptError`
    part of it may already be in ``dst`` (:func:`decrypt_file` removes it).
    """
    return decrypt_payload(src, dst, unwrap_file_key(read_header(src), identity))


def encrypt_file(path: Path | str, out: Path | str, recipients: Sequence[bytes], *,
                 progress: Callable[[int], None] | None = None) -> int:  # fmt: skip
    """Encrypt the file at ``path`` into ``out`` (written atomically); return the bytes
    written. ``progress`` is called with the count of each chunk of ``path`` read."""
    with open(path, "rb") as raw, atomic_writer(Path(out)) as dst:
        src = cast(BinaryIO, ReportingReader(raw, progress)) if progress else raw
        return encrypt_stream(src, dst, recipients)


def decrypt_file(path: Path | str, out: Path | str, identity: bytes, *,
                 progress: Callable[[int], None] | None = None) -> int:  # fmt: skip
    """Decrypt ``path`` into ``out``; ``out`` appears only if every chunk authenticates.
    ``progress`` is called with the count of each chunk of ``path`` read."""
    with open(path, "rb") as raw, atomic_writer(Path(out)) as dst:
        src = cast(BinaryIO, ReportingReader(raw, progress)) if progress else raw
        return decrypt_stream(src, dst, identity)
