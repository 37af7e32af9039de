"""The transaction layer against real anvil: batches, concurrency, reverts, funds, timeouts."""

from __future__ import annotations

import threading

import pytest
from eth_account import Account

from neuroledger.chain._client import Chain
from neuroledger.chain._tx import Call, TransactionSender
from neuroledger.config import Settings
from neuroledger.errors import (
    InsufficientFundsError,
    NotAuthorizedError,
    TransactionRevertedError,
    TransactionTimeoutError,
)
from neuroledger.identity._registry import RegistryClient

pytestmark = pytest.mark.anvil
DEV_KEY_1 = "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"


def funded(chain: Chain):
    account = Account.create()
    chain.fund(account.address)
    return account


def test_pipelined_batch_confirms_all_in_order(chain: Chain) -> None:
    account = funded(chain)
    reg = RegistryClient(chain.contract("DIDRegistry"))
    calls = [
        reg.set_attribute(account.address, "did/svc/S", f"v{i}".encode(), 60) for i in range(50)
    ]
    seen = []
    receipts = chain.sender(account).send_batch(calls, progress=seen.append)
    assert [r.status for r in receipts] == [1] * 50
    blocks = [r.block_number for r in receipts]
    assert blocks == sorted(blocks)
    assert seen[-1] == 50
    assert chain.w3.eth.get_transaction_count(account.address) == 50


def test_concurrent_senders_share_nonces_safely(chain: Chain) -> None:
    account = funded(chain)
    reg = RegistryClient(chain.contract("DIDRegistry"))
    sender = chain.sender(account)
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            for i in range(5):
                sender.send(
                    reg.set_attribute(account.address, "did/svc/T", f"{k}-{i}".encode(), 60)
                )
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert chain.w3.eth.get_transaction_count(account.address) == 20


def test_revert_becomes_typed_exception_before_sending(chain: Chain) -> None:
    account = funded(chain)
    reg = RegistryClient(chain.contract("DIDRegistry"))
    someone_else = Account.create().address
    with pytest.raises(NotAuthorizedError, match="caller is not the identity owner") as info:
        chain.sender(account).send(reg.change_owner(someone_else, account.address))
    assert info.value.reason == "DIDRegistry: caller is not the identity owner"
    assert chain.w3.eth.get_transaction_count(account.address) == 0  # nothing sent, no nonce burnt
    # the sender still works afterwards
    chain.sender(account).send(reg.change_owner(account.address, account.address))


def test_revert_after_mining_is_decoded(chain: Chain) -> None:
    account = funded(chain)
    reg = RegistryClient(chain.contract("DIDRegistry"))
    call = reg.change_owner(Account.create().address, account.address)
    forced = Call(to=call.to, data=call.data, gas=100_000, label="forced")
    with pytest.raises(NotAuthorizedError) as info:
        chain.sender(account).send(forced)
    assert info.value.tx_hash is not None


def test_a_revert_that_depends_on_the_blocks_time_names_its_reason(chain: Chain) -> None:
    """A join that passes against the chain's head but is mined after the task's deadline:
    the reason comes from the block it was mined in, not "out of gas" (as it did when the
    replay only tried the state before the block)."""
    from neuroledger.federated._ledger import TaskLedger
    from neuroledger.store import FileStore

    ledger = TaskLedger(chain, FileStore(chain.settings.store_dir))
    owner, joiner = funded(chain), funded(chain)
    chain.fund(owner.address, 10**19)
    task_id = ledger.create_task(owner, model_asset="11" * 32, code_asset="22" * 32, rounds=1,
                                 validators=1, pool_wei=10**15, duration=600)  # fmt: skip
    deadline = ledger.task(task_id).deadline
    join = ledger.contract.functions.join(task_id)
    call = Call(to=ledger.contract.address, data=bytes.fromhex(join._encode_transaction_data()[2:]),
                value=ledger.task(task_id).stake, gas=200_000, label="join")  # fmt: skip
    chain.w3.provider.make_request("evm_setNextBlockTimestamp", [deadline + 1])  # type: ignore[arg-type]
    with pytest.raises(TransactionRevertedError, match="deadline has passed") as info:
        chain.sender(joiner).send(call)
    assert info.value.tx_hash is not None


def test_a_call_that_runs_out_of_gas_says_so(chain: Chain) -> None:
    account = funded(chain)
    reg = RegistryClient(chain.contract("DIDRegistry"))
    call = reg.set_attribute(account.address, "did/svc/X", b"x" * 64, 3600)
    starved = Call(to=call.to, data=call.data, gas=30_000, label="starved")
    with pytest.raises(TransactionRevertedError, match="out of gas"):
        chain.sender(account).send(starved)


def test_external_unfunded_account_is_told_how_much(
    external_anvil: str, tmp_path, keystore
) -> None:

    settings = Settings(home=tmp_path / "ext", rpc_url=external_anvil)
    chain = Chain.connect(settings)
    deployer = Account.from_key(
        bytes.fromhex("ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80")
    )
    chain.deployment(deployer=deployer)  # anvil's published dev key, external test chain only
    poor = Account.create()
    reg = RegistryClient(chain.contract("DIDRegistry"))
    with pytest.raises(InsufficientFundsError, match=r"needs .* ETH .* send it at least"):
        chain.sender(poor).send(reg.set_attribute(poor.address, "did/svc/S", b"x", 60))
    assert chain.w3.eth.get_transaction_count(poor.address) == 0  # nothing sent, no nonce used


def test_receipt_timeout(external_anvil: str, tmp_path) -> None:
    from neuroledger.chain._rpc import rpc_call

    rpc_call(external_anvil, "evm_setAutomine", [False])
    settings = Settings(home=tmp_path / "ext", rpc_url=external_anvil, receipt_timeout=0.5)
    chain = Chain.connect(settings)
    rich = Account.from_key(
        bytes.fromhex("59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d")
    )
    sender = TransactionSender(
        chain.w3, rich, chain_id=chain.chain_id, nonces=chain.nonces, receipt_timeout=0.5
    )
    with pytest.raises(TransactionTimeoutError, match="no receipt"):
        sender.send(Call(to=rich.address, data=b"", value=1, label="transfer"))


def test_m10_accepted_but_unmined_transactions_are_recovered(external_anvil: str, tmp_path) -> None:
    """M10: a node takes a batch but does not mine it (here: an external anvil with mining
    off). The sender notices within its stall bound, sends the same signed bytes again in
    nonce order and calls its kick hook (the embedded chain's gate mines there); nothing is
    sent twice with two nonces."""
    from neuroledger.chain._rpc import rpc_call

    settings = Settings(home=tmp_path / "ext", rpc_url=external_anvil)
    chain = Chain.connect(settings)
    dev = Account.from_key(bytes.fromhex(DEV_KEY_1))  # anvil's published key, test chain only
    chain.deployment(deployer=dev)
    reg = RegistryClient(chain.contract("DIDRegistry"))
    rpc_call(external_anvil, "evm_setAutomine", [False])
    kicks: list[int] = []

    def kick() -> None:
        kicks.append(1)
        rpc_call(external_anvil, "evm_mine", [])

    sender = TransactionSender(chain.w3, dev, chain_id=chain.chain_id, nonces=chain.nonces,
                               kick=kick, stall_after=0.5, receipt_timeout=60)  # fmt: skip
    start = chain.w3.eth.get_transaction_count(dev.address)
    calls = [reg.set_attribute(dev.address, "did/svc/M", f"{i}".encode(), 60) for i in range(10)]
    receipts = sender.send_batch(calls)
    assert [r.status for r in receipts] == [1] * 10
    assert sender.stalls >= 1 and kicks
    assert chain.w3.eth.get_transaction_count(dev.address) == start + 10


def test_the_embedded_gate_mines_what_it_accepts(chain: Chain) -> None:
    """On the embedded chain a sent transaction is mined by the gate at once: no stall."""
    account = funded(chain)
    reg = RegistryClient(chain.contract("DIDRegistry"))
    sender = chain.sender(account)
    sender.send_batch([reg.set_attribute(account.address, "did/svc/G", b"x", 60)] * 20)
    assert sender.stalls == 0


def _burn(seconds: float) -> None:
    import time

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        sum(i * i for i in range(10_000))


@pytest.mark.slow
def test_m10_pipelined_batches_confirm_50_times_with_both_cores_loaded(chain: Chain) -> None:
    """M10: 50 pipelined batches of 50 in a row, while two other processes load both cores
    (8 with a block time: each batch then waits for the clock, and the point there is that
    a batch spread over blocks still confirms in order)."""
    import multiprocessing

    batches = 8 if chain.settings.block_time else 50

    burners = [multiprocessing.Process(target=_burn, args=(600,)) for _ in range(2)]
    for p in burners:
        p.start()
    try:
        reg = RegistryClient(chain.contract("DIDRegistry"))
        for round_no in range(batches):
            account = funded(chain)
            calls = [reg.set_attribute(account.address, "did/svc/S", f"v{i}".encode(), 60)
                     for i in range(50)]  # fmt: skip
            receipts = chain.sender(account).send_batch(calls)
            assert [r.status for r in receipts] == [1] * 50, round_no
            assert chain.w3.eth.get_transaction_count(account.address) == 50
    finally:
        for p in burners:
            p.kill()
            p.join()


WRITER = r"""
import sys
from pathlib import Path
from neuroledger.chain._client import Chain
from neuroledger.config import KdfParams, Settings
from neuroledger.identity._keystore import Keystore
from neuroledger.identity._registry import RegistryClient
home, tag = Path(sys.argv[1]), sys.argv[2]
settings = Settings(home=home, kdf=KdfParams.light())
chain = Chain.connect(settings, start_node=False)
keys = Keystore(settings.keystore_dir, passphrase=lambda: Path(sys.argv[3]).read_text().strip(),
                kdf=settings.kdf)
account = keys.owner_account("shared")
reg = RegistryClient(chain.contract("DIDRegistry"))
sender = chain.sender(account)
for i in range(15):
    sender.send(reg.set_attribute(account.address, "did/svc/P", f"{tag}-{i}".encode(), 60))
print("ok")
"""


def test_m8_processes_of_one_home_share_an_account_without_nonce_clashes(
    chain: Chain, keystore, tmp_path
) -> None:
    """M8: the CLI and a gateway (here: three processes) send from the owner's key at once."""
    import os
    import subprocess
    import sys

    from tests.conftest import PASSPHRASE

    record = keystore.create("shared", "org")
    chain.fund(record.owner)
    secret = tmp_path / "pass"
    secret.write_text(PASSPHRASE)
    secret.chmod(0o600)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(chain.settings.home), str(n),
                          str(secret)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        for n in range(3)
    ]  # fmt: skip
    failed = 0
    for p in procs:
        out, err = p.communicate(timeout=300)
        failed += p.returncode != 0
        assert p.returncode == 0 and b"ok" in out, err.decode()[-2000:]
    assert chain.w3.eth.get_transaction_count(record.owner) == 45
    from tests import security_figures

    security_figures.record(
        "transactions",
        "M8 three processes of one home sending from one key",
        tried=45,
        through=failed,
        what="three processes (the CLI while a gateway runs) send 15 writes each from the "
        "owner's key at once; a write lost to a nonce clash counts as getting through.",
        test="tests/integration/test_tx.py",
    )
