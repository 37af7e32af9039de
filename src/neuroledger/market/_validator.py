"""The validator loop: watch the requests assigned to a validator, run each check, commit,
reveal once reveals open, and finalize and settle what is due.

``neuroledger validator run`` runs it. One failing request is reported and skipped; it
never stops the loop.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from neuroledger.chain import Chain
from neuroledger.errors import MarketError
from neuroledger.market._checks import CheckResult, run_check
from neuroledger.market._validation import RequestView, Validation

__all__ = ["Action", "Check", "Validator"]


@dataclass(frozen=True)
class Action:
    """One thing the validator loop did."""

    request_hash: str
    action: str  # committed, revealed, finalized, settled, failed
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


Check = Callable[[Chain, dict[str, Any], RequestView], CheckResult]


class Validator:
    """The loop of validator ``name``: check, commit, reveal, finalize and settle.

    ``check`` runs a request's check (by default :func:`run_check` with the job's agreed
    terms); tests give a dishonest one to play a lying validator.
    """

    def __init__(self, validation: Validation, name: str, *, check: Check | None = None) -> None:
        self.v = validation
        self.name = name
        self.address = validation.address_of(name)
        self.check = check or self._run_check
        self._cursor = 0  # requests before it are settled or not ours to act on
        self._done: set[str] = set()

    def _run_check(
        self, chain: Chain, document: dict[str, Any], request: RequestView
    ) -> CheckResult:
        agreed = deliverable = None
        if request.job_id is not None:
            from neuroledger.market._jobs import Jobs

            terms = self.v.job_terms(request.job_id)
            agreed = terms[3] if terms else b"\0" * 32
            deliverable = Jobs(chain, self.v.keystore).status(request.job_id).deliverable or ""
        return run_check(chain, document, agreed_check=agreed, deliverable=deliverable)

    def step(self) -> list[Action]:
        """One pass over the requests assigned to this validator."""
        actions: list[Action] = []
        hashes = self.v.assigned(self.address, offset=self._cursor)
        now = self.v.now()
        window = int(self.v.contract.functions.challengeWindow().call())
        for h in hashes:
            if h in self._done:
                continue
            try:
                action = self._act(h, now, window)
            except Exception as e:  # one bad request must not stop the loop
                first = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
                action = Action(h, "failed", first)
            if action is not None:
                actions.append(action)
        # Requests settled (or not ours) at the head are never read again.
        while hashes and hashes[0] in self._done:
            self._done.discard(hashes.pop(0))
            self._cursor += 1
        return actions

    def _act(self, h: str, now: int, window: int) -> Action | None:
        r = self.v.show(h)
        mine = next((vote for vote in r.votes if vote.validator == self.address), None)
        if r.single or mine is None:
            self._done.add(h)
            return None
        if r.status == "pending":
            all_committed = r.committed == r.n
            if not mine.committed and now < r.commit_deadline:
                try:
                    document = self.v.document(h)
                    result = self.check(self.v.chain, document, r)
                except MarketError as e:
                    result = CheckResult(0, {"error": str(e)})
                self.v.commit(h, result.response, by=self.name, evidence=result.evidence)
                return Action(h, "committed", f"response {result.response}")
            reveals_open = all_committed or now >= r.commit_deadline
            if mine.committed and not mine.revealed and reveals_open and now < r.reveal_deadline:
                self.v.reveal(h, by=self.name)
                return Action(h, "revealed")
            if now >= r.reveal_deadline or r.revealed == r.n:
                self.v.finalize(h, by=self.name)
                return Action(h, "finalized", self.v.show(h).status)
            return None
        if r.settled:
            self._done.add(h)
            return None
        if now >= r.updated_at + window:
            self.v.settle(h, by=self.name)
            self._done.add(h)
            return Action(h, "settled", self.v.vote(h, self.address).outcome or "")
        return None

    def run(self, *, interval: float = 2.0, duration: float | None = None,
            on_action: Callable[[Action], None] | None = None,
            stop: Callable[[], bool] | None = None) -> list[Action]:  # fmt: skip
        """Pass over the assigned requests every ``interval`` seconds, for ``duration``
        seconds (None: until ``stop`` says so)."""
        if interval <= 0:
            raise MarketError("the interval must be positive")
        deadline = None if duration is None else time.monotonic() + duration
        done: list[Action] = []
        while True:
            for action in self.step():
                done.append(action)
                if on_action is not None:
                    on_action(action)
            if (stop is not None and stop()) or (
                deadline is not None and time.monotonic() >= deadline
            ):
                return done
            time.sleep(
                interval
                if deadline is None
                else max(0.0, min(interval, deadline - time.monotonic()))
            )
