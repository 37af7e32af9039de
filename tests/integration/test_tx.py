"""The transaction layer against real anvil: batches, concurrency, reverts, funds, timeouts."""

from __future__ import annotations

import threading

import pytest
from eth_account import Account

from neuroledger.chain.client import Chain
from neuroledger.chain.tx import Call, NotAuthorizedError, TransactionSender
from neuroledger.config import Settings
from neuroledger.errors import InsufficientFundsError, TransactionTimeoutError
from neuroledger.identity.registry import RegistryClient

pytestmark = pytest.mark.anvil


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
    assert info.value.reason == "did: caller is not the identity owner"
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


def test_external_unfunded_account_is_told_how_much(
    external_anvil: str, tmp_path, keystore
) -> None:
    from neuroledger.chain.deploy import ensure_deployed

    settings = Settings(home=tmp_path / "ext", rpc_url=external_anvil)
    chain = Chain.connect(settings)
    deployer = Account.from_key(
        bytes.fromhex("ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80")
    )
    ensure_deployed(chain, deployer=deployer)  # anvil's published dev key, external test chain only
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
