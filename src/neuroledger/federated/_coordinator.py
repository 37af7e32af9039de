"""The task owner's side of a federated task: rounds, aggregation, scoring, rewards.

Each round the owner posts the model, gathers the participants' updates (with secure
aggregation, through :mod:`~neuroledger.federated._secure_round`), checks them, computes the
aggregate with :func:`~neuroledger.federated._recompute.recompute_aggregate` (the function
validators run too), posts the result and hands it to the
:class:`~neuroledger.federated._recorder.RoundWriter`. At the end it scores contributions
(Shapley values over the rounds' updates on its validation set; by rounds contributed under
secure aggregation, where single updates are never seen) and shares out the pool.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from eth_account.signers.local import LocalAccount
from numpy.typing import NDArray

from neuroledger.errors import FederatedError, NeuroLedgerError
from neuroledger.federated import _secure_round as secure_round
from neuroledger.federated._aggregators import FedAvg, Update
from neuroledger.federated._board import Board, Message
from neuroledger.federated._contribution import shapley
from neuroledger.federated._dp import PrivacyAccountant
from neuroledger.federated._ledger import TaskLedger, reward_shares
from neuroledger.federated._models import LogisticModel
from neuroledger.federated._protocol import (
    DONE,
    PARTICIPANTS,
    RoundPaths,
    RoundResult,
    participant_path,
)
from neuroledger.federated._recompute import recompute_aggregate
from neuroledger.federated._recorder import RegisterRound, RoundWriter
from neuroledger.federated._spec import TaskSpec
from neuroledger.federated._vectors import Vector, get_vector, put_vector
from neuroledger.store import BlobStore

__all__ = ["Coordinator", "RunReport"]

log = logging.getLogger("neuroledger.federated")

#: Registers the final model: (weights, scores, rewards, round assets) -> (model asset,
#: training-run asset).
Finish = Callable[
    [Vector, dict[str, float], dict[str, int], list[str]], tuple[str | None, str | None]
]


@dataclass
class RunReport:
    """What a run did: per-round figures, final model, contributions, rewards."""

    task_id: int
    rounds: list[dict[str, Any]]
    final_model: str
    scores: dict[str, float]
    rewards: dict[str, int]
    participants: list[str]
    final_model_asset: str | None = None
    training_run_asset: str | None = None
    round_assets: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """The report as JSON."""
        return asdict(self)


class Coordinator:
    """The task owner's side: rounds, aggregation, ledger, scoring, final model, rewards."""

    def __init__(
        self,
        board: Board,
        store: BlobStore,
        spec: TaskSpec,
        account: LocalAccount,
        *,
        validation: tuple[Vector, NDArray[np.int64]],
        ledger: TaskLedger | None = None,
        join_timeout: float = 300.0,
        register_round: RegisterRound | None = None,
    ) -> None:
        self.board, self.store, self.spec, self.account = board, store, spec, account
        self.xv, self.yv = validation
        self.ledger = ledger
        self.join_timeout = join_timeout
        self.register_round = register_round
        self.model = LogisticModel(spec.features, spec.classes)
        self.accountant = (
            PrivacyAccountant(noise_multiplier=spec.dp_noise, sampling_probability=1.0)
            if spec.dp_noise is not None
            else None
        )
        self.history: list[tuple[Vector, dict[str, Vector], dict[str, float]]] = []
        self.participation: dict[str, int] = {}

    # -- admission -------------------------------------------------------------------
    def admitted(self, check: Callable[[Message], str | None] | None = None) -> list[str]:
        """Participants with a valid join message (and, with a ledger, joined on chain)."""
        found = []
        for address in self.board.senders(PARTICIPANTS):
            message = self.board.read(participant_path(address))
            if message is None or message.signer.lower() != address:
                continue
            reason = check(message) if check is not None else None
            if (
                reason is None
                and self.ledger is not None
                and not self.ledger.is_participant(self.spec.task_id, message.signer)
            ):
                reason = "has not joined on chain"
            if reason:
                log.warning("ignoring participant %s: %s", message.signer, reason)
                continue
            found.append(message.signer)
        return sorted(found)

    def wait_participants(self, check: Callable[[Message], str | None] | None = None) -> list[str]:
        """Wait until ``min_participants`` have joined; return them."""
        return Board.wait(
            lambda: a if len(a := self.admitted(check)) >= self.spec.min_participants else None,
            timeout=self.join_timeout,
            what=f"{self.spec.min_participants} participants to join task {self.spec.task_id}",
            poll=0.2,
        )

    # -- gathering -------------------------------------------------------------------
    def gather(
        self, rel_dir: str, expected: list[str], r: int, *, need: int = 1
    ) -> dict[str, Message]:
        """Messages of round ``r`` in ``rel_dir`` from ``expected``: all, or what came by the timeout."""
        deadline = time.monotonic() + self.spec.phase_timeout
        phase = rel_dir.split("/")[-1]
        while True:
            got = {
                a: m
                for a, m in self.board.from_each(rel_dir, expected).items()
                if m.body.get("round") == r
            }
            if len(got) == len(expected) or time.monotonic() >= deadline:
                break
            time.sleep(0.02)
        for a in expected:
            if a not in got:
                log.warning(
                    "round %d: %s sent nothing to %s by the %.0f s deadline; going on without it",
                    r, a, phase, self.spec.phase_timeout,
                )  # fmt: skip
        if len(got) < need:
            raise FederatedError(
                f"round {r}: only {len(got)} participants answered in {phase}; {need} are "
                "needed (check that participant processes run, or raise --phase-timeout)"
            )
        return got

    def accept(
        self, r: int, base: str, got: Mapping[str, Message], dtype: str, note: str
    ) -> tuple[dict[str, str], dict[str, float], dict[str, str]]:
        """Split a round's updates into accepted ones (digests, weights) and rejections."""
        updates: dict[str, str] = {}
        weights: dict[str, float] = {}
        rejected: dict[str, str] = {}
        for address, message in sorted(got.items()):
            reason = self._check_update(r, base, message, dtype)
            if reason is not None:
                log.warning("round %d: rejected the update of %s: %s%s", r, address, reason, note)
                rejected[address] = reason
                continue
            updates[address] = str(message.body["update"])
            weights[address] = float(message.body["examples"])
        return updates, weights, rejected

    def _check_update(self, r: int, base: str, message: Message, dtype: str) -> str | None:
        """Why the update is rejected, or None."""
        body = message.body
        if body.get("base") != base:
            return f"stale: trained on model {str(body.get('base'))[:12]}, round {r}'s model is {base[:12]}"
        try:
            vector = get_vector(self.store, str(body["update"]), self.spec.size, dtype=dtype)
        except (NeuroLedgerError, KeyError, ValueError) as exc:
            return f"bad update blob: {exc}"
        if dtype == "<f8" and not np.all(np.isfinite(vector)):
            return "update holds NaN or infinite values"
        examples = body.get("examples")
        if not isinstance(examples, int) or examples <= 0:
            return f"examples {examples!r} is not a positive count"
        return None

    # -- the run ---------------------------------------------------------------------
    def run(
        self,
        participants: list[str],
        *,
        on_round: Callable[[dict[str, Any]], None] | None = None,
        finish: Finish | None = None,
        pool_wei: int = 0,
    ) -> RunReport:
        """Run every round with ``participants``; score, finish and return the report."""
        started = time.monotonic()
        w = get_vector(self.store, self.spec.initial_model, self.spec.size)
        writer = (
            RoundWriter(
                self.ledger, self.account, self.spec.task_id, wait_final=self.wait_final,
                register_round=self.register_round,
                # Tell validators on the board, so they need not poll the chain.
                on_recorded=lambda r, root: self.board.post(
                    RoundPaths(r).recorded, {"round": r, "commitments_root": root}, self.account
                ),
            )
            if self.ledger is not None
            else None
        )  # fmt: skip
        active = list(participants)
        rows: list[dict[str, Any]] = []
        for r in range(1, self.spec.rounds + 1):
            base = put_vector(self.store, w)
            paths = RoundPaths(r)
            self.board.post(
                paths.start, {"round": r, "model": base, "participants": active}, self.account
            )
            result = (
                secure_round.coordinator_round(self, r, base, active)
                if self.spec.secure
                else self._round_plain(r, base, active)
            )
            aggregate = recompute_aggregate(self.spec, self.board, self.store, result)
            w_before = w
            w = np.asarray(w + aggregate, dtype=np.float64)
            result = result.with_(
                aggregate=put_vector(self.store, aggregate), model=put_vector(self.store, w)
            )
            self.board.post(paths.result, result.to_json(), self.account)
            rows.append(self._after_round(result, w_before, w, participants, started))
            if writer is not None:  # the round's document carries its measured quality
                writer.submit(r, result.updates, result.aggregate, (result, rows[-1]))
            if on_round is not None:
                on_round(rows[-1])
            # Who answered stays on the roster; who vanished is not waited for again.
            gone = set(result.dropped)
            active = [a for a in active if a not in gone] or list(participants)
        if writer is not None:
            writer.close()
            self.wait_final(self.spec.rounds)
            for row in rows:
                row["gas"] = writer.gas.get(row["round"])
        scores = self.scores(participants)
        rewards = self._rewards(scores, pool_wei) if pool_wei else {}
        final = put_vector(self.store, w)
        report = RunReport(
            task_id=self.spec.task_id, rounds=rows, final_model=final, scores=scores,
            rewards=rewards, participants=participants,
            round_assets=writer.assets if writer is not None else [],
        )  # fmt: skip
        if finish is not None:
            report.final_model_asset, report.training_run_asset = finish(
                w, scores, rewards, report.round_assets
            )
        self.board.post(
            DONE,
            {
                "final_model": final,
                "final_model_asset": report.final_model_asset,
                "rewards": {a: str(v) for a, v in rewards.items()},
                "scores": scores,
            },
            self.account,
        )
        report.seconds = round(time.monotonic() - started, 3)
        return report

    def _after_round(
        self, result: RoundResult, w_before: Vector, w: Vector, participants: list[str],
        started: float,
    ) -> dict[str, Any]:  # fmt: skip
        """Keep what scoring needs, account the privacy spent; the round's report row."""
        if not self.spec.secure:
            vectors = {
                a: get_vector(self.store, d, self.spec.size) for a, d in result.updates.items()
            }
            self.history.append((w_before, vectors, result.weights))
        for a in result.updates:
            self.participation[a] = self.participation.get(a, 0) + 1
        epsilon = None
        if self.accountant is not None and self.spec.dp_noise is not None:
            kept = len(result.updates) / float(result.denominator)
            self.accountant.step(noise_multiplier=self.spec.dp_noise * math.sqrt(kept))
            epsilon = round(self.accountant.epsilon(), 4)
        return {
            "round": result.round,
            "seconds": round(time.monotonic() - started, 3),
            "accuracy": round(self.model.accuracy(w, self.xv, self.yv), 4),
            "loss": round(self.model.loss(w, self.xv, self.yv), 4),
            "epsilon": epsilon,
            "updates": len(result.updates),
            "rejected": result.rejected,
            "dropped": result.dropped,
            "aggregate": result.aggregate,
        }

    def _round_plain(self, r: int, base: str, active: list[str]) -> RoundResult:
        got = self.gather(RoundPaths(r).update, active, r)
        updates, weights, rejected = self.accept(r, base, got, "<f8", "")
        if not updates:
            raise FederatedError(f"round {r}: no acceptable update (rejected: {rejected})")
        return RoundResult(
            round=r, base=base, updates=updates, weights=weights, rejected=rejected,
            dropped=sorted(set(active) - set(got)), denominator=len(active),
        )  # fmt: skip

    # -- chain -----------------------------------------------------------------------
    def wait_final(self, r: int) -> None:
        """Wait until round ``r`` has its k attestations on chain."""
        assert self.ledger is not None
        self.ledger.wait_final(self.spec.task_id, r, timeout=max(60.0, 4 * self.spec.phase_timeout))

    # -- scoring ---------------------------------------------------------------------
    def scores(self, participants: list[str]) -> dict[str, float]:
        """Contribution scores: Shapley values per round, summed; under secure aggregation, rounds contributed."""
        if self.spec.secure:
            return {a: float(self.participation.get(a, 0)) for a in participants}
        totals = dict.fromkeys(participants, 0.0)
        rule = FedAvg()
        for w_before, vectors, weights in self.history:

            def utility(
                coalition: frozenset[str],
                w0: Vector = w_before,
                vs: dict[str, Vector] = vectors,
                ws: dict[str, float] = weights,
            ) -> float:
                if not coalition:
                    return self.model.accuracy(w0, self.xv, self.yv)
                delta = rule.aggregate([Update(a, vs[a], ws[a]) for a in sorted(coalition)])
                return self.model.accuracy(w0 + delta, self.xv, self.yv)

            values = shapley(sorted(vectors), utility, rng=np.random.default_rng(len(totals)))
            for a, v in values.items():
                totals[a] += v
        return {a: round(v, 6) for a, v in totals.items()}

    @staticmethod
    def _rewards(scores: dict[str, float], pool_wei: int) -> dict[str, int]:
        if any(v > 0 for v in scores.values()):
            return reward_shares(scores, pool_wei)
        log.warning("no participant improved the model; the pool is shared equally")
        return reward_shares(dict.fromkeys(scores, 1.0), pool_wei)
