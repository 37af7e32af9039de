"""C2SP signed notes with Ed25519 keys, checkpoints and witness cosignatures.

Key IDs are ``SHA-256(name || 0x0A || type || public key)[:4]`` with type
``0x01`` for note signatures and ``0x04`` for timestamped cosignatures
(c2sp.org/signed-note, c2sp.org/tlog-cosignature). Keys are exchanged in the
``vkey`` form ``<name>+<hex key ID>+<base64(type || public key)>`` that Go's
``sumdb/note`` and the witness ecosystem use.

>>> signer = NoteSigner.generate("log.example/demo")
>>> note = sign_note("hello\\n", [signer])
>>> open_note(note, [signer.verifier]).text
'hello\\n'
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import time
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from neuroledger.errors import SignatureError

__all__ = [
    "COSIGNATURE",
    "ED25519",
    "Checkpoint",
    "Note",
    "NoteSigner",
    "NoteVerifier",
    "Signature",
    "add_cosignature",
    "key_id",
    "open_checkpoint",
    "open_note",
    "parse_note",
    "sign_checkpoint",
    "sign_note",
]

ED25519 = 0x01
COSIGNATURE = 0x04
_MAX_SIGNATURES = 100
_NAME = re.compile(r"[^\s+]+")
_SIG_LINE = re.compile(r"— (\S+) ([A-Za-z0-9+/=]+)\n")


def key_id(name: str, sig_type: int, public_key: bytes) -> bytes:
    """The 4-byte key ID of a key."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([sig_type]) + public_key).digest()[:4]


def _check_name(name: str) -> None:
    if not _NAME.fullmatch(name):
        raise SignatureError(f"key name {name!r} must be non-empty, with no spaces and no '+'")


@dataclass(frozen=True)
class NoteVerifier:
    """A public key that can check note signatures (or cosignatures)."""

    name: str
    sig_type: int
    public_key: bytes

    @property
    def key_id(self) -> bytes:
        """Its 4-byte key ID."""
        return key_id(self.name, self.sig_type, self.public_key)

    @property
    def vkey(self) -> str:
        """The verifier key string ``name+hexid+base64(type||key)``."""
        material = base64.b64encode(bytes([self.sig_type]) + self.public_key).decode()
        return f"{self.name}+{self.key_id.hex()}+{material}"

    @classmethod
    def from_vkey(cls, vkey: str) -> NoteVerifier:
        """Parse a verifier key string; refuse any that is malformed or inconsistent."""
        parts = vkey.split("+", 2)
        if len(parts) != 3 or not re.fullmatch(r"[0-9a-f]{8}", parts[1]):
            raise SignatureError(f"{vkey!r} is not a verifier key (name+hexid+base64 key)")
        name, hex_id, material = parts
        _check_name(name)
        try:
            raw = base64.b64decode(material, validate=True)
        except binascii.Error:
            raise SignatureError(f"verifier key {name}: key material is not base64") from None
        if len(raw) != 33 or raw[0] not in (ED25519, COSIGNATURE):
            raise SignatureError(f"verifier key {name}: not an Ed25519 key of type 0x01 or 0x04")
        verifier = cls(name=name, sig_type=raw[0], public_key=raw[1:])
        if verifier.key_id.hex() != hex_id:
            raise SignatureError(f"verifier key {name}: key ID {hex_id} does not match the key")
        return verifier

    def check(self, message: bytes, signature: bytes) -> bool:
        """Whether ``signature`` is a valid Ed25519 signature of ``message``."""
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class NoteSigner:
    """An Ed25519 private key with its name: signs notes (type 0x01) or cosigns (0x04)."""

    name: str
    seed: bytes
    sig_type: int = ED25519

    @classmethod
    def generate(cls, name: str, sig_type: int = ED25519) -> NoteSigner:
        """A fresh random key."""
        _check_name(name)
        from cryptography.hazmat.primitives.serialization import NoEncryption, PrivateFormat

        key = Ed25519PrivateKey.generate()
        seed = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        return cls(name=name, seed=seed, sig_type=sig_type)

    @classmethod
    def from_skey(cls, skey: str) -> NoteSigner:
        """Parse ``PRIVATE+KEY+name+hexid+base64(type||seed)``."""
        parts = skey.split("+", 4)
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
            raise SignatureError("not a signer key (PRIVATE+KEY+name+hexid+base64 seed)")
        _, _, name, hex_id, material = parts
        try:
            raw = base64.b64decode(material, validate=True)
        except binascii.Error:
            raise SignatureError(f"signer key {name}: key material is not base64") from None
        if len(raw) != 33 or raw[0] not in (ED25519, COSIGNATURE):
            raise SignatureError(f"signer key {name}: not an Ed25519 seed of type 0x01 or 0x04")
        signer = cls(name=name, seed=raw[1:], sig_type=raw[0])
        if signer.verifier.key_id.hex() != hex_id:
            raise SignatureError(f"signer key {name}: key ID {hex_id} does not match the key")
        return signer

    @property
    def skey(self) -> str:
        """The signer key string (secret: store it encrypted or with mode 0600)."""
        material = base64.b64encode(bytes([self.sig_type]) + self.seed).decode()
        return f"PRIVATE+KEY+{self.name}+{self.verifier.key_id.hex()}+{material}"

    @property
    def verifier(self) -> NoteVerifier:
        """The matching public key."""
        public = self._key().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return NoteVerifier(name=self.name, sig_type=self.sig_type, public_key=public)

    def _key(self) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.from_private_bytes(self.seed)

    def sign(self, message: bytes) -> bytes:
        """Raw Ed25519 signature of ``message``."""
        return self._key().sign(message)


@dataclass(frozen=True)
class Signature:
    """One signature line of a note."""

    name: str
    key_id: bytes
    blob: bytes  # what follows the key ID

    def line(self) -> str:
        """The encoded signature line."""
        return f"— {self.name} {base64.b64encode(self.key_id + self.blob).decode()}\n"


@dataclass(frozen=True)
class Note:
    """A note's text and its signature lines (``verified`` names the keys that checked)."""

    text: str
    signatures: tuple[Signature, ...]
    verified: tuple[str, ...] = field(default=())

    def encode(self) -> str:
        """The note as text."""
        return self.text + "\n" + "".join(s.line() for s in self.signatures)


def signed_message(
    verifier: NoteVerifier | NoteSigner, text: str, blob: bytes
) -> tuple[bytes, bytes]:
    """(message, raw signature) for a signature blob of either type."""
    if verifier.sig_type == COSIGNATURE:
        if len(blob) != 8 + 64:
            raise SignatureError(
                f"cosignature by {verifier.name} is not a timestamp and a signature"
            )
        stamp = int.from_bytes(blob[:8], "big")
        return f"cosignature/v1\ntime {stamp}\n{text}".encode(), blob[8:]
    return text.encode(), blob


def sign_note(text: str, signers: list[NoteSigner], *, timestamp: int | None = None) -> str:
    """Sign ``text`` (ending in a newline) with each signer; return the note."""
    if not text.endswith("\n"):
        raise SignatureError("note text must end with a newline")
    _check_text(text)
    lines = []
    for signer in signers:
        verifier = signer.verifier
        if signer.sig_type == COSIGNATURE:
            stamp = int(time.time()) if timestamp is None else timestamp
            prefix = stamp.to_bytes(8, "big")
            sig = signer.sign(f"cosignature/v1\ntime {stamp}\n{text}".encode())
            blob = prefix + sig
        else:
            blob = signer.sign(text.encode())
        lines.append(Signature(name=signer.name, key_id=verifier.key_id, blob=blob).line())
    return text + "\n" + "".join(lines)


def _check_text(text: str) -> None:
    if any(ord(c) < 0x20 and c != "\n" for c in text):
        raise SignatureError("note text holds a control character other than newline")


def parse_note(encoded: str, *, allow_unsigned: bool = False) -> Note:
    """Split a note into its text and signature lines (no verification)."""
    if any(ord(c) < 0x20 and c != "\n" for c in encoded):
        raise SignatureError("note holds a control character other than newline")
    cut = encoded.rfind("\n\n")
    if cut < 0:
        raise SignatureError("malformed note: no blank line before the signatures")
    text, sig_block = encoded[: cut + 1], encoded[cut + 2 :]
    signatures = []
    position = 0
    while position < len(sig_block):
        match = _SIG_LINE.match(sig_block, position)
        if match is None:
            raise SignatureError("malformed note: a signature line is not '— name base64'")
        name, b64 = match.groups()
        if not _NAME.fullmatch(name):  # the signed-note spec (and Go's note.Open) refuse '+'
            raise SignatureError(f"malformed note: key name {name!r} contains '+'")
        try:
            raw = base64.b64decode(b64, validate=True)
        except binascii.Error:
            raise SignatureError(f"malformed note: signature by {name} is not base64") from None
        if len(raw) < 5:
            raise SignatureError(f"malformed note: signature by {name} is too short")
        signatures.append(Signature(name=name, key_id=raw[:4], blob=raw[4:]))
        position = match.end()
    if not signatures and not allow_unsigned:
        raise SignatureError("note has no signatures")
    if len(signatures) > _MAX_SIGNATURES:
        raise SignatureError(f"note has more than {_MAX_SIGNATURES} signatures")
    return Note(text=text, signatures=tuple(signatures))


def open_note(encoded: str, verifiers: list[NoteVerifier]) -> Note:
    """Parse and verify a note: at least one known key must have signed it.

    Signatures by unknown keys are ignored; a known key's signature that fails
    to verify rejects the whole note.
    """
    note = parse_note(encoded)
    known = {(v.name, v.key_id): v for v in verifiers}
    verified = []
    for sig in note.signatures:
        verifier = known.get((sig.name, sig.key_id))
        if verifier is None:
            continue
        message, raw = signed_message(verifier, note.text, sig.blob)
        if not verifier.check(message, raw):
            raise SignatureError(
                f"the signature by {sig.name} ({sig.key_id.hex()}) does not verify"
            )
        verified.append(sig.name)
    if not verified:
        names = ", ".join(sorted({s.name for s in note.signatures})) or "nobody"
        raise SignatureError(
            f"no signature by a trusted key (signed by: {names}); check the log's public key"
        )
    return Note(text=note.text, signatures=note.signatures, verified=tuple(verified))


@dataclass(frozen=True)
class Checkpoint:
    """A C2SP tlog-checkpoint body: origin, tree size, root hash, extension lines."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def body(self) -> str:
        """The note text of the checkpoint."""
        lines = [
            self.origin,
            str(self.size),
            base64.b64encode(self.root).decode(),
            *self.extensions,
        ]
        return "\n".join(lines) + "\n"

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        """Parse a checkpoint body; refuse anything malformed."""
        lines = text.split("\n")
        if len(lines) < 4 or lines[-1] != "":
            raise SignatureError("malformed checkpoint: needs origin, size and root lines")
        origin, size, root = lines[0], lines[1], lines[2]
        if not origin:
            raise SignatureError("malformed checkpoint: empty origin line")
        if not re.fullmatch(r"0|[1-9][0-9]{0,19}", size):
            raise SignatureError(f"malformed checkpoint: tree size {size!r} is not a decimal")
        try:
            raw = base64.b64decode(root, validate=True)
        except binascii.Error:
            raw = b""
        if len(raw) != 32:
            raise SignatureError("malformed checkpoint: root hash is not 32 bytes of base64")
        extensions = tuple(lines[3:-1])
        if any(not line for line in extensions):
            raise SignatureError("malformed checkpoint: empty extension line")
        return cls(origin=origin, size=int(size), root=raw, extensions=extensions)


def sign_checkpoint(checkpoint: Checkpoint, signer: NoteSigner) -> str:
    """The checkpoint as a note signed by the log's key."""
    return sign_note(checkpoint.body(), [signer])


def open_checkpoint(
    encoded: str, verifier: NoteVerifier, *, origin: str | None = None
) -> Checkpoint:
    """Verify a signed checkpoint with the log's key (and origin); return its body."""
    note = open_note(encoded, [verifier])
    checkpoint = Checkpoint.parse(note.text)
    expected = origin or verifier.name
    if checkpoint.origin != expected:
        raise SignatureError(
            f"checkpoint is for log {checkpoint.origin!r}, not {expected!r}; "
            "check that it comes from the log you meant"
        )
    return checkpoint


def add_cosignature(encoded: str, witness: NoteSigner, *, timestamp: int | None = None) -> str:
    """Append a witness's timestamped cosignature (type 0x04) to a signed checkpoint."""
    if witness.sig_type != COSIGNATURE:
        raise SignatureError("a witness key must be a cosignature key (type 0x04)")
    note = parse_note(encoded)
    cosigned = sign_note(note.text, [witness], timestamp=timestamp)
    return encoded + cosigned[len(note.text) + 1 :]
