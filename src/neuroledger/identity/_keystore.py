"""The encrypted keystore: every private key in Web3 Secret Storage v3 files.

Layout under ``<home>/keystore``::

    keys/<address>.json          secp256k1 owner keys (standard v3 files, geth-compatible)
    keys/x25519-<pubhex>.json    X25519 key-agreement keys (v3 envelope around 32 bytes)
    identities/<name>.json       public metadata: kind, DID address, current owner, X25519 public key

One passphrase opens the keystore of a home. It comes from a callable (the CLI
prompts, or reads the file named by ``NEUROLEDGER_PASSPHRASE_FILE``); a raw key
never passes through the environment.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from neuroledger._fs import atomic_write, fsync_dir
from neuroledger.config import KdfParams
from neuroledger.errors import IdentityNotFoundError, KeystoreError, WrongPassphraseError

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

# eth-account and eth-keyfile take most of a second to import: only commands that open
# or make a key import them (`identity list` reads the public records and starts fast).


def _account() -> Any:
    from eth_account import Account

    return Account


def _keyfile() -> Any:
    from eth_keyfile import keyfile

    return keyfile


__all__ = ["KINDS", "IdentityRecord", "Keystore"]

#: Kinds of identity NeuroLedger knows.
KINDS = ("org", "person", "agent", "device")

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


@dataclass
class IdentityRecord:
    """Public facts about one identity in the keystore."""

    name: str
    kind: str
    identity: str
    owner: str
    x25519_public: str
    created: float
    pending_owner: str | None = None
    retired_owners: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """Return the record as stored on disk."""
        return asdict(self)

    def holds_key(self, address: str) -> bool:
        """Whether ``address`` is this identity's current or a retired owner key."""
        return address.lower() in {k.lower() for k in (self.owner, *self.retired_owners)}


class Keystore:
    """Creates and opens the identities of one home."""

    def __init__(
        self,
        directory: Path,
        *,
        passphrase: Callable[[], str] | None = None,
        kdf: KdfParams | None = None,
    ) -> None:
        self.directory = directory
        self._passphrase_source = passphrase
        self._passphrase: str | None = None
        self.kdf = kdf or KdfParams()
        self._unlocked: dict[str, bytes] = {}
        self._proven = False
        self._finish_passphrase_change()

    # -- paths -----------------------------------------------------------------------
    @property
    def _keys(self) -> Path:
        return self.directory / "keys"

    @property
    def _identities(self) -> Path:
        return self.directory / "identities"

    def _record_path(self, name: str) -> Path:
        return self._identities / f"{name}.json"

    # -- passphrase ------------------------------------------------------------------
    def _get_passphrase(self) -> str:
        if self._passphrase is None:
            if self._passphrase_source is None:
                raise KeystoreError(
                    "this command needs the keystore passphrase; run it in a terminal to be "
                    "prompted, or set NEUROLEDGER_PASSPHRASE_FILE to a file that holds it"
                )
            value = self._passphrase_source()
            if not value:
                raise KeystoreError("the keystore passphrase is empty; give a non-empty one")
            self._passphrase = value
        return self._passphrase

    def _prove_passphrase(self) -> None:
        """Before a new secret is written: the passphrase must open a key the home has.

        A home has one passphrase. A mistyped one would otherwise encrypt the new
        key under the typo, and the key would be as good as lost.
        """
        if self._proven:
            return
        existing = sorted(self._keys.glob("*.json")) if self._keys.exists() else []
        if existing:
            try:
                self._read_secret(existing[0], "this home's existing keys")
            except WrongPassphraseError:
                raise WrongPassphraseError(
                    "the passphrase does not open this home's existing keys, and a home has one "
                    "passphrase: nothing was written; retype it or check "
                    "NEUROLEDGER_PASSPHRASE_FILE (`neuroledger identity passphrase` changes it)"
                ) from None
        self._proven = True

    # -- secrets on disk ---------------------------------------------------------------
    def _write_secret(self, path: Path, secret: bytes) -> None:
        self._prove_passphrase()
        keyfile = _keyfile().create_keyfile_json(
            secret, self._get_passphrase().encode(), kdf="scrypt", iterations=self.kdf.n
        )
        if path.name.startswith(("x25519-", "ed25519-")):  # not Ethereum keys: no address
            keyfile.pop("address", None)
        atomic_write(path, json.dumps(keyfile).encode())

    def _read_secret(self, path: Path, what: str) -> bytes:
        cached = self._unlocked.get(str(path))
        if cached is not None:
            return cached
        try:
            keyfile = json.loads(path.read_text())
        except FileNotFoundError:
            raise KeystoreError(
                f"the key file {path} of {what} is missing; restore it from your backup of "
                f"{self.directory}"
            ) from None
        except ValueError:
            raise KeystoreError(
                f"the key file {path} of {what} is not valid JSON; restore it from a backup"
            ) from None
        try:
            secret = bytes(_keyfile().decode_keyfile_json(keyfile, self._get_passphrase().encode()))
        except ValueError as exc:
            if "MAC mismatch" in str(exc):
                self._passphrase = None
                raise WrongPassphraseError(
                    f"wrong passphrase for {what}; check NEUROLEDGER_PASSPHRASE_FILE or retype it"
                ) from None
            raise KeystoreError(f"the key file {path} of {what} is damaged: {exc}") from None
        self._unlocked[str(path)] = secret
        return secret

    # -- changing the passphrase ------------------------------------------------------
    @property
    def _journal(self) -> Path:
        return self.directory / "passphrase-change.json"

    def change_passphrase(self, new: str, *, extra: Sequence[Path] = ()) -> int:
        """Re-encrypt every key of the home under ``new``, all or nothing; return how many.

        ``extra``: other secrets written with :meth:`store_secret` (log and witness
        keys). Each key is written beside itself as ``*.new``; a journal naming them
        is committed (fsynced) and only then are they renamed over the old files.
        A crash before the commit leaves the old passphrase in force (the ``.new``
        files are removed at the next open); after it, the next open finishes the
        renames. Either way every key opens with one passphrase.
        """
        if not new:
            raise KeystoreError("the new passphrase is empty; give a non-empty one")
        paths = sorted(self._keys.glob("*.json")) if self._keys.exists() else []
        paths += [p for p in extra if p.exists()]
        secrets_ = {p: self._read_secret(p, f"key {p.name}") for p in paths}  # the old one
        pending = [str(p) for p in secrets_]
        atomic_write(self._journal, json.dumps({"commit": False, "paths": pending}).encode())
        for path, secret in secrets_.items():
            keyfile = _keyfile().create_keyfile_json(
                secret, new.encode(), kdf="scrypt", iterations=self.kdf.n
            )
            if path.name.startswith(("x25519-", "ed25519-")):
                keyfile.pop("address", None)
            staged = path.with_name(path.name + ".new")
            atomic_write(staged, json.dumps(keyfile).encode())
        atomic_write(self._journal, json.dumps({"commit": True, "paths": pending}).encode())
        self._finish_passphrase_change()
        self._passphrase = new
        self._unlocked.clear()
        return len(pending)

    def _finish_passphrase_change(self) -> None:
        """Complete (committed journal) or undo (stray ``.new`` files) a passphrase change."""
        try:
            journal = json.loads(self._journal.read_text())
        except (FileNotFoundError, ValueError):
            journal = None
        if journal:
            for name in journal.get("paths", []):
                staged = Path(name + ".new")
                if not staged.exists():
                    continue
                if journal.get("commit"):
                    os.replace(staged, name)
                    fsync_dir(staged.parent)
                else:
                    staged.unlink()
            self._journal.unlink(missing_ok=True)
        if self._keys.exists():
            for stray in self._keys.glob("*.json.new"):
                stray.unlink()

    # -- identities --------------------------------------------------------------------
    def store_secret(self, path: Path, secret: bytes) -> None:
        """Encrypt a 32-byte secret (another key, e.g. a log's Ed25519 seed) under the passphrase."""
        self._write_secret(path, secret)

    def load_secret(self, path: Path, *, what: str) -> bytes:
        """Decrypt a secret written by :meth:`store_secret`."""
        return self._read_secret(path, what)

    def names(self) -> list[str]:
        """Names of all identities, sorted."""
        if not self._identities.exists():
            return []
        return sorted(p.stem for p in self._identities.glob("*.json"))

    def list(self) -> list[IdentityRecord]:
        """All identity records, sorted by name."""
        return [self.get(n) for n in self.names()]

    def get(self, name: str) -> IdentityRecord:
        """The record of identity ``name``; suggests near names when there is none."""
        try:
            data = json.loads(self._record_path(name).read_text())
        except FileNotFoundError:
            raise IdentityNotFoundError(name, self.names()) from None
        except ValueError:
            raise KeystoreError(
                f"identity file {self._record_path(name)} is damaged; restore it from a backup"
            ) from None
        return IdentityRecord(**data)

    def find_by_address(self, address: str) -> IdentityRecord | None:
        """The identity whose DID address is ``address``, if any."""
        for record in self.list():
            if record.identity.lower() == address.lower():
                return record
        return None

    def find_by_key(self, address: str) -> IdentityRecord | None:
        """The identity whose current or a retired owner key is ``address``, if any."""
        return next((r for r in self.list() if r.holds_key(address)), None)

    def save(self, record: IdentityRecord) -> None:
        """Write an identity record atomically."""
        atomic_write(
            self._record_path(record.name), json.dumps(record.to_json(), indent=2).encode()
        )

    def create(self, name: str, kind: str) -> IdentityRecord:
        """Create identity ``name`` of ``kind`` with fresh owner and X25519 keys."""
        if not _NAME.match(name):
            raise KeystoreError(
                f"identity name {name!r} is not allowed; use 1-64 lowercase letters, digits, "
                "'.', '_' or '-', starting with a letter or digit"
            )
        if kind not in KINDS:
            raise KeystoreError(f"unknown identity kind {kind!r}; choose one of {', '.join(KINDS)}")
        if self._record_path(name).exists():
            raise KeystoreError(
                f"an identity named {name!r} already exists; pick another name or use it as it is"
            )
        owner = _account().create()
        x_key = X25519PrivateKey.generate()
        x_priv = x_key.private_bytes_raw()
        x_pub = x_key.public_key().public_bytes_raw()
        self._write_secret(self._keys / f"{owner.address.lower()[2:]}.json", bytes(owner.key))
        self._write_secret(self._keys / f"x25519-{x_pub.hex()}.json", x_priv)
        record = IdentityRecord(
            name=name,
            kind=kind,
            identity=str(owner.address),
            owner=str(owner.address),
            x25519_public=base64.b64encode(x_pub).decode(),
            created=time.time(),
        )
        self.save(record)
        return record

    def owner_account(self, name: str) -> LocalAccount:
        """Open the current owner key of identity ``name`` (asks for the passphrase once)."""
        record = self.get(name)
        return self.account_for(record.owner, what=f"identity {name!r}")

    def account_for(self, address: str, *, what: str) -> LocalAccount:
        """Open the owner key stored for ``address``."""
        secret = self._read_secret(self._keys / f"{address.lower()[2:]}.json", what)
        account: LocalAccount = _account().from_key(secret)
        return account

    def x25519_private(self, name: str) -> bytes:
        """The raw X25519 private key of identity ``name``."""
        record = self.get(name)
        pub = base64.b64decode(record.x25519_public)
        return self._read_secret(self._keys / f"x25519-{pub.hex()}.json", f"identity {name!r}")

    def new_owner_key(self, name: str) -> LocalAccount:
        """Make and store the next owner key of ``name``; mark it pending until confirmed."""
        record = self.get(name)
        self.owner_account(name)  # proves the passphrase before anything is written
        account: LocalAccount = _account().create(extra_entropy=secrets.token_hex(16))
        self._write_secret(self._keys / f"{account.address.lower()[2:]}.json", bytes(account.key))
        record.pending_owner = str(account.address)
        self.save(record)
        return account

    def commit_owner(self, name: str, new_owner: str) -> IdentityRecord:
        """Record ``new_owner`` as the owner of ``name`` once the chain confirmed it."""
        record = self.get(name)
        record.retired_owners.append(record.owner)
        record.owner = new_owner
        record.pending_owner = None
        self.save(record)
        return record
