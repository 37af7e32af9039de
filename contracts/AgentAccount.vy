# pragma version 0.4.3
"""
@title NeuroLedger agent account (guardrails on what an AI agent may spend, on chain)
@custom:contract-name AgentAccount
@license Apache-2.0
@notice A contract wallet that an AI agent's key drives and its owner (the organization
        that controls the agent's DID) configures. Every call the agent makes goes through
        `execute`, which enforces the owner's policies before anything moves: per-asset
        caps per transaction and per period (reset as Safe's AllowanceModule does), an
        allowlist of contracts and function selectors, an allowlist of recipients, an
        expiry, a call rate limit, a total call limit and a gas limit per call. A call
        outside the policy is not made: `execute` returns false and logs `Refused` with
        the reason, so every refusal is on chain. The owner or the guardian freezes the
        account at once (a kill switch); only the owner unfreezes it.
@dev The policy names follow ERC-7715's permission and policy types, so a wallet front
     end maps them one to one: `native-token-transfer` and `erc20-token-transfer` are the
     per-asset allowances (the zero address is the native coin), `spent-limit` is the
     per-period cap, `rate-limit`, `call-limit` and `gas-limit` are the call policies.
     A call whose selector is an ERC-20 `transfer`, `approve`, `transferFrom` or
     `increaseAllowance` counts as a spend of the target token whatever the target, so a
     token the owner forgot to configure cannot be moved at all; an approval counts as
     spent in full when it is given. `gas-limit` caps the gas each call forwards
     (ERC-7715 leaves its unit to the wallet).
@custom:security The agent cannot raise its own limits: only the owner sets policies,
                 the owner and the agent must be different keys, and the account never
                 calls itself. Freezing stops every agent call; the owner's `withdraw`
                 never checks the freeze, the expiry or any policy.
"""


from ethereum.ercs import IERC20

# @dev ERC-20 selectors that move or allow moving tokens.
TRANSFER: constant(bytes4) = 0xa9059cbb
APPROVE: constant(bytes4) = 0x095ea7b3
TRANSFER_FROM: constant(bytes4) = 0x23b872dd
INCREASE_ALLOWANCE: constant(bytes4) = 0x39509351
MAX_DATA: constant(uint256) = 4096
NATIVE: constant(address) = empty(address)
# @dev Bounds of the packed fields.
MAX_AMOUNT: constant(uint256) = 2**96 - 1
MAX_GAS: constant(uint256) = 2**31 - 1
_M16: constant(uint256) = 2**16 - 1
_M31: constant(uint256) = 2**31 - 1
_M32: constant(uint256) = 2**32 - 1
_M48: constant(uint256) = 2**48 - 1
_M64: constant(uint256) = 2**64 - 1
_M96: constant(uint256) = 2**96 - 1
_M128: constant(uint256) = 2**128 - 1
_M160: constant(uint256) = 2**160 - 1


# @dev The limits on one asset (the zero address: the native coin).
struct Allowance:
    perTransaction: uint256
    perPeriod: uint256
    period: uint256
    spent: uint256
    periodStart: uint256


# @dev The agent made a call within its policy.
event Executed:
    target: indexed(address)
    selector: bytes4
    value: uint256
    token: indexed(address)
    amount: uint256
    recipient: indexed(address)


# @dev A call the agent asked for was refused, and not made.
event Refused:
    target: indexed(address)
    selector: bytes4
    value: uint256
    amount: uint256
    reason: String[64]


# @dev The owner set the allowance of an asset (ERC-7715 `*-token-transfer` and `spent-limit`).
event AllowanceSet:
    token: indexed(address)
    perTransaction: uint256
    perPeriod: uint256
    period: uint256


# @dev The owner allowed or disallowed a function of a contract.
event CallAllowed:
    target: indexed(address)
    selector: bytes4
    allowed: bool


# @dev The owner allowed or disallowed a recipient.
event RecipientAllowed:
    recipient: indexed(address)
    allowed: bool


# @dev The owner set the call policies (ERC-7715 `rate-limit`, `call-limit`, `gas-limit`) and the expiry.
event LimitsSet:
    rateCount: uint256
    rateInterval: uint256
    callLimit: uint256
    gasLimit: uint256
    expiresAt: uint256


# @dev The account was frozen (by the owner or the guardian) or unfrozen (by the owner).
event FreezeChanged:
    frozen: bool
    by: indexed(address)


# @dev The owner took funds out.
event Withdrawn:
    token: indexed(address)
    to: indexed(address)
    amount: uint256


# @dev The owner named a new agent key or guardian.
event RolesChanged:
    agent: indexed(address)
    guardian: indexed(address)


owner: public(immutable(address))
guardian: public(address)
allowedCall: public(HashMap[address, HashMap[bytes4, bool]])
allowedRecipient: public(HashMap[address, bool])

# @dev What every call reads is packed so that a call reads few words.
# _core: agent (bits 0-159), frozen (160), gas limit (161-191), expiry (192-255).
_core: uint256
# _calls: calls made (0-47), call limit (48-95), window start (96-143), calls in the window
# (144-175), rate count (176-207), rate interval (208-255).
_calls: uint256
# Per asset: _cap: per transaction (0-95), per period (96-191), period (192-255);
# _used: spent (0-127), period start (128-191).
_cap: HashMap[address, uint256]
_used: HashMap[address, uint256]


@deploy
@payable
def __init__(owner_: address, agent_: address, guardian_: address, expiresAt_: uint256):
    """
    @notice Deploy an account with no allowance, no allowed call and no recipient: the
            agent can do nothing until the owner allows it.
    @param owner_ Who configures and withdraws (the organization behind the agent).
    @param agent_ The agent's key, which makes calls within the policy.
    @param guardian_ Who may freeze the account (the zero address: only the owner).
    @param expiresAt_ After this time the agent can make no call.
    """
    assert owner_ != empty(address) and agent_ != empty(address), "AgentAccount: zero address"
    assert owner_ != agent_, "AgentAccount: the owner and the agent must be different keys"
    assert expiresAt_ <= _M64, "AgentAccount: expiry out of range"
    owner = owner_
    self.guardian = guardian_
    self._core = convert(agent_, uint256) | (expiresAt_ << 192)
    self._calls = _M48 << 48
    log RolesChanged(agent=agent_, guardian=guardian_)
    log LimitsSet(rateCount=0, rateInterval=0, callLimit=_M48, gasLimit=0, expiresAt=expiresAt_)


@external
@payable
def __default__():
    """
    @notice Receive the native coin.
    """
    pass


# ---------------------------------------------------------------------------------------
# The owner's policy


@internal
@view
def _check_owner():
    assert msg.sender == owner, "AgentAccount: caller is not the owner"


@external
def setAllowance(token: address, perTransaction: uint256, perPeriod: uint256, period: uint256):
    """
    @notice Set how much of an asset the agent may spend: per call, and per period (reset
            every `period` seconds; 0: once, a total). Zero caps forbid the asset.
    @param token The ERC-20 token, or the zero address for the native coin.
    @param perTransaction The most one call may spend.
    @param perPeriod The most all calls of one period may spend (below 2**96).
    @param period The period in seconds (0: no reset).
    """
    self._check_owner()
    assert perTransaction <= perPeriod, "AgentAccount: per-transaction cap above the per-period cap"
    assert perPeriod <= MAX_AMOUNT and period <= _M64, "AgentAccount: cap or period out of range"
    self._cap[token] = perTransaction | (perPeriod << 96) | (period << 192)
    if self._used[token] == 0:
        self._used[token] = block.timestamp << 128
    log AllowanceSet(token=token, perTransaction=perTransaction, perPeriod=perPeriod, period=period)


@external
def allowCall(target: address, selector: bytes4, allowed: bool):
    """
    @notice Allow or disallow the agent to call one function of one contract.
    @param target The contract.
    @param selector The function's selector.
    @param allowed Whether it is allowed.
    """
    self._check_owner()
    assert target != self, "AgentAccount: the account cannot call itself"
    self.allowedCall[target][selector] = allowed
    log CallAllowed(target=target, selector=selector, allowed=allowed)


@external
def allowRecipient(recipient: address, allowed: bool):
    """
    @notice Allow or disallow a recipient of payments (and a spender of approvals).
    @param recipient The address.
    @param allowed Whether it is allowed.
    """
    self._check_owner()
    assert recipient != self, "AgentAccount: the account cannot pay itself"
    self.allowedRecipient[recipient] = allowed
    log RecipientAllowed(recipient=recipient, allowed=allowed)


@external
def setLimits(rateCount_: uint256, rateInterval_: uint256, callLimit_: uint256, gasLimit_: uint256,
              expiresAt_: uint256):
    """
    @notice Set the call policies and the expiry.
    @param rateCount_ The most calls per `rateInterval_` seconds (0: no rate limit).
    @param rateInterval_ The rate limit's window in seconds.
    @param callLimit_ The most calls in all, counted from now (at most 2**48 - 1).
    @param gasLimit_ The most gas one call forwards (0: all that is left; below 2**31).
    @param expiresAt_ After this time the agent can make no call.
    """
    self._check_owner()
    assert rateCount_ == 0 or rateInterval_ != 0, "AgentAccount: a rate limit needs an interval"
    assert rateCount_ <= _M32 and rateInterval_ <= _M48 and callLimit_ <= _M48 and gasLimit_ <= MAX_GAS \
        and expiresAt_ <= _M64, "AgentAccount: a limit is out of range"
    self._calls = (callLimit_ << 48) | (rateCount_ << 176) | (rateInterval_ << 208)
    self._core = (self._core & (_M160 | (1 << 160))) | (gasLimit_ << 161) | (expiresAt_ << 192)
    log LimitsSet(rateCount=rateCount_, rateInterval=rateInterval_, callLimit=callLimit_, gasLimit=gasLimit_,
                  expiresAt=expiresAt_)


@external
def setRoles(agent_: address, guardian_: address):
    """
    @notice Name a new agent key (e.g. after a leak) and guardian.
    @param agent_ The agent's key, not the owner's.
    @param guardian_ The guardian (the zero address: only the owner freezes).
    """
    self._check_owner()
    assert agent_ != empty(address) and agent_ != owner, "AgentAccount: the agent must be a key other than the owner's"
    self._core = (self._core & ~_M160) | convert(agent_, uint256)
    self.guardian = guardian_
    log RolesChanged(agent=agent_, guardian=guardian_)


@external
def freeze():
    """
    @notice Stop every call of the agent at once (owner or guardian).
    """
    assert msg.sender == owner or msg.sender == self.guardian, "AgentAccount: caller is not the owner or guardian"
    self._core = self._core | (1 << 160)
    log FreezeChanged(frozen=True, by=msg.sender)


@external
def unfreeze():
    """
    @notice Let the agent call again (owner only).
    """
    self._check_owner()
    self._core = self._core & ~(1 << 160)
    log FreezeChanged(frozen=False, by=msg.sender)


@external
def withdraw(token: address, to: address, amount: uint256):
    """
    @notice Take funds out (owner only); works frozen, expired or not.
    @param token The ERC-20 token, or the zero address for the native coin.
    @param to Where to.
    @param amount How much.
    """
    self._check_owner()
    if token == NATIVE:
        send(to, amount)
    else:
        assert extcall IERC20(token).transfer(to, amount, default_return_value=True), "AgentAccount: transfer failed"
    log Withdrawn(token=token, to=to, amount=amount)


# ---------------------------------------------------------------------------------------
# The agent's calls


@external
def execute(target: address, amount_: uint256, data: Bytes[MAX_DATA]) -> bool:
    """
    @notice Make a call as the account, if the policy allows it; else log `Refused` and
            return false without calling.
    @param target The contract (or recipient of the native coin).
    @param amount_ The native coin sent with the call.
    @param data The calldata.
    @return Whether the call was made.
    """
    core: uint256 = self._core
    assert msg.sender == convert(core & _M160, address), "AgentAccount: caller is not the agent"
    selector: bytes4 = empty(bytes4)
    if len(data) >= 4:
        selector = convert(slice(data, 0, 4), bytes4)
    token: address = NATIVE
    recipient: address = target
    spend: uint256 = amount_
    is_token_call: bool = selector == TRANSFER or selector == APPROVE or selector == INCREASE_ALLOWANCE \
        or selector == TRANSFER_FROM
    if is_token_call:
        if amount_ != 0:
            return self._refuse(target, selector, amount_, 0, "native coin sent with a token call")
        if selector == TRANSFER_FROM or len(data) != 68:
            return self._refuse(target, selector, 0, 0, "token calls are transfer or approve only")
        token = target
        recipient = convert(convert(slice(data, 4, 32), uint256), address)
        spend = convert(slice(data, 36, 32), uint256)
    reason: String[64] = ""
    calls: uint256 = 0
    used: uint256 = 0
    reason, calls, used = self._check(core, target, selector, token, recipient, spend, is_token_call, amount_,
                                      len(data) != 0)
    if reason != "":
        return self._refuse(target, selector, amount_, spend, reason)
    # Within the policy: count the call and the spend, then make it.
    self._calls = calls
    if spend != 0:
        self._used[token] = used
    gas: uint256 = msg.gas
    limit: uint256 = (core >> 161) & _M31
    if limit != 0:
        gas = min(gas, limit)
    raw_call(target, data, value=amount_, gas=gas)
    log Executed(target=target, selector=selector, value=amount_, token=token, amount=spend, recipient=recipient)
    return True


@internal
def _refuse(target: address, selector: bytes4, coin: uint256, amount: uint256, reason: String[64]) -> bool:
    log Refused(target=target, selector=selector, value=coin, amount=amount, reason=reason)
    return False


@internal
@view
def _check(core: uint256, target: address, selector: bytes4, token: address, recipient: address, spend: uint256,
           is_token_call: bool, coin: uint256, has_data: bool) -> (String[64], uint256, uint256):
    """
    @dev Why the call is refused ("" when the policy allows it), and the call counters and
         the asset's spend word as they will be after it. Reads only.
    """
    if core & (1 << 160) != 0:
        return "the account is frozen", 0, 0
    if block.timestamp >= core >> 192:
        return "the agent's permission has expired", 0, 0
    if target == self:
        return "the account cannot call itself", 0, 0
    calls: uint256 = self._calls
    made: uint256 = calls & _M48
    if made >= (calls >> 48) & _M48:
        return "call-limit reached", 0, 0
    rate: uint256 = (calls >> 176) & _M32
    window_start: uint256 = (calls >> 96) & _M48
    in_window: uint256 = (calls >> 144) & _M32
    if rate != 0:
        if block.timestamp >= window_start + (calls >> 208):
            window_start = block.timestamp
            in_window = 0
        if in_window >= rate:
            return "rate-limit reached", 0, 0
        in_window += 1
    calls = (calls & ~(_M48 | (_M48 << 96) | (_M32 << 144))) | (made + 1) | (window_start << 96) | (in_window << 144)
    if not has_data and coin == 0:
        return "an empty call sends nothing", 0, 0
    if has_data and not self.allowedCall[target][selector]:
        if is_token_call:
            return "the token call is not allowed", 0, 0
        return "the contract function is not allowed", 0, 0
    if (is_token_call or coin != 0) and not self.allowedRecipient[recipient]:
        return "the recipient is not allowed", 0, 0
    if spend == 0:
        return "", calls, 0
    cap: uint256 = self._cap[token]
    if spend > cap & _M96:
        return "above the per-transaction cap", 0, 0
    used: uint256 = self._used[token]
    spent: uint256 = used & _M128
    start: uint256 = used >> 128
    period: uint256 = cap >> 192
    if period != 0 and block.timestamp >= start + period:
        # Safe AllowanceModule style: the period restarts on a boundary, not at this call.
        start += (block.timestamp - start) // period * period
        spent = 0
    if spent + spend > (cap >> 96) & _M96:
        return "above the spent-limit of the period", 0, 0
    return "", calls, (spent + spend) | (start << 128)


# ---------------------------------------------------------------------------------------
# Reads


@external
@view
def agent() -> address:
    """
    @notice The agent's key.
    @return The address.
    """
    return convert(self._core & _M160, address)


@external
@view
def frozen() -> bool:
    """
    @notice Whether the kill switch is on.
    @return True when frozen.
    """
    return self._core & (1 << 160) != 0


@external
@view
def expiresAt() -> uint256:
    """
    @notice After this time the agent can make no call.
    @return The time.
    """
    return self._core >> 192


@external
@view
def limits() -> (uint256, uint256, uint256, uint256, uint256, uint256, uint256):
    """
    @notice The call policies and counters.
    @return rateCount, rateInterval, callLimit, callsMade, gasLimit, windowStart, windowCalls.
    """
    c: uint256 = self._calls
    return ((c >> 176) & _M32, c >> 208, (c >> 48) & _M48, c & _M48, (self._core >> 161) & _M31,
            (c >> 96) & _M48, (c >> 144) & _M32)


@external
@view
def allowanceOf(token: address) -> Allowance:
    """
    @notice The limits on an asset and what was spent in its current period.
    @param token The ERC-20 token, or the zero address for the native coin.
    @return The allowance.
    """
    cap: uint256 = self._cap[token]
    used: uint256 = self._used[token]
    return Allowance(perTransaction=cap & _M96, perPeriod=(cap >> 96) & _M96, period=cap >> 192,
                     spent=used & _M128, periodStart=used >> 128)


@external
@view
def remaining(token: address) -> uint256:
    """
    @notice What the agent may still spend of an asset in the current period.
    @param token The ERC-20 token, or the zero address for the native coin.
    @return The amount.
    """
    cap: uint256 = self._cap[token]
    used: uint256 = self._used[token]
    spent: uint256 = used & _M128
    period: uint256 = cap >> 192
    if period != 0 and block.timestamp >= (used >> 128) + period:
        spent = 0
    per_period: uint256 = (cap >> 96) & _M96
    if spent >= per_period:
        return 0
    return per_period - spent
