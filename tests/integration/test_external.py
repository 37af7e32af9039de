"""External chains: unreachable node, wrong chain id, no contracts — each a one-line error."""

from __future__ import annotations

import pytest
from eth_account import Account

from neuroledger.chain._anvil import _free_port, start_dev_anvil
from neuroledger.chain._client import Chain
from neuroledger.config import Settings
from neuroledger.errors import ChainIdMismatchError, ContractsNotDeployedError, RPCUnreachableError

pytestmark = pytest.mark.anvil
DEV_KEY = bytes.fromhex("ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80")


def one_line(exc: BaseException) -> bool:
    return "\n" not in str(exc)


def test_unreachable(tmp_path) -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    with pytest.raises(RPCUnreachableError, match="NEUROLEDGER_RPC_URL") as info:
        Chain.connect(Settings(home=tmp_path, rpc_url=url))
    assert one_line(info.value)


def test_no_contracts_names_deploy_command(external_anvil, tmp_path) -> None:
    chain = Chain.from_rpc(external_anvil, Settings(home=tmp_path))
    assert not chain.is_embedded and chain.url == external_anvil
    with pytest.raises(ContractsNotDeployedError, match="neuroledger deploy --from") as info:
        chain.contract("DIDRegistry")
    assert one_line(info.value)


def test_deploy_is_idempotent_and_recorded(external_anvil, tmp_path) -> None:
    settings = Settings(home=tmp_path, rpc_url=external_anvil)
    chain = Chain.connect(settings)
    deployer = Account.from_key(DEV_KEY)
    first = chain.deployment(deployer=deployer)
    nonce = chain.w3.eth.get_transaction_count(deployer.address)
    second = Chain.connect(settings).deployment(deployer=deployer)
    assert first.contracts == second.contracts
    assert chain.w3.eth.get_transaction_count(deployer.address) == nonce  # nothing redeployed
    assert (tmp_path / "deployments" / "31337.json").exists()


def test_wrong_chain_id_for_recorded_url(tmp_path) -> None:
    proc, url = start_dev_anvil()
    settings = Settings(home=tmp_path, rpc_url=url)
    Chain.connect(settings).deployment(deployer=Account.from_key(DEV_KEY))
    proc.kill()
    proc.wait()
    other, _ = start_dev_anvil(chain_id=777, port=int(url.rsplit(":", 1)[1]))
    try:
        with pytest.raises(ChainIdMismatchError, match="chain id 777") as info:
            Chain.connect(settings)
        assert one_line(info.value)
    finally:
        other.kill()
        other.wait()
