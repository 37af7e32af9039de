"""The protocol both roles share: where each message lives on the board, what a round's
result holds, and who validates it first.

>>> paths = RoundPaths(3)
>>> paths.start, paths.update, paths.member(paths.update, "0xABC")
('r3/start.json', 'r3/update', 'r3/update/0xabc.json')
>>> designated_validators(["0xc", "0xa", "0xb"], 2, 2)
['0xb', '0xc']
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from neuroledger.errors import FederatedError
from neuroledger.federated._board import Board
from neuroledger.federated._spec import TaskSpec

__all__ = [
    "DONE",
    "PARTICIPANTS",
    "Outcome",
    "RoundPaths",
    "RoundResult",
    "designated_validators",
    "owner_message",
    "participant_path",
]

#: How a participant's round went: it sent an update, it was left out, or it dropped out
#: on purpose (fault injection).
Outcome = Literal["played", "skipped", "dropped"]

#: The owner's closing message: final model, scores and rewards.
DONE = "done.json"
#: Where each participant posts its join message.
PARTICIPANTS = "participants"


def participant_path(address: str) -> str:
    """The board path of a participant's join message."""
    return f"{PARTICIPANTS}/{address.lower()}.json"


@dataclass(frozen=True)
class RoundPaths:
    """The board paths of round ``r``: the owner's notes (files) and the phases in which
    every participant posts one message (folders)."""

    r: int

    def _note(self, name: str) -> str:
        return f"r{self.r}/{name}.json"

    start = property(lambda self: self._note("start"), doc="the round's model and roster")
    roster = property(lambda self: self._note("roster"), doc="secure: members and keys")
    dealers = property(lambda self: self._note("u2"), doc="secure: who dealt its shares")
    survivors = property(lambda self: self._note("survivors"), doc="secure: whose update counts")
    result = property(lambda self: self._note("result"), doc="the round's result")
    recorded = property(lambda self: self._note("recorded"), doc="the round is on chain")
    keys = property(lambda self: f"r{self.r}/keys", doc="secure: round keys")
    shares = property(lambda self: f"r{self.r}/shares", doc="secure: sealed shares")
    update = property(lambda self: f"r{self.r}/update", doc="updates (masked when secure)")
    unmask = property(lambda self: f"r{self.r}/unmask", doc="secure: revealed shares")

    @staticmethod
    def member(phase: str, address: str) -> str:
        """The path of ``address``'s message in ``phase``."""
        return f"{phase}/{address.lower()}.json"


@dataclass(frozen=True, kw_only=True)
class RoundResult:
    """What the owner posts when a round closes; validators recompute from it."""

    round: int
    base: str  # digest of the model the round trained
    updates: dict[str, str]  # participant -> update digest (masked when secure)
    weights: dict[str, float]
    rejected: dict[str, str]  # participant -> reason
    dropped: list[str]
    denominator: int
    revealers: list[str] | None = None  # secure aggregation only
    aggregate: str = ""  # digest of the aggregate delta
    model: str = ""  # digest of the new model

    def with_(self, **changes: Any) -> RoundResult:
        """A copy with ``changes``."""
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        """The result as the board's JSON (``revealers`` only under secure aggregation)."""
        body = dataclasses.asdict(self)
        if self.revealers is None:
            del body["revealers"]
        return body

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> RoundResult:
        """Parse a result read from the board; ``FederatedError`` if it is malformed."""
        try:
            revealers = body.get("revealers")
            return cls(
                round=int(body["round"]),
                base=str(body["base"]),
                updates={str(a): str(d) for a, d in dict(body["updates"]).items()},
                weights={str(a): float(w) for a, w in dict(body["weights"]).items()},
                rejected={str(a): str(w) for a, w in dict(body["rejected"]).items()},
                dropped=[str(a) for a in body["dropped"]],
                denominator=int(body["denominator"]),
                revealers=None if revealers is None else [str(a) for a in revealers],
                aggregate=str(body.get("aggregate", "")),
                model=str(body.get("model", "")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise FederatedError(f"a round result on the board is malformed: {exc!r}") from None


def owner_message(board: Board, spec: TaskSpec, rel: str) -> dict[str, Any]:
    """The owner's message at ``rel``; ``FederatedError`` if it is not there."""
    message = board.read(rel, signer=spec.owner)
    if message is None:
        raise FederatedError(f"the owner's {rel} is missing from the board of task {spec.task_id}")
    return message.body


def designated_validators(roster: list[str], r: int, k: int) -> list[str]:
    """The k participants that attest round ``r`` first (a rotation over the sorted roster).

    Everyone can compute it; the others validate too and attest as backups
    when the round is not final after a phase timeout.
    """
    members = sorted(roster)
    if not members:
        return []
    return [members[(r - 1 + j) % len(members)] for j in range(min(k, len(members)))]
