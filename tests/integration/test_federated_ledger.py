"""Federated rounds recorded on a real anvil: commitments, k-of-n attestations, rewards."""

from __future__ import annotations

import time

import numpy as np
import pytest
from eth_account import Account
from sklearn.datasets import load_breast_cancer

from neuroledger.chain._client import Chain
from neuroledger.config import Settings
from neuroledger.errors import TransactionRevertedError
from neuroledger.federated import FedAvg, Update
from neuroledger.federated._aggregators import ServerOptimizer
from neuroledger.federated._contribution import gtg_shapley
from neuroledger.federated._ledger import TaskLedger, reward_shares, vector_digest
from neuroledger.federated._models import LogisticModel, local_train
from neuroledger.store import FileStore

pytestmark = pytest.mark.anvil

POOL = 3 * 10**18


def test_two_rounds_attested_then_rewards_paid(chain: Chain, settings) -> None:
    ledger = TaskLedger(chain, FileStore(settings.store_dir))
    owner = Account.create()
    chain.fund(owner.address, 10 * 10**18)
    people = {name: Account.create() for name in ("hospital-a", "hospital-b", "hospital-c")}
    for account in people.values():
        chain.fund(account.address)
    task_id = ledger.create_task(
        owner, model_asset="11" * 32, code_asset="22" * 32, rounds=2, validators=2, pool_wei=POOL
    )
    for account in people.values():
        ledger.join(account, task_id)
    assert ledger.task(task_id).participants == 3

    data = load_breast_cancer()
    x = (data.data - data.data.mean(axis=0)) / data.data.std(axis=0)
    y = data.target.astype(np.int64)
    parts = dict(zip(people, np.array_split(np.arange(len(y)), 3), strict=True))
    model = LogisticModel(features=30, classes=2)
    w = model.init()
    server = ServerOptimizer()
    for round_ in (1, 2):
        deltas = {
            n: local_train(model, w, x[idx], y[idx], epochs=10) - w for n, idx in parts.items()
        }
        aggregate = FedAvg().aggregate([Update(n, d) for n, d in deltas.items()])
        record = ledger.record_round(owner, task_id, round_, deltas, aggregate)
        assert record.aggregate_digest == vector_digest(aggregate)
        with pytest.raises(TransactionRevertedError, match="digest differs"):
            ledger.attest(people["hospital-c"], task_id, round_, "ab" * 32)  # a wrong digest
        for name in ("hospital-a", "hospital-b"):  # k = 2 validators recompute and attest
            assert ledger.validate(people[name], record, FedAvg(), {}) == record.aggregate_digest
        assert ledger.task(task_id).finalized_round == round_
        w = server.step(w, aggregate)
    assert model.accuracy(w, x, y) > 0.9

    def utility(coalition: frozenset[str]) -> float:
        if not coalition:
            return model.accuracy(model.init(), x, y)
        return model.accuracy(
            FedAvg().aggregate([Update(n, deltas[n]) for n in sorted(coalition)]), x, y
        )

    scores = gtg_shapley(sorted(people), utility, rng=np.random.default_rng(0))
    shares = reward_shares(scores, POOL)
    assert sum(shares.values()) == POOL
    ledger.finish(owner, task_id, "33" * 32, {people[n].address: v for n, v in shares.items()})
    for name, account in people.items():
        if name not in shares:
            continue
        before = chain.w3.eth.get_balance(account.address)
        ledger.claim(account, task_id)
        assert chain.w3.eth.get_balance(account.address) > before  # reward minus gas
        with pytest.raises(TransactionRevertedError, match="already paid"):
            ledger.claim(account, task_id)
    unclaimed = sum(1 for name in people if name not in shares)
    stake = ledger.task(task_id).stake
    assert chain.w3.eth.get_balance(ledger.contract.address) == unclaimed * stake


def test_reward_shares() -> None:
    assert reward_shares({"a": 3.0, "b": 1.0, "c": -1.0}, 100) == {"a": 75, "b": 25}
    assert sum(reward_shares({"a": 1.0, "b": 1.0, "c": 1.0}, 100).values()) == 100
    with pytest.raises(Exception, match="no participant"):
        reward_shares({"a": 0.0}, 100)


def test_m6_an_unfinished_task_shares_its_pool_by_contribution_after_its_deadline(
    chain: Chain, settings
) -> None:
    """The owner disappears after round 1: after the deadline anyone ends the task and the
    participants whose updates were recorded share the pool; every stake comes back."""
    ledger = TaskLedger(chain, FileStore(settings.store_dir))
    owner = Account.create()
    chain.fund(owner.address, 10 * 10**18)
    people = sorted((Account.create() for _ in range(3)), key=lambda a: int(a.address, 16))
    for account in people:
        chain.fund(account.address)
    stake = 10**16
    task_id = ledger.create_task(
        owner, model_asset="11" * 32, code_asset="22" * 32, rounds=2, validators=2,
        pool_wei=POOL, stake_wei=stake, duration=6 + int(8 * settings.block_time),
    )  # fmt: skip
    held = chain.w3.eth.get_balance(ledger.contract.address)
    with pytest.raises(TransactionRevertedError, match="the owner cannot participate"):
        ledger.join(owner, task_id)
    for account in people:
        ledger.join(account, task_id)
    assert chain.w3.eth.get_balance(ledger.contract.address) == held + 3 * stake
    contributors = [people[0].address, people[1].address]
    ledger.record_digests(
        owner, task_id, 1, {a: "ab" * 32 for a in contributors}, "cd" * 32, contributors
    )
    with pytest.raises(TransactionRevertedError, match="deadline not reached"):
        ledger.expire(people[2], task_id)
    deadline = ledger.task(task_id).deadline
    while time.time() <= deadline + 1:  # the chain mines new blocks at the wall clock's time
        time.sleep(0.5)
    with pytest.raises(TransactionRevertedError, match="deadline has passed"):
        ledger.attest(people[0], task_id, 1, "cd" * 32)
    ledger.expire(people[2], task_id)  # anyone may end it
    assert ledger.task(task_id).status == 4
    with pytest.raises(TransactionRevertedError, match="nothing owed to the owner"):
        ledger.claim(owner, task_id)
    for account in people:
        ledger.claim(account, task_id)
        assert ledger.has_claimed(task_id, account.address)
    assert chain.w3.eth.get_balance(ledger.contract.address) == held - POOL
    with pytest.raises(TransactionRevertedError, match="already paid"):
        ledger.claim(people[0], task_id)


def test_a_reorganisation_never_takes_back_a_round_reported_final(settings) -> None:
    """Issue 13 §6: asked for 2 confirmations, a round is final only once its k-th attestation
    is 2 blocks deep. anvil_reorg drops the block of that attestation before then: the round
    was never reported final, a fresh read agrees, and it becomes final once attested again
    and buried."""
    from neuroledger.errors import FederatedError

    chain = Chain.connect(settings)
    assert chain.node is not None
    try:
        ledger = TaskLedger(chain, FileStore(settings.store_dir))
        owner = Account.create()
        chain.fund(owner.address, 10 * 10**18)
        people = [Account.create() for _ in range(3)]
        for account in people:
            chain.fund(account.address)
        task_id = ledger.create_task(owner, model_asset="11" * 32, code_asset="22" * 32,
                                     rounds=1, validators=2, pool_wei=POOL)  # fmt: skip
        for account in people:
            ledger.join(account, task_id)
        rng = np.random.default_rng(0)
        deltas = {f"p{i}": rng.normal(size=8) for i in range(3)}
        record = ledger.record_round(owner, task_id, 1, deltas, FedAvg().aggregate(
            [Update(n, d) for n, d in deltas.items()]))  # fmt: skip
        for account in people[:2]:
            ledger.attest(account, task_id, 1, record.aggregate_digest)
        assert ledger.task(task_id).finalized_round == 1  # at the head
        assert ledger.task(task_id, confirmations=2).finalized_round == 0  # not yet buried
        with pytest.raises(FederatedError, match="not final"):
            ledger.wait_final(task_id, 1, timeout=0.5, confirmations=2)

        attested_in = chain.w3.eth.get_logs(
            {"address": ledger.contract.address, "fromBlock": 0, "toBlock": "latest"}
        )[-1]["blockNumber"]
        depth = chain.w3.eth.block_number - attested_in + 1  # more than 1 with a block time
        chain.w3.provider.make_request("anvil_reorg", [depth, []])  # the 2nd attestation is gone
        chain.nonces.resync(people[1].address)
        assert ledger.task(task_id).finalized_round == 0  # a fresh read agrees
        assert not ledger.has_attested(task_id, 1, people[1].address)

        ledger.attest(people[1], task_id, 1, record.aggregate_digest)
        chain.w3.provider.make_request("anvil_mine", [2])  # two blocks on top
        ledger.wait_final(task_id, 1, timeout=10, confirmations=2)
        assert ledger.task(task_id, confirmations=2).finalized_round == 1
    finally:
        chain.node.stop()


DEV_KEY = bytes.fromhex("ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80")


def test_finality_depth_follows_how_the_chain_makes_blocks(settings, tmp_path) -> None:
    """A chain that mines only when written to never buries a write: there the processes
    wait at the head. A chain that makes blocks on a clock gets the asked-for depth."""
    from neuroledger.chain._anvil import start_dev_anvil

    embedded = Chain.connect(settings.with_(confirmations=3))
    try:  # the embedded node mines each write at once, or on a clock (make test-block-time)
        assert embedded.finality_depth() == (3 if settings.block_time else 0)
    finally:
        assert embedded.node is not None
        embedded.node.stop()
    automine, automine_url = start_dev_anvil()
    clock, clock_url = start_dev_anvil("--block-time", "1")
    try:
        for url, depth in ((automine_url, 0), (clock_url, 3)):
            external = Settings(home=tmp_path / str(depth), rpc_url=url, confirmations=3)
            assert Chain.connect(external).finality_depth() == depth
    finally:
        for proc in (automine, clock):
            proc.kill()
            proc.wait()


def test_rounds_are_reported_final_at_the_chains_depth_on_a_chain_with_a_block_time(
    tmp_path,
) -> None:
    """What `fl run` and `fl join` wait for (wait_final without a depth): on a chain with a
    block every second and 2 confirmations asked for, a round is final only when its k-th
    attestation is 2 blocks deep."""
    from neuroledger.chain._anvil import start_dev_anvil

    proc, url = start_dev_anvil("--block-time", "1")
    try:
        chain = Chain.connect(Settings(home=tmp_path, rpc_url=url, confirmations=2))
        chain.deployment(deployer=Account.from_key(DEV_KEY))
        chain.fund_from(None)
        ledger = TaskLedger(chain, FileStore(tmp_path / "store"))
        owner, people = Account.create(), [Account.create() for _ in range(2)]
        for account in (owner, *people):
            chain.fund(account.address, 10 * 10**18)
        task_id = ledger.create_task(owner, model_asset="11" * 32, code_asset="22" * 32,
                                     rounds=1, validators=2, pool_wei=POOL)  # fmt: skip
        for account in people:
            ledger.join(account, task_id)
        deltas = {"p0": np.ones(4), "p1": np.zeros(4)}
        record = ledger.record_round(owner, task_id, 1, deltas, FedAvg().aggregate(
            [Update(n, d) for n, d in deltas.items()]))  # fmt: skip
        for account in people:
            ledger.attest(account, task_id, 1, record.aggregate_digest)
        attested_in = chain.w3.eth.get_logs(
            {"address": ledger.contract.address, "fromBlock": 0, "toBlock": "latest"}
        )[-1]["blockNumber"]
        ledger.wait_final(task_id, 1, timeout=30)
        assert chain.w3.eth.block_number - attested_in >= 2
        assert ledger.task(task_id, confirmations=2).finalized_round == 1
    finally:
        proc.kill()
        proc.wait()
