"""Federated training across processes: the task owner coordinates, each participant is its own process.

The owner (:class:`Coordinator`) and the participants (:class:`Participant`)
share a directory holding the content store and the task's :class:`Board` of
signed messages, and they talk to the same chain. A synchronous round:

1. the owner posts the round's model (a digest in the store) and the roster;
2. with secure aggregation (Bonawitz et al.): participants post round keys,
   the owner fixes the roster, participants deal Shamir shares of their
   self-mask seed and round key, each share sealed to the recipient's X25519
   key published in the DID registry, and the owner lists who dealt;
3. participants train locally (FedProx optional), clip and add their part of
   the Gaussian noise when DP is on, and post the update (masked under secure
   aggregation) to the store;
4. the owner checks each update (round, base model, shape, finite values,
   signature) and lists the survivors; under secure aggregation the survivors
   reveal the shares that unmask the sum (self masks of survivors, pair keys of
   dropped clients);
5. the owner computes the aggregate with :func:`recompute_aggregate`, posts
   the result, starts the next round, and, off the critical path, records the
   round on chain (commitments root and aggregate digest) and registers the
   round as an asset whose parent is the previous round;
6. every participant recomputes the aggregate with the same function and
   attests its digest on chain; a round is final after k attestations, and
   the owner records a round only once the previous one is final.

At the end the owner scores contributions (Shapley values, exact for up to 8
participants and GTG-Shapley beyond, over the rounds'
updates on its validation set; with secure aggregation, where single updates
are never seen, by rounds contributed), registers the final model with a SLSA
training run whose lineage reaches every dataset, round and the code, and
finishes the task with rewards that add up to the pool; participants claim.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import math
import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
from eth_account.signers.local import LocalAccount
from numpy.typing import NDArray
from web3 import Web3

from neuroledger._json import loads_bounded
from neuroledger.errors import FederatedError, NeuroLedgerError, TransactionRevertedError
from neuroledger.federated.aggregators import RULES, FedAvg, Update, make_aggregator
from neuroledger.federated.board import Board, Message
from neuroledger.federated.contribution import shapley
from neuroledger.federated.dp import PrivacyAccountant, clip_update
from neuroledger.federated.faults import Fault
from neuroledger.federated.ledger import TaskLedger, reward_shares
from neuroledger.federated.models import LogisticModel, local_train
from neuroledger.federated.secagg import (
    SecAggClient,
    dequantize,
    open_sealed,
    quantize,
    seal,
    unmask_sum,
)
from neuroledger.store import BlobStore

__all__ = [
    "Coordinator",
    "Fault",
    "Participant",
    "RoundWriter",
    "RunReport",
    "TaskSpec",
    "Workers",
    "designated_validators",
    "get_vector",
    "load_party_data",
    "put_vector",
    "recompute_aggregate",
    "run_local",
]

log = logging.getLogger("neuroledger.federated")

Vector = NDArray[np.float64]

#: Fixed-point resolution of secure aggregation: values in [-clip, clip] map to
#: +-2^24 steps, so up to 127 clients sum without wrapping around Z_(2^32).
QUANT_STEPS = float(1 << 24)
MAX_SECURE_CLIENTS = 127


def put_vector(store: BlobStore, vector: NDArray[Any]) -> str:
    """Store a float64 vector; return its digest."""
    return store.put(np.ascontiguousarray(vector, dtype="<f8").tobytes())


def get_vector(store: BlobStore, digest: str, size: int, *, dtype: str = "<f8") -> NDArray[Any]:
    """A stored vector of ``size`` elements (``FederatedError`` for any other length)."""
    raw = store.get(digest)
    if len(raw) != size * 8:
        raise FederatedError(
            f"blob {digest[:12]} holds {len(raw) // 8} values, the model has {size}"
        )
    return np.frombuffer(raw, dtype=dtype).copy()


def load_party_data(
    path: Path, *, features: int | None = None, classes: int | None = None
) -> tuple[Vector, NDArray[np.int64]]:
    """A participant's data: a ``.npz`` with ``x`` (rows x features) and ``y`` (integer labels)."""
    hint = "make one with `neuroledger fl prepare`"
    try:
        with np.load(path, allow_pickle=False) as data:
            x = np.asarray(data["x"], dtype=np.float64)
            y_raw = np.asarray(data["y"])
    except FileNotFoundError:
        raise FederatedError(f"no data file at {path}; {hint}") from None
    except (OSError, ValueError, KeyError) as exc:
        raise FederatedError(
            f"{path} is not a .npz with arrays x and y ({type(exc).__name__}); {hint}"
        ) from None
    if x.ndim != 2 or y_raw.ndim != 1 or len(x) != len(y_raw) or len(y_raw) == 0:
        raise FederatedError(
            f"{path}: x must be rows x features and y one label per row (got {x.shape}, {y_raw.shape})"
        )
    if not np.issubdtype(y_raw.dtype, np.integer):
        raise FederatedError(f"{path}: labels y must be integers 0..classes-1, not {y_raw.dtype}")
    y = y_raw.astype(np.int64)
    if not np.all(np.isfinite(x)):
        raise FederatedError(f"{path}: x holds NaN or infinite values; clean the data first")
    if features is not None and x.shape[1] != features:
        raise FederatedError(f"{path} has {x.shape[1]} features, the task's model takes {features}")
    if y.min() < 0 or (classes is not None and y.max() >= classes):
        raise FederatedError(f"{path}: labels must lie in 0..{(classes or 1) - 1}")
    return x, y


@dataclass(frozen=True)
class TaskSpec:
    """What a task trains and how; the owner posts it on the board, signed."""

    task_id: int
    owner: str
    features: int
    classes: int
    rounds: int
    validators: int
    min_participants: int
    initial_model: str  # store digest of the initial parameters
    model_asset: str = ""
    code_asset: str = ""
    chain_id: int = 0
    contract: str = ""
    aggregator: str = "fedavg"
    secure: bool = False
    dp_noise: float | None = None
    clip: float = 10.0
    local_epochs: int = 5
    lr: float = 0.5
    mu: float = 0.0
    phase_timeout: float = 20.0

    @property
    def size(self) -> int:
        """Number of model parameters."""
        return LogisticModel(self.features, self.classes).size

    def check(self) -> TaskSpec:
        """Raise ``FederatedError`` naming the first setting that cannot work."""
        if self.rounds < 1 or self.features < 1 or self.classes < 2:
            raise FederatedError("a task needs at least 1 round, 1 feature and 2 classes")
        if not 1 <= self.validators <= self.min_participants:
            raise FederatedError(
                f"--validators {self.validators} must be between 1 and --min-participants "
                f"{self.min_participants} (validators are participants)"
            )
        if self.aggregator not in RULES:
            raise FederatedError(f"unknown aggregator {self.aggregator!r}; use {', '.join(RULES)}")
        if (self.secure or self.dp_noise is not None) and self.aggregator != "fedavg":
            raise FederatedError(
                f"{self.aggregator} needs every update in the clear; secure aggregation and DP "
                "work with --aggregator fedavg (robust rules: run without --secure/--dp-noise)"
            )
        if self.dp_noise is not None and self.dp_noise <= 0:
            raise FederatedError("--dp-noise must be positive (try 1.0)")
        if self.clip <= 0 or self.lr <= 0 or self.local_epochs < 1 or self.phase_timeout <= 0:
            raise FederatedError(
                "--clip, --lr, --local-epochs and --phase-timeout must be positive"
            )
        return self

    def to_json(self) -> dict[str, Any]:
        """The spec as a JSON object."""
        return asdict(self)

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> TaskSpec:
        """Parse and check a spec read from the board."""
        known = {f.name for f in fields(cls)}
        try:
            return cls(**{k: v for k, v in body.items() if k in known}).check()
        except TypeError as exc:
            raise FederatedError(f"the task spec on the board is malformed: {exc}") from None


class _Dropped(Exception):
    """A participant vanishes (fault injection)."""


def _quant_scale(spec: TaskSpec) -> float:
    return QUANT_STEPS / spec.clip


def recompute_aggregate(
    spec: TaskSpec, board: Board, store: BlobStore, result: Mapping[str, Any]
) -> Vector:
    """The aggregate delta of a round from what the board and the store hold.

    The coordinator computes the aggregate with this function, and every
    validator recomputes it the same way before attesting its digest.
    """
    r = int(result["round"])
    updates: dict[str, str] = result["updates"]
    denominator = float(result["denominator"])
    if not spec.secure:
        vectors = {a: get_vector(store, updates[a], spec.size) for a in sorted(updates)}
        if spec.dp_noise is not None:
            return np.asarray(sum(vectors.values()) / denominator, dtype=np.float64)
        weights: dict[str, float] = result["weights"]
        rule = make_aggregator(spec.aggregator, len(vectors))
        return rule.aggregate([Update(a, v, float(weights[a])) for a, v in vectors.items()])
    roster = _owner_message(board, spec, f"r{r}/roster.json")
    dealt = _owner_message(board, spec, f"r{r}/u2.json")["members"]
    members: list[str] = roster["members"]
    index = {a: i + 1 for i, a in enumerate(members)}
    keys = {index[a]: bytes.fromhex(roster["keys"][a]) for a in dealt}
    masked = {
        index[a]: get_vector(store, updates[a], spec.size, dtype="<u8") for a in sorted(updates)
    }
    seed_shares: dict[int, list[tuple[int, int]]] = {}
    key_shares: dict[int, list[tuple[int, int]]] = {}
    for message in board.from_each(f"r{r}/unmask", list(result["revealers"])).values():
        for target, share in message.body["seed"].items():
            seed_shares.setdefault(index[target], []).append(_share(share))
        for target, share in message.body["key"].items():
            key_shares.setdefault(index[target], []).append(_share(share))
    total = unmask_sum(
        masked,
        keys,
        seed_shares,
        key_shares,
        threshold=int(roster["threshold"]),
        round_id=_round_id(spec, r),
    )
    return np.asarray(dequantize(total, scale=_quant_scale(spec)) / denominator, dtype=np.float64)


def _share(raw: Any) -> tuple[int, int]:
    return int(raw[0]), int(raw[1], 16)


def _round_id(spec: TaskSpec, r: int) -> bytes:
    return f"task-{spec.chain_id}-{spec.contract.lower()}-{spec.task_id}/round-{r}".encode()


def _owner_message(board: Board, spec: TaskSpec, rel: str) -> dict[str, Any]:
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


def _digest(vector: Vector) -> str:
    return hashlib.sha256(np.ascontiguousarray(vector, dtype="<f8").tobytes()).hexdigest()


# ---------------------------------------------------------------------------------------
# Participant
# ---------------------------------------------------------------------------------------
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
    _attest_queue: queue.Queue[dict[str, Any] | None] = field(default_factory=queue.Queue)
    _models: dict[int, str] = field(default_factory=dict)
    _rosters: dict[int, list[str]] = field(default_factory=dict)

    @property
    def address(self) -> str:
        """The account this participant signs with."""
        return str(self.account.address)

    def _label(self) -> str:
        return self.address[:10]

    def run(self, *, on_round: Callable[[int], None] | None = None) -> dict[str, Any]:
        """Serve every round until the owner posts ``done.json``; then claim the reward."""
        rng = np.random.default_rng(self.seed)
        model = LogisticModel(self.spec.features, self.spec.classes)
        if self.fault is not None and self.fault.kind == "label-flip":
            self.y = (self.spec.classes - 1) - self.y
            log.warning("%s: poisoning on purpose: training on flipped labels", self._label())
        attester = threading.Thread(target=self._attest_loop, name="attester", daemon=True)
        attester.start()
        played = 0
        dropped = False
        try:
            for r in range(1, self.spec.rounds + 1):
                start = self._wait_owner(f"r{r}/start.json", f"round {r} to start")
                if start is None:
                    break
                self._models[r] = start["model"]
                self._rosters[r] = list(start["participants"])
                if self.address in start["participants"]:
                    if self._play(r, start, model, rng):
                        played += 1
                else:
                    log.info("%s: not in round %d's roster", self._label(), r)
                result = self._wait_owner(f"r{r}/result.json", f"round {r}'s result")
                if result is None:
                    break
                self._attest_queue.put(result)
                if on_round is not None:
                    on_round(r)
        except _Dropped:
            dropped = True
            log.warning("%s: dropping out on purpose (fault injection)", self._label())
        finally:
            self._attest_queue.put(None)
            attester.join()
        if dropped:
            return {"address": self.address, "rounds_played": played, "dropped": True}
        done = Board.wait(
            lambda: self.board.read("done.json", signer=self.spec.owner),
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

    def _wait_owner(self, rel: str, what: str) -> dict[str, Any] | None:
        def probe() -> dict[str, Any] | None:
            message = self.board.read(rel, signer=self.spec.owner)
            if message is not None:
                return message.body
            if self.board.read("done.json", signer=self.spec.owner) is not None:
                return {}
            return None

        body = Board.wait(probe, timeout=self.timeout, what=what)
        return body or None

    # -- one round -------------------------------------------------------------------
    def _delta(
        self,
        r: int,
        start: Mapping[str, Any],
        model: LogisticModel,
        rng: np.random.Generator,
        n: int,
    ) -> tuple[str, Vector]:
        base = str(start["model"])
        if self.fault is not None and self.fault.active("stale", r) and r > 1:
            base = self._models[r - 1]
            log.warning(
                "%s: round %d: sending an update of round %d's model on purpose",
                self._label(),
                r,
                r - 1,
            )
        w = get_vector(self.store, base, self.spec.size)
        delta = (
            local_train(
                model,
                w,
                self.x,
                self.y,
                epochs=self.spec.local_epochs,
                lr=self.spec.lr,
                mu=self.spec.mu,
            )
            - w
        )
        if self.fault is not None and self.fault.active("scale", r):
            delta = -10.0 * delta
        if self.spec.secure or self.spec.dp_noise is not None:
            delta, _ = clip_update(delta, self.spec.clip)
        if self.spec.dp_noise is not None:
            # Distributed DP: each of the n clients adds 1/n of the noise variance.
            sigma = self.spec.dp_noise * self.spec.clip / math.sqrt(n)
            delta = delta + rng.normal(0.0, sigma, delta.shape)
        if self.fault is not None and self.fault.active("nan", r):
            delta[0] = np.nan
        if self.fault is not None and self.fault.active("wrong-shape", r):
            delta = np.append(delta, 0.0)
        return base, np.asarray(delta, dtype=np.float64)

    def _play(
        self, r: int, start: Mapping[str, Any], model: LogisticModel, rng: np.random.Generator
    ) -> bool:
        if self.spec.secure:
            return self._play_secure(r, start, model, rng)
        if self.fault is not None and self.fault.active("drop", r):
            raise _Dropped
        base, delta = self._delta(r, start, model, rng, len(start["participants"]))
        self.board.post(
            f"r{r}/update/{self.address.lower()}.json",
            {
                "round": r,
                "base": base,
                "update": put_vector(self.store, delta),
                "examples": len(self.y),
            },
            self.account,
        )
        return True

    def _play_secure(
        self, r: int, start: Mapping[str, Any], model: LogisticModel, rng: np.random.Generator
    ) -> bool:
        me = self.address
        client = SecAggClient(index=0, n=0, threshold=0, round_id=_round_id(self.spec, r))
        self.board.post(
            f"r{r}/keys/{me.lower()}.json",
            {"round": r, "public_key": client.public_key.hex()},
            self.account,
        )
        roster = self._wait_owner(f"r{r}/roster.json", f"round {r}'s roster")
        if roster is None or me not in roster["members"]:
            return False
        members: list[str] = roster["members"]
        client.index, client.n = members.index(me) + 1, len(members)
        client.threshold = int(roster["threshold"])
        own: dict[str, Any] = {}
        sealed: dict[str, str] = {}
        for x, (seed_share, key_share) in client.deal_shares().items():
            member = members[x - 1]
            payload = {
                "seed": [seed_share[0], hex(seed_share[1])],
                "key": [key_share[0], hex(key_share[1])],
            }
            if member == me:
                own = payload
                continue
            context = f"{_round_id(self.spec, r).decode()}/{me.lower()}->{member.lower()}".encode()
            blob = seal(self.keys_of(member), json.dumps(payload).encode(), context)
            sealed[member] = base64.b64encode(blob).decode()
        self.board.post(f"r{r}/shares/{me.lower()}.json", {"round": r, "to": sealed}, self.account)
        if self.fault is not None and self.fault.active("drop", r):
            raise _Dropped
        dealt_body = self._wait_owner(f"r{r}/u2.json", f"round {r}'s list of dealers")
        if dealt_body is None or me not in dealt_body["members"]:
            return False
        dealt: list[str] = dealt_body["members"]
        received = {me: own}
        for sender, message in self.board.from_each(
            f"r{r}/shares", [a for a in dealt if a != me]
        ).items():
            context = f"{_round_id(self.spec, r).decode()}/{sender.lower()}->{me.lower()}".encode()
            raw = open_sealed(
                self.x25519_private, base64.b64decode(message.body["to"][me]), context
            )
            received[sender] = loads_bounded(raw)
        base, delta = self._delta(r, start, model, rng, len(members))
        if delta.shape != (self.spec.size,) or not np.all(np.isfinite(delta)):
            # Under secure aggregation nobody could reject it later: fail loudly here.
            log.error(
                "%s: round %d: my update is malformed; sending it as is (fault)", self._label(), r
            )
            delta = np.nan_to_num(delta)
        q = quantize(delta, clip=self.spec.clip, scale=_quant_scale(self.spec))
        masked = client.masked_input(
            q, {members.index(a) + 1: bytes.fromhex(roster["keys"][a]) for a in dealt}
        )
        digest = self.store.put(np.ascontiguousarray(masked, dtype="<u8").tobytes())
        self.board.post(
            f"r{r}/update/{me.lower()}.json",
            {"round": r, "base": base, "update": digest, "examples": len(self.y)},
            self.account,
        )
        survivors_body = self._wait_owner(f"r{r}/survivors.json", f"round {r}'s survivors")
        if survivors_body is None:
            return False
        survivors: list[str] = survivors_body["members"]
        if me not in survivors:
            log.warning("%s: round %d: the owner left my update out", self._label(), r)
            return False
        if len(survivors) < client.threshold or not set(survivors) <= set(dealt):
            log.error(
                "%s: round %d: refusing to reveal shares for an unsafe survivor list",
                self._label(),
                r,
            )
            return False
        reveal = {
            "round": r,
            "seed": {a: received[a]["seed"] for a in survivors if a in received},
            "key": {a: received[a]["key"] for a in dealt if a not in survivors and a in received},
        }
        self.board.post(f"r{r}/unmask/{me.lower()}.json", reveal, self.account)
        return True

    # -- validation ------------------------------------------------------------------
    def _attest_loop(self) -> None:
        while (result := self._attest_queue.get()) is not None:
            try:
                self._validate(result)
            except NeuroLedgerError as exc:
                log.error(
                    "%s: round %s: could not validate: %s", self._label(), result.get("round"), exc
                )

    def _validate(self, result: Mapping[str, Any]) -> None:
        r = int(result["round"])
        mine = _digest(recompute_aggregate(self.spec, self.board, self.store, result))
        if mine != result["aggregate"]:
            log.error(
                "%s: round %d: the owner's aggregate %s differs from my recomputation %s; "
                "not attesting",
                self._label(),
                r,
                result["aggregate"][:12],
                mine[:12],
            )
            return
        if self.ledger is None:
            self.attested.append(r)
            return
        ledger, task = self.ledger, self.spec.task_id

        # The owner says on the board when a round is on chain; the chain is then checked once.
        Board.wait(
            lambda: self.board.read(f"r{r}/recorded.json", signer=self.spec.owner),
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
                    self._label(),
                    r,
                    exc,
                )
            return
        state = ledger.task(task)
        if state["finalized_round"] >= r or state["status"] != 1 or state["current_round"] != r:
            return  # final already (or over), or the owner's note is false: nothing to attest
        if self.address not in designated_validators(
            self._rosters.get(r, []), r, self.spec.validators
        ):
            # A backup validator: attest only if the designated ones have not made it final.
            try:
                Board.wait(
                    lambda: True if ledger.task(task)["finalized_round"] >= r else None,
                    timeout=self.spec.phase_timeout,
                    what="",
                    poll=1.0,
                )
                return
            except FederatedError:
                log.warning(
                    "%s: round %d: not final after %.0f s; attesting as a backup validator",
                    self._label(),
                    r,
                    self.spec.phase_timeout,
                )
                if ledger.task(task)["finalized_round"] >= r:
                    return
        if ledger.has_attested(task, r, self.address):
            return
        try:
            ledger.attest(self.account, task, r, mine)
            self.attested.append(r)
            log.info("%s: round %d: attested aggregate %s", self._label(), r, mine[:12])
        except TransactionRevertedError as exc:
            if "not the current round" not in str(exc):
                raise
            # the round became final while our attestation was in flight: nothing lost


# ---------------------------------------------------------------------------------------
# Coordinator
# ---------------------------------------------------------------------------------------
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


class RoundWriter:
    """Records rounds on chain off the critical path; registers them as assets at the end.

    A round's commitments root and aggregate digest go on chain as soon as the
    previous round is final (validators attest them while the next round
    trains). The round assets that carry the lineage (each round's parent is
    the one before) are registered when training is over, so that their
    transactions do not compete with training for the machine.
    """

    def __init__(
        self,
        ledger: TaskLedger,
        account: LocalAccount,
        task_id: int,
        *,
        wait_final: Callable[[int], None],
        register_round: Callable[[int, dict[str, Any], str, str | None], str] | None = None,
        on_recorded: Callable[[int, str], None] | None = None,
    ) -> None:
        self.ledger, self.account, self.task_id = ledger, account, task_id
        self.wait_final, self.register_round = wait_final, register_round
        self.on_recorded = on_recorded
        self.jobs: queue.Queue[tuple[int, dict[str, Any]] | None] = queue.Queue()
        self.error: BaseException | None = None
        self.gas: dict[int, int] = {}
        self.assets: list[str] = []
        self.recorded: list[tuple[int, dict[str, Any], str]] = []
        self.thread = threading.Thread(target=self._loop, name="ledger", daemon=True)
        self.thread.start()

    def submit(self, r: int, result: dict[str, Any]) -> None:
        """Queue round ``r`` (its ``updates`` digests and ``aggregate`` digest) for the chain."""
        if self.error is not None:
            raise self.error
        self.jobs.put((r, result))

    def close(self) -> None:
        """Wait for every queued round; then register the round assets."""
        self.jobs.put(None)
        self.thread.join()
        if self.error is not None:
            raise self.error
        if self.register_round is not None:
            for r, result, root in self.recorded:
                parent = self.assets[-1] if self.assets else None
                self.assets.append(self.register_round(r, result, root, parent))

    def _loop(self) -> None:
        while (job := self.jobs.get()) is not None:
            if self.error is not None:
                continue
            try:
                self._record(*job)
            except BaseException as exc:  # surfaced to the coordinator's thread
                self.error = exc

    def _record(self, r: int, result: dict[str, Any]) -> None:
        if r > 1:
            self.wait_final(r - 1)
        # The protocol keys updates by participant address; Flower's adapter keys them by
        # node id and records no contributors (an expired task then shares out equally).
        contributors = [a for a in result["updates"] if Web3.is_address(a)]
        record = self.ledger.record_digests(
            self.account, self.task_id, r, result["updates"], result["aggregate"], contributors
        )
        self.gas[r] = record.gas_used
        self.recorded.append((r, result, record.commitments_root))
        if self.on_recorded is not None:
            self.on_recorded(r, record.commitments_root)


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
        register_round: Callable[[int, dict[str, Any], str, str | None], str] | None = None,
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
        for address in self.board.senders("participants"):
            message = self.board.read(f"participants/{address}.json")
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
    def _gather(
        self, rel_dir: str, expected: list[str], r: int, *, need: int = 1
    ) -> dict[str, Message]:
        """Messages of round ``r`` in ``rel_dir`` from ``expected``: all, or what came by the timeout."""
        deadline = time.monotonic() + self.spec.phase_timeout
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
                    r,
                    a,
                    rel_dir.split("/")[-1],
                    self.spec.phase_timeout,
                )
        if len(got) < need:
            raise FederatedError(
                f"round {r}: only {len(got)} participants answered in {rel_dir.split('/')[-1]}; "
                f"{need} are needed (check that participant processes run, or raise --phase-timeout)"
            )
        return got

    def _accept(
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
        finish: Callable[
            [Vector, dict[str, float], dict[str, int], list[str]], tuple[str | None, str | None]
        ]
        | None = None,
        pool_wei: int = 0,
    ) -> RunReport:
        """Run every round with ``participants``; score, finish and return the report."""
        started = time.monotonic()
        w = get_vector(self.store, self.spec.initial_model, self.spec.size)
        writer = (
            RoundWriter(
                self.ledger,
                self.account,
                self.spec.task_id,
                wait_final=self.wait_final,
                register_round=self.register_round,
                # Tell validators on the board, so they need not poll the chain.
                on_recorded=lambda r, root: self.board.post(
                    f"r{r}/recorded.json", {"round": r, "commitments_root": root}, self.account
                ),
            )
            if self.ledger is not None
            else None
        )
        active = list(participants)
        rows: list[dict[str, Any]] = []
        for r in range(1, self.spec.rounds + 1):
            base = put_vector(self.store, w)
            self.board.post(
                f"r{r}/start.json",
                {"round": r, "model": base, "participants": active},
                self.account,
            )
            result = (
                self._round_secure(r, base, active)
                if self.spec.secure
                else self._round_plain(r, base, active)
            )
            aggregate = recompute_aggregate(self.spec, self.board, self.store, result)
            result["aggregate"] = put_vector(self.store, aggregate)
            w_before = w
            w = np.asarray(w + aggregate, dtype=np.float64)
            result["model"] = put_vector(self.store, w)
            self.board.post(f"r{r}/result.json", result, self.account)
            if writer is not None:
                writer.submit(r, result)
            if not self.spec.secure:
                vectors = {
                    a: get_vector(self.store, d, self.spec.size)
                    for a, d in result["updates"].items()
                }
                self.history.append((w_before, vectors, result["weights"]))
            for a in result["updates"]:
                self.participation[a] = self.participation.get(a, 0) + 1
            # Who answered stays on the roster; who vanished is not waited for again.
            gone = set(result["dropped"])
            active = [a for a in active if a not in gone] or list(participants)
            epsilon = None
            if self.accountant is not None:
                kept = len(result["updates"]) / float(result["denominator"])
                self.accountant.step(noise_multiplier=self.spec.dp_noise * math.sqrt(kept))  # type: ignore[operator]
                epsilon = round(self.accountant.epsilon(), 4)
            row = {
                "round": r,
                "seconds": round(time.monotonic() - started, 3),
                "accuracy": round(self.model.accuracy(w, self.xv, self.yv), 4),
                "loss": round(self.model.loss(w, self.xv, self.yv), 4),
                "epsilon": epsilon,
                "updates": len(result["updates"]),
                "rejected": result["rejected"],
                "dropped": result["dropped"],
                "aggregate": result["aggregate"],
            }
            rows.append(row)
            if on_round is not None:
                on_round(row)
        if writer is not None:
            writer.close()
            self.wait_final(self.spec.rounds)
            for row in rows:
                row["gas"] = writer.gas.get(row["round"])
        scores = self.scores(participants)
        rewards = self._rewards(scores, pool_wei) if pool_wei else {}
        final = put_vector(self.store, w)
        report = RunReport(
            task_id=self.spec.task_id,
            rounds=rows,
            final_model=final,
            scores=scores,
            rewards=rewards,
            participants=participants,
            round_assets=writer.assets if writer is not None else [],
        )
        if finish is not None:
            report.final_model_asset, report.training_run_asset = finish(
                w, scores, rewards, report.round_assets
            )
        self.board.post(
            "done.json",
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

    def _round_plain(self, r: int, base: str, active: list[str]) -> dict[str, Any]:
        got = self._gather(f"r{r}/update", active, r)
        updates, weights, rejected = self._accept(r, base, got, "<f8", "")
        if not updates:
            raise FederatedError(f"round {r}: no acceptable update (rejected: {rejected})")
        return {
            "round": r,
            "base": base,
            "updates": updates,
            "weights": weights,
            "rejected": rejected,
            "dropped": sorted(set(active) - set(got)),
            "denominator": len(active),
        }

    def _round_secure(self, r: int, base: str, active: list[str]) -> dict[str, Any]:
        keys = self._gather(f"r{r}/keys", active, r, need=2)
        members = sorted(keys)
        if len(members) > MAX_SECURE_CLIENTS:
            raise FederatedError(
                f"secure aggregation takes at most {MAX_SECURE_CLIENTS} clients a round"
            )
        threshold = max(2, len(members) // 2 + 1)
        roster = {
            "round": r,
            "members": members,
            "threshold": threshold,
            "keys": {a: str(keys[a].body["public_key"]) for a in members},
        }
        self.board.post(f"r{r}/roster.json", roster, self.account)
        shares = self._gather(f"r{r}/shares", members, r, need=threshold)
        dealt = [
            a
            for a in members
            if a in shares and set(shares[a].body.get("to", {})) >= set(members) - {a}
        ]
        self.board.post(f"r{r}/u2.json", {"round": r, "members": dealt}, self.account)
        got = self._gather(f"r{r}/update", dealt, r, need=threshold)
        updates, weights, rejected = self._accept(
            r, base, got, "<u8", " (its masks are removed with the dropped clients' shares)"
        )
        survivors = sorted(updates)
        if len(survivors) < threshold:
            raise FederatedError(
                f"round {r}: {len(survivors)} usable masked updates, the threshold is {threshold}"
            )
        self.board.post(f"r{r}/survivors.json", {"round": r, "members": survivors}, self.account)
        reveals = self._gather(f"r{r}/unmask", survivors, r, need=threshold)
        dropped = sorted(set(active) - set(survivors) - set(rejected))
        if dropped:
            log.warning(
                "round %d: %d dropped out (%s); their pairwise masks are removed with %d "
                "revealed shares",
                r,
                len(dropped),
                ", ".join(dropped),
                len(reveals),
            )
        return {
            "round": r,
            "base": base,
            "updates": updates,
            "weights": weights,
            "rejected": rejected,
            "dropped": dropped,
            "revealers": sorted(reveals),
            "denominator": len(members) if self.spec.dp_noise is not None else len(survivors),
        }

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


class Workers:
    """Run callables as threads, or as forked OS processes (one GIL each, as in deployment)."""

    def __init__(self, jobs: list[Callable[[], Any]], *, processes: bool = False) -> None:
        import multiprocessing

        self.errors: list[BaseException] = []
        self.processes = processes
        self.handles: list[Any] = []
        for i, job in enumerate(jobs):
            if processes:
                handle: Any = multiprocessing.get_context("fork").Process(
                    target=job, name=f"party-{i}", daemon=True
                )
            else:
                handle = threading.Thread(target=self._guard, args=(job,), name=f"party-{i}")
            handle.start()
            self.handles.append(handle)

    def _guard(self, job: Callable[[], Any]) -> None:
        try:
            job()
        except BaseException as exc:  # reported by join()
            self.errors.append(exc)

    def join(self, timeout: float = 300.0) -> None:
        """Wait for every worker; raise the first failure."""
        for handle in self.handles:
            handle.join(timeout)
        if self.errors:
            raise self.errors[0]
        failed = [h.name for h in self.handles if self.processes and h.exitcode != 0]
        if failed:
            raise FederatedError(f"participant processes failed: {', '.join(failed)}")


def run_local(
    shared: Path,
    template: TaskSpec,
    parties: list[tuple[Vector, NDArray[np.int64]]],
    validation: tuple[Vector, NDArray[np.int64]],
    *,
    faults: Mapping[int, Fault] | None = None,
    processes: bool = False,
) -> RunReport:
    """Run a task on this machine with no chain: the owner here, each party a thread or process.

    For experiments and baselines (the same protocol, board and store, minus
    the ledger). ``template``'s owner and initial model are filled in here.
    """
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        NoEncryption,
        PrivateFormat,
        PublicFormat,
    )
    from eth_account import Account

    from neuroledger.store import FileStore

    store = FileStore(shared / "store")
    owner = Account.create()
    model = LogisticModel(template.features, template.classes)
    spec = TaskSpec(
        **{
            **template.to_json(),
            "owner": str(owner.address),
            "initial_model": put_vector(store, model.init()),
        }
    ).check()
    board = Board(shared, spec.task_id)
    accounts = [Account.create() for _ in parties]
    keys = [X25519PrivateKey.generate() for _ in parties]
    public = {
        str(a.address): k.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        for a, k in zip(accounts, keys, strict=True)
    }
    for a in accounts:
        board.post(f"participants/{str(a.address).lower()}.json", {"identity": a.address}, a)

    def serve(i: int) -> None:
        private = keys[i].private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        Participant(
            board,
            store,
            spec,
            accounts[i],
            parties[i][0],
            parties[i][1],
            private,
            public.__getitem__,
            fault=(faults or {}).get(i),
            timeout=120,
        ).run()

    workers = Workers(
        [lambda i=i: serve(i) for i in range(len(parties))],  # type: ignore[misc]
        processes=processes,
    )
    coordinator = Coordinator(board, store, spec, owner, validation=validation)
    report = coordinator.run(coordinator.wait_participants())
    workers.join()
    return report
