"""The owner's vault: each private asset stored once, encrypted, with one key wrap per party.

Layout under the vault root::

    <asset id>/payload              the age payload (nonce and sealed chunks), written once
    <asset id>/wraps/<address>.hdr  an age header wrapping the file key for one identity
    <asset id>/meta.json            name, plaintext size, whether rows are per subject

A wrap followed by the payload is a complete age file for that party, so a
grant costs one small header, never a re-encryption; the vault holds no
plaintext and no file key.
"""

from __future__ import annotations

import io
import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from neuroledger._fs import atomic_write, atomic_writer
from neuroledger.errors import PrivacyError
from neuroledger.privacy import age

__all__ = ["Vault", "VaultEntry"]

_ID = re.compile(r"[0-9a-f]{64}")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


@dataclass(frozen=True)
class VaultEntry:
    """One encrypted asset in the vault."""

    asset_id: str
    name: str
    size: int
    payload: Path
    wraps: tuple[str, ...]  # identity addresses (lowercase) holding a wrap
    per_subject: bool = True  # rows belong to data subjects (consent applies row by row)


class Vault:
    """Encrypted assets of one owner, under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _dir(self, asset_id: str) -> Path:
        if not _ID.fullmatch(asset_id):
            raise PrivacyError(f"{asset_id!r} is not an asset id (64 hex digits)")
        return self.root / asset_id

    @staticmethod
    def _wrap_name(identity: str) -> str:
        if not _ADDRESS.fullmatch(identity):
            raise PrivacyError(f"{identity!r} is not an identity address (0x and 40 hex digits)")
        return identity.lower() + ".hdr"

    def has(self, asset_id: str) -> bool:
        """Whether the vault holds ``asset_id``."""
        return (self._dir(asset_id) / "meta.json").exists()

    def put(
        self,
        asset_id: str,
        src: BinaryIO,
        *,
        name: str,
        owner: str,
        owner_key: bytes,
        per_subject: bool = True,
    ) -> VaultEntry:
        """Encrypt ``src`` into the vault under ``asset_id``, wrapped for ``owner`` only.

        ``owner_key`` is the owner's X25519 public key. Nothing is left behind if
        encryption fails; an asset already in the vault is refused.
        """
        directory = self._dir(asset_id)
        if self.has(asset_id):
            raise PrivacyError(f"asset {asset_id[:12]} is already in the vault")
        file_key = age.new_file_key()
        try:
            with atomic_writer(directory / "payload", mode=0o600) as out:
                size = age.seal_payload(src, out, file_key)
            self._write_wrap(directory, owner, age.make_header(file_key, [owner_key]))
            meta = {"name": name, "size": size, "per_subject": per_subject}
            atomic_write(directory / "meta.json", json.dumps(meta).encode())
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise
        return self.entry(asset_id)

    def remove(self, asset_id: str) -> None:
        """Delete an asset's payload and wraps (crypto-shredding when the wraps go)."""
        shutil.rmtree(self._dir(asset_id), ignore_errors=True)

    def _write_wrap(self, directory: Path, identity: str, header: bytes) -> None:
        atomic_write(directory / "wraps" / self._wrap_name(identity), header, mode=0o600)

    def entry(self, asset_id: str) -> VaultEntry:
        """The vault's record of ``asset_id``."""
        directory = self._dir(asset_id)
        try:
            meta = json.loads((directory / "meta.json").read_text())
        except FileNotFoundError:
            raise PrivacyError(
                f"asset {asset_id[:12]} is not in this vault; encrypt it first with "
                "`neuroledger data encrypt FILE --owner NAME`"
            ) from None
        wraps = tuple(sorted(p.name[:-4] for p in (directory / "wraps").glob("*.hdr")))
        return VaultEntry(
            asset_id,
            str(meta["name"]),
            int(meta["size"]),
            directory / "payload",
            wraps,
            per_subject=bool(meta.get("per_subject", True)),
        )

    def entries(self) -> Iterator[VaultEntry]:
        """Every asset in the vault."""
        if self.root.exists():
            for child in sorted(self.root.iterdir()):
                if _ID.fullmatch(child.name) and (child / "meta.json").exists():
                    yield self.entry(child.name)

    def wrap(self, asset_id: str, identity: str) -> bytes:
        """The age header for ``identity`` (raises if it has none)."""
        path = self._dir(asset_id) / "wraps" / self._wrap_name(identity)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise PrivacyError(
                f"{identity} holds no key wrap for asset {asset_id[:12]}; the owner grants "
                "download access with `neuroledger grant add`"
            ) from None

    def add_wrap(self, asset_id: str, *, owner: str, owner_private: bytes, identity: str,
                 identity_key: bytes) -> None:  # fmt: skip
        """Wrap the file key for ``identity`` (X25519 key ``identity_key``); the payload stays."""
        header = self.wrap(asset_id, owner)
        new = age.rewrap(io.BytesIO(header), owner_private, [identity_key])
        self._write_wrap(self._dir(asset_id), identity, new)

    def drop_wrap(self, asset_id: str, identity: str) -> bool:
        """Delete ``identity``'s wrap; True if there was one."""
        path = self._dir(asset_id) / "wraps" / self._wrap_name(identity)
        if path.exists():
            path.unlink()
            return True
        return False

    def decrypt(self, asset_id: str, *, identity: str, private: bytes, out: BinaryIO) -> int:
        """Decrypt ``asset_id`` with ``identity``'s wrap and X25519 ``private`` key into ``out``."""
        header = self.wrap(asset_id, identity)
        file_key = age.unwrap_file_key(age.read_header(io.BytesIO(header)), private)
        with open(self.entry(asset_id).payload, "rb") as payload:
            return age.decrypt_payload(payload, out, file_key)

    def age_file(self, asset_id: str, identity: str) -> Iterator[bytes]:
        """The complete age file for ``identity``: its wrap, then the payload, in pieces."""
        header = self.wrap(asset_id, identity)
        payload = self.entry(asset_id).payload

        def pieces() -> Iterator[bytes]:
            yield header
            with open(payload, "rb") as f:
                while piece := f.read(1 << 20):
                    yield piece

        return pieces()
