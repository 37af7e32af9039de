# pragma version 0.4.3
"""
@title NeuroLedger credits (the market's payment token)
@custom:contract-name Credits
@license Apache-2.0
@notice An ERC-20 token with 6 decimals, EIP-2612 `permit` and EIP-3009
        transfers with authorization, so that an x402 client pays with one
        signature and a facilitator (or an escrow, with
        `receiveWithAuthorization`) moves the money. It is a unit of account
        for the market, not an investment: the market's contracts take their
        payment token as a parameter, and on a public chain any EIP-3009 token
        (USDC, for example) takes its place.
@dev The ERC-20 core, `permit`, the EIP-712 domain (EIP-5267 `eip712Domain()`)
     and the minter role are snekmate's `erc20` module. EIP-3009 is written
     here: an authorization is identified by its signer and a random 32-byte
     nonce, is valid strictly after `validAfter` and strictly before
     `validBefore`, and is used or cancelled at most once.
@custom:security There is no pause: a paused token would block every exit of
                 every contract that holds it. The owner (the deployer) may
                 mint and name minters, as snekmate's `erc20` allows. A suite on
                 a development chain is deployed with a faucet: anyone may mint
                 up to `faucetLimit` per call, which is the point of a
                 development chain; a suite on a real network is deployed with
                 `faucetLimit` 0, and the faucet then refuses every call.
"""


from snekmate.auth import ownable
from snekmate.tokens import erc20
from snekmate.utils import ecdsa

initializes: ownable
initializes: erc20[ownable := ownable]

exports: erc20.__interface__


# @dev The EIP-712 domain of `permit` and of the EIP-3009 authorizations.
_NAME: constant(String[25]) = "NeuroLedger Credits"
_SYMBOL: constant(String[5]) = "NLC"
_DECIMALS: constant(uint8) = 6
_VERSION: constant(String[20]) = "1"

# @dev The EIP-3009 type hashes.
_TRANSFER_TYPE_HASH: constant(bytes32) = keccak256(
    "TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
)
_RECEIVE_TYPE_HASH: constant(bytes32) = keccak256(
    "ReceiveWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
)
_CANCEL_TYPE_HASH: constant(bytes32) = keccak256("CancelAuthorization(address authorizer,bytes32 nonce)")


# @dev The most one faucet call mints (0: no faucet).
faucetLimit: public(immutable(uint256))

# @dev Whether an authorizer's nonce has been used or cancelled (EIP-3009).
authorizationState: public(HashMap[address, HashMap[bytes32, bool]])


# @dev Emitted when an authorization is used: its signer and nonce.
event AuthorizationUsed:
    authorizer: indexed(address)
    nonce: indexed(bytes32)


# @dev Emitted when an authorization is cancelled before use: its signer and nonce.
event AuthorizationCanceled:
    authorizer: indexed(address)
    nonce: indexed(bytes32)


@deploy
def __init__(faucet_limit: uint256):
    """
    @notice Deploy the token; the deployer is its owner and first minter.
    @param faucet_limit The most one `faucet` call mints, in atomic units (0: no faucet).
    """
    ownable.__init__()
    erc20.__init__(_NAME, _SYMBOL, _DECIMALS, _NAME, _VERSION)
    faucetLimit = faucet_limit


@external
@view
def version() -> String[20]:
    """
    @notice The version of the EIP-712 domain (as USDC's `version()`).
    @return The version string.
    """
    return _VERSION


@external
def faucet(to: address, amount: uint256):
    """
    @notice Mint `amount` to `to`, at most `faucetLimit` per call.
    @dev Only a development chain's suite has a faucet (see `@custom:security`).
    @param to The receiver.
    @param amount The amount, in atomic units.
    """
    assert faucetLimit != 0, "Credits: this token has no faucet"
    assert amount <= faucetLimit, "Credits: more than the faucet's limit per call"
    erc20._mint(to, amount)


@external
def transferWithAuthorization(
    payer: address,
    to: address,
    amount: uint256,
    valid_after: uint256,
    valid_before: uint256,
    nonce: bytes32,
    v: uint8,
    r: bytes32,
    s: bytes32,
):
    """
    @notice Move `amount` from `payer` to `to` with `payer`'s EIP-3009 authorization.
    @dev Anyone may submit the authorization (a facilitator usually does).
    @param payer The signer, whose credits move.
    @param to The receiver named in the authorization.
    @param amount The amount named in the authorization.
    @param valid_after The authorization is valid strictly after this time.
    @param valid_before The authorization is valid strictly before this time.
    @param nonce The authorization's unique 32-byte nonce.
    @param v The signature's `v`.
    @param r The signature's `r`.
    @param s The signature's `s`.
    """
    self._use(_TRANSFER_TYPE_HASH, payer, to, amount, valid_after, valid_before, nonce, v, r, s)
    erc20._transfer(payer, to, amount)


@external
def receiveWithAuthorization(
    payer: address,
    to: address,
    amount: uint256,
    valid_after: uint256,
    valid_before: uint256,
    nonce: bytes32,
    v: uint8,
    r: bytes32,
    s: bytes32,
):
    """
    @notice As `transferWithAuthorization`, but only the receiver may submit it, so a
            contract that receives (an escrow) cannot be front-run.
    @param payer The signer, whose credits move.
    @param to The receiver, which must be the caller.
    @param amount The amount named in the authorization.
    @param valid_after The authorization is valid strictly after this time.
    @param valid_before The authorization is valid strictly before this time.
    @param nonce The authorization's unique 32-byte nonce.
    @param v The signature's `v`.
    @param r The signature's `r`.
    @param s The signature's `s`.
    """
    assert to == msg.sender, "Credits: only the receiver may submit this authorization"
    self._use(_RECEIVE_TYPE_HASH, payer, to, amount, valid_after, valid_before, nonce, v, r, s)
    erc20._transfer(payer, to, amount)


@external
def cancelAuthorization(authorizer: address, nonce: bytes32, v: uint8, r: bytes32, s: bytes32):
    """
    @notice Cancel an authorization that has not been used, with its signer's signature.
    @param authorizer The signer of the authorization.
    @param nonce Its nonce.
    @param v The cancellation signature's `v`.
    @param r The cancellation signature's `r`.
    @param s The cancellation signature's `s`.
    """
    assert not self.authorizationState[authorizer][nonce], "Credits: authorization is used or canceled"
    digest: bytes32 = erc20.eip712_domain_separator._hash_typed_data_v4(
        keccak256(abi_encode(_CANCEL_TYPE_HASH, authorizer, nonce))
    )
    assert self._signer(digest, v, r, s) == authorizer, "Credits: invalid signature"
    self.authorizationState[authorizer][nonce] = True
    log AuthorizationCanceled(authorizer=authorizer, nonce=nonce)


@internal
def _use(
    type_hash: bytes32,
    payer: address,
    to: address,
    amount: uint256,
    valid_after: uint256,
    valid_before: uint256,
    nonce: bytes32,
    v: uint8,
    r: bytes32,
    s: bytes32,
):
    assert block.timestamp > valid_after, "Credits: authorization is not yet valid"
    assert block.timestamp < valid_before, "Credits: authorization is expired"
    assert not self.authorizationState[payer][nonce], "Credits: authorization is used or canceled"
    digest: bytes32 = erc20.eip712_domain_separator._hash_typed_data_v4(
        keccak256(abi_encode(type_hash, payer, to, amount, valid_after, valid_before, nonce))
    )
    assert self._signer(digest, v, r, s) == payer, "Credits: invalid signature"
    self.authorizationState[payer][nonce] = True
    log AuthorizationUsed(authorizer=payer, nonce=nonce)


@internal
@pure
def _signer(digest: bytes32, v: uint8, r: bytes32, s: bytes32) -> address:
    return ecdsa._recover_vrs(digest, convert(v, uint256), convert(r, uint256), convert(s, uint256))
