# pragma version 0.4.3
# pragma nonreentrancy on
"""
@title NeuroLedger federated training tasks
@custom:contract-name FederatedTask
@license Apache-2.0
@notice Coordinates federated training on chain. A task owner escrows a
        reward pool and names the initial model and code assets; participants
        join; each round records the Merkle root of the update commitments and
        the digest of the aggregate; any k participants (validators) who
        recomputed the aggregate attest its digest before the round is final;
        at the end the owner sets each participant's reward from the
        contribution scores (the rewards must sum to the pool) and each
        participant withdraws its reward once.
@dev Models and updates stay off chain (content store); only digests are here.
@custom:security Rewards are pulled, not pushed, and every function is
                 non-reentrant. The owner cannot finish before every round is
                 final, nor pay more or less than the pool, nor pay anyone who
                 did not join.
"""


# @dev Most participants a task can pay out to in one `finish`.
MAX_PAYEES: constant(uint256) = 128

# @dev Task statuses.
STATUS_OPEN: constant(uint8) = 1
STATUS_FINISHED: constant(uint8) = 2


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


struct RoundRecord:
    commitmentsRoot: bytes32
    aggregateDigest: bytes32
    attestations: uint32


# @dev Number of tasks created; task ids start at 1.
taskCount: public(uint256)

# @dev task id => task.
tasks: public(HashMap[uint256, Task])

# @dev task id => account => joined.
isParticipant: public(HashMap[uint256, HashMap[address, bool]])

# @dev task id => round => record.
roundRecords: public(HashMap[uint256, HashMap[uint32, RoundRecord]])

# @dev task id => round => validator => attested.
hasAttested: public(HashMap[uint256, HashMap[uint32, HashMap[address, bool]]])

# @dev task id => participant => reward still to withdraw.
rewardOf: public(HashMap[uint256, HashMap[address, uint256]])

# @dev task id => participant => reward withdrawn.
paid: public(HashMap[uint256, HashMap[address, bool]])


event TaskCreated:
    taskId: indexed(uint256)
    owner: indexed(address)
    modelAsset: bytes32
    codeAsset: bytes32
    rounds: uint32
    validators: uint32
    pool: uint256


event ParticipantJoined:
    taskId: indexed(uint256)
    participant: indexed(address)


event RoundRecorded:
    taskId: indexed(uint256)
    round: indexed(uint32)
    commitmentsRoot: bytes32
    aggregateDigest: bytes32


event RoundAttested:
    taskId: indexed(uint256)
    round: indexed(uint32)
    validator: indexed(address)


event RoundFinalized:
    taskId: indexed(uint256)
    round: indexed(uint32)
    aggregateDigest: bytes32


event TaskFinished:
    taskId: indexed(uint256)
    finalModelAsset: bytes32
    payees: uint256


event RewardPaid:
    taskId: indexed(uint256)
    participant: indexed(address)
    amount: uint256


@external
@payable
def createTask(modelAsset: bytes32, codeAsset: bytes32, rounds: uint32, validators: uint32) -> uint256:
    """
    @notice Creates a task and escrows `msg.value` as its reward pool.
    @param modelAsset The initial model's asset id.
    @param codeAsset The training code's asset id.
    @param rounds Number of rounds.
    @param validators Attestations needed to finalize a round (k).
    @return The task id.
    """
    assert rounds > 0, "task: no rounds"
    assert validators > 0, "task: no validators"
    self.taskCount += 1
    task_id: uint256 = self.taskCount
    self.tasks[task_id] = Task(
        owner=msg.sender, modelAsset=modelAsset, codeAsset=codeAsset, rounds=rounds,
        validators=validators, currentRound=0, finalizedRound=0, participants=0,
        status=STATUS_OPEN, pool=msg.value,
    )
    log TaskCreated(
        taskId=task_id, owner=msg.sender, modelAsset=modelAsset, codeAsset=codeAsset,
        rounds=rounds, validators=validators, pool=msg.value,
    )
    return task_id


@external
def join(taskId: uint256):
    """
    @notice Joins task `taskId` as a participant (before its first round).
    @param taskId The task.
    """
    task: Task = self._task(taskId)
    assert task.status == STATUS_OPEN, "task: not open"
    assert task.currentRound == 0, "task: training has started"
    assert not self.isParticipant[taskId][msg.sender], "task: already joined"
    self.isParticipant[taskId][msg.sender] = True
    self.tasks[taskId].participants = task.participants + 1
    log ParticipantJoined(taskId=taskId, participant=msg.sender)


@external
def recordRound(taskId: uint256, round: uint32, commitmentsRoot: bytes32, aggregateDigest: bytes32):
    """
    @notice Records round `round`: the root of the update commitments and the aggregate's digest.
    @dev Only the owner; rounds go one by one, each after the previous one is final.
    @param taskId The task.
    @param round The round number (1, 2, ...).
    @param commitmentsRoot Merkle root of the participants' update commitments.
    @param aggregateDigest SHA-256 of the aggregated model.
    """
    task: Task = self._task(taskId)
    assert msg.sender == task.owner, "task: caller is not the task owner"
    assert task.status == STATUS_OPEN, "task: not open"
    assert round == task.currentRound + 1, "task: not the next round"
    assert task.finalizedRound == task.currentRound, "task: previous round not final"
    assert round <= task.rounds, "task: all rounds recorded"
    assert aggregateDigest != empty(bytes32), "task: aggregate digest is zero"
    self.roundRecords[taskId][round] = RoundRecord(
        commitmentsRoot=commitmentsRoot, aggregateDigest=aggregateDigest, attestations=0
    )
    self.tasks[taskId].currentRound = round
    log RoundRecorded(taskId=taskId, round=round, commitmentsRoot=commitmentsRoot, aggregateDigest=aggregateDigest)


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
    task: Task = self._task(taskId)
    assert self.isParticipant[taskId][msg.sender], "task: caller is not a participant"
    assert round >= 1 and round == task.currentRound, "task: not the current round"
    assert not self.hasAttested[taskId][round][msg.sender], "task: already attested"
    record: RoundRecord = self.roundRecords[taskId][round]
    assert aggregateDigest == record.aggregateDigest, "task: digest differs from the recorded aggregate"
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
    task: Task = self._task(taskId)
    assert msg.sender == task.owner, "task: caller is not the task owner"
    assert task.status == STATUS_OPEN, "task: not open"
    assert task.finalizedRound == task.rounds, "task: rounds are not all final"
    assert len(payees) == len(amounts), "task: payees and amounts differ in length"
    total: uint256 = 0
    for i: uint256 in range(len(payees), bound=MAX_PAYEES):
        payee: address = payees[i]
        assert self.isParticipant[taskId][payee], "task: payee is not a participant"
        assert self.rewardOf[taskId][payee] == 0, "task: payee listed twice"
        assert amounts[i] > 0, "task: zero reward"
        self.rewardOf[taskId][payee] = amounts[i]
        total += amounts[i]
    assert total == task.pool, "task: rewards do not add up to the pool"
    self.tasks[taskId].status = STATUS_FINISHED
    log TaskFinished(taskId=taskId, finalModelAsset=finalModelAsset, payees=len(payees))


@external
def claim(taskId: uint256):
    """
    @notice Withdraws the caller's reward of a finished task, once.
    @param taskId The task.
    """
    assert self._task(taskId).status == STATUS_FINISHED, "task: not finished"
    assert not self.paid[taskId][msg.sender], "task: already paid"
    amount: uint256 = self.rewardOf[taskId][msg.sender]
    assert amount > 0, "task: no reward"
    self.paid[taskId][msg.sender] = True
    self.rewardOf[taskId][msg.sender] = 0
    raw_call(msg.sender, b"", value=amount)
    log RewardPaid(taskId=taskId, participant=msg.sender, amount=amount)


@internal
@view
def _task(taskId: uint256) -> Task:
    task: Task = self.tasks[taskId]
    assert task.owner != empty(address), "task: unknown task"
    return task
