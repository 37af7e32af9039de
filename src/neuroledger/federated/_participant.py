"""A participant's side of a federated task: train, post (masked) updates, validate, attest,
claim. Each participant is its own process; it trusts the owner's board messages only
after recomputing what they claim."""

from __future__ import annotations

import hashlib
import logging
import math
import queue
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from eth_account.signers.local import LocalAccount
from numpy.typing import NDArray

from neuroledger.errors import NeuroLedgerError, PhaseTimeoutError, TransactionRevertedError
from neuroledger.federated import _secure_round as secure_round
from neuroledger.federated._board import Board
from neuroledger.federated._dp import clip_update
from neuroledger.federated._faults import Fault
from neuroledger.federated._ledger import TaskLedger, vector_digest
from neuroledger.federated._models import LogisticModel, local_train
from neuroledger.federated._protocol import (
    DONE,
    Outcome,
    RoundPaths,
    RoundResult,
    designated_validators,
)
from neuroledger.federated._recompute import recompute_aggregate
from neuroledger.federated._spec import TaskSpec
from neuroledger.federated._vectors import Vector, get_vector, put_vector
from neuroledger.store import BlobStore

__all__ = ["Participant"]

log = logging.getLogger("neuroledger.federated")


@dataclass
class Participant:
    """One participant's side of a task: train, mask, reveal, validate, attest, claim."""

    board: Board
    store: BlobStore
    spec: TaskSpec
    account: LocalAccount
    x: Vector
    y: NDArray[np.int64]
    x25519_private: bytes
    keys_of: Callable[[str], bytes]  # address -> its published X25519 key
    ledger: TaskLedger | None = None
    fault: Fault | None = None
    timeout: float = 600.0
    seed: int | None = None
    attested: list[int] = field(default_factory=list)
    _attest_queue: queue.Queue[RoundResult | None] = field(default_factory=queue.Queue)
    _models: dict[int, str] = field(default_factory=dict)
    _rosters: dict[int, list[str]] = field(default_factory=dict)

    @property
    def address(self) -> str:
        """The account this participant signs with."""
        return str(self.account.address)

    @property
    def label(self) -> str:
        """How the logs name this participant."""
        return self.address[:10]

    def run(self, *, on_round: Callable[[int], None] | None = None) -> dict[str, Any]:
        """Serve every round until the owner posts ``done.json``; then claim the reward."""
        rng = np.random.default_rng(self.seed)
        model = LogisticModel(self.spec.features, self.spec.classes)
        if self.fault is not None and self.fault.kind == "label-flip":
            self.y = (self.spec.classes - 1) - self.y
            log.warning("%s: poisoning on purpose: training on flipped labels", self.label)
        attester = threading.Thread(target=self._attest_loop, name="attester", daemon=True)
        attester.start()
        played = 0
        dropped = False
        try:
            for r in range(1, self.spec.rounds + 1):
                paths = RoundPaths(r)
                start = self.wait_owner(paths.start, f"round {r} to start")
                if start is None:
                    break
                self._models[r] = start["model"]
                self._rosters[r] = list(start["participants"])
                if self.address in start["participants"]:
                    outcome = self._play(r, start, model, rng)
                    if outcome == "dropped":
                        dropped = True
                        log.warning("%s: dropping out on purpose (fault injection)", self.label)
                        break
                    played += outcome == "played"
                else:
                    log.info("%s: not in round %d's roster", self.label, r)
                result = self.wait_owner(paths.result, f"round {r}'s result")
                if result is None:
                    break
                self._attest_queue.put(RoundResult.from_json(result))
                if on_round is not None:
                    on_round(r)
        finally:
            self._attest_queue.put(None)
            attester.join()
        if dropped:
            return {"address": self.address, "rounds_played": played, "dropped": True}
        done = Board.wait(
            lambda: self.board.read(DONE, signer=self.spec.owner),
            timeout=self.timeout,
            what=f"task {self.spec.task_id} to finish",
        )
        reward = int(done.body["rewards"].get(self.address, 0))
        claimed = False
        if self.ledger is not None:  # the reward, if any, and the stake come back together
            self.ledger.claim(self.account, self.spec.task_id)
            claimed = True
        return {
            "address": self.address,
            "rounds_played": played,
            "attested": self.attested,
            "reward_wei": reward,
            "claimed": claimed,
            "final_model_asset": done.body.get("final_model_asset"),
        }

    def wait_owner(self, rel: str, what: str) -> dict[str, Any] | None:
        """The owner's message at ``rel``, waited for; None once the task is done instead."""

        def probe() -> dict[str, Any] | None:
            message = self.board.read(rel, signer=self.spec.owner)
            if message is not None:
                return message.body
            if self.board.read(DONE, signer=self.spec.owner) is not None:
                return {}
            return None

        body = Board.wait(probe, timeout=self.timeout, what=what)
        return body or None

    # -- one round -------------------------------------------------------------------
    def delta(
        self, r: int, start: Mapping[str, Any], model: LogisticModel, rng: np.random.Generator,
        n: int,
    ) -> tuple[str, Vector]:  # fmt: skip
        """This participant's update for round ``r`` (clipped and noised as the task says),
        and the digest of the model it was trained from."""
        base = str(start["model"])
        if self.fault is not None and self.fault.active("stale", r) and r > 1:
            base = self._models[r - 1]
            log.warning(
                "%s: round %d: sending an update of round %d's model on purpose",
                self.label, r, r - 1,
            )  # fmt: skip
        w = get_vector(self.store, base, self.spec.size)
        spec = self.spec
        trained = local_train(
            model, w, self.x, self.y, epochs=spec.local_epochs, lr=spec.lr, mu=spec.mu
        )
        delta = trained - w
        if self.fault is not None and self.fault.active("scale", r):
            delta = -10.0 * delta
        if spec.secure or spec.dp_noise is not None:
            delta, _ = clip_update(delta, spec.clip)
        if spec.dp_noise is not None:
            # Distributed DP: each of the n clients adds 1/n of the noise variance.
            sigma = spec.dp_noise * spec.clip / math.sqrt(n)
            delta = delta + rng.normal(0.0, sigma, delta.shape)
        if self.fault is not None and self.fault.active("nan", r):
            delta[0] = np.nan
        if self.fault is not None and self.fault.active("wrong-shape", r):
            delta = np.append(delta, 0.0)
        return base, np.asarray(delta, dtype=np.float64)

    def _play(
        self, r: int, start: Mapping[str, Any], model: LogisticModel, rng: np.random.Generator
    ) -> Outcome:
        if self.spec.secure:
            return secure_round.participant_round(self, r, start, model, rng)
        if self.fault is not None and self.fault.active("drop", r):
            return "dropped"
        base, delta = self.delta(r, start, model, rng, len(start["participants"]))
        paths = RoundPaths(r)
        self.board.post(
            paths.member(paths.update, self.address),
            {"round": r, "base": base, "update": put_vector(self.store, delta),
             "examples": len(self.y)},
            self.account,
        )  # fmt: skip
        return "played"

    # -- validation ------------------------------------------------------------------
    def _attest_loop(self) -> None:
        while (result := self._attest_queue.get()) is not None:
            try:
                self._validate(result)
            except NeuroLedgerError as exc:
                log.error("%s: round %s: could not validate: %s", self.label, result.round, exc)

    def _validate(self, result: RoundResult) -> None:
        r = result.round
        mine = vector_digest(recompute_aggregate(self.spec, self.board, self.store, result))
        if mine != result.aggregate:
            log.error(
                "%s: round %d: the owner's aggregate %s differs from my recomputation %s; "
                "not attesting", self.label, r, result.aggregate[:12], mine[:12],
            )  # fmt: skip
            return
        if self.ledger is None:
            self.attested.append(r)
            return
        ledger, task = self.ledger, self.spec.task_id

        # The owner says on the board when a round is on chain; the chain is then checked once.
        Board.wait(
            lambda: self.board.read(RoundPaths(r).recorded, signer=self.spec.owner),
            timeout=self.timeout,
            what=f"round {r} to be recorded on chain",
        )
        # The wrong-attest fault goes first: whether or not the round is already final, the
        # contract must refuse it (a wrong digest, or a round that is no longer current).
        if self.fault is not None and self.fault.active("wrong-attest", r):
            try:
                ledger.attest(self.account, task, r, hashlib.sha256(b"wrong").hexdigest())
            except TransactionRevertedError as exc:
                log.warning(
                    "%s: round %d: my wrong attestation was refused by the contract: %s",
                    self.label, r, exc,
                )  # fmt: skip
            return
        state = ledger.task(task)
        if state.finalized_round >= r or state.status != 1 or state.current_round != r:
            return  # final already (or over), or the owner's note is false: nothing to attest
        if self.address not in designated_validators(
            self._rosters.get(r, []), r, self.spec.validators
        ):
            # A backup validator: attest only if the designated ones have not made it final.
            try:
                Board.wait(
                    lambda: True if ledger.task(task).finalized_round >= r else None,
                    timeout=self.spec.phase_timeout,
                    what="",
                    poll=1.0,
                )
                return
            except PhaseTimeoutError:
                log.warning(
                    "%s: round %d: not final after %.0f s; attesting as a backup validator",
                    self.label, r, self.spec.phase_timeout,
                )  # fmt: skip
                if ledger.task(task).finalized_round >= r:
                    return
        if ledger.has_attested(task, r, self.address):
            return
        try:
            ledger.attest(self.account, task, r, mine)
            self.attested.append(r)
            log.info("%s: round %d: attested aggregate %s", self.label, r, mine[:12])
        except TransactionRevertedError as exc:
            if "not the current round" not in str(exc):
                raise
            # the round became final while our attestation was in flight: nothing lost
