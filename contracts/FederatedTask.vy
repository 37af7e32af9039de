# pragma version 0.4.3
# pragma nonreentrancy on
"""
@title NeuroLedger federated training tasks
@custom:contract-name FederatedTask
@license Apache-2.0
@notice Coordinates federated training on chain. A task owner escrows a
        reward pool, names the initial model and code assets, the stake each
        participant escrows to join and a deadline; participants join with
        their stake; each round records the Merkle root of the update
        commitments, the digest of the aggregate and a bit map of the
        participants whose updates it holds; any k participants (validators) who recomputed the
        aggregate attest its digest before the round is final; at the end the
        owner sets each participant's reward from the contribution scores (the
        rewards must sum to the pool) and each participant withdraws its reward
        and its stake once.
@dev Models and updates stay off chain (content store); only digests are here.
     Every task ends: if it is not finished by its deadline, anyone may expire
     it. Before round 1 the pool then returns to the owner (the owner may also
     cancel before round 1); after it, the pool is shared among participants
     in proportion to the rounds their updates were recorded in (equally if
     none was recorded). Stakes always return to their participants.
@custom:security Rewards, refunds and stakes are pulled, not pushed, and every
                 function is non-reentrant. The owner cannot finish before
                 every round is final, nor after the deadline, nor pay more or
                 less than the pool, nor pay anyone who did not join; the owner
                 cannot join, so it is never a payee or a validator. Joining
                 (and so validating) costs a stake, so validators cannot be
                 minted for free, and round 1 needs at least k participants.
                 Governance (the `governed` module): the guardian may pause
                 new tasks, joins, rounds and attestations; a pause never
                 blocks `finish`, `cancel`, `expire` or `claim`, so every
                 reward, refund and stake can always be withdrawn (a paused
                 task that misses its deadline expires and shares its pool).
                 The owner (the timelock) sets the longest task duration and
                 the guardian, each change waiting the timelock's delay.
"""

from modules import governed

initializes: governed

exports: governed.__interface__


# @dev Most participants a task can pay out to in one `finish`.
MAX_PAYEES: constant(uint256) = 128

# @dev Most participants a task takes (one bit each in a round's contributor map).
MAX_PARTICIPANTS: constant(uint32) = 256

# @dev Most rounds a task may have (an expired task's share-out reads each round's map).
MAX_ROUNDS: constant(uint32) = 1024

# @dev Bounds of the longest duration the owner may set (one day to ten years).
MIN_MAX_DURATION: constant(uint256) = 86400
MAX_MAX_DURATION: constant(uint256) = 3660 * 86400

# @dev Task statuses.
STATUS_OPEN: constant(uint8) = 1
STATUS_FINISHED: constant(uint8) = 2
STATUS_REFUNDED: constant(uint8) = 3  # ended before round 1: the pool returns to the owner
STATUS_EXPIRED: constant(uint8) = 4  # deadline passed after round 1: the pool goes to participants


struct Task:
    owner: address
    modelAsset: bytes32
    codeAsset: bytes32
    rounds: uint32
    validators: uint32
    currentRound: uint32
    finalizedRound: uint32
    participants: uint32
    status: uint8
    pool: uint256
    stake: uint256
    deadline: uint256
    contributions: uint256


struct RoundRecord:
    commitmentsRoot: bytes32
    aggregateDigest: bytes32
    attestations: uint32
    contributors: uint256


# @dev Longest a task may run: a deadline is at most this far after creation (a
# parameter the owner changes through the timelock; 366 days at deployment).
maxDuration: public(uint256)

# @dev Number of tasks created; task ids start at 1.
taskCount: public(uint256)

# @dev task id => task.
tasks: public(HashMap[uint256, Task])

# @dev task id => account => its participant number plus one (zero: not joined).
participantSlot: public(HashMap[uint256, HashMap[address, uint256]])

# @dev task id => round => record.
roundRecords: public(HashMap[uint256, HashMap[uint32, RoundRecord]])

# @dev task id => round => validator => attested.
hasAttested: public(HashMap[uint256, HashMap[uint32, HashMap[address, bool]]])

# @dev task id => participant => reward set when the task finished (its contribution
# score in wei; kept after the claim, `paid` tells whether it was withdrawn).
rewardOf: public(HashMap[uint256, HashMap[address, uint256]])

# @dev task id => the final model's asset id, set when the task finishes (zero before).
finalModelOf: public(HashMap[uint256, bytes32])

# @dev task id => account => settled (reward, share or refund, and stake, withdrawn).
paid: public(HashMap[uint256, HashMap[address, bool]])

# @dev task id => pool not yet paid out of an expired task.
poolLeft: public(HashMap[uint256, uint256])

# @dev task id => contribution weight not yet paid out of an expired task.
weightLeft: public(HashMap[uint256, uint256])


# @dev Emitted when an owner creates a task and escrows its pool.
event TaskCreated:
    taskId: indexed(uint256)
    owner: indexed(address)
    modelAsset: bytes32
    codeAsset: bytes32
    rounds: uint32
    validators: uint32
    pool: uint256
    stake: uint256
    deadline: uint256


# @dev Emitted when a participant joins a task with its stake; `number` is its bit in round maps.
event ParticipantJoined:
    taskId: indexed(uint256)
    participant: indexed(address)
    number: uint256
    stake: uint256


# @dev Emitted when the owner records a round's commitments root, aggregate and contributors.
event RoundRecorded:
    taskId: indexed(uint256)
    round: indexed(uint32)
    commitmentsRoot: bytes32
    aggregateDigest: bytes32
    contributors: uint256


# @dev Emitted when a validator attests a round's aggregate digest.
event RoundAttested:
    taskId: indexed(uint256)
    round: indexed(uint32)
    validator: indexed(address)


# @dev Emitted when a round has its k attestations and is final.
event RoundFinalized:
    taskId: indexed(uint256)
    round: indexed(uint32)
    aggregateDigest: bytes32


# @dev Emitted when the owner finishes a task and sets the rewards.
event TaskFinished:
    taskId: indexed(uint256)
    finalModelAsset: bytes32
    payees: uint256


# @dev Emitted when a task is cancelled or expired (`status` 3 refunded, 4 expired).
event TaskEnded:
    taskId: indexed(uint256)
    status: uint8
    by: indexed(address)


# @dev Emitted when a participant withdraws its reward or its share of an expired pool.
event RewardPaid:
    taskId: indexed(uint256)
    participant: indexed(address)
    amount: uint256


# @dev Emitted when a participant's stake returns to it.
event StakeReturned:
    taskId: indexed(uint256)
    participant: indexed(address)
    amount: uint256


# @dev Emitted when the owner of a task that ended before round 1 withdraws the pool.
event PoolRefunded:
    taskId: indexed(uint256)
    owner: indexed(address)
    amount: uint256


# @dev Emitted when the owner changes the longest task duration.
event MaxDurationChanged:
    previousDuration: uint256
    newDuration: uint256


@deploy
def __init__(owner_: address, guardian_: address):
    """
    @notice Sets governance: the owner (the timelock) and the guardian.
    @param owner_ The owner; zero freezes the parameters.
    @param guardian_ The account that may pause new work; zero: nobody.
    """
    governed.__init__(owner_, guardian_)
    self.maxDuration = 366 * 86400
    log MaxDurationChanged(previousDuration=0, newDuration=366 * 86400)


@external
def setMaxDuration(seconds: uint256):
    """
    @notice Sets the longest a new task may run; tasks already created keep their deadline.
    @dev Only the owner (the timelock, so the change waits its delay).
    @param seconds The new longest duration, one day to ten years.
    """
    governed._check_owner()
    assert seconds >= MIN_MAX_DURATION and seconds <= MAX_MAX_DURATION, (
        "FederatedTask: duration out of bounds"
    )
    log MaxDurationChanged(previousDuration=self.maxDuration, newDuration=seconds)
    self.maxDuration = seconds


@external
@payable
def createTask(
    modelAsset: bytes32,
    codeAsset: bytes32,
    rounds: uint32,
    validators: uint32,
    stake: uint256,
    deadline: uint256,
) -> uint256:
    """
    @notice Creates a task and escrows `msg.value` as its reward pool.
    @param modelAsset The initial model's asset id.
    @param codeAsset The training code's asset id.
    @param rounds Number of rounds.
    @param validators Attestations needed to finalize a round (k).
    @param stake Wei each participant escrows to join (returned at the end); not zero.
    @param deadline Unix time by which the task must be finished; after it anyone may
           expire the task and the pool is returned or shared out.
    @return The task id.
    """
    governed._require_not_paused()
    assert rounds > 0, "FederatedTask: no rounds"
    assert rounds <= MAX_ROUNDS, "FederatedTask: too many rounds"
    assert validators > 0, "FederatedTask: no validators"
    assert convert(validators, uint256) <= MAX_PAYEES, "FederatedTask: more validators than payees"
    assert stake > 0, "FederatedTask: participants must stake"
    assert deadline > block.timestamp, "FederatedTask: deadline has passed"
    assert deadline <= block.timestamp + self.maxDuration, "FederatedTask: deadline too far"
    self.taskCount += 1
    task_id: uint256 = self.taskCount
    self.tasks[task_id] = Task(
        owner=msg.sender, modelAsset=modelAsset, codeAsset=codeAsset, rounds=rounds,
        validators=validators, currentRound=0, finalizedRound=0, participants=0,
        status=STATUS_OPEN, pool=msg.value, stake=stake, deadline=deadline, contributions=0,
    )
    log TaskCreated(
        taskId=task_id, owner=msg.sender, modelAsset=modelAsset, codeAsset=codeAsset,
        rounds=rounds, validators=validators, pool=msg.value, stake=stake, deadline=deadline,
    )
    return task_id


@external
@payable
def join(taskId: uint256):
    """
    @notice Joins task `taskId` as a participant (before its first round), escrowing its stake.
    @dev `msg.value` must be the task's stake. The owner cannot join.
    @param taskId The task.
    """
    governed._require_not_paused()
    task: Task = self._live(taskId)
    assert task.currentRound == 0, "FederatedTask: training has started"
    assert msg.sender != task.owner, "FederatedTask: the owner cannot participate"
    assert self.participantSlot[taskId][msg.sender] == 0, "FederatedTask: already joined"
    assert task.participants < MAX_PARTICIPANTS, "FederatedTask: full"
    assert msg.value == task.stake, "FederatedTask: send exactly the task's stake"
    self.participantSlot[taskId][msg.sender] = convert(task.participants, uint256) + 1
    self.tasks[taskId].participants = task.participants + 1
    log ParticipantJoined(
        taskId=taskId, participant=msg.sender, number=convert(task.participants, uint256),
        stake=msg.value,
    )


@external
def recordRound(
    taskId: uint256,
    round: uint32,
    commitmentsRoot: bytes32,
    aggregateDigest: bytes32,
    contributors: uint256,
):
    """
    @notice Records round `round`: the root of the update commitments, the aggregate's
            digest and the participants whose updates the aggregate holds.
    @dev Only the owner; rounds go one by one, each after the previous one is final;
         round 1 needs at least k participants.
    @param taskId The task.
    @param round The round number (1, 2, ...).
    @param commitmentsRoot Merkle root of the participants' update commitments.
    @param aggregateDigest SHA-256 of the aggregated model.
    @param contributors Bit i set when the participant numbered i (`participantSlot` - 1)
           has its update in the round; they weigh the pool's share-out if the task expires.
    """
    governed._require_not_paused()
    task: Task = self._live(taskId)
    assert msg.sender == task.owner, "FederatedTask: caller is not the task owner"
    assert round == task.currentRound + 1, "FederatedTask: not the next round"
    assert task.finalizedRound == task.currentRound, "FederatedTask: previous round not final"
    assert round <= task.rounds, "FederatedTask: all rounds recorded"
    assert aggregateDigest != empty(bytes32), "FederatedTask: aggregate digest is zero"
    assert task.participants >= task.validators, "FederatedTask: fewer participants than validators"
    assert contributors >> convert(task.participants, uint256) == 0, "FederatedTask: contributor is not a participant"
    count: uint256 = self._popcount(contributors)
    self.roundRecords[taskId][round] = RoundRecord(
        commitmentsRoot=commitmentsRoot, aggregateDigest=aggregateDigest, attestations=0,
        contributors=contributors,
    )
    self.tasks[taskId].currentRound = round
    if count > 0:
        self.tasks[taskId].contributions = task.contributions + count
    log RoundRecorded(
        taskId=taskId, round=round, commitmentsRoot=commitmentsRoot,
        aggregateDigest=aggregateDigest, contributors=contributors,
    )


@external
def attest(taskId: uint256, round: uint32, aggregateDigest: bytes32):
    """
    @notice Attests that the caller recomputed round `round`'s aggregate and got `aggregateDigest`.
    @dev A participant attests once per round; a digest that differs is rejected. The
         round becomes final at the task's number of validators.
    @param taskId The task.
    @param round The round.
    @param aggregateDigest The digest the validator computed.
    """
    governed._require_not_paused()
    task: Task = self._live(taskId)
    assert self.participantSlot[taskId][msg.sender] != 0, "FederatedTask: caller is not a participant"
    assert round >= 1 and round == task.currentRound, "FederatedTask: not the current round"
    assert not self.hasAttested[taskId][round][msg.sender], "FederatedTask: already attested"
    record: RoundRecord = self.roundRecords[taskId][round]
    assert aggregateDigest == record.aggregateDigest, "FederatedTask: digest differs from the recorded aggregate"
    self.hasAttested[taskId][round][msg.sender] = True
    count: uint32 = record.attestations + 1
    self.roundRecords[taskId][round].attestations = count
    log RoundAttested(taskId=taskId, round=round, validator=msg.sender)
    if count == task.validators:
        self.tasks[taskId].finalizedRound = round
        log RoundFinalized(taskId=taskId, round=round, aggregateDigest=aggregateDigest)


@external
def finish(
    taskId: uint256,
    finalModelAsset: bytes32,
    payees: DynArray[address, MAX_PAYEES],
    amounts: DynArray[uint256, MAX_PAYEES],
):
    """
    @notice Ends the task and sets the rewards, which must add up to the pool.
    @param taskId The task.
    @param finalModelAsset The final model's asset id (registered with its lineage).
    @param payees Participants to reward, each once.
    @param amounts Their rewards, in wei.
    """
    task: Task = self._live(taskId)
    assert msg.sender == task.owner, "FederatedTask: caller is not the task owner"
    assert task.finalizedRound == task.rounds, "FederatedTask: rounds are not all final"
    assert len(payees) == len(amounts), "FederatedTask: payees and amounts differ in length"
    total: uint256 = 0
    for i: uint256 in range(len(payees), bound=MAX_PAYEES):
        payee: address = payees[i]
        assert self.participantSlot[taskId][payee] != 0, "FederatedTask: payee is not a participant"
        assert self.rewardOf[taskId][payee] == 0, "FederatedTask: payee listed twice"
        assert amounts[i] > 0, "FederatedTask: zero reward"
        self.rewardOf[taskId][payee] = amounts[i]
        total += amounts[i]
    assert total == task.pool, "FederatedTask: rewards do not add up to the pool"
    self.tasks[taskId].status = STATUS_FINISHED
    self.finalModelOf[taskId] = finalModelAsset
    log TaskFinished(taskId=taskId, finalModelAsset=finalModelAsset, payees=len(payees))


@external
def cancel(taskId: uint256):
    """
    @notice The owner ends a task before its first round; the pool and stakes become claimable.
    @param taskId The task.
    """
    task: Task = self._live(taskId)
    assert msg.sender == task.owner, "FederatedTask: caller is not the task owner"
    assert task.currentRound == 0, "FederatedTask: training has started"
    self._end(taskId, task, STATUS_REFUNDED)


@external
def expire(taskId: uint256):
    """
    @notice Ends an unfinished task whose deadline has passed; anyone may call it.
    @dev Before round 1 the pool returns to the owner; after it, participants share it.
    @param taskId The task.
    """
    task: Task = self._task(taskId)
    assert task.status == STATUS_OPEN, "FederatedTask: not open"
    assert block.timestamp >= task.deadline, "FederatedTask: deadline not reached"
    self._expire(taskId, task)


@external
def claim(taskId: uint256):
    """
    @notice Withdraws what an ended task owes the caller, once: a participant's reward
            (finished) or share of the pool (expired) with its stake; the owner's pool
            (cancelled or expired before round 1). An open task past its deadline is
            expired first.
    @param taskId The task.
    """
    task: Task = self._task(taskId)
    if task.status == STATUS_OPEN and block.timestamp >= task.deadline:
        self._expire(taskId, task)
        task.status = self.tasks[taskId].status
    assert task.status != STATUS_OPEN, "FederatedTask: not ended"
    assert not self.paid[taskId][msg.sender], "FederatedTask: already paid"
    self.paid[taskId][msg.sender] = True
    if msg.sender == task.owner:
        assert task.status == STATUS_REFUNDED, "FederatedTask: nothing owed to the owner"
        log PoolRefunded(taskId=taskId, owner=msg.sender, amount=task.pool)
        self._pay(msg.sender, task.pool)
        return
    slot: uint256 = self.participantSlot[taskId][msg.sender]
    assert slot != 0, "FederatedTask: caller is not a participant"
    amount: uint256 = 0
    if task.status == STATUS_FINISHED:
        amount = self.rewardOf[taskId][msg.sender]
    elif task.status == STATUS_EXPIRED:
        weight: uint256 = 1
        if task.contributions > 0:
            weight = self._contribution(taskId, task.currentRound, slot - 1)
        left: uint256 = self.weightLeft[taskId]
        amount = self.poolLeft[taskId] * weight // left if left > 0 else 0
        self.poolLeft[taskId] -= amount
        self.weightLeft[taskId] = left - weight
    if amount > 0:
        log RewardPaid(taskId=taskId, participant=msg.sender, amount=amount)
    log StakeReturned(taskId=taskId, participant=msg.sender, amount=task.stake)
    self._pay(msg.sender, amount + task.stake)


@external
@view
def isParticipant(taskId: uint256, account: address) -> bool:
    """
    @notice Tells whether `account` joined task `taskId`.
    @param taskId The task.
    @param account The account.
    @return True when it joined.
    """
    return self.participantSlot[taskId][account] != 0


@external
@view
def contributionOf(taskId: uint256, account: address) -> uint256:
    """
    @notice Counts the recorded rounds whose updates include `account`'s.
    @param taskId The task.
    @param account A participant.
    @return The number of rounds (zero for an account that did not join).
    """
    slot: uint256 = self.participantSlot[taskId][account]
    if slot == 0:
        return 0
    return self._contribution(taskId, self.tasks[taskId].currentRound, slot - 1)


@internal
@view
def _contribution(taskId: uint256, rounds: uint32, index: uint256) -> uint256:
    count: uint256 = 0
    for r: uint32 in range(1, MAX_ROUNDS + 1):
        if r > rounds:
            break
        count += (self.roundRecords[taskId][r].contributors >> index) & 1
    return count


@internal
@pure
def _popcount(bits: uint256) -> uint256:
    x: uint256 = bits
    count: uint256 = 0
    for _: uint256 in range(256):
        if x == 0:
            break
        x = x & (x - 1)
        count += 1
    return count


@internal
def _expire(taskId: uint256, task: Task):
    if task.currentRound == 0:
        self._end(taskId, task, STATUS_REFUNDED)
        return
    self.poolLeft[taskId] = task.pool
    if task.contributions > 0:
        self.weightLeft[taskId] = task.contributions
    else:
        self.weightLeft[taskId] = convert(task.participants, uint256)
    self._end(taskId, task, STATUS_EXPIRED)


@internal
def _end(taskId: uint256, task: Task, status: uint8):
    self.tasks[taskId].status = status
    log TaskEnded(taskId=taskId, status=status, by=msg.sender)


@internal
def _pay(to: address, amount: uint256):
    if amount > 0:
        raw_call(to, b"", value=amount)


@internal
@view
def _task(taskId: uint256) -> Task:
    task: Task = self.tasks[taskId]
    assert task.owner != empty(address), "FederatedTask: unknown task"
    return task


@internal
@view
def _live(taskId: uint256) -> Task:
    task: Task = self._task(taskId)
    assert task.status == STATUS_OPEN, "FederatedTask: not open"
    assert block.timestamp < task.deadline, "FederatedTask: deadline has passed"
    return task
