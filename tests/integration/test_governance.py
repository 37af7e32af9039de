"""Governance on a real anvil: the guardian pauses new work and never an exit; changes wait in
the timelock and are visible before they run; the embedded default suite has no governor."""

from __future__ import annotations

import os

import pytest

from neuroledger.chain import Chain, GovernanceSetup, contract_call
from neuroledger.errors import (
    ConfigError,
    ContractPausedError,
    NotAuthorizedError,
    TransactionRevertedError,
)
from neuroledger.governance import Governance
from neuroledger.identity import Identities, Keystore

pytestmark = pytest.mark.anvil

DELAY = 120


@pytest.fixture
def governed(chain: Chain, keystore: Keystore, identities: Identities) -> Governance:
    """A suite governed by `operator` and guarded by `guardian`, deployed afresh."""
    for name in ("operator", "guardian", "lab"):
        identities.create(name, "org", publish=False)
    operator = keystore.owner_account("operator")
    setup = GovernanceSetup(operator.address, keystore.get("guardian").owner, DELAY)
    chain.deployment(deployer=operator, force=True, governance=setup)
    return Governance(chain, keystore)


def _task(chain: Chain, keystore: Keystore, who: str, fn: str, args: list, value: int = 0):
    call = contract_call(chain.contract("FederatedTask"), fn, args, label=fn, value=value)
    return chain.sender(keystore.owner_account(who)).send(call)


def _create(chain: Chain, keystore: Keystore, who: str = "lab") -> int:
    before = chain.contract("FederatedTask").functions.taskCount().call()
    deadline = chain.w3.eth.get_block("latest")["timestamp"] + 86400
    _task(chain, keystore, who, "createTask",
          [os.urandom(32), os.urandom(32), 1, 1, 10**9, deadline], value=10**17)  # fmt: skip
    return before + 1


def test_a_default_embedded_suite_has_no_governor(chain: Chain, keystore: Keystore) -> None:
    status = Governance(chain, keystore).status()
    assert status.governor is None and status.operations == []
    assert all(c.guardian is None and not c.paused for c in status.contracts)
    assert {c.owner for c in status.contracts} == {status.timelock}


def test_the_guardian_pauses_new_work_and_exits_still_work(governed: Governance) -> None:
    chain, keystore = governed.chain, governed.keystore
    task_id = _create(chain, keystore)
    with pytest.raises(NotAuthorizedError, match="governed: caller is not the guardian"):
        governed.pause("FederatedTask", by="lab")
    with pytest.raises(ConfigError, match="did you mean FederatedTask"):
        governed.pause("FederatedTsk", by="guardian")
    governed.pause("FederatedTask", by="guardian")
    assert [c.paused for c in governed.status().contracts] == [True, False, False, False, False]
    with pytest.raises(ContractPausedError, match="gov status") as caught:
        _create(chain, keystore)
    assert caught.value.contract == "pausable"
    _task(chain, keystore, "lab", "cancel", [task_id])  # an exit: never paused
    before = chain.w3.eth.get_balance(keystore.owner_account("lab").address)
    _task(chain, keystore, "lab", "claim", [task_id])  # the refund of the pool
    assert chain.w3.eth.get_balance(keystore.owner_account("lab").address) > before
    governed.unpause("FederatedTask", by="guardian")
    _create(chain, keystore)


def test_a_change_is_announced_and_runs_only_after_its_delay(governed: Governance) -> None:
    chain = governed.chain
    with pytest.raises(NotAuthorizedError, match="missing role"):
        governed.propose("FederatedTask", "setMaxDuration", ["2592000"], by="lab")
    with pytest.raises(ConfigError, match="below the timelock's minimum"):
        governed.propose("FederatedTask", "setMaxDuration", ["2592000"], by="operator", delay=5)
    with pytest.raises(ConfigError, match="did you mean setMaxDuration"):
        governed.propose("FederatedTask", "setMaxDurration", ["1"], by="operator")
    op = governed.propose("FederatedTask", "setMaxDuration", ["2592000"], by="operator")
    (listed,) = governed.status().operations
    assert (listed.id, listed.state, listed.call) == (op.id, "waiting", "setMaxDuration(2592000)")
    with pytest.raises(ConfigError, match="is waiting; it is ready at"):
        governed.execute(op.id, by="operator")
    chain.wait_block_time(DELAY)
    assert governed.status().operations[0].state == "ready"
    governed.execute(op.id, by="operator")
    status = governed.status()
    assert status.operations[0].state == "done"
    assert status.contracts[0].parameters == {"maxDuration": 2592000}
    with pytest.raises(ConfigError, match="is done"):
        governed.execute(op.id, by="operator")


def test_a_cancelled_change_never_runs_and_a_new_guardian_takes_over(
    governed: Governance,
) -> None:
    chain = governed.chain
    op = governed.propose("AccessGrants", "setGuardian", ["lab"], by="operator")
    governed.cancel(op.id, by="operator")
    chain.wait_block_time(DELAY)
    assert governed.status().operations[0].state == "cancelled"
    with pytest.raises(ConfigError, match="is cancelled"):
        governed.execute(op.id, by="operator")
    op = governed.propose("AccessGrants", "setGuardian", ["lab"], by="operator")
    chain.wait_block_time(DELAY)
    governed.execute(op.id, by="operator")
    grants = governed.status().contracts[1]
    assert grants.guardian == governed.keystore.get("lab").owner
    with pytest.raises(TransactionRevertedError, match="not the guardian"):
        governed.pause("AccessGrants", by="guardian")
    governed.pause("AccessGrants", by="lab")
