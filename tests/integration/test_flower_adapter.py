"""The Flower adapter on a real anvil chain, with real Flower strategies, messages and ClientApps.

What is replaced: the transport. A SuperLink and SuperNodes would carry the
messages over gRPC; here :class:`InProcessGrid` copies each message and hands
it to the node's ClientApp in this process. The strategy, the messages, the
ClientApps and the chain are the real ones.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp.strategy import FedAvg

from neuroledger.errors import FederatedError
from neuroledger.federated._board import Board
from neuroledger.federated._data import split_dataset
from neuroledger.federated._ledger import TaskLedger, commitments_root
from neuroledger.federated._models import LogisticModel, local_train
from neuroledger.federated.flower import (
    InProcessGrid,
    LedgerStrategy,
    aggregate_digest,
    validate_round,
)
from neuroledger.store import FileStore

pytestmark = pytest.mark.anvil

NODES = (11, 12, 13)
POISONER = 13
PARTIES, (XV, YV) = split_dataset("breast-cancer", parties=3, alpha=1.0, seed=2)
MODEL = LogisticModel(30, 2)

client = ClientApp()


@client.train()
def train(msg: Message, context: Context) -> Message:
    """An ordinary Flower ClientApp: local training on this node's partition."""
    x, y = PARTIES[NODES.index(context.node_id)]
    if context.node_id == POISONER:
        y = 1 - y  # flipped labels
    w = msg.content["arrays"]["w"].numpy()
    new = local_train(MODEL, w, x, y, epochs=5, lr=0.5)
    content = RecordDict({"arrays": ArrayRecord({"w": Array(new)}),
                          "metrics": MetricRecord({"num-examples": len(y)})})  # fmt: skip
    return Message(content, reply_to=msg)


def grid() -> InProcessGrid:
    return InProcessGrid(client, NODES)


def _accuracy(arrays: ArrayRecord) -> float:
    return MODEL.accuracy(arrays["w"].numpy(), XV, YV)


@pytest.fixture
def task(chain, keystore, identities, tmp_path: Path):  # type: ignore[no-untyped-def]
    grid()  # sets Flower's task identity, as a ServerApp runtime does
    for name in ("owner", "member-a", "member-b", "member-c"):
        identities.create(name, "org")
    store = FileStore(tmp_path / "store")
    ledger = TaskLedger(chain, store)
    owner = keystore.owner_account("owner")
    members = [keystore.owner_account(n) for n in ("member-a", "member-b", "member-c")]
    task_id = ledger.create_task(owner, model_asset="11" * 32, code_asset="22" * 32, rounds=3,
                                 validators=2, pool_wei=9 * 10**17)  # fmt: skip
    for m in members:
        ledger.join(m, task_id)
    return ledger, owner, members, task_id, Board(tmp_path, task_id), store


def test_flower_rounds_are_recorded_validated_scored_and_paid(task) -> None:  # type: ignore[no-untyped-def]
    ledger, owner, members, task_id, board, store = task
    strategy = LedgerStrategy(
        FedAvg(fraction_evaluate=0.0, min_available_nodes=3, min_train_nodes=3),
        ledger=ledger, owner=owner, task_id=task_id, board=board, utility=_accuracy,
    )  # fmt: skip
    attested: list[tuple[int, str]] = []

    def validator(account) -> None:  # type: ignore[no-untyped-def]
        for r in (1, 2, 3):
            Board.wait(lambda r=r: board.read(f"r{r}/result.json", signer=owner.address),
                       timeout=60, what=f"round {r}")  # fmt: skip
            attested.append((r, validate_round(ledger, account, board, store, owner.address, r)))

    threads = [threading.Thread(target=validator, args=(m,)) for m in members[:2]]
    for t in threads:
        t.start()
    result = strategy.start(grid(), ArrayRecord({"w": Array(MODEL.init())}), num_rounds=3)
    for t in threads:
        t.join(60)
    assert _accuracy(result.arrays) > 0.85
    payees = {f"node-{n}": str(m.address) for n, m in zip(NODES, members, strict=True)}
    rewards = strategy.finish("33" * 32, payees)
    state = ledger.task(task_id)
    assert state.finalized_round == 3 and state.status == 2
    assert sum(rewards.values()) == 9 * 10**17
    # The poisoner scores lowest and gets the smallest reward (nothing, if its score is negative).
    assert min(strategy.scores, key=strategy.scores.__getitem__) == f"node-{POISONER}"
    assert rewards.get(str(members[2].address), 0) == min(
        rewards.get(a, 0) for a in payees.values()
    )
    # What the chain holds is what the board and the store hold.
    for r in (1, 2, 3):
        manifest = board.read(f"r{r}/result.json", signer=owner.address)
        assert manifest is not None
        root, digest, count, contributors = ledger.contract.functions.roundRecords(
            task_id, r
        ).call()
        assert contributors == 0  # Flower names nodes, not addresses: none recorded
        assert root.hex() == commitments_root(manifest.body["updates"])
        assert digest.hex() == manifest.body["aggregate"] and count == 2
        assert sorted(d for rr, d in attested if rr == r) == [digest.hex()] * 2
    assert digest.hex() == aggregate_digest(result.arrays)
    for m in members:
        if ledger.reward_of(task_id, str(m.address)):
            ledger.claim(m, task_id)
            assert ledger.reward_of(task_id, str(m.address)) == 0


def test_a_validator_refuses_an_aggregate_that_does_not_recompute(task) -> None:  # type: ignore[no-untyped-def]
    ledger, owner, members, task_id, board, store = task
    strategy = LedgerStrategy(
        FedAvg(fraction_evaluate=0.0, min_available_nodes=3, min_train_nodes=3),
        ledger=ledger, owner=owner, task_id=task_id, board=board,
    )  # fmt: skip
    replies = grid().send_and_receive(
        strategy.configure_train(1, ArrayRecord({"w": Array(MODEL.init())}), ConfigRecord(), grid())
    )
    strategy.aggregate_train(1, replies)
    manifest = board.read("r1/result.json", signer=owner.address)
    assert manifest is not None
    # An owner that lies about the aggregate: validators recompute and refuse.
    board.post("r1/result.json", {**manifest.body, "aggregate": "ab" * 32}, owner)
    with pytest.raises(FederatedError, match="differs from the recorded"):
        validate_round(ledger, members[0], board, store, owner.address, 1)
