"""Secure aggregation (Bonawitz et al., CCS 2017): the aggregator learns only the sum.

Each client quantizes its update to fixed point in the ring Z_(2^32) and adds
masks: a self mask ``PRG(b_i)`` and, for every other client j, a pairwise mask
``±PRG(s_ij)`` where ``s_ij`` comes from X25519 key agreement between their
round keys and HKDF-SHA256. Pairwise masks cancel in the sum. Each client also
deals Shamir shares (threshold t) of its self-mask seed and of its round
private key to the others. After the masked inputs are in, the survivors
reveal, for each survivor, its self-mask seed share, and for each dropped
client, its private-key share; the server removes the survivors' self masks
and the dropped clients' leftover pairwise masks, and gets the exact sum of
the survivors' quantized updates. A single masked input is uniform in the
ring, whatever the update.

The PRG is AES-256 in counter mode keyed by HKDF output. The share transport
(encrypted to each recipient's published X25519 key) and authentication are
the coordinator's job; this module is the arithmetic.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)
from numpy.typing import NDArray

from neuroledger.errors import FederatedError

__all__ = [
    "MODULUS",
    "PRIME",
    "SecAggClient",
    "dequantize",
    "open_sealed",
    "prg",
    "quantize",
    "seal",
    "shamir_reconstruct",
    "shamir_split",
    "unmask_sum",
]

#: The ring of masked values: Z_(2^32), as uint64 arrays reduced after each addition.
MODULUS = 1 << 32
#: Shamir shares live in GF(2^521 - 1), large enough for 32-byte secrets.
PRIME = (1 << 521) - 1

Ring = NDArray[np.uint64]


def quantize(values: NDArray[np.float64], *, clip: float, scale: float) -> Ring:
    """Fixed point: clip to [-clip, clip], multiply by ``scale``, round, map into Z_(2^32)."""
    q = np.rint(np.clip(values, -clip, clip) * scale).astype(np.int64)
    return (q % MODULUS).astype(np.uint64)


def dequantize(values: Ring, *, scale: float) -> NDArray[np.float64]:
    """Back from Z_(2^32) (upper half = negative) to floats."""
    signed = values.astype(np.int64)
    signed = np.where(signed >= MODULUS // 2, signed - MODULUS, signed)
    return np.asarray(signed / scale, dtype=np.float64)


def prg(seed: bytes, size: int) -> Ring:
    """``size`` pseudo-random elements of Z_(2^32) from a 32-byte seed (AES-256-CTR)."""
    encryptor = Cipher(algorithms.AES(seed), modes.CTR(b"\0" * 16)).encryptor()
    raw = encryptor.update(b"\0" * (4 * size)) + encryptor.finalize()
    return np.frombuffer(raw, dtype="<u4").astype(np.uint64)


def _hkdf(secret: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(secret)


def seal(recipient_public: bytes, plaintext: bytes, context: bytes) -> bytes:
    """Encrypt ``plaintext`` to an X25519 public key (an identity's published key).

    An ephemeral X25519 key agrees a secret with the recipient; HKDF-SHA256
    (bound to both public keys and ``context``) derives an AES-256-GCM key.
    Output: ephemeral public key (32 bytes) || ciphertext with tag.
    """
    ephemeral = X25519PrivateKey.generate()
    epk = ephemeral.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(recipient_public))
    key = _hkdf(shared, b"neuroledger-seal/" + epk + recipient_public + context)
    return epk + AESGCM(key).encrypt(b"\0" * 12, plaintext, context)


def open_sealed(private: bytes, sealed: bytes, context: bytes) -> bytes:
    """Decrypt what :func:`seal` made for the holder of X25519 key ``private``."""
    if len(sealed) < 32 + 16:
        raise FederatedError("a sealed message is too short; it was truncated")
    key_obj = X25519PrivateKey.from_private_bytes(private)
    own = key_obj.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    epk, body = sealed[:32], sealed[32:]
    key = _hkdf(key_obj.exchange(X25519PublicKey.from_public_bytes(epk)),
                b"neuroledger-seal/" + epk + own + context)  # fmt: skip
    try:
        return AESGCM(key).decrypt(b"\0" * 12, body, context)
    except InvalidTag:
        raise FederatedError(
            "a sealed message does not open with this identity's key (wrong recipient or tampered)"
        ) from None


def shamir_split(secret: int, n: int, t: int) -> list[tuple[int, int]]:
    """``n`` shares (x, y) of ``secret`` in GF(PRIME); any ``t`` of them recover it."""
    if not 1 <= t <= n:
        raise FederatedError(f"threshold {t} must be between 1 and the {n} clients")
    coefficients = [secret] + [secrets.randbelow(PRIME) for _ in range(t - 1)]
    shares = []
    for x in range(1, n + 1):
        y = 0
        for c in reversed(coefficients):
            y = (y * x + c) % PRIME
        shares.append((x, y))
    return shares


def shamir_reconstruct(shares: Sequence[tuple[int, int]]) -> int:
    """The secret behind ``shares`` (Lagrange interpolation at 0)."""
    secret = 0
    for i, (xi, yi) in enumerate(shares):
        num = den = 1
        for j, (xj, _) in enumerate(shares):
            if i != j:
                num = num * (-xj) % PRIME
                den = den * (xi - xj) % PRIME
        secret = (secret + yi * num * pow(den, -1, PRIME)) % PRIME
    return secret


@dataclass
class SecAggClient:
    """One client's side of a round: round keys, shares to deal, the masked input."""

    index: int  # 1..n, also its Shamir x coordinate
    n: int
    threshold: int
    round_id: bytes = b"round-0"
    _key: X25519PrivateKey = field(default_factory=X25519PrivateKey.generate, repr=False)
    _self_seed: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)

    @property
    def public_key(self) -> bytes:
        """This round's X25519 public key (advertised to the others)."""
        return self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    def _private_bytes(self) -> bytes:
        return self._key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())

    def deal_shares(self) -> dict[int, tuple[tuple[int, int], tuple[int, int]]]:
        """For each client index: (share of my self-mask seed, share of my round key)."""
        seed_shares = shamir_split(int.from_bytes(self._self_seed, "big"), self.n, self.threshold)
        key_shares = shamir_split(
            int.from_bytes(self._private_bytes(), "big"), self.n, self.threshold
        )
        return {x: (seed_shares[x - 1], key_shares[x - 1]) for x in range(1, self.n + 1)}

    def masked_input(self, update: Ring, public_keys: Mapping[int, bytes]) -> Ring:
        """The update plus the self mask plus the pairwise masks with every other client."""
        size = update.shape[0]
        total = (update + prg(self._self_seed, size)) % MODULUS
        for other, key in public_keys.items():
            if other == self.index:
                continue
            mask = prg(
                pair_seed(self._private_bytes(), key, self.round_id, self.index, other), size
            )
            total = (
                (total + mask) % MODULUS
                if self.index < other
                else (total + MODULUS - mask) % MODULUS
            )
        return total.astype(np.uint64)


def pair_seed(private: bytes, peer_public: bytes, round_id: bytes, a: int, b: int) -> bytes:
    """The seed two clients share: HKDF(X25519(...), round and both indices, smallest first)."""
    shared = X25519PrivateKey.from_private_bytes(private).exchange(
        X25519PublicKey.from_public_bytes(peer_public)
    )
    lo, hi = min(a, b), max(a, b)
    return _hkdf(shared, b"neuroledger-secagg/" + round_id + f"/{lo}-{hi}".encode())


def unmask_sum(
    masked: Mapping[int, Ring],
    public_keys: Mapping[int, bytes],
    seed_shares: Mapping[int, Sequence[tuple[int, int]]],
    key_shares: Mapping[int, Sequence[tuple[int, int]]],
    *,
    threshold: int,
    round_id: bytes = b"round-0",
) -> Ring:
    """The sum of the survivors' quantized updates.

    ``masked``: masked inputs of the survivors; ``public_keys``: round keys of
    everyone who was in the round; ``seed_shares[i]``: revealed shares of
    survivor i's self-mask seed; ``key_shares[d]``: revealed shares of dropped
    client d's round key. At least ``threshold`` shares are needed for each.
    """
    survivors = sorted(masked)
    dropped = sorted(set(public_keys) - set(masked))
    if len(survivors) < threshold:
        raise FederatedError(
            f"only {len(survivors)} clients survived; at least {threshold} are needed"
        )
    size = next(iter(masked.values())).shape[0]
    total = np.zeros(size, dtype=np.uint64)
    for i in survivors:
        total = (total + masked[i]) % MODULUS
    for i in survivors:
        seed = _recover(seed_shares.get(i, ()), threshold, f"client {i}'s self mask")
        total = (total + MODULUS - prg(seed, size)) % MODULUS
    for d in dropped:
        private = _recover(key_shares.get(d, ()), threshold, f"dropped client {d}'s key")
        for j in survivors:
            mask = prg(pair_seed(private, public_keys[j], round_id, d, j), size)
            # Survivor j added +mask if j < d, and -mask if j > d: undo it.
            total = (total + MODULUS - mask) % MODULUS if j < d else (total + mask) % MODULUS
    return total.astype(np.uint64)


def _recover(shares: Sequence[tuple[int, int]], threshold: int, what: str) -> bytes:
    """The 32-byte secret behind ``threshold`` of ``shares`` (``FederatedError`` if too few)."""
    if len(shares) < threshold:
        raise FederatedError(f"{len(shares)} shares of {what}; {threshold} are needed")
    return shamir_reconstruct(list(shares)[:threshold]).to_bytes(32, "big")
