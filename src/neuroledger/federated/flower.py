"""Flower adapter: keep your Flower SuperLink and SuperNodes, get the NeuroLedger ledger.

:class:`LedgerStrategy` wraps any strategy of Flower's message API
(``flwr.serverapp.strategy``: FedAvg, FedProx, FedAdam, Krum, ...). The
ServerApp uses it in place of the strategy it wraps; ClientApps do not
change. Every training round it

- stores each node's returned arrays in the content store and commits to them
  (the Merkle root of ``node-<id>:<digest>`` leaves, as in native tasks);
- lets the wrapped strategy aggregate, stores the aggregate, and queues the
  round for the chain (``recordRound``: commitments root + aggregate digest),
  off the critical path, each round after the previous one is final;
- posts the round's manifest on the task board, from which any validator
  recomputes the aggregate with Flower's own arithmetic
  (:func:`validate_round`) and attests its digest;
- when given a utility (the owner's validation score of a model), scores each
  node's contribution with Shapley values (exact up to 8 nodes, GTG-Shapley
  beyond) over coalitions of that round's
  replies, aggregated the same way.

:meth:`LedgerStrategy.finish` waits for the last round to be final and pays
the task's reward pool out by the summed scores.

Needs the ``flower`` extra: ``pip install 'neuroledger[flower]'``.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from eth_account.signers.local import LocalAccount
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Strategy
from flwr.serverapp.strategy.strategy_utils import aggregate_arrayrecords

from neuroledger.errors import FederatedError
from neuroledger.federated._board import Board
from neuroledger.federated._contribution import shapley
from neuroledger.federated._ledger import TaskLedger, reward_shares, vector_digest
from neuroledger.federated._protocol import RoundPaths
from neuroledger.federated._recorder import RoundWriter
from neuroledger.store import BlobStore

__all__ = ["InProcessGrid", "LedgerStrategy", "aggregate_digest", "validate_round"]

log = logging.getLogger("neuroledger.federated")

Utility = Callable[[ArrayRecord], float]


def _flat(arrays: ArrayRecord) -> np.ndarray:
    """All arrays of a record, in key order, as one float64 vector."""
    parts = [np.asarray(arrays[k].numpy(), dtype=np.float64).ravel() for k in arrays]
    return np.concatenate(parts) if parts else np.zeros(0)


def aggregate_digest(arrays: ArrayRecord) -> str:
    """The digest the chain records for an aggregated ArrayRecord."""
    return vector_digest(_flat(arrays))


def _put_arrays(store: BlobStore, arrays: ArrayRecord) -> dict[str, Any]:
    """Store each array's raw bytes; return {key: {digest, dtype, shape}} to rebuild it."""
    out = {}
    for key in arrays:
        value = np.ascontiguousarray(arrays[key].numpy())
        out[key] = {
            "digest": store.put(value.tobytes()),
            "dtype": value.dtype.str,
            "shape": list(value.shape),
        }
    return out


def _get_arrays(store: BlobStore, layout: Mapping[str, Any]) -> ArrayRecord:
    arrays = {}
    for key, item in layout.items():
        raw = store.get(str(item["digest"]))
        value = np.frombuffer(raw, dtype=np.dtype(item["dtype"])).reshape(item["shape"]).copy()
        arrays[key] = Array(value)
    return ArrayRecord(arrays)


def _contents(store: BlobStore, manifest: Mapping[str, Any]) -> dict[str, RecordDict]:
    """Each node's reply content (arrays + its weight metric), rebuilt from the store.

    In the order the replies came: floating-point sums depend on it.
    """
    key = str(manifest["weight_key"])
    nodes = manifest["nodes"]
    out = {}
    for node in manifest["order"]:
        arrays = _get_arrays(store, nodes[node]["arrays"])
        out[node] = RecordDict(
            {"arrays": arrays, "metrics": MetricRecord({key: nodes[node]["weight"]})}
        )
    return out


def validate_round(
    ledger: TaskLedger,
    validator: LocalAccount,
    board: Board,
    store: BlobStore,
    owner: str,
    round_: int,
) -> str:
    """Recompute a recorded Flower round's aggregate from the store and attest its digest.

    Works for strategies that aggregate with Flower's weighted mean
    (``aggregate_arrayrecords``: FedAvg, FedProx and the FedOpt family's
    first step); returns the digest attested.
    """
    message = board.read(RoundPaths(round_).result, signer=owner)
    if message is None:
        raise FederatedError(f"round {round_} has no manifest signed by {owner} on the board")
    manifest = message.body
    contents = _contents(store, manifest)
    digest = aggregate_digest(
        aggregate_arrayrecords(list(contents.values()), manifest["weight_key"])
    )
    if digest != manifest["aggregate"]:
        raise FederatedError(
            f"round {round_}: recomputed aggregate {digest[:12]} differs from the recorded "
            f"{str(manifest['aggregate'])[:12]}; not attesting"
        )
    ledger.wait_for_round(board.task_id, round_)
    ledger.attest(validator, board.task_id, round_, digest)
    return digest


class LedgerStrategy(Strategy):
    """A Flower strategy that records every round through NeuroLedger (see the module doc)."""

    def __init__(
        self,
        inner: Strategy,
        *,
        ledger: TaskLedger,
        owner: LocalAccount,
        task_id: int,
        board: Board,
        utility: Utility | None = None,
        weight_key: str = "num-examples",
        final_timeout: float = 120.0,
    ) -> None:
        self.inner = inner
        self.ledger, self.owner, self.task_id = ledger, owner, task_id
        self.board, self.store = board, ledger.store
        self.utility = utility
        self.weight_key = weight_key
        self.final_timeout = final_timeout
        self.scores: dict[str, float] = {}
        self.rounds: list[dict[str, Any]] = []
        self._global: ArrayRecord | None = None
        self.writer = RoundWriter(
            ledger,
            owner,
            task_id,
            wait_final=lambda r: ledger.wait_final(task_id, r, timeout=final_timeout),
        )

    @classmethod
    def from_env(
        cls,
        inner: Strategy,
        *,
        task_id: int,
        owner: str,
        utility: Utility | None = None,
        shared: Path | None = None,
    ) -> LedgerStrategy:
        """Build it inside a ServerApp from the process's ``NEUROLEDGER_*`` environment.

        The home (``NEUROLEDGER_HOME``), the chain (its embedded node or
        ``NEUROLEDGER_RPC_URL``), the passphrase (``NEUROLEDGER_PASSPHRASE_FILE``) and the
        shared directory (``NEUROLEDGER_SHARED``) are read as the CLI reads them; ``owner``
        is the identity that owns task ``task_id``.
        """
        from neuroledger.chain import Chain
        from neuroledger.environment import passphrase_from_env, settings_from_env, shared_dir
        from neuroledger.identity import Keystore
        from neuroledger.store import FileStore

        settings = settings_from_env()
        where = shared_dir(settings, shared)
        ledger = TaskLedger(Chain.connect(settings), FileStore(where / "store"))
        keystore = Keystore(settings.keystore_dir, passphrase=passphrase_from_env, kdf=settings.kdf)
        account = keystore.owner_account(owner)
        return cls(
            inner,
            ledger=ledger,
            owner=account,
            task_id=task_id,
            board=Board(where, task_id),
            utility=utility,
        )

    # -- delegated ---------------------------------------------------------------------
    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """The wrapped strategy's training messages (the global model is kept for scoring)."""
        self._global = arrays
        return self.inner.configure_train(server_round, arrays, config, grid)

    def configure_evaluate(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """The wrapped strategy's evaluation messages."""
        return self.inner.configure_evaluate(server_round, arrays, config, grid)

    def aggregate_evaluate(
        self, server_round: int, replies: Iterable[Message]
    ) -> MetricRecord | None:
        """The wrapped strategy's evaluation metrics."""
        return self.inner.aggregate_evaluate(server_round, replies)

    def summary(self) -> None:
        """Log the wrapped strategy's summary."""
        log.info("NeuroLedger: recording task %d rounds on chain", self.task_id)
        self.inner.summary()

    # -- the ledger --------------------------------------------------------------------
    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """Commit to each reply, aggregate with the wrapped strategy, record the round."""
        replies = list(replies)
        nodes: dict[str, dict[str, Any]] = {}
        for reply in replies:
            if reply.has_error():
                continue
            content = reply.content
            sent = next(iter(content.array_records.values()))
            weight = next(iter(content.metric_records.values()))[self.weight_key]
            nodes[f"node-{reply.metadata.src_node_id}"] = {
                "arrays": _put_arrays(self.store, sent),
                "weight": weight,
            }
        arrays, metrics = self.inner.aggregate_train(server_round, replies)
        if arrays is None or not nodes:
            log.warning("round %d: no aggregate; nothing recorded", server_round)
            return arrays, metrics
        updates = {
            node: _digest_of_layout(entry["arrays"]) for node, entry in sorted(nodes.items())
        }
        aggregate = aggregate_digest(arrays)
        manifest = {
            "round": server_round,
            "weight_key": self.weight_key,
            "nodes": nodes,
            "order": list(nodes),
            "updates": updates,
            "aggregate": aggregate,
            "model": self.store.put(_flat(arrays).astype("<f8").tobytes()),
        }
        self.board.post(RoundPaths(server_round).result, manifest, self.owner)
        self.writer.submit(server_round, updates, aggregate)
        row: dict[str, Any] = {
            "round": server_round,
            "nodes": len(nodes),
            "aggregate": manifest["aggregate"],
        }
        if self.utility is not None and self._global is not None:
            scores = self._score(manifest)
            row["scores"] = scores
            for node, value in scores.items():
                self.scores[node] = self.scores.get(node, 0.0) + value
        self.rounds.append(row)
        return arrays, metrics

    def _score(self, manifest: Mapping[str, Any]) -> dict[str, float]:
        assert self.utility is not None and self._global is not None
        contents = _contents(self.store, manifest)
        start = self._global
        utility = self.utility

        def value(coalition: frozenset[str]) -> float:
            if not coalition:
                return utility(start)
            picked = [contents[n] for n in sorted(coalition)]
            return utility(aggregate_arrayrecords(picked, self.weight_key))

        return shapley(sorted(contents), value, rng=np.random.default_rng(len(self.rounds)))

    def finish(self, final_model_asset: str, payees: Mapping[str, str]) -> dict[str, int]:
        """Wait until every round is final, then pay the pool by score (``node -> address``)."""
        self.writer.close()
        if self.rounds:
            self.ledger.wait_final(
                self.task_id, self.rounds[-1]["round"], timeout=self.final_timeout
            )
        pool = self.ledger.task(self.task_id).pool
        scores = {payees[n]: max(v, 0.0) for n, v in self.scores.items() if n in payees}
        if not any(scores.values()):
            scores = dict.fromkeys(payees.values(), 1.0)
        rewards = reward_shares(scores, pool)
        self.ledger.finish(self.owner, self.task_id, final_model_asset, rewards)
        return rewards


class InProcessGrid(Grid):
    """Flower's Grid contract in one process, for experiments and tests without a SuperLink.

    Each message is copied (a SuperLink serialises it, so a ClientApp can never
    change what another node receives) and handed to ``app`` as node
    ``node_id``; each node keeps its state across rounds, as a SuperNode does.
    Flower's task identity is set the way Flower's own runtimes set it.
    """

    def __init__(self, app: ClientApp, node_ids: Sequence[int], *, run_id: int = 1) -> None:
        from flwr.supercore.run import Run
        from flwr.supercore.task_identity import TaskIdentity

        TaskIdentity.run_id, TaskIdentity.node_id, TaskIdentity.task_id = run_id, 0, 1
        self.app = app
        self.node_ids = list(node_ids)
        self.states = {n: RecordDict() for n in self.node_ids}
        self._run = Run.create_empty(run_id)
        self._pending: dict[str, Message] = {}

    def set_run(self, run: Any) -> None:
        """Flower calls this with the run's record."""
        self._run = run

    @property
    def run(self) -> Any:
        """The run's record."""
        return self._run

    def create_message(
        self,
        content: RecordDict,
        message_type: str,
        dst_node_id: int,
        group_id: str,
        ttl: float | None = None,
    ) -> Message:
        """A message to one node."""
        return Message(
            content=content, dst_node_id=dst_node_id, message_type=message_type, group_id=group_id
        )

    def get_node_ids(self) -> Iterable[int]:
        """The nodes of this grid."""
        return list(self.node_ids)

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        """Queue messages; return their ids."""
        ids: list[str] = []
        for message in messages:
            ids.append(f"{message.metadata.dst_node_id}-{len(self._pending)}-{len(ids)}")
            self._pending[ids[-1]] = copy.deepcopy(message)
        return ids

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        """Run each queued message through its node's ClientApp; return the replies."""
        replies = []
        for mid in message_ids:
            message = self._pending.pop(mid)
            node = message.metadata.dst_node_id
            context = Context(
                run_id=self._run.run_id,
                node_id=node,
                node_config={},
                state=self.states[node],
                run_config={},
            )
            replies.append(self.app(message, context))
        return replies

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> Iterable[Message]:
        """Push and pull at once (no timeout: delivery is synchronous)."""
        return self.pull_messages(self.push_messages(messages))


def _digest_of_layout(layout: Mapping[str, Any]) -> str:
    """One digest per node reply: SHA-256 of its canonical array layout (digests, dtypes, shapes)."""
    import hashlib

    return hashlib.sha256(json.dumps(layout, sort_keys=True).encode()).hexdigest()
