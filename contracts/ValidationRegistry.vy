# pragma version 0.4.3
# pragma optimize codesize
"""
@title NeuroLedger validation registry (ERC-8004 Validation Registry ABI, k-of-n staked)
@custom:contract-name ValidationRegistry
@license Apache-2.0
@notice AI results checked by independent validators. The functions and events of the
        ERC-8004 Validation Registry are kept, so its indexers read this contract, and
        its one-validator requests work as the standard says. Beyond it, a request may
        name n validators (listed by the requester, or drawn from a pool of staked
        validators), a quorum k, a pass threshold and deadlines. Each validator commits
        `keccak256(abi.encode(requestHash, response, salt, validator))`, then reveals, so
        none can copy another. The verdict is the stake-weighted median of the revealed
        responses; the request passes when at least k revealed and the median reaches the
        threshold. After a challenge window, validators that did not reveal, or whose
        response lies further than the tolerance from the median, lose a fraction of
        their stake; the others share the fee.
@dev The median is Yuma consensus's κ-quantile with κ = 1/2 (Bittensor): the highest
     response that more than half of the revealed stake reached or exceeded. A tie
     therefore goes to the lower response. Each validator's weight is its active stake
     when the request was made. Slashed stake goes to the treasury (the owner's choice),
     never to a party of the request, so nobody profits from a slash. The contract may
     be the evaluator of an ERC-8183 job in the suite's escrow: the job's client fixes its
     terms (n, k, threshold and the check) with `setJobTerms` while the job is Open; the
     provider asks for validation once it delivered (validators are then always drawn
     from the pool, so neither party picks its judges), and `finalize` completes or
     rejects the job by the verdict. A request with fewer than k reveals is inconclusive: the job stays
     submitted, a new request may be made, and the escrow's expiry refunds the client.
     The pool draw uses `block.prevrandao`: a block proposer can bias it a little, so it
     is no VRF; requesters who need more list their validators themselves.
@custom:security The guardian may pause new stakes and new requests; nothing that
                 finishes a request (`commit`, `reveal`, `finalize`, `settle`) or returns
                 stake (`requestUnstake`, `withdraw`) checks the pause. During a request's
                 challenge window the guardian may waive its slashes (a faulty check must
                 not cost honest validators their stake); it can move no money to itself.
                 Stake stays slashable: a withdrawal waits its delay and for every request
                 the validator took to be settled, and `settle` is open to anyone.
                 Parameters change only through the owner, the suite's timelock.
"""


from ethereum.ercs import IERC20
from ethereum.ercs import IERC20Detailed
from modules import governed

initializes: governed

exports: governed.__interface__


interface IAgentRegistry:
    def getAgentByWallet(wallet: address) -> (bool, uint256): view
    def isAuthorizedOrOwner(spender: address, agentId: uint256) -> bool: view


struct Job:
    client: address
    provider: address
    evaluator: address
    hook: address
    budget: uint256
    expiredAt: uint256
    status: uint8
    deliverable: bytes32
    disputeWindow: uint256
    releaseAt: uint256
    disputed: bool
    description: String[1024]


interface IJobEscrow:
    def getJob(jobId: uint256) -> Job: view
    def paymentToken() -> address: view
    def complete(jobId: uint256, reason: bytes32, optParams: Bytes[2048]): nonpayable
    def reject(jobId: uint256, reason: bytes32, optParams: Bytes[2048]): nonpayable


# @dev The most validators of one request.
MAX_VALIDATORS: constant(uint256) = 16
# @dev The most validators in the pool.
MAX_POOL: constant(uint256) = 256
# @dev The most request ids one list call returns (page functions walk any number).
MAX_LIST: constant(uint256) = 1000
MAX_URI: constant(uint256) = 1024
BPS: constant(uint256) = 10_000
MAX_SLASH_BPS: constant(uint256) = 5_000
MIN_PERIOD: constant(uint256) = 60
MAX_PERIOD: constant(uint256) = 30 * 86400
MAX_WITHDRAWAL_DELAY: constant(uint256) = 90 * 86400
SUBMITTED_JOB: constant(uint8) = 2

# @dev Request states.
PENDING: constant(uint8) = 1
ACCEPTED: constant(uint8) = 2
REJECTED: constant(uint8) = 3
INCONCLUSIVE: constant(uint8) = 4

# @dev Validator outcomes, once a request is settled.
PAID: constant(uint8) = 1
SLASHED: constant(uint8) = 2
SPARED: constant(uint8) = 3


# @dev One request, as `getRequest` returns it.
struct Request:
    requester: address
    agentId: uint256
    jobId: uint256
    fee: uint256
    k: uint256
    n: uint256
    threshold: uint256
    status: uint256
    result: uint256
    committed: uint256
    revealed: uint256
    single: bool
    settled: bool
    waived: bool
    commitDeadline: uint256
    revealDeadline: uint256
    finalizedAt: uint256
    tag: String[32]
    validators: DynArray[address, MAX_VALIDATORS]


# @dev One validator's part in a request, as `getVote` returns it.
struct Vote:
    assigned: bool
    committed: bool
    revealed: bool
    response: uint256
    weight: uint256
    commitment: bytes32
    outcome: uint256


# @dev ERC-8004: a validation was requested from `validatorAddress` (once per validator).
event ValidationRequest:
    validatorAddress: indexed(address)
    agentId: indexed(uint256)
    requestURI: String[MAX_URI]
    requestHash: indexed(bytes32)


# @dev ERC-8004: `validatorAddress` responded (for k-of-n requests: revealed).
event ValidationResponse:
    validatorAddress: indexed(address)
    agentId: indexed(uint256)
    requestHash: indexed(bytes32)
    response: uint8
    responseURI: String[MAX_URI]
    responseHash: bytes32
    tag: String[32]


# @dev A k-of-n request's terms (NeuroLedger).
event ValidationTerms:
    requestHash: indexed(bytes32)
    requester: indexed(address)
    jobId: indexed(uint256)
    k: uint256
    n: uint256
    threshold: uint256
    commitDeadline: uint256
    revealDeadline: uint256
    fee: uint256


# @dev A job's client fixed how it will be judged.
event JobTermsSet:
    jobId: indexed(uint256)
    n: uint256
    k: uint256
    threshold: uint256
    check: bytes32


# @dev A validator committed to a response it has not shown yet.
event ValidationCommitted:
    requestHash: indexed(bytes32)
    validatorAddress: indexed(address)
    commitment: bytes32


# @dev The verdict of a k-of-n request; slashes and fees follow after the challenge window.
event ValidationFinalized:
    requestHash: indexed(bytes32)
    status: uint8
    result: uint256
    revealed: uint256
    settleAfter: uint256


# @dev The guardian waived the slashes of a request during its challenge window.
event SlashingWaived:
    requestHash: indexed(bytes32)
    guardian: indexed(address)
    reason: bytes32


# @dev A validator's outcome when its request is settled.
event ValidatorSettled:
    requestHash: indexed(bytes32)
    validatorAddress: indexed(address)
    outcome: uint8
    amount: uint256


# @dev A validator added stake (total: its active stake now).
event Staked:
    validatorAddress: indexed(address)
    amount: uint256
    total: uint256


# @dev A validator began withdrawing stake; it may be withdrawn from `availableAt`.
event UnstakeRequested:
    validatorAddress: indexed(address)
    amount: uint256
    availableAt: uint256


# @dev A validator withdrew unbonded stake.
event Withdrawn:
    validatorAddress: indexed(address)
    amount: uint256


# @dev Slashed stake went to the treasury.
event SlashedSwept:
    treasury: indexed(address)
    amount: uint256


# @dev The owner changed the staking parameters (and once at deployment).
event ParametersChanged:
    minStake: uint256
    slashBps: uint256
    tolerance: uint256
    challengeWindow: uint256
    withdrawalDelay: uint256
    treasury: indexed(address)


identityRegistry: immutable(IAgentRegistry)
escrow: public(immutable(IJobEscrow))
stakeToken: public(immutable(address))

# @dev Parameters (owner only, bounded).
minStake: public(uint256)
slashBps: public(uint256)
tolerance: public(uint256)
challengeWindow: public(uint256)
withdrawalDelay: public(uint256)
treasury: public(address)

# @dev Stake.
stakeOf: public(HashMap[address, uint256])
unbonding: public(HashMap[address, uint256])
unbondingAt: public(HashMap[address, uint256])
openRequests: public(HashMap[address, uint256])
slashedPool: public(uint256)

# @dev The pool of validators with at least `minStake` (`pool(i)` for i < `poolSize()`),
# and each one's 1-based index in it (0: not in it).
pool: public(DynArray[address, MAX_POOL])
_poolIndex: HashMap[address, uint256]

# @dev A request in one word: status (bits 0-7), k (8-15), n (16-23), threshold (24-31),
# committed (32-39), revealed (40-47), result (48-55), settled (56), waived (57), single
# (58), commit deadline (64-127), reveal deadline (128-191), last update (192-255).
_word: HashMap[bytes32, uint256]
_requester: HashMap[bytes32, address]
_agent: HashMap[bytes32, uint256]
_job: HashMap[bytes32, uint256]
_fee: HashMap[bytes32, uint256]
_tag: HashMap[bytes32, String[32]]
_validators: HashMap[bytes32, DynArray[address, MAX_VALIDATORS]]
# @dev A validator's vote in one word: response (bits 0-7), committed (8), revealed (9),
# assigned (10), outcome (16-23), weight (128-255).
_vote: HashMap[bytes32, HashMap[address, uint256]]
_commitment: HashMap[bytes32, HashMap[address, bytes32]]
# @dev ERC-8004 one-validator requests keep their last response's hash.
_responseHash: HashMap[bytes32, bytes32]
# @dev The request bound to a job (the latest).
jobRequest: public(HashMap[uint256, bytes32])
# @dev A job's validation terms (n in bits 0-7, k in 8-15, threshold in 16-23) and check.
jobTerms: public(HashMap[uint256, uint256])
jobCheck: public(HashMap[uint256, bytes32])

# @dev Request ids by agent (key: the agent id) and by validator (key: 2**160 | address).
_list: HashMap[uint256, HashMap[uint256, bytes32]]
_listLength: HashMap[uint256, uint256]

_COMMITTED: constant(uint256) = 1 << 8
_REVEALED: constant(uint256) = 1 << 9
_ASSIGNED: constant(uint256) = 1 << 10
_SETTLED: constant(uint256) = 1 << 56
_WAIVED: constant(uint256) = 1 << 57
_SINGLE: constant(uint256) = 1 << 58
_M8: constant(uint256) = 255
_M64: constant(uint256) = 2**64 - 1
_VALIDATOR_KEY: constant(uint256) = 1 << 160


@deploy
def __init__(identity_: address, escrow_: address, owner_: address, guardian_: address):
    """
    @notice Deploy the registry for the suite's agents and escrow; the stake and fees are
            in the escrow's payment token.
    @param identity_ The ERC-8004 identity registry (the suite's AgentRegistry).
    @param escrow_ The ERC-8183 escrow whose jobs this registry may evaluate.
    @param owner_ The owner (the suite's timelock), who alone changes parameters.
    @param guardian_ The guardian, who may pause new stakes and requests and waive slashes.
    """
    assert identity_ != empty(address) and escrow_ != empty(address), "ValidationRegistry: zero address"
    governed.__init__(owner_, guardian_)
    identityRegistry = IAgentRegistry(identity_)
    escrow = IJobEscrow(escrow_)
    stakeToken = staticcall IJobEscrow(escrow_).paymentToken()
    decimals: uint8 = staticcall IERC20Detailed(stakeToken).decimals()
    self.minStake = 100 * 10 ** convert(decimals, uint256)
    self.slashBps = 1_000
    self.tolerance = 10
    self.challengeWindow = 600
    self.withdrawalDelay = 86400
    self.treasury = owner_
    log ParametersChanged(minStake=self.minStake, slashBps=1_000, tolerance=10, challengeWindow=600,
                          withdrawalDelay=86400, treasury=owner_)


# ---------------------------------------------------------------------------------------
# Parameters


@external
def setParameters(minStake_: uint256, slashBps_: uint256, tolerance_: uint256, challengeWindow_: uint256,
                  withdrawalDelay_: uint256, treasury_: address):
    """
    @notice Change the staking parameters (owner: the timelock). They apply to requests
            made afterwards, except the treasury.
    @param minStake_ The least stake of a validator (non-zero).
    @param slashBps_ The fraction of a request's weight a faulty validator loses, at most 50%.
    @param tolerance_ How far (0-100) a response may lie from the median without a slash.
    @param challengeWindow_ Seconds between a verdict and its slashes, at most 30 days.
    @param withdrawalDelay_ Seconds an unstake waits, at most 90 days.
    @param treasury_ Who receives slashed stake.
    """
    governed._check_owner()
    assert minStake_ != 0, "ValidationRegistry: minimum stake is zero"
    assert slashBps_ <= MAX_SLASH_BPS, "ValidationRegistry: slash above 50%"
    assert tolerance_ <= 100, "ValidationRegistry: tolerance above 100"
    assert challengeWindow_ <= MAX_PERIOD, "ValidationRegistry: challenge window above 30 days"
    assert withdrawalDelay_ <= MAX_WITHDRAWAL_DELAY, "ValidationRegistry: withdrawal delay above 90 days"
    assert treasury_ != empty(address), "ValidationRegistry: treasury is the zero address"
    self.minStake = minStake_
    self.slashBps = slashBps_
    self.tolerance = tolerance_
    self.challengeWindow = challengeWindow_
    self.withdrawalDelay = withdrawalDelay_
    self.treasury = treasury_
    log ParametersChanged(minStake=minStake_, slashBps=slashBps_, tolerance=tolerance_,
                          challengeWindow=challengeWindow_, withdrawalDelay=withdrawalDelay_, treasury=treasury_)


# ---------------------------------------------------------------------------------------
# Stake


@external
def stake(amount: uint256):
    """
    @notice Add stake; with at least `minStake` the caller joins the pool requests draw from.
    @param amount Tokens pulled from the caller (approve first).
    """
    governed._require_not_paused()
    assert amount != 0, "ValidationRegistry: amount is zero"
    self._pull(amount)
    total: uint256 = self.stakeOf[msg.sender] + amount
    self.stakeOf[msg.sender] = total
    if total >= self.minStake and self._poolIndex[msg.sender] == 0:
        assert len(self.pool) < MAX_POOL, "ValidationRegistry: the pool is full"
        self.pool.append(msg.sender)
        self._poolIndex[msg.sender] = len(self.pool)
    log Staked(validatorAddress=msg.sender, amount=amount, total=total)


@external
def requestUnstake(amount: uint256):
    """
    @notice Start withdrawing stake: it stops weighing in new requests at once, stays
            slashable, and may be withdrawn after the delay once every request the caller
            took is settled. Each unstake restarts the delay of all that is unbonding.
    @param amount Tokens of active stake.
    """
    active: uint256 = self.stakeOf[msg.sender]
    assert amount != 0, "ValidationRegistry: amount is zero"
    assert amount <= active, "ValidationRegistry: amount above the active stake"
    active -= amount
    self.stakeOf[msg.sender] = active
    self.unbonding[msg.sender] += amount
    available_at: uint256 = block.timestamp + self.withdrawalDelay
    self.unbondingAt[msg.sender] = available_at
    if active < self.minStake:
        self._leave_pool(msg.sender)
    log UnstakeRequested(validatorAddress=msg.sender, amount=amount, availableAt=available_at)


@external
def withdraw():
    """
    @notice Withdraw unbonded stake after its delay, once the caller's requests are settled.
    """
    amount: uint256 = self.unbonding[msg.sender]
    assert amount != 0, "ValidationRegistry: nothing to withdraw"
    assert block.timestamp >= self.unbondingAt[msg.sender], "ValidationRegistry: the withdrawal delay has not passed"
    assert self.openRequests[msg.sender] == 0, "ValidationRegistry: settle your open requests first"
    self.unbonding[msg.sender] = 0
    self._transfer(msg.sender, amount)
    log Withdrawn(validatorAddress=msg.sender, amount=amount)


@external
def sweepSlashed():
    """
    @notice Send the slashed stake to the treasury (anyone may call this).
    """
    amount: uint256 = self.slashedPool
    assert amount != 0, "ValidationRegistry: nothing slashed"
    self.slashedPool = 0
    self._transfer(self.treasury, amount)
    log SlashedSwept(treasury=self.treasury, amount=amount)


@external
@view
def poolSize() -> uint256:
    """
    @notice How many validators are in the pool.
    @return The count.
    """
    return len(self.pool)


# ---------------------------------------------------------------------------------------
# Requests


@external
def validationRequest(validatorAddress: address, agentId: uint256, requestURI: String[MAX_URI],
                      requestHash: bytes32):
    """
    @notice ERC-8004: ask one validator to check an agent's work (owner or operator of the
            agent). Its response is final only as the standard says: it may respond again.
    @param validatorAddress The validator (any address; no stake, fee or slashing).
    @param agentId The agent whose work is checked.
    @param requestURI Where the request's data is.
    @param requestHash The keccak256 of the request's data; the request's id.
    """
    governed._require_not_paused()
    assert validatorAddress != empty(address), "ValidationRegistry: validator is the zero address"
    self._check_agent(agentId)
    self._open(requestHash, agentId, 0, "")
    self._validators[requestHash].append(validatorAddress)
    self._vote[requestHash][validatorAddress] = _ASSIGNED
    self._word[requestHash] = convert(PENDING, uint256) | (1 << 8) | (1 << 16) | _SINGLE | (block.timestamp << 192)
    self._index_validator(validatorAddress, requestHash)
    log ValidationRequest(validatorAddress=validatorAddress, agentId=agentId, requestURI=requestURI,
                          requestHash=requestHash)


@external
def validationResponse(requestHash: bytes32, response: uint8, responseURI: String[MAX_URI],
                       responseHash: bytes32, tag: String[32]):
    """
    @notice ERC-8004: the designated validator of a one-validator request responds (again).
    @param requestHash The request.
    @param response 0 (failed) to 100 (passed).
    @param responseURI Where the validator's evidence is.
    @param responseHash The keccak256 of the evidence.
    @param tag A label of the response (e.g. "soft" or "hard" finality).
    """
    word: uint256 = self._existing(requestHash)
    assert word & _SINGLE != 0, "ValidationRegistry: this request takes commit and reveal"
    assert response <= 100, "ValidationRegistry: response above 100"
    vote: uint256 = self._vote[requestHash][msg.sender]
    assert vote & _ASSIGNED != 0, "ValidationRegistry: caller is not the request's validator"
    self._vote[requestHash][msg.sender] = _ASSIGNED | _COMMITTED | _REVEALED | convert(response, uint256)
    self._responseHash[requestHash] = responseHash
    self._tag[requestHash] = tag
    word = (word & ~((_M8 << 48) | (_M8 << 40) | (_M64 << 192))) | (convert(response, uint256) << 48) \
        | (1 << 40) | (block.timestamp << 192)
    self._word[requestHash] = word
    log ValidationResponse(validatorAddress=msg.sender, agentId=self._agent[requestHash],
                           requestHash=requestHash, response=response, responseURI=responseURI,
                           responseHash=responseHash, tag=tag)


@external
def requestValidation(agentId: uint256, requestURI: String[MAX_URI], requestHash: bytes32,
                      validators: DynArray[address, MAX_VALIDATORS], n: uint256, k: uint256,
                      threshold: uint256, commitPeriod: uint256, revealPeriod: uint256, fee: uint256,
                      tag: String[32]):
    """
    @notice Ask n staked validators to check an agent's work (owner or operator of the
            agent); the fee is pulled from the caller and shared by those found honest.
    @param agentId The agent whose work is checked.
    @param requestURI Where the request's data is (what to check and how).
    @param requestHash The keccak256 of the request's data; the request's id.
    @param validators The validators, or none to draw `n` from the pool.
    @param n How many to draw when `validators` is empty (else its length).
    @param k The least number of reveals for a verdict.
    @param threshold The least median (0-100) that passes.
    @param commitPeriod Seconds for commitments.
    @param revealPeriod Seconds for reveals after the commit deadline.
    @param fee Tokens shared by the honest validators.
    @param tag A label of the check (e.g. "accuracy").
    """
    self._check_agent(agentId)
    self._request_k_of_n(agentId, 0, requestURI, requestHash, validators, n, k, threshold, commitPeriod,
                         revealPeriod, fee, tag)


@external
def setJobTerms(jobId: uint256, n: uint256, k: uint256, threshold: uint256, check: bytes32):
    """
    @notice Fix how a job will be judged (its client, once, while the job is Open and this
            registry its evaluator): n validators drawn from the pool, k reveals, the pass
            threshold, and the check validators run (the keccak256 of its canonical JSON).
    @param jobId The job in the suite's escrow.
    @param n Validators to draw, 1 to 16.
    @param k The least number of reveals for a verdict, 1 to n.
    @param threshold The least median (0-100) that completes the job.
    @param check The keccak256 of the check's canonical JSON.
    """
    client: address = empty(address)
    provider: address = empty(address)
    status: uint8 = 0
    client, provider, status = self._job_of(jobId)
    assert msg.sender == client, "ValidationRegistry: caller is not the job's client"
    assert status == 0, \
        "ValidationRegistry: the job is not Open"
    assert self.jobTerms[jobId] == 0, "ValidationRegistry: the job's terms are set"
    assert k != 0 and k <= n and n <= MAX_VALIDATORS and threshold <= 100 and check != empty(bytes32), \
        "ValidationRegistry: terms need 1 <= k <= n <= 16, a threshold up to 100 and a check"
    self.jobTerms[jobId] = n | (k << 8) | (threshold << 16)
    self.jobCheck[jobId] = check
    log JobTermsSet(jobId=jobId, n=n, k=k, threshold=threshold,
                    check=check)


@external
def requestJobValidation(jobId: uint256, requestURI: String[MAX_URI], requestHash: bytes32,
                         commitPeriod: uint256, revealPeriod: uint256, fee: uint256):
    """
    @notice Ask validators drawn from the pool to judge a submitted job by its client's
            terms (the job's provider, who wants to be paid); `finalize` completes or
            rejects the job by their verdict.
    @param jobId The job in the suite's escrow.
    @param requestURI Where the request's data is (where the deliverable can be fetched).
    @param requestHash The keccak256 of the request's data; the request's id.
    @param commitPeriod Seconds for commitments.
    @param revealPeriod Seconds for reveals after the commit deadline.
    @param fee Tokens shared by the honest validators.
    """
    client: address = empty(address)
    provider: address = empty(address)
    status: uint8 = 0
    client, provider, status = self._job_of(jobId)
    assert status == SUBMITTED_JOB, "ValidationRegistry: the job is not submitted"
    assert msg.sender == provider, "ValidationRegistry: caller is not the job's provider"
    terms: uint256 = self.jobTerms[jobId]
    assert terms != 0, "ValidationRegistry: the job's client set no validation terms"
    previous: bytes32 = self.jobRequest[jobId]
    if previous != empty(bytes32):
        assert self._word[previous] & _M8 != convert(PENDING, uint256), \
            "ValidationRegistry: the job's validation is still pending"
    found: bool = False
    agent_id: uint256 = 0
    found, agent_id = staticcall identityRegistry.getAgentByWallet(provider)
    assert found, "ValidationRegistry: the job's provider is no agent's wallet"
    self.jobRequest[jobId] = requestHash
    self._request_k_of_n(agent_id, jobId, requestURI, requestHash, [], terms & _M8, (terms >> 8) & _M8,
                         terms >> 16, commitPeriod, revealPeriod, fee, "job")


@internal
@view
def _check_agent(agent_id: uint256):
    assert staticcall identityRegistry.isAuthorizedOrOwner(msg.sender, agent_id), \
        "ValidationRegistry: caller is not the agent's owner or operator"


@internal
@view
def _job_of(job_id: uint256) -> (address, address, uint8):
    """
    @dev A job's client, provider and status; it must have this registry as its evaluator.
    """
    job: Job = staticcall escrow.getJob(job_id)
    assert job.evaluator == self, "ValidationRegistry: this registry is not the job's evaluator"
    return job.client, job.provider, job.status


@internal
def _open(request_hash: bytes32, agent_id: uint256, job_id: uint256, tag: String[32]):
    assert request_hash != empty(bytes32), "ValidationRegistry: request hash is zero"
    assert self._word[request_hash] == 0, "ValidationRegistry: the request exists"
    self._requester[request_hash] = msg.sender
    self._agent[request_hash] = agent_id
    if job_id != 0:
        self._job[request_hash] = job_id
    if len(tag) != 0:
        self._tag[request_hash] = tag
    self._push(agent_id, request_hash)


@internal
def _push(key: uint256, request_hash: bytes32):
    count: uint256 = self._listLength[key]
    self._list[key][count] = request_hash
    self._listLength[key] = count + 1


@internal
def _index_validator(validator: address, request_hash: bytes32):
    self._push(_VALIDATOR_KEY | convert(validator, uint256), request_hash)


@internal
def _request_k_of_n(agent_id: uint256, job_id: uint256, request_uri: String[MAX_URI], request_hash: bytes32,
                    listed: DynArray[address, MAX_VALIDATORS], n_drawn: uint256, k: uint256, threshold: uint256,
                    commit_period: uint256, reveal_period: uint256, fee: uint256, tag: String[32]):
    governed._require_not_paused()
    n: uint256 = n_drawn
    if len(listed) != 0:
        n = len(listed)
    assert n != 0 and n <= MAX_VALIDATORS, "ValidationRegistry: n must be 1 to 16"
    assert k != 0 and k <= n, "ValidationRegistry: k must be 1 to n"
    assert threshold <= 100, "ValidationRegistry: threshold above 100"
    assert min(commit_period, reveal_period) >= MIN_PERIOD and max(commit_period, reveal_period) <= MAX_PERIOD, \
        "ValidationRegistry: commit and reveal periods must be 60 s to 30 days"
    self._open(request_hash, agent_id, job_id, tag)
    chosen: DynArray[address, MAX_VALIDATORS] = listed
    drawn: bool = len(listed) == 0
    if drawn:
        chosen = self._draw(request_hash, agent_id, n)  # eligible, distinct, no party
    min_stake: uint256 = self.minStake
    for v: address in chosen:
        weight: uint256 = self.stakeOf[v]
        if not drawn:
            assert weight >= min_stake, "ValidationRegistry: a validator has less than the minimum stake"
            assert self._vote[request_hash][v] == 0, "ValidationRegistry: a validator is listed twice"
            assert not self._conflicted(v, agent_id), "ValidationRegistry: a validator is a party to the request"
        self._vote[request_hash][v] = _ASSIGNED | (weight << 128)
        self.openRequests[v] += 1
        self._index_validator(v, request_hash)
        log ValidationRequest(validatorAddress=v, agentId=agent_id, requestURI=request_uri,
                              requestHash=request_hash)
    self._validators[request_hash] = chosen
    commit_deadline: uint256 = block.timestamp + commit_period
    reveal_deadline: uint256 = commit_deadline + reveal_period
    self._word[request_hash] = convert(PENDING, uint256) | (k << 8) | (n << 16) | (threshold << 24) \
        | (commit_deadline << 64) | (reveal_deadline << 128) | (block.timestamp << 192)
    if fee != 0:
        self._fee[request_hash] = fee
        self._pull(fee)
    log ValidationTerms(requestHash=request_hash, requester=msg.sender, jobId=job_id, k=k,
                        n=n, threshold=threshold, commitDeadline=commit_deadline,
                        revealDeadline=reveal_deadline, fee=fee)


@internal
@view
def _conflicted(validator: address, agent_id: uint256) -> bool:
    return validator == msg.sender or staticcall identityRegistry.isAuthorizedOrOwner(validator, agent_id)


@internal
@view
def _draw(request_hash: bytes32, agent_id: uint256, n: uint256) -> DynArray[address, MAX_VALIDATORS]:
    """
    @dev n distinct eligible validators: random picks first, then a scan from a random start.
    """
    size: uint256 = len(self.pool)
    assert size >= n, "ValidationRegistry: not enough validators in the pool"
    seed: bytes32 = keccak256(abi_encode(block.prevrandao, request_hash, block.number))
    out: DynArray[address, MAX_VALIDATORS] = []
    min_stake: uint256 = self.minStake
    for attempt: uint256 in range(4 * MAX_VALIDATORS):
        if len(out) == n:
            break
        v: address = self.pool[convert(keccak256(abi_encode(seed, attempt)), uint256) % size]
        if v not in out and self.stakeOf[v] >= min_stake and not self._conflicted(v, agent_id):
            out.append(v)
    start: uint256 = convert(seed, uint256) % size
    for i: uint256 in range(MAX_POOL):
        if len(out) == n or i >= size:
            break
        v: address = self.pool[(start + i) % size]
        if v not in out and self.stakeOf[v] >= min_stake and not self._conflicted(v, agent_id):
            out.append(v)
    assert len(out) == n, "ValidationRegistry: not enough eligible validators in the pool"
    return out


# ---------------------------------------------------------------------------------------
# Commit, reveal, verdict


@external
def commit(requestHash: bytes32, commitment: bytes32):
    """
    @notice Commit to a response before the commit deadline (once).
    @param requestHash The request.
    @param commitment keccak256(abi.encode(requestHash, uint8 response, bytes32 salt, address validator)).
    """
    word: uint256 = 0
    vote: uint256 = 0
    word, vote = self._ballot(requestHash)
    assert vote & _COMMITTED == 0, "ValidationRegistry: already committed"
    assert block.timestamp < (word >> 64) & _M64, "ValidationRegistry: the commit deadline has passed"
    assert commitment != empty(bytes32), "ValidationRegistry: commitment is zero"
    self._vote[requestHash][msg.sender] = vote | _COMMITTED
    self._commitment[requestHash][msg.sender] = commitment
    self._word[requestHash] = word + (1 << 32)
    log ValidationCommitted(requestHash=requestHash, validatorAddress=msg.sender, commitment=commitment)


@external
def reveal(requestHash: bytes32, response: uint8, salt: bytes32, responseURI: String[MAX_URI],
           responseHash: bytes32):
    """
    @notice Reveal the committed response, once every validator committed or the commit
            deadline passed, and before the reveal deadline. Emits ERC-8004's ValidationResponse.
    @param requestHash The request.
    @param response 0 (failed) to 100 (passed).
    @param salt The salt of the commitment.
    @param responseURI Where the validator's evidence is.
    @param responseHash The keccak256 of the evidence.
    """
    word: uint256 = 0
    vote: uint256 = 0
    word, vote = self._ballot(requestHash)
    assert vote & _COMMITTED != 0, "ValidationRegistry: no commitment to reveal"
    assert vote & _REVEALED == 0, "ValidationRegistry: already revealed"
    assert response <= 100, "ValidationRegistry: response above 100"
    all_committed: bool = (word >> 32) & _M8 == (word >> 16) & _M8
    assert all_committed or block.timestamp >= (word >> 64) & _M64, \
        "ValidationRegistry: reveals are not open yet"
    assert block.timestamp < (word >> 128) & _M64, "ValidationRegistry: the reveal deadline has passed"
    assert word & _M8 == convert(PENDING, uint256), "ValidationRegistry: the request is final"
    expected: bytes32 = keccak256(abi_encode(requestHash, response, salt, msg.sender))
    assert expected == self._commitment[requestHash][msg.sender], \
        "ValidationRegistry: the reveal does not match the commitment"
    self._vote[requestHash][msg.sender] = vote | _REVEALED | convert(response, uint256)
    self._word[requestHash] = word + (1 << 40)
    log ValidationResponse(validatorAddress=msg.sender, agentId=self._agent[requestHash],
                           requestHash=requestHash, response=response, responseURI=responseURI,
                           responseHash=responseHash, tag=self._tag[requestHash])


@external
def finalize(requestHash: bytes32):
    """
    @notice Compute the verdict once every validator revealed or the reveal deadline passed
            (anyone may call this); for a job, complete or reject it by the verdict.
    @param requestHash The request.
    """
    word: uint256 = self._existing(requestHash)
    assert word & _SINGLE == 0, "ValidationRegistry: not a k-of-n request"
    assert word & _M8 == convert(PENDING, uint256), "ValidationRegistry: the request is final"
    n: uint256 = (word >> 16) & _M8
    revealed: uint256 = (word >> 40) & _M8
    assert revealed == n or block.timestamp >= (word >> 128) & _M64, \
        "ValidationRegistry: the reveal deadline has not passed"
    result: uint256 = self._median(requestHash)
    status: uint8 = INCONCLUSIVE
    if revealed >= (word >> 8) & _M8:
        status = REJECTED
        if result >= (word >> 24) & _M8:
            status = ACCEPTED
    word = (word & ~(_M8 | (_M8 << 48) | (_M64 << 192))) | convert(status, uint256) | (result << 48) \
        | (block.timestamp << 192)
    self._word[requestHash] = word
    settle_after: uint256 = block.timestamp + self.challengeWindow
    log ValidationFinalized(requestHash=requestHash, status=status, result=result,
                            revealed=revealed, settleAfter=settle_after)
    job_id: uint256 = self._job[requestHash]
    if job_id != 0 and status != INCONCLUSIVE:
        client: address = empty(address)
        provider: address = empty(address)
        job_status: uint8 = 0
        client, provider, job_status = self._job_of(job_id)
        if job_status == SUBMITTED_JOB:
            if status == ACCEPTED:
                extcall escrow.complete(job_id, requestHash, b"")
            else:
                extcall escrow.reject(job_id, requestHash, b"")


@internal
@view
def _median(request_hash: bytes32) -> uint256:
    """
    @dev The highest response that more than half of the revealed weight reached or exceeded.
    """
    responses: DynArray[uint256, MAX_VALIDATORS] = []
    weights: DynArray[uint256, MAX_VALIDATORS] = []
    total: uint256 = 0
    for v: address in self._validators[request_hash]:
        vote: uint256 = self._vote[request_hash][v]
        if vote & _REVEALED != 0:
            responses.append(vote & _M8)
            weights.append(vote >> 128)
            total += vote >> 128
    best: uint256 = 0
    for candidate: uint256 in responses:
        if candidate <= best:
            continue
        support: uint256 = 0
        for j: uint256 in range(len(responses), bound=MAX_VALIDATORS):
            if responses[j] >= candidate:
                support += weights[j]
        if 2 * support > total:
            best = candidate
    return best


@external
def waiveSlashing(requestHash: bytes32, reason: bytes32):
    """
    @notice Cancel the slashes of a finalized request during its challenge window (guardian
            or owner), e.g. when the check it named turned out faulty. Fees are still paid.
    @param requestHash The request.
    @param reason Why (e.g. the hash of a public statement).
    """
    governed._check_guardian()
    word: uint256 = self._unsettled(requestHash)
    status: uint256 = word & _M8
    assert block.timestamp < ((word >> 192) & _M64) + self.challengeWindow, \
        "ValidationRegistry: the challenge window has passed"
    self._word[requestHash] = word | _WAIVED
    log SlashingWaived(requestHash=requestHash, guardian=msg.sender, reason=reason)


@external
def settle(requestHash: bytes32):
    """
    @notice After the challenge window, pay the fee to the validators found honest, slash
            the absent and the outliers, and free every validator's stake of this request
            (anyone may call this, once).
    @param requestHash The request.
    """
    word: uint256 = self._unsettled(requestHash)
    status: uint256 = word & _M8
    assert block.timestamp >= ((word >> 192) & _M64) + self.challengeWindow, \
        "ValidationRegistry: the challenge window is still open"
    self._word[requestHash] = word | _SETTLED
    result: uint256 = (word >> 48) & _M8
    conclusive: bool = status != convert(INCONCLUSIVE, uint256)
    waived: bool = word & _WAIVED != 0
    tol: uint256 = self.tolerance
    slash_bps: uint256 = self.slashBps
    honest: DynArray[address, MAX_VALIDATORS] = []
    slashed_total: uint256 = 0
    for v: address in self._validators[requestHash]:
        vote: uint256 = self._vote[requestHash][v]
        self.openRequests[v] -= 1
        ok: bool = vote & _REVEALED != 0
        if ok and conclusive:
            response: uint256 = vote & _M8
            ok = max(response, result) - min(response, result) <= tol
        if ok:
            honest.append(v)
            continue
        outcome: uint8 = SPARED
        amount: uint256 = 0
        if not waived:
            outcome = SLASHED
            amount = self._slash(v, (vote >> 128) * slash_bps // BPS)
            slashed_total += amount
        self._vote[requestHash][v] = vote | (convert(outcome, uint256) << 16)
        log ValidatorSettled(requestHash=requestHash, validatorAddress=v, outcome=outcome, amount=amount)
    self.slashedPool += slashed_total
    fee: uint256 = self._fee[requestHash]
    share: uint256 = 0
    if len(honest) != 0:
        share = fee // len(honest)
    for v: address in honest:
        self._vote[requestHash][v] = self._vote[requestHash][v] | (convert(PAID, uint256) << 16)
        if share != 0:
            self._transfer(v, share)
        log ValidatorSettled(requestHash=requestHash, validatorAddress=v, outcome=PAID, amount=share)
    rest: uint256 = fee - share * len(honest)
    if rest != 0:
        self._transfer(self._requester[requestHash], rest)


@internal
@view
def _existing(request_hash: bytes32) -> uint256:
    word: uint256 = self._word[request_hash]
    assert word != 0, "ValidationRegistry: no such request"
    return word


@internal
@view
def _ballot(request_hash: bytes32) -> (uint256, uint256):
    word: uint256 = self._existing(request_hash)
    assert word & _SINGLE == 0, "ValidationRegistry: not a k-of-n request"
    vote: uint256 = self._vote[request_hash][msg.sender]
    assert vote & _ASSIGNED != 0, "ValidationRegistry: caller is not a validator of the request"
    return word, vote


@internal
@view
def _unsettled(request_hash: bytes32) -> uint256:
    word: uint256 = self._word[request_hash]
    assert word & _SINGLE == 0 and word & _M8 > convert(PENDING, uint256), \
        "ValidationRegistry: the request is not finalized"
    assert word & _SETTLED == 0, "ValidationRegistry: the request is settled"
    return word


@internal
def _pull(amount: uint256):
    assert extcall IERC20(stakeToken).transferFrom(msg.sender, self, amount, default_return_value=True), \
        "ValidationRegistry: payment failed"


@internal
def _transfer(to: address, amount: uint256):
    assert extcall IERC20(stakeToken).transfer(to, amount, default_return_value=True), \
        "ValidationRegistry: payment failed"


@internal
def _slash(validator: address, amount: uint256) -> uint256:
    """
    @dev Take up to `amount` from the active stake, then from what is unbonding.
    """
    active: uint256 = self.stakeOf[validator]
    from_active: uint256 = min(amount, active)
    if from_active != 0:
        self.stakeOf[validator] = active - from_active
        if active - from_active < self.minStake:
            self._leave_pool(validator)
    rest: uint256 = amount - from_active
    if rest == 0:
        return from_active
    bonding: uint256 = self.unbonding[validator]
    from_bonding: uint256 = min(rest, bonding)
    self.unbonding[validator] = bonding - from_bonding
    return from_active + from_bonding


@internal
def _leave_pool(validator: address):
    index: uint256 = self._poolIndex[validator]
    if index == 0:
        return
    last: address = self.pool.pop()
    if last != validator:
        self.pool[index - 1] = last
        self._poolIndex[last] = index
    self._poolIndex[validator] = 0


# ---------------------------------------------------------------------------------------
# Reads


@external
@view
def getRequest(requestHash: bytes32) -> Request:
    """
    @notice A request with its terms, state and validators.
    @param requestHash The request.
    @return The request.
    """
    word: uint256 = self._existing(requestHash)
    return Request(
        requester=self._requester[requestHash],
        agentId=self._agent[requestHash],
        jobId=self._job[requestHash],
        fee=self._fee[requestHash],
        k=(word >> 8) & _M8,
        n=(word >> 16) & _M8,
        threshold=(word >> 24) & _M8,
        status=word & _M8,
        result=(word >> 48) & _M8,
        committed=(word >> 32) & _M8,
        revealed=(word >> 40) & _M8,
        single=word & _SINGLE != 0,
        settled=word & _SETTLED != 0,
        waived=word & _WAIVED != 0,
        commitDeadline=(word >> 64) & _M64,
        revealDeadline=(word >> 128) & _M64,
        finalizedAt=(word >> 192) & _M64,
        tag=self._tag[requestHash],
        validators=self._validators[requestHash],
    )


@external
@view
def getVote(requestHash: bytes32, validatorAddress: address) -> Vote:
    """
    @notice One validator's part in a request (a response shows only once revealed).
    @param requestHash The request.
    @param validatorAddress The validator.
    @return The vote.
    """
    vote: uint256 = self._vote[requestHash][validatorAddress]
    return Vote(
        assigned=vote & _ASSIGNED != 0,
        committed=vote & _COMMITTED != 0,
        revealed=vote & _REVEALED != 0,
        response=vote & _M8,
        weight=vote >> 128,
        commitment=self._commitment[requestHash][validatorAddress],
        outcome=(vote >> 16) & _M8,
    )


@external
@view
def getValidationStatus(requestHash: bytes32) -> (address, uint256, uint8, bytes32, String[32], uint256):
    """
    @notice ERC-8004: a request's status. For a k-of-n request the validator is this
            registry and the response is the verdict's median (0 until finalized).
    @param requestHash The request.
    @return validatorAddress, agentId, response, responseHash, tag, lastUpdate.
    """
    word: uint256 = self._existing(requestHash)
    validator: address = self
    if word & _SINGLE != 0:
        validator = self._validators[requestHash][0]
    return (validator, self._agent[requestHash], convert((word >> 48) & _M8, uint8),
            self._responseHash[requestHash], self._tag[requestHash], (word >> 192) & _M64)


@external
@view
def getSummary(agentId: uint256, validatorAddresses: DynArray[address, MAX_VALIDATORS],
               tag: String[32]) -> (uint64, uint8):
    """
    @notice ERC-8004: how many responses an agent's requests got, and their average, from
            the given validators (all if none) under the given tag (any if empty). At most
            1,000 requests: beyond, read `requestsPage` and `getVote` off chain.
    @param agentId The agent.
    @param validatorAddresses The validators to count.
    @param tag The tag to count.
    @return count, avgResponse.
    """
    assert self._listLength[agentId] <= MAX_LIST, "ValidationRegistry: more than 1,000 requests, use requestsPage"
    count: uint256 = 0
    total: uint256 = 0
    count, total = self._summary(agentId, validatorAddresses, tag, 0, MAX_LIST)
    if count == 0:
        return (0, 0)
    return (convert(count, uint64), convert(total // count, uint8))


@internal
@view
def _summary(agent_id: uint256, only: DynArray[address, MAX_VALIDATORS], tag: String[32], offset: uint256,
             limit: uint256) -> (uint256, uint256):
    count: uint256 = 0
    total: uint256 = 0
    end: uint256 = min(self._listLength[agent_id], offset + limit)
    tag_hash: bytes32 = keccak256(tag)
    for i: uint256 in range(offset, offset + MAX_LIST, bound=MAX_LIST):
        if i >= end:
            break
        request_hash: bytes32 = self._list[agent_id][i]
        if len(tag) != 0 and keccak256(self._tag[request_hash]) != tag_hash:
            continue
        for v: address in self._validators[request_hash]:
            if len(only) != 0 and v not in only:
                continue
            vote: uint256 = self._vote[request_hash][v]
            if vote & _REVEALED != 0:
                count += 1
                total += vote & _M8
    return (count, total)


@external
@view
def getAgentValidations(agentId: uint256) -> DynArray[bytes32, MAX_LIST]:
    """
    @notice ERC-8004: an agent's request ids, oldest first (at most 1,000; `requestsPage` walks more).
    @param agentId The agent.
    @return The request ids.
    """
    return self._whole(agentId)


@external
@view
def getValidatorRequests(validatorAddress: address) -> DynArray[bytes32, MAX_LIST]:
    """
    @notice ERC-8004: the requests a validator was asked, oldest first (at most 1,000;
            `requestsPage` walks more).
    @param validatorAddress The validator.
    @return The request ids.
    """
    return self._whole(_VALIDATOR_KEY | convert(validatorAddress, uint256))


@external
@view
def requestsPage(agentId: uint256, validatorAddress: address, offset: uint256, limit: uint256) -> DynArray[bytes32, MAX_LIST]:
    """
    @notice A page of an agent's request ids, or of a validator's when `validatorAddress` is
            not zero.
    @param agentId The agent (ignored when a validator is given).
    @param validatorAddress The validator, or the zero address.
    @param offset The first index.
    @param limit At most 1,000.
    @return The request ids.
    """
    key: uint256 = agentId
    if validatorAddress != empty(address):
        key = _VALIDATOR_KEY | convert(validatorAddress, uint256)
    return self._page(key, offset, limit)


@internal
@view
def _whole(key: uint256) -> DynArray[bytes32, MAX_LIST]:
    count: uint256 = self._listLength[key]
    assert count <= MAX_LIST, "ValidationRegistry: more than 1,000 requests, use requestsPage"
    return self._page(key, 0, count)


@internal
@view
def _page(key: uint256, offset: uint256, limit: uint256) -> DynArray[bytes32, MAX_LIST]:
    out: DynArray[bytes32, MAX_LIST] = []
    end: uint256 = min(self._listLength[key], offset + min(limit, MAX_LIST))
    for i: uint256 in range(offset, offset + MAX_LIST, bound=MAX_LIST):
        if i >= end:
            break
        out.append(self._list[key][i])
    return out


@external
@view
def getIdentityRegistry() -> address:
    """
    @notice ERC-8004: the identity registry the agents belong to.
    @return The registry.
    """
    return identityRegistry.address
