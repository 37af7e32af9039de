# pragma version 0.4.3
"""
@title NeuroLedger payment settler (x402 `exact` payments, in batches, with receipts)
@custom:contract-name PaymentSettler
@license Apache-2.0
@notice Submits signed EIP-3009 `transferWithAuthorization` messages of any
        EIP-3009 token, up to 100 in one transaction, and keeps a receipt of each
        payment it settled: who paid whom how much, under which authorization.
        A facilitator settles the payments of many paid HTTP requests at once;
        the reputation registry accepts feedback only when a receipt shows the
        client paid the agent.
@dev One payment that the token refuses (used nonce, short balance, bad
     signature, expired) does not stop the others of its batch: it emits
     `PaymentFailed` and leaves no receipt. A receipt is one storage word: the
     payee in the high 160 bits, the value (saturated at 2**96 - 1) in the low 96.
@custom:security An admin-free contract that never holds funds: no owner, no
                 guardian and no pause. The token moves money only as its payer
                 signed; anyone may submit. A receipt names its token: whoever
                 reads receipts must accept only the token it trusts, since any
                 contract can pose as a token here.
"""


interface IEIP3009:
    def authorizationState(authorizer: address, nonce: bytes32) -> bool: view
    def balanceOf(owner: address) -> uint256: view


struct Payment:
    payer: address
    payee: address
    value: uint256
    validAfter: uint256
    validBefore: uint256
    nonce: bytes32
    v: uint8
    r: bytes32
    s: bytes32


# @dev A payment moved `value` of `token` from `payer` to `payee`.
event PaymentSettled:
    token: indexed(address)
    payer: indexed(address)
    payee: indexed(address)
    value: uint256
    nonce: bytes32


# @dev The token refused a payment; nothing moved and no receipt was kept.
event PaymentFailed:
    token: indexed(address)
    payer: indexed(address)
    nonce: bytes32


## @notice The most payments one `settle` call takes.
MAX_BATCH: public(constant(uint256)) = 100

_VALUE_MASK: constant(uint256) = 2**96 - 1
_TRANSFER: constant(Bytes[4]) = method_id(
    "transferWithAuthorization(address,address,uint256,uint256,uint256,bytes32,uint8,bytes32,bytes32)"
)

## @notice Receipts, by `keccak256(abi.encode(token, payer, nonce))`.
receipts: public(HashMap[bytes32, uint256])


@deploy
def __init__():
    pass


@external
def settle(token: address, payments: DynArray[Payment, MAX_BATCH]) -> uint256:
    """
    @notice Submit each payment's authorization to `token`; keep a receipt of each
            one that went through.
    @param token The EIP-3009 token the payments are in.
    @param payments The signed authorizations, at most `MAX_BATCH`.
    @return The number of payments settled (the others emitted `PaymentFailed`).
    """
    assert token.is_contract, "PaymentSettler: token is not a contract"
    settled: uint256 = 0
    for p: Payment in payments:
        ok: bool = raw_call(
            token,
            abi_encode(
                p.payer, p.payee, p.value, p.validAfter, p.validBefore, p.nonce,
                p.v, p.r, p.s, method_id=_TRANSFER,
            ),
            revert_on_failure=False,
        )
        if not ok:
            log PaymentFailed(token=token, payer=p.payer, nonce=p.nonce)
            continue
        key: bytes32 = keccak256(abi_encode(token, p.payer, p.nonce))
        self.receipts[key] = (convert(p.payee, uint256) << 96) | min(p.value, _VALUE_MASK)
        log PaymentSettled(token=token, payer=p.payer, payee=p.payee, value=p.value, nonce=p.nonce)
        settled += 1
    return settled


@view
@external
def settleable(token: address, payments: DynArray[Payment, MAX_BATCH]) -> DynArray[bool, MAX_BATCH]:
    """
    @notice For each payment, whether its nonce is unused and its payer holds its value
            (one read for a whole batch, so a facilitator spends no gas on payments
            that cannot go through). Signatures are not checked here.
    @param token The EIP-3009 token the payments are in.
    @param payments The authorizations, at most `MAX_BATCH`.
    @return One flag per payment, in order.
    """
    flags: DynArray[bool, MAX_BATCH] = []
    for p: Payment in payments:
        used: bool = staticcall IEIP3009(token).authorizationState(p.payer, p.nonce)
        held: uint256 = staticcall IEIP3009(token).balanceOf(p.payer)
        flags.append(not used and held >= p.value)
    return flags


@view
@external
def receipt(token: address, payer: address, nonce: bytes32) -> (address, uint256):
    """
    @notice The payee and value of a payment this contract settled; zero when none.
    @param token The token of the payment.
    @param payer Who paid.
    @param nonce The EIP-3009 nonce of the payer's authorization.
    @return The payee, and the value (saturated at 2**96 - 1).
    """
    word: uint256 = self.receipts[keccak256(abi_encode(token, payer, nonce))]
    return convert(convert(word >> 96, uint160), address), word & _VALUE_MASK
