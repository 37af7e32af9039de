"""The audit logs of one home: named logs, their encrypted keys, witnesses.

``<home>/audit/<name>/log/`` is the tlog-tiles directory (serve it as it is);
``<home>/audit/<name>/ed25519-log.json`` is the log's signing key, encrypted
with the keystore passphrase like every other key. Witness keys live in
``<home>/audit/witnesses/``, with the last checkpoint each witness cosigned.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from neuroledger._fs import atomic_write
from neuroledger.audit._log import HISTORY_DIR, TileLog
from neuroledger.audit._note import (
    COSIGNATURE,
    ED25519,
    NoteSigner,
    NoteVerifier,
    add_cosignature,
    open_checkpoint,
    parse_note,
)
from neuroledger.core import verify_consistency
from neuroledger.errors import AuditError
from neuroledger.identity import Keystore

__all__ = ["AuditLogs", "LogInfo", "Witnessed"]

_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


@dataclass(frozen=True)
class LogInfo:
    """Where a log lives and how to check it."""

    name: str
    origin: str
    vkey: str
    directory: Path


@dataclass(frozen=True)
class Witnessed:
    """A cosignature added after a consistency check."""

    witness: str
    origin: str
    old_size: int
    new_size: int


class AuditLogs:
    """Named audit logs under ``<home>/audit``."""

    def __init__(self, home: Path, keystore: Keystore) -> None:
        self.base = home / "audit"
        self.keystore = keystore

    def _dir(self, name: str) -> Path:
        if not _NAME.fullmatch(name) or name == "witnesses":
            raise AuditError(
                f"log name {name!r} is not allowed; use 1-64 lowercase letters, digits, '.', '_' or '-'"
            )
        return self.base / name

    def names(self) -> list[str]:
        """Names of the logs of this home."""
        if not self.base.exists():
            return []
        return sorted(p.name for p in self.base.iterdir() if (p / "log").is_dir())

    def create(self, name: str, *, origin: str | None = None) -> LogInfo:
        """Create log ``name`` with a fresh Ed25519 key (encrypted in the home)."""
        directory = self._dir(name)
        if (directory / "log").exists():
            raise AuditError(f"log {name!r} already exists in {directory}")
        signer = NoteSigner.generate(origin or f"neuroledger.local/{name}")
        directory.mkdir(parents=True, exist_ok=True)
        self.keystore.store_secret(directory / "ed25519-log.json", signer.seed)
        TileLog.create(directory / "log", origin=signer.name, signer=signer)
        atomic_write(directory / "vkey", (signer.verifier.vkey + "\n").encode(), mode=0o644)
        return self.info(name)

    def info(self, name: str) -> LogInfo:
        """A log's origin, verifier key and directory."""
        directory = self._dir(name)
        try:
            vkey = (directory / "vkey").read_text().strip()
        except FileNotFoundError:
            known = ", ".join(self.names()) or "none yet"
            raise AuditError(
                f"no audit log named {name!r} (logs: {known}); create it with `neuroledger audit create {name}`"
            ) from None
        verifier = NoteVerifier.from_vkey(vkey)
        return LogInfo(name=name, origin=verifier.name, vkey=vkey, directory=directory / "log")

    def signer(self, name: str) -> NoteSigner:
        """The log's signing key (asks for the passphrase)."""
        info = self.info(name)
        seed = self.keystore.load_secret(
            self._dir(name) / "ed25519-log.json", what=f"audit log {name}"
        )
        signer = NoteSigner(name=info.origin, seed=seed, sig_type=ED25519)
        if signer.verifier.vkey != info.vkey:
            raise AuditError(
                f"the key of log {name} does not match its vkey file; restore both from a backup"
            )
        return signer

    def open(self, name: str, *, with_key: bool = False) -> TileLog:
        """Open log ``name`` (with its key to append and sign)."""
        info = self.info(name)
        return TileLog.open(info.directory, signer=self.signer(name) if with_key else None)

    # -- witnesses -------------------------------------------------------------------
    def _witness_dir(self) -> Path:
        return self.base / "witnesses"

    def witness_key(self, witness: str) -> NoteSigner:
        """The cosigning key of witness ``witness`` (created on first use)."""
        if not _NAME.fullmatch(witness):
            raise AuditError(f"witness name {witness!r} is not allowed")
        path = self._witness_dir() / f"ed25519-{witness}.json"
        if not path.exists():
            signer = NoteSigner.generate(
                f"neuroledger.local/witness/{witness}", sig_type=COSIGNATURE
            )
            self.keystore.store_secret(path, signer.seed)
        else:
            seed = self.keystore.load_secret(path, what=f"witness {witness}")
            signer = NoteSigner(
                name=f"neuroledger.local/witness/{witness}", seed=seed, sig_type=COSIGNATURE
            )
        vkey = self._witness_dir() / f"{witness}.vkey"
        if not vkey.exists():  # public: lets `audit verify` check cosignatures without a key
            atomic_write(vkey, (signer.verifier.vkey + "\n").encode(), mode=0o644)
        return signer

    def witness_verifiers(self) -> list[NoteVerifier]:
        """The public keys of this home's witnesses."""
        directory = self._witness_dir()
        if not directory.exists():
            return []
        return [
            NoteVerifier.from_vkey(p.read_text().strip()) for p in sorted(directory.glob("*.vkey"))
        ]

    def witness(self, name: str, witness: str) -> Witnessed:
        """Cosign log ``name``'s checkpoint after checking it is consistent with the last one seen."""
        info = self.info(name)
        log = TileLog.open(info.directory)
        verifier = NoteVerifier.from_vkey(info.vkey)
        text = (info.directory / "checkpoint").read_text()
        checkpoint = open_checkpoint(text, verifier)
        signer = self.witness_key(witness)
        seen_path = self._witness_dir() / witness / f"{info.origin.replace('/', '_')}.checkpoint"
        old_size = 0
        if seen_path.exists():
            old = open_checkpoint(seen_path.read_text(), verifier)
            old_size = old.size
            if checkpoint.size < old.size:
                raise AuditError(
                    f"log {info.origin} now shows size {checkpoint.size}, smaller than the {old.size} "
                    f"witness {witness} already cosigned: refusing (possible rollback or fork)"
                )
            verify_consistency(
                old.size, checkpoint.size, log.consistency_proof(old.size, checkpoint.size) if old.size else [],
                old.root, checkpoint.root,
            )  # fmt: skip
        already = {s.name for s in parse_note(text).signatures}
        if signer.name not in already:
            cosigned = add_cosignature(text, signer)
            atomic_write(info.directory / "checkpoint", cosigned.encode(), mode=0o644)
            # The history keeps the cosignature too, for proof bundles of this size later.
            history = info.directory / HISTORY_DIR / str(checkpoint.size)
            if history.exists() and parse_note(history.read_text()).text == parse_note(text).text:
                atomic_write(history, cosigned.encode(), mode=0o644)
        atomic_write(seen_path, text.encode(), mode=0o644)
        return Witnessed(
            witness=signer.name, origin=info.origin, old_size=old_size, new_size=checkpoint.size
        )
