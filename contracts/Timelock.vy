# pragma version 0.4.3
"""
@title NeuroLedger timelock (snekmate's TimelockController)
@custom:contract-name Timelock
@license Apache-2.0
@notice Owns the governed NeuroLedger contracts (FederatedTask,
        AccessGrants). A proposer schedules a call (a parameter change, a new
        guardian, an ownership transfer) with `schedule`; it is visible as a
        `CallScheduled` event and can run, by an executor, only after the
        delay. Proposers also cancel. The minimum delay itself changes only
        through the timelock.
@dev snekmate 0.1.2 `timelock_controller` with `access_control`, exported
     unchanged. Deployed without an admin: the timelock administers itself.
@custom:security With no proposer the governed contracts' parameters are
                 frozen for good; that is how a suite is deployed without an
                 operator.
"""

from snekmate.auth import access_control
from snekmate.governance import timelock_controller

initializes: access_control
initializes: timelock_controller[access_control := access_control]

exports: timelock_controller.__interface__


@deploy
def __init__(
    minimum_delay: uint256,
    proposers: DynArray[address, 255],
    executors: DynArray[address, 255],
):
    """
    @notice Sets the minimum delay and the proposers (also cancellers) and executors.
    @param minimum_delay Seconds every scheduled call waits at least.
    @param proposers Accounts that schedule and cancel calls.
    @param executors Accounts that execute ready calls.
    """
    access_control.__init__()
    timelock_controller.__init__(minimum_delay, proposers, executors, empty(address))
