# pragma version 0.4.3
"""
@title Governance of a NeuroLedger contract that holds value or gates access
@custom:contract-name governed
@license Apache-2.0
@notice Three roles. The owner changes parameters and names the guardian; it
        is meant to be a timelock (NeuroLedger deploys snekmate's
        `TimelockController` as `Timelock`), so every change is scheduled in
        a `CallScheduled` event and waits its delay before it takes effect.
        Ownership moves in two steps: the new owner must accept. The guardian
        pauses and unpauses at once (an emergency stop). Everyone else may
        always exit.
@dev A contract that initializes this module checks `_require_not_paused`
     only in functions that start new obligations (create, join, grant); its
     exits (claims, refunds, revocations, withdrawals of consent) never check
     it, so no pause can hold anyone's funds or rights. A zero owner means
     the parameters can never change; a zero guardian means nobody can pause.
@custom:security `renounce_ownership` is deliberately not exported: a
                 governed contract leaves governance only by handing
                 ownership to a timelock without proposers.
"""

from snekmate.auth import ownable
from snekmate.auth import ownable_2step
from snekmate.utils import pausable

initializes: ownable
initializes: ownable_2step[ownable := ownable]
initializes: pausable

exports: (
    ownable_2step.owner,
    ownable_2step.pending_owner,
    ownable_2step.transfer_ownership,
    ownable_2step.accept_ownership,
    pausable.paused,
)


# @dev The account that may pause and unpause (zero: nobody).
guardian: public(address)


# @dev Emitted when the owner names a new guardian (and once at deployment).
event GuardianChanged:
    previousGuardian: indexed(address)
    newGuardian: indexed(address)


@deploy
def __init__(owner_: address, guardian_: address):
    """
    @dev Sets the first owner (usually the timelock) and the guardian.
    @param owner_ The owner; the zero address freezes every parameter.
    @param guardian_ The guardian; the zero address means nobody can pause.
    """
    ownable.__init__()
    ownable_2step.__init__()
    pausable.__init__()
    ownable_2step._transfer_ownership(owner_)
    self.guardian = guardian_
    log GuardianChanged(previousGuardian=empty(address), newGuardian=guardian_)


@external
def pause():
    """
    @notice Stops the functions that start new obligations; exits keep working.
    @dev Only the guardian or the owner.
    """
    self._check_guardian()
    pausable._pause()


@external
def unpause():
    """
    @notice Lifts the pause.
    @dev Only the guardian or the owner.
    """
    self._check_guardian()
    pausable._unpause()


@external
def setGuardian(newGuardian: address):
    """
    @notice Names the account that may pause and unpause.
    @dev Only the owner (through the timelock, so the change waits its delay).
    @param newGuardian The new guardian; the zero address means nobody can pause.
    """
    ownable._check_owner()
    log GuardianChanged(previousGuardian=self.guardian, newGuardian=newGuardian)
    self.guardian = newGuardian


@internal
def _require_not_paused():
    """
    @dev Reverts with "pausable: contract is paused" while paused.
    """
    pausable._require_not_paused()


@internal
def _check_owner():
    """
    @dev Reverts unless the caller is the owner.
    """
    ownable._check_owner()


@internal
@view
def _check_guardian():
    assert msg.sender == self.guardian or msg.sender == ownable.owner, (
        "governed: caller is not the guardian"
    )
