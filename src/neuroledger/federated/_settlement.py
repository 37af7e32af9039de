"""How a federated task ends for its parties: the owner cancels before round 1; everyone
claims what an ended task owes them (a task past its deadline is ended by the claim)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from eth_account.signers.local import LocalAccount

from neuroledger.errors import FederatedError
from neuroledger.federated._ledger import TaskState

if TYPE_CHECKING:
    from neuroledger.federated._service import FederatedTasks

__all__ = ["cancel", "claim"]


def cancel(tasks: FederatedTasks, task_id: int, owner: str) -> None:
    """The owner ends a task before its first round; the pool and stakes become claimable."""
    on_chain = _known(tasks, task_id)
    account = _key_for(tasks, owner, on_chain.owner)
    if on_chain.owner.lower() != str(account.address).lower():
        raise FederatedError(
            f"identity {owner!r} does not own task {task_id} (its owner is "
            f"{on_chain.owner}); only the owner cancels"
        )
    if on_chain.current_round > 0:
        raise FederatedError(
            f"task {task_id} has started training and cannot be cancelled; after its "
            "deadline anyone can end it and the pool goes to the participants"
        )
    if on_chain.status != 1:
        raise FederatedError(f"task {task_id} has already ended")
    tasks.ledger.cancel(account, task_id)


def claim(tasks: FederatedTasks, task_id: int, identity: str) -> dict[str, Any]:
    """Withdraw what an ended task owes ``identity``: reward or share and stake, or the pool.

    A task past its deadline is ended by the claim ittasks.
    """
    on_chain = _known(tasks, task_id)
    account = _key_for(tasks, identity, on_chain.owner)
    address = str(account.address)
    past = on_chain.status == 1 and on_chain.deadline <= tasks.ledger.now()
    if on_chain.status == 1 and not past:
        raise FederatedError(
            f"task {task_id} is still open (deadline "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(on_chain.deadline))}); "
            "claim after it finishes, is cancelled or passes its deadline"
        )
    if tasks.ledger.has_claimed(task_id, address):
        raise FederatedError(f"identity {identity!r} has already claimed from task {task_id}")
    is_owner = on_chain.owner.lower() == address.lower()
    if not is_owner and not tasks.ledger.is_participant(task_id, address):
        raise FederatedError(
            f"identity {identity!r} neither owns nor joined task {task_id}: nothing to claim"
        )
    if past:
        tasks.ledger.expire(account, task_id)
    on_chain = tasks.ledger.task(task_id)
    if is_owner and on_chain.status != 3:
        raise FederatedError(
            f"task {task_id} owes its owner nothing (it is "
            f"{on_chain.status_name}: the pool belongs to the participants)"
        )
    before = tasks.chain.w3.eth.get_balance(tasks.ledger.contract.address)
    tasks.ledger.claim(account, task_id)
    after = tasks.chain.w3.eth.get_balance(tasks.ledger.contract.address)
    return {
        "task": task_id,
        "identity": identity,
        "status": on_chain.status_name,
        "received_wei": str(before - after),
    }


def _key_for(tasks: FederatedTasks, identity: str, task_owner: str) -> LocalAccount:
    """``identity``'s key that owns the task, if one of its keys (even retired) does;
    else its current key (a participant's address is its key when it joined)."""
    if tasks.keystore.get(identity).holds_key(task_owner):
        return tasks.keystore.account_for(task_owner, what=f"identity {identity!r}")
    return tasks.keystore.owner_account(identity)


def _known(tasks: FederatedTasks, task_id: int) -> TaskState:
    on_chain = tasks.ledger.task(task_id)
    if on_chain.rounds == 0:
        raise FederatedError(
            f"unknown task {task_id}: no such task on chain (see `neuroledger fl status`)"
        )
    return on_chain
