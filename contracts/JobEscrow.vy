# pragma version 0.4.3
"""
@title NeuroLedger job escrow (ERC-8183 "Agentic Commerce")
@custom:contract-name JobEscrow
@license Apache-2.0
@notice A client hires a provider for a job: the budget waits in escrow until the
        job's evaluator completes it (the provider is paid, minus an optional fee)
        or rejects it (the client is refunded), and after the job's expiry anyone
        may return the escrow to the client. The functions and events are those of
        ERC-8183, so its indexers and SDKs read this contract. The deliverable is a
        NeuroLedger asset id, so every delivered result has provenance.
@dev Beyond ERC-8183, which has no dispute resolution: a job may carry a dispute
     window. Then `complete` does not move the money at once: for the window,
     the client may `dispute` once, which sends the job back to the evaluator for
     a final decision (and keeps the job open for at least one more window), and
     after the window anyone may `release` the payment. The evaluator may be any
     address or contract, such as a k-of-n validation contract.
@custom:security The guardian may pause new money coming in (`createJob`,
                 `setProvider`, `setBudget`, `fund`); nothing that moves money out
                 or finishes a job (`submit`, `complete`, `reject`, `dispute`,
                 `release`, `claimRefund`) checks the pause. `claimRefund` calls no
                 hook, so neither a hook nor a pause can block a refund after the
                 expiry. The fee (at most 10%) and its treasury change only through
                 the owner, the suite's timelock. One payment token per contract.
"""


from ethereum.ercs import IERC20
from modules import governed

initializes: governed

exports: governed.__interface__


interface IACPHook:
    def beforeAction(jobId: uint256, selector: bytes4, data: Bytes[2144]): nonpayable
    def afterAction(jobId: uint256, selector: bytes4, data: Bytes[2144]): nonpayable


# @dev Job states, as ERC-8183 numbers them.
OPEN: constant(uint8) = 0
FUNDED: constant(uint8) = 1
SUBMITTED: constant(uint8) = 2
COMPLETED: constant(uint8) = 3
REJECTED: constant(uint8) = 4
EXPIRED: constant(uint8) = 5

MAX_FEE_BPS: constant(uint256) = 1000
MAX_DISPUTE_WINDOW: constant(uint256) = 30 * 86400
# @dev The gas a hook gets per call (ERC-8183 recommends a limit).
HOOK_GAS: constant(uint256) = 300_000
_OPT_MAX: constant(uint256) = 2048


# @dev One job, as `getJob` returns it.
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


# @dev Emitted when a job is created (ERC-8183).
event JobCreated:
    jobId: indexed(uint256)
    client: indexed(address)
    provider: indexed(address)
    evaluator: address
    expiredAt: uint256
    hook: address


# @dev Emitted when the client names the provider of a job created without one (ERC-8183).
event ProviderSet:
    jobId: indexed(uint256)
    provider: indexed(address)


# @dev Emitted when the price of a job is set (ERC-8183).
event BudgetSet:
    jobId: indexed(uint256)
    amount: uint256


# @dev Emitted when the client pays the budget into escrow (ERC-8183).
event JobFunded:
    jobId: indexed(uint256)
    client: indexed(address)
    amount: uint256


# @dev Emitted when the provider delivers (ERC-8183); `deliverable` is an asset id.
event JobSubmitted:
    jobId: indexed(uint256)
    provider: indexed(address)
    deliverable: bytes32


# @dev Emitted when the evaluator completes a job (ERC-8183).
event JobCompleted:
    jobId: indexed(uint256)
    evaluator: indexed(address)
    reason: bytes32


# @dev Emitted when a job is rejected, by the client while Open or the evaluator after (ERC-8183).
event JobRejected:
    jobId: indexed(uint256)
    rejector: indexed(address)
    reason: bytes32


# @dev Emitted when an expired job's escrow goes back to the client (ERC-8183).
event JobExpired:
    jobId: indexed(uint256)


# @dev Emitted when the provider is paid (ERC-8183).
event PaymentReleased:
    jobId: indexed(uint256)
    provider: indexed(address)
    amount: uint256


# @dev Emitted when the client is refunded (ERC-8183).
event Refunded:
    jobId: indexed(uint256)
    client: indexed(address)
    amount: uint256


# @dev Emitted when a client sets a job's dispute window (NeuroLedger).
event DisputeWindowSet:
    jobId: indexed(uint256)
    window: uint256


# @dev Emitted when the client disputes a completion within its window (NeuroLedger).
event JobDisputed:
    jobId: indexed(uint256)
    client: indexed(address)
    reason: bytes32


# @dev Emitted when the owner changes the fee or its treasury.
event FeeChanged:
    feeBps: uint256
    treasury: indexed(address)


paymentToken: public(immutable(address))
jobCounter: public(uint256)

# @dev A job is kept in few words, so that each call reads and writes little: its parties,
# its budget, and one packed word of status (bits 0-7), disputed (bit 8), has a hook (bit 9),
# expiry (bits 16-79), dispute window (bits 80-111) and release time (bits 112-175).
_client: HashMap[uint256, address]
_provider: HashMap[uint256, address]
_evaluator: HashMap[uint256, address]
_hook: HashMap[uint256, address]
_budget: HashMap[uint256, uint256]
_word: HashMap[uint256, uint256]
_deliverable: HashMap[uint256, bytes32]
_description: HashMap[uint256, String[1024]]
# @dev The fee in basis points (bits 160-175) and its treasury (bits 0-159), in one word.
_fee: uint256

_DISPUTED: constant(uint256) = 1 << 8
_HAS_HOOK: constant(uint256) = 1 << 9
_MASK64: constant(uint256) = 2**64 - 1
_MASK32: constant(uint256) = 2**32 - 1
_EXPIRY_SHIFT: constant(uint256) = 16
_WINDOW_SHIFT: constant(uint256) = 80
_RELEASE_SHIFT: constant(uint256) = 112


@deploy
def __init__(token: address, owner_: address, guardian_: address):
    """
    @notice Deploy the escrow for one payment token (any ERC-20; EIP-3009 tokens too).
    @param token The payment token.
    @param owner_ The owner (the suite's timelock), who alone sets the fee.
    @param guardian_ The guardian, who may pause new money coming in.
    """
    assert token != empty(address), "JobEscrow: token is the zero address"
    governed.__init__(owner_, guardian_)
    paymentToken = token
    self._fee = convert(owner_, uint256)


@external
def setFee(fee_bps: uint256, treasury_: address):
    """
    @notice Set the fee taken on completion only (owner: the timelock).
    @param fee_bps The fee in basis points, at most 1000 (10%).
    @param treasury_ Who receives the fee.
    """
    governed._check_owner()
    assert fee_bps <= MAX_FEE_BPS, "JobEscrow: fee above 10%"
    assert treasury_ != empty(address), "JobEscrow: treasury is the zero address"
    self._fee = convert(treasury_, uint256) | (fee_bps << 160)
    log FeeChanged(feeBps=fee_bps, treasury=treasury_)


@external
@view
def feeBps() -> uint256:
    """
    @notice The fee on completion, in basis points.
    @return The fee.
    """
    return self._fee >> 160


@external
@view
def treasury() -> address:
    """
    @notice Who receives the fee.
    @return The treasury.
    """
    return convert(self._fee & (2**160 - 1), address)


@external
def createJob(provider: address, evaluator: address, expiredAt: uint256, description: String[1024],
              hook: address) -> uint256:
    """
    @notice Create a job in Open; the caller is its client.
    @param provider Who does the work (may be set later with `setProvider`).
    @param evaluator Who completes or rejects it: any address or contract.
    @param expiredAt After this time anyone may refund the escrow.
    @param description The job's brief.
    @param hook An ERC-8183 hook contract, or the zero address.
    @return The job id (the first is 1).
    """
    governed._require_not_paused()
    assert evaluator != empty(address), "JobEscrow: evaluator is the zero address"
    assert expiredAt > block.timestamp, "JobEscrow: expiry is not in the future"
    assert expiredAt <= _MASK64, "JobEscrow: expiry out of range"
    job_id: uint256 = self.jobCounter + 1
    self.jobCounter = job_id
    self._client[job_id] = msg.sender
    if provider != empty(address):
        self._provider[job_id] = provider
    self._evaluator[job_id] = evaluator
    word: uint256 = (expiredAt << _EXPIRY_SHIFT) | convert(OPEN, uint256)
    if hook != empty(address):
        self._hook[job_id] = hook
        word |= _HAS_HOOK
    self._word[job_id] = word
    if len(description) != 0:
        self._description[job_id] = description
    log JobCreated(jobId=job_id, client=msg.sender, provider=provider, evaluator=evaluator,
                   expiredAt=expiredAt, hook=hook)
    return job_id


@external
def setDisputeWindow(jobId: uint256, window: uint256):
    """
    @notice Give an Open job a dispute window (NeuroLedger): completions then pay out only
            after it, and the client may dispute once within it.
    @param jobId The job.
    @param window Seconds, at most 30 days (0: none, as plain ERC-8183).
    """
    governed._require_not_paused()
    word: uint256 = self._open_word(jobId)
    assert msg.sender == self._client[jobId], "JobEscrow: caller is not the client"
    assert window <= MAX_DISPUTE_WINDOW, "JobEscrow: dispute window above 30 days"
    self._word[jobId] = (word & ~(_MASK32 << _WINDOW_SHIFT)) | (window << _WINDOW_SHIFT)
    log DisputeWindowSet(jobId=jobId, window=window)


@external
@nonreentrant
def setProvider(jobId: uint256, provider: address, optParams: Bytes[_OPT_MAX] = b""):
    """
    @notice Name the provider of a job created without one (client, Open).
    @param jobId The job.
    @param provider The provider.
    @param optParams Forwarded to the hook.
    """
    governed._require_not_paused()
    word: uint256 = self._open_word(jobId)
    assert msg.sender == self._client[jobId], "JobEscrow: caller is not the client"
    assert self._provider[jobId] == empty(address), "JobEscrow: provider already set"
    assert provider != empty(address), "JobEscrow: provider is the zero address"
    data: Bytes[2144] = abi_encode(provider, optParams)
    selector: bytes4 = method_id("setProvider(uint256,address,bytes)", output_type=bytes4)
    self._before(word, jobId, selector, data)
    self._provider[jobId] = provider
    log ProviderSet(jobId=jobId, provider=provider)
    self._after(word, jobId, selector, data)


@external
@nonreentrant
def setBudget(jobId: uint256, amount: uint256, optParams: Bytes[_OPT_MAX] = b""):
    """
    @notice Propose or agree the price (client or provider, Open).
    @param jobId The job.
    @param amount The budget in the payment token's atomic units.
    @param optParams Forwarded to the hook.
    """
    governed._require_not_paused()
    word: uint256 = self._open_word(jobId)
    assert msg.sender == self._client[jobId] or msg.sender == self._provider[jobId], "JobEscrow: caller is not the client or provider"
    data: Bytes[2144] = abi_encode(amount, optParams)
    selector: bytes4 = method_id("setBudget(uint256,uint256,bytes)", output_type=bytes4)
    self._before(word, jobId, selector, data)
    self._budget[jobId] = amount
    log BudgetSet(jobId=jobId, amount=amount)
    self._after(word, jobId, selector, data)


@external
@nonreentrant
def fund(jobId: uint256, expectedBudget: uint256, optParams: Bytes[_OPT_MAX] = b""):
    """
    @notice Pay the budget into escrow (client, Open); reverts if the budget is not
            `expectedBudget`, so a late price change cannot be slipped in.
    @param jobId The job.
    @param expectedBudget The budget the client agreed to.
    @param optParams Forwarded to the hook.
    """
    governed._require_not_paused()
    word: uint256 = self._open_word(jobId)
    assert msg.sender == self._client[jobId], "JobEscrow: caller is not the client"
    assert self._provider[jobId] != empty(address), "JobEscrow: provider not set"
    budget: uint256 = self._budget[jobId]
    assert budget != 0, "JobEscrow: budget is zero"
    assert budget == expectedBudget, "JobEscrow: budget changed"
    assert block.timestamp < self._expiry(word), "JobEscrow: job has expired"
    selector: bytes4 = method_id("fund(uint256,uint256,bytes)", output_type=bytes4)
    self._before(word, jobId, selector, optParams)
    self._word[jobId] = self._with_status(word, FUNDED)
    assert extcall IERC20(paymentToken).transferFrom(msg.sender, self, budget, default_return_value=True), "JobEscrow: payment failed"
    log JobFunded(jobId=jobId, client=msg.sender, amount=budget)
    self._after(word, jobId, selector, optParams)


@external
@nonreentrant
def submit(jobId: uint256, deliverable: bytes32, optParams: Bytes[_OPT_MAX] = b""):
    """
    @notice Deliver (provider, Funded): `deliverable` is the result's asset id.
    @param jobId The job.
    @param deliverable The asset id of the result.
    @param optParams Forwarded to the hook.
    """
    word: uint256 = self._word[jobId]
    assert self._status(word) == FUNDED, "JobEscrow: job is not funded"
    assert msg.sender == self._provider[jobId], "JobEscrow: caller is not the provider"
    assert block.timestamp < self._expiry(word), "JobEscrow: job has expired"
    data: Bytes[2144] = abi_encode(deliverable, optParams)
    selector: bytes4 = method_id("submit(uint256,bytes32,bytes)", output_type=bytes4)
    self._before(word, jobId, selector, data)
    self._word[jobId] = self._with_status(word, SUBMITTED)
    self._deliverable[jobId] = deliverable
    log JobSubmitted(jobId=jobId, provider=msg.sender, deliverable=deliverable)
    self._after(word, jobId, selector, data)


@external
@nonreentrant
def complete(jobId: uint256, reason: bytes32, optParams: Bytes[_OPT_MAX] = b""):
    """
    @notice Accept the delivery (evaluator, Submitted): the provider is paid, now or,
            with a dispute window, by `release` once it has passed.
    @param jobId The job.
    @param reason An attestation commitment (may be zero).
    @param optParams Forwarded to the hook.
    """
    word: uint256 = self._word[jobId]
    assert self._status(word) == SUBMITTED, "JobEscrow: job is not submitted"
    assert msg.sender == self._evaluator[jobId], "JobEscrow: caller is not the evaluator"
    data: Bytes[2144] = abi_encode(reason, optParams)
    selector: bytes4 = method_id("complete(uint256,bytes32,bytes)", output_type=bytes4)
    self._before(word, jobId, selector, data)
    window: uint256 = (word >> _WINDOW_SHIFT) & _MASK32
    word = self._with_status(word, COMPLETED)
    log JobCompleted(jobId=jobId, evaluator=msg.sender, reason=reason)
    if window == 0 or word & _DISPUTED != 0:
        self._word[jobId] = word
        self._pay_provider(jobId)
    else:
        self._word[jobId] = word | ((block.timestamp + window) << _RELEASE_SHIFT)
    self._after(word, jobId, selector, data)


@external
@nonreentrant
def reject(jobId: uint256, reason: bytes32, optParams: Bytes[_OPT_MAX] = b""):
    """
    @notice Reject (client while Open; evaluator while Funded or Submitted): an escrowed
            budget goes back to the client.
    @param jobId The job.
    @param reason Why (may be zero).
    @param optParams Forwarded to the hook.
    """
    word: uint256 = self._word[jobId]
    status: uint8 = self._status(word)
    if status == OPEN:
        assert self._client[jobId] != empty(address), "JobEscrow: no such job"
        assert msg.sender == self._client[jobId], "JobEscrow: caller is not the client"
    else:
        assert status == FUNDED or status == SUBMITTED, "JobEscrow: job is already final"
        assert msg.sender == self._evaluator[jobId], "JobEscrow: caller is not the evaluator"
    data: Bytes[2144] = abi_encode(reason, optParams)
    selector: bytes4 = method_id("reject(uint256,bytes32,bytes)", output_type=bytes4)
    self._before(word, jobId, selector, data)
    self._word[jobId] = self._with_status(word, REJECTED)
    if status != OPEN:
        self._refund(jobId)
    log JobRejected(jobId=jobId, rejector=msg.sender, reason=reason)
    self._after(word, jobId, selector, data)


@external
@nonreentrant
def dispute(jobId: uint256, reason: bytes32):
    """
    @notice Within a completion's dispute window, send the job back to its evaluator for
            a final decision (client, once per job). The job stays open at least one
            more window so that the evaluator has time to decide.
    @param jobId The job.
    @param reason Why (for example the hash of the client's evidence).
    """
    word: uint256 = self._word[jobId]
    assert msg.sender == self._client[jobId], "JobEscrow: caller is not the client"
    release_at: uint256 = (word >> _RELEASE_SHIFT) & _MASK64
    assert self._status(word) == COMPLETED and release_at != 0, "JobEscrow: nothing to dispute"
    assert block.timestamp < release_at, "JobEscrow: the dispute window has passed"
    assert word & _DISPUTED == 0, "JobEscrow: already disputed once"
    window: uint256 = (word >> _WINDOW_SHIFT) & _MASK32
    expiry: uint256 = max(self._expiry(word), block.timestamp + window)
    word = word & ~(_MASK64 << _RELEASE_SHIFT) & ~(_MASK64 << _EXPIRY_SHIFT)
    self._word[jobId] = self._with_status(word | _DISPUTED | (expiry << _EXPIRY_SHIFT), SUBMITTED)
    log JobDisputed(jobId=jobId, client=msg.sender, reason=reason)


@external
@nonreentrant
def release(jobId: uint256):
    """
    @notice Pay the provider of a completed job once its dispute window has passed (anyone).
    @param jobId The job.
    """
    word: uint256 = self._word[jobId]
    release_at: uint256 = (word >> _RELEASE_SHIFT) & _MASK64
    assert self._status(word) == COMPLETED and release_at != 0, "JobEscrow: nothing to release"
    assert block.timestamp >= release_at, "JobEscrow: the dispute window is still open"
    self._word[jobId] = word & ~(_MASK64 << _RELEASE_SHIFT)
    self._pay_provider(jobId)


@external
@nonreentrant
def claimRefund(jobId: uint256):
    """
    @notice After the expiry, return a Funded or Submitted job's escrow to its client
            (anyone). Calls no hook and ignores the pause: nothing can block it.
    @param jobId The job.
    """
    word: uint256 = self._word[jobId]
    status: uint8 = self._status(word)
    assert status == FUNDED or status == SUBMITTED, "JobEscrow: job is not funded"
    assert block.timestamp >= self._expiry(word), "JobEscrow: job has not expired"
    self._word[jobId] = self._with_status(word, EXPIRED)
    self._refund(jobId)
    log JobExpired(jobId=jobId)


@external
@view
def getJob(jobId: uint256) -> Job:
    """
    @notice A job, with every field.
    @param jobId The job.
    @return The job.
    """
    word: uint256 = self._word[jobId]
    return Job(client=self._client[jobId], provider=self._provider[jobId], evaluator=self._evaluator[jobId],
               hook=self._hook[jobId], budget=self._budget[jobId], expiredAt=self._expiry(word),
               status=self._status(word), deliverable=self._deliverable[jobId],
               disputeWindow=(word >> _WINDOW_SHIFT) & _MASK32,
               releaseAt=(word >> _RELEASE_SHIFT) & _MASK64, disputed=word & _DISPUTED != 0,
               description=self._description[jobId])


@internal
@view
def _open_word(job_id: uint256) -> uint256:
    word: uint256 = self._word[job_id]
    assert word != 0, "JobEscrow: no such job"
    assert self._status(word) == OPEN, "JobEscrow: job is not open"
    return word


@internal
@pure
def _status(word: uint256) -> uint8:
    return convert(word & 255, uint8)


@internal
@pure
def _expiry(word: uint256) -> uint256:
    return (word >> _EXPIRY_SHIFT) & _MASK64


@internal
@pure
def _with_status(word: uint256, status: uint8) -> uint256:
    return (word & ~convert(255, uint256)) | convert(status, uint256)


@internal
def _pay_provider(job_id: uint256):
    budget: uint256 = self._budget[job_id]
    provider: address = self._provider[job_id]
    fee_word: uint256 = self._fee
    fee: uint256 = budget * (fee_word >> 160) // 10_000
    if fee != 0:
        assert extcall IERC20(paymentToken).transfer(convert(fee_word & (2**160 - 1), address), fee, default_return_value=True), "JobEscrow: payment failed"
    assert extcall IERC20(paymentToken).transfer(provider, budget - fee, default_return_value=True), "JobEscrow: payment failed"
    log PaymentReleased(jobId=job_id, provider=provider, amount=budget - fee)


@internal
def _refund(job_id: uint256):
    budget: uint256 = self._budget[job_id]
    client: address = self._client[job_id]
    assert extcall IERC20(paymentToken).transfer(client, budget, default_return_value=True), "JobEscrow: refund failed"
    log Refunded(jobId=job_id, client=client, amount=budget)


@internal
def _before(word: uint256, job_id: uint256, selector: bytes4, data: Bytes[2144]):
    if word & _HAS_HOOK != 0:
        extcall IACPHook(self._hook[job_id]).beforeAction(job_id, selector, data, gas=HOOK_GAS)


@internal
def _after(word: uint256, job_id: uint256, selector: bytes4, data: Bytes[2144]):
    if word & _HAS_HOOK != 0:
        extcall IACPHook(self._hook[job_id]).afterAction(job_id, selector, data, gas=HOOK_GAS)
