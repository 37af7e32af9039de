"""age keys as text: X25519 recipients (age1…) and identities (AGE-SECRET-KEY-1…), in Bech32."""

from __future__ import annotations

import bech32
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from neuroledger.errors import PrivacyError

__all__ = [
    "_bech32",
    "_unbech32",
    "identity_string",
    "parse_identity",
    "parse_recipient",
    "recipient_string",
    "x25519_public",
]


# -- keys and their text forms -----------------------------------------------------------
def x25519_public(private: bytes) -> bytes:
    """The X25519 public key (the age recipient) of a 32-byte private key."""
    return X25519PrivateKey.from_private_bytes(private).public_key().public_bytes_raw()


def _bech32(hrp: str, data: bytes) -> str:
    words = bech32.convertbits(list(data), 8, 5, True)
    assert words is not None  # padding on: 8-bit data always converts
    return bech32.bech32_encode(hrp, words)


def _unbech32(text: str, hrp: str, what: str, fix: str) -> bytes:
    got_hrp, words = bech32.bech32_decode(text.strip())
    if got_hrp != hrp or words is None:
        raise PrivacyError(f"{text.strip()[:24]!r}… is not an {what}; {fix}")
    data = bech32.convertbits(words, 5, 8, False)
    if data is None or len(data) != 32:
        raise PrivacyError(f"{what} {text.strip()[:24]!r}… does not hold a 32-byte key; {fix}")
    return bytes(data)


def recipient_string(public: bytes) -> str:
    """The ``age1…`` text of an X25519 public key."""
    return _bech32("age", public)


def parse_recipient(text: str) -> bytes:
    """The 32-byte key of an ``age1…`` recipient."""
    return _unbech32(text, "age", "age recipient", "give an age1… public key")


def identity_string(private: bytes) -> str:
    """The ``AGE-SECRET-KEY-1…`` text of an X25519 private key (what ``age -i`` reads)."""
    return _bech32("age-secret-key-", private).upper()


def parse_identity(text: str) -> bytes:
    """The 32-byte private key of an ``AGE-SECRET-KEY-1…`` identity, or of an identity file."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    if len(lines) != 1:
        raise PrivacyError(
            "an age identity file holds one AGE-SECRET-KEY-1… line; give a file with one key"
        )
    return _unbech32(lines[0], "age-secret-key-", "age identity", "give an AGE-SECRET-KEY-1… key")
