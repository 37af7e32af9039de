"""Recording federated rounds on chain: the task contract's client and the round ledger.

Updates and aggregates live in the content store; the chain gets, per round,
the Merkle root (RFC 9162) of the update commitments and the SHA-256 of the
aggregate. Validators fetch the updates from the store, recompute the
aggregate and attest its digest; a round is final after k attestations.
Rewards are shared out in proportion to contribution scores.

Every task ends: it has a deadline, participants escrow a stake to join (so
validators are not free to mint), and a task that is not finished by its
deadline returns its pool to the owner (before round 1) or shares it among the
participants by the rounds their updates were recorded in (after).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract

from neuroledger.chain import Chain, contract_call
from neuroledger.core import MerkleTree, leaf_hash
from neuroledger.errors import FederatedError
from neuroledger.federated._aggregators import Aggregator, Update
from neuroledger.store import BlobStore

__all__ = [
    "DEFAULT_DURATION",
    "DEFAULT_STAKE_WEI",
    "STATUS_NAMES",
    "RoundRecord",
    "TaskLedger",
    "TaskState",
    "commitments_root",
    "reward_shares",
    "vector_digest",
]

#: A participant's stake unless the task says otherwise (0.01 ETH; returned at the end).
DEFAULT_STAKE_WEI = 10**16
#: How long a task may run unless it says otherwise (7 days).
DEFAULT_DURATION = 7 * 86400
#: The contract's task statuses.
STATUS_NAMES = {1: "open", 2: "finished", 3: "refunded", 4: "expired"}


@dataclass(frozen=True)
class TaskState:
    """A task as the contract holds it (``tasks(id)``), in the contract's field order."""

    owner: str
    model_asset: bytes
    code_asset: bytes
    rounds: int
    validators: int
    current_round: int
    finalized_round: int
    participants: int
    status: int  # see STATUS_NAMES; 0: no such task
    pool: int
    stake: int
    deadline: int
    contributions: int

    @classmethod
    def from_fields(cls, fields: Sequence[Any]) -> TaskState:
        """From the contract getter's tuple."""
        return cls(*fields)

    @property
    def status_name(self) -> str:
        """``open``, ``finished``, ``refunded``, ``expired`` (or ``unknown``)."""
        return STATUS_NAMES.get(self.status, "unknown")


_TASK_CREATED = "TaskCreated(uint256,address,bytes32,bytes32,uint32,uint32,uint256,uint256,uint256)"


def vector_digest(vector: np.ndarray) -> str:
    """SHA-256 of a vector's float64 little-endian bytes: what the chain records."""
    return hashlib.sha256(np.ascontiguousarray(vector, dtype="<f8").tobytes()).hexdigest()


def commitments_root(updates: Mapping[str, str]) -> str:
    """RFC 9162 Merkle root (hex) of the leaves ``name:digest``, sorted by name."""
    tree = MerkleTree()
    tree.extend([leaf_hash(f"{name}:{updates[name]}".encode()) for name in sorted(updates)])
    return tree.root().hex()


def reward_shares(scores: Mapping[str, float], pool: int) -> dict[str, int]:
    """Split ``pool`` wei in proportion to positive scores; the rounding remainder goes to the best."""
    positive = {k: max(v, 0.0) for k, v in scores.items()}
    total = sum(positive.values())
    if total <= 0:
        raise FederatedError(
            "no participant has a positive contribution score; nothing to share out"
        )
    shares = {k: int(pool * v / total) for k, v in positive.items() if v > 0}
    best = max(shares, key=lambda k: (positive[k], k))
    shares[best] += pool - sum(shares.values())
    return {k: v for k, v in shares.items() if v > 0}


@dataclass(frozen=True)
class RoundRecord:
    """What one round put on chain and in the store."""

    task_id: int
    round: int
    commitments_root: str
    aggregate_digest: str
    updates: dict[str, str]  # participant name -> digest of its update blob
    gas_used: int = 0


class TaskLedger:
    """The FederatedTask contract seen from Python, with the content store beside it."""

    def __init__(self, chain: Chain, store: BlobStore) -> None:
        self.chain = chain
        self.store = store
        self.contract: Contract = chain.contract("FederatedTask")
        self._slots: dict[tuple[int, str], int] = {}

    def _send(self, account: LocalAccount, fn: str, args: list[Any], *, value: int = 0) -> Any:
        call = contract_call(self.contract, fn, args, label=f"FederatedTask.{fn}", value=value)
        return self.chain.sender(account).send(call)

    # -- owner -----------------------------------------------------------------------
    def create_task(
        self,
        owner: LocalAccount,
        *,
        model_asset: str,
        code_asset: str,
        rounds: int,
        validators: int,
        pool_wei: int,
        stake_wei: int = DEFAULT_STAKE_WEI,
        duration: float = DEFAULT_DURATION,
    ) -> int:
        """Create a task escrowing ``pool_wei``; return its id.

        Participants join with ``stake_wei`` each; the task must finish within
        ``duration`` seconds (counted from the later of the chain's and this
        machine's clocks), after which anyone can end it and the pool is refunded
        or shared out.
        """
        if stake_wei <= 0:
            raise FederatedError(
                "a task needs a participant stake above zero (so validators are not free)"
            )
        if not 0 < duration <= 366 * 86400:
            raise FederatedError("a task's duration must be between 1 second and 366 days")
        deadline = self.now() + int(duration)
        receipt = self._send(
            owner,
            "createTask",
            [
                bytes.fromhex(model_asset),
                bytes.fromhex(code_asset),
                rounds,
                validators,
                stake_wei,
                deadline,
            ],
            value=pool_wei,
        )
        task_id: int | None = receipt.first_indexed(_TASK_CREATED)
        if task_id is not None:
            return task_id
        raise FederatedError(f"createTask was mined in {receipt.tx_hash} but logged no task")

    def record_round(
        self,
        owner: LocalAccount,
        task_id: int,
        round_: int,
        updates: Mapping[str, np.ndarray],
        aggregate: np.ndarray,
    ) -> RoundRecord:
        """Store the round's updates and aggregate; record the commitments root and digest on chain."""
        digests = {
            name: self.store.put(np.ascontiguousarray(u, dtype="<f8").tobytes())
            for name, u in sorted(updates.items())
        }
        aggregate_digest = self.store.put(np.ascontiguousarray(aggregate, dtype="<f8").tobytes())
        return self.record_digests(owner, task_id, round_, digests, aggregate_digest)

    def record_digests(
        self,
        owner: LocalAccount,
        task_id: int,
        round_: int,
        updates: Mapping[str, str],
        aggregate_digest: str,
        contributors: Iterable[str] = (),
    ) -> RoundRecord:
        """Record a round whose update blobs (name -> digest) are already in the store.

        ``contributors`` are the participants' addresses whose updates the round holds;
        they weigh the pool's share-out should the task expire unfinished.
        """
        root = commitments_root(updates)
        receipt = self._send(
            owner,
            "recordRound",
            [
                task_id,
                round_,
                bytes.fromhex(root),
                bytes.fromhex(aggregate_digest),
                self.contributor_bits(task_id, contributors),
            ],
        )
        return RoundRecord(
            task_id, round_, root, aggregate_digest, dict(sorted(updates.items())), receipt.gas_used
        )

    def contributor_bits(self, task_id: int, contributors: Iterable[str]) -> int:
        """The contract's bit map of ``contributors`` (bit i: the participant numbered i)."""
        bits = 0
        for address in contributors:
            slot = self._slot(task_id, Web3.to_checksum_address(address))
            if slot == 0:
                raise FederatedError(f"{address} did not join task {task_id}; it cannot contribute")
            bits |= 1 << (slot - 1)
        return bits

    def _slot(self, task_id: int, address: str) -> int:
        key = (task_id, address)
        if key not in self._slots:  # a participant's number never changes once it joined
            slot = int(self.contract.functions.participantSlot(task_id, address).call())
            if slot == 0:
                return 0
            self._slots[key] = slot
        return self._slots[key]

    def finish(
        self, owner: LocalAccount, task_id: int, final_model_asset: str, payees: Mapping[str, int]
    ) -> None:
        """End the task with rewards (address -> wei) that add up to the pool."""
        addresses = list(payees)
        self._send(
            owner,
            "finish",
            [task_id, bytes.fromhex(final_model_asset), addresses, [payees[a] for a in addresses]],
        )

    def cancel(self, owner: LocalAccount, task_id: int) -> None:
        """End a task before its first round; the pool and stakes become claimable."""
        self._send(owner, "cancel", [task_id])

    def expire(self, caller: LocalAccount, task_id: int) -> None:
        """End an unfinished task whose deadline has passed (anyone may)."""
        self._send(caller, "expire", [task_id])

    # -- participants ----------------------------------------------------------------
    def join(self, participant: LocalAccount, task_id: int) -> None:
        """Join a task, escrowing its stake."""
        self._send(participant, "join", [task_id], value=self.task(task_id).stake)

    def validate(
        self,
        validator: LocalAccount,
        record: RoundRecord,
        aggregator: Aggregator,
        weights: Mapping[str, float],
    ) -> str:
        """Recompute the round's aggregate from the stored updates and attest its digest."""
        updates = []
        for name, digest in record.updates.items():
            vector = np.frombuffer(self.store.get(digest), dtype="<f8")
            updates.append(Update(name, vector, weights.get(name, 1.0)))
        digest = vector_digest(aggregator.aggregate(updates))
        self.attest(validator, record.task_id, record.round, digest)
        return digest

    def attest(self, validator: LocalAccount, task_id: int, round_: int, digest: str) -> None:
        """Attest a digest as it is (used to show that a wrong one is refused)."""
        self._send(validator, "attest", [task_id, round_, bytes.fromhex(digest)])

    def claim(self, participant: LocalAccount, task_id: int) -> None:
        """Withdraw what an ended task owes: reward or share and stake, or the owner's refund."""
        self._send(participant, "claim", [task_id])

    # -- reads -----------------------------------------------------------------------
    def now(self) -> int:
        """The later of the chain's latest block time and this machine's clock (an idle
        embedded chain's clock stands still; deadlines are judged by both)."""
        latest = int(self.chain.w3.eth.get_block("latest")["timestamp"])
        return max(latest, int(time.time()))

    def task(self, task_id: int, *, confirmations: int = 0) -> TaskState:
        """The task's fields; with ``confirmations``, as of the newest block buried that deep
        (what a reorganisation of fewer blocks can no longer take back)."""
        block: Any = "latest"
        if confirmations:
            block = max(int(self.chain.w3.eth.block_number) - confirmations, 0)
        fields = self.contract.functions.tasks(task_id).call(block_identifier=block)
        return TaskState.from_fields(fields)

    def wait_for_round(self, task_id: int, round_: int, *, timeout: float = 60.0) -> None:
        """Wait until round ``round_`` is recorded on chain (the round validators attest)."""
        self._wait(
            task_id,
            "current_round",
            round_,
            timeout,
            "not recorded: is the task owner's process running?",
        )

    def wait_final(
        self, task_id: int, round_: int, *, timeout: float = 60.0, confirmations: int | None = None
    ) -> None:
        """Wait until round ``round_`` has its k attestations, ``confirmations`` blocks deep
        (``FederatedError`` at the timeout). By default as deep as the chain's finality
        (:meth:`Chain.finality_depth`: the settings' confirmations, or the head on a chain
        that mines only when written to, where no later block may ever come)."""
        if confirmations is None:
            confirmations = self.chain.finality_depth()
        self._wait(
            task_id,
            "finalized_round",
            round_,
            timeout,
            "not final: too few attestations (are the validators running?)",
            confirmations=confirmations,
        )

    def _wait(self, task_id: int, field: str, round_: int, timeout: float, why: str,
              *, confirmations: int = 0) -> None:  # fmt: skip
        deadline = time.monotonic() + timeout
        why = f"{why} (waited {timeout:.0f} s)"
        last_head = -1
        while getattr(self.task(task_id, confirmations=confirmations), field) < round_:
            if confirmations and getattr(self.task(task_id), field) >= round_:
                # Reached at the head, being buried: wait on while the chain grows.
                head = int(self.chain.w3.eth.block_number)
                if head != last_head:
                    last_head, deadline = head, max(deadline, time.monotonic() + timeout)
                why = (
                    f"not final: its attestations are not yet {confirmations} blocks deep and "
                    f"no block came for {timeout:g} s; is the chain producing blocks?"
                )
            if time.monotonic() > deadline:
                raise FederatedError(f"round {round_} of task {task_id} is {why}")
            time.sleep(0.25)

    def is_participant(self, task_id: int, address: str) -> bool:
        """Whether ``address`` joined the task."""
        return bool(self.contract.functions.isParticipant(task_id, address).call())

    def has_attested(self, task_id: int, round_: int, address: str) -> bool:
        """Whether ``address`` attested round ``round_``."""
        return bool(self.contract.functions.hasAttested(task_id, round_, address).call())

    def has_claimed(self, task_id: int, address: str) -> bool:
        """Whether ``address`` has withdrawn what the ended task owed it."""
        return bool(self.contract.functions.paid(task_id, address).call())

    def reward_of(self, task_id: int, address: str) -> int:
        """Reward still to withdraw (the chain keeps the reward set at finish after the
        claim, as the task's record of contribution scores; ``paid`` says it was withdrawn)."""
        if self.has_claimed(task_id, address):
            return 0
        return int(self.contract.functions.rewardOf(task_id, address).call())
