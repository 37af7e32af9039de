"""The task board: signed messages between a task's owner and its participants.

Participants and the owner are separate processes that share a directory (a
network file system, a synced bucket) holding the content store and this
board. Every message is one JSON file, written atomically, holding a body and
an EIP-191 signature of the body's RFC 8785 canonical form by the sender's
account. A reader accepts a message only when the signature recovers to the
expected sender; anything else is logged and ignored, so a corrupt or forged
file cannot steer a round. Large payloads (updates, models) go to the content
store; messages carry their digests.

Layout under ``<shared>/tasks/<task id>/``::

    task.json                     the task's spec (owner)
    participants/<address>.json   a participant's identity and dataset (participant)
    r<N>/start.json               round N's model (owner)
    r<N>/<phase>/<address>.json   a participant's message in a phase of round N
    r<N>/<phase>.json             the owner's message closing a phase
    done.json                     final model and rewards (owner)
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount

from neuroledger._fs import atomic_write
from neuroledger._json import loads_bounded
from neuroledger.core import canonical
from neuroledger.errors import PhaseTimeoutError

__all__ = ["Board", "Message"]

log = logging.getLogger("neuroledger.federated")

T = TypeVar("T")

#: A message file larger than this is not read (shares of 100 clients fit easily).
MAX_MESSAGE_BYTES = 4 << 20


@dataclass(frozen=True)
class Message:
    """A verified message: its body and the address that signed it."""

    body: dict[str, Any]
    signer: str


class Board:
    """The message board of one task in a shared directory."""

    def __init__(self, shared: Path, task_id: int) -> None:
        self.shared = shared
        self.task_id = task_id
        self.dir = shared / "tasks" / str(task_id)

    # -- writing ---------------------------------------------------------------------
    def post(self, rel: str, body: dict[str, Any], account: LocalAccount) -> None:
        """Sign ``body`` with ``account`` and write it at ``rel`` (atomically)."""
        raw = canonical(body)
        signature = account.sign_message(encode_defunct(raw)).signature.hex()
        envelope = {"body": body, "signer": str(account.address), "signature": signature}
        atomic_write(self.dir / rel, json.dumps(envelope).encode(), mode=0o644)

    # -- reading ---------------------------------------------------------------------
    def read(self, rel: str, *, signer: str | None = None) -> Message | None:
        """The message at ``rel`` if present and signed by ``signer`` (any signer if None)."""
        path = self.dir / rel
        try:
            if path.stat().st_size > MAX_MESSAGE_BYTES:
                log.warning("ignoring %s: larger than %d bytes", rel, MAX_MESSAGE_BYTES)
                return None
            envelope = loads_bounded(path.read_bytes(), max_bytes=MAX_MESSAGE_BYTES)
            body = envelope["body"]
            claimed = str(envelope["signer"])
            recovered = Account.recover_message(
                encode_defunct(canonical(body)), signature=bytes.fromhex(envelope["signature"])
            )
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring %s: not a signed board message (%s)", rel, exc)
            return None
        except Exception as exc:  # eth_account raises assorted errors on bad signatures
            log.warning("ignoring %s: signature does not verify (%s)", rel, type(exc).__name__)
            return None
        if recovered.lower() != claimed.lower() or not isinstance(body, dict):
            log.warning("ignoring %s: signed by %s, not by the claimed %s", rel, recovered, claimed)
            return None
        if signer is not None and recovered.lower() != signer.lower():
            log.warning("ignoring %s: signed by %s, expected %s", rel, recovered, signer)
            return None
        return Message(body=body, signer=recovered)

    def from_each(self, rel_dir: str, addresses: list[str]) -> dict[str, Message]:
        """Messages in ``rel_dir`` from each of ``addresses`` that posted one (file = address)."""
        found: dict[str, Message] = {}
        for address in addresses:
            message = self.read(f"{rel_dir}/{address.lower()}.json", signer=address)
            if message is not None:
                found[address] = message
        return found

    def senders(self, rel_dir: str) -> list[str]:
        """Addresses with a file in ``rel_dir`` (unverified; read them to verify)."""
        folder = self.dir / rel_dir
        if not folder.is_dir():
            return []
        return sorted(p.stem for p in folder.glob("0x*.json"))

    @staticmethod
    def wait(probe: Callable[[], T | None], *, timeout: float, what: str, poll: float = 0.02) -> T:
        """Poll ``probe`` until it returns something other than None, for up to ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while True:
            value = probe()
            if value is not None:
                return value
            if time.monotonic() >= deadline:
                raise PhaseTimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
            time.sleep(poll)
