"""Credits: the market's payment token, and EIP-3009 authorizations to pay with it.

:class:`Credits` reads balances, sends, uses the development chain's faucet and signs
EIP-3009 ``TransferWithAuthorization`` / ``ReceiveWithAuthorization`` messages, the
signature an x402 client pays with. It works with any EIP-3009 token (the suite's
``Credits`` by default, USDC on a public chain): the token's EIP-712 domain is read from
the chain (EIP-5267 ``eip712Domain()``), never assumed.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from eth_account import Account
from eth_utils.address import is_address, to_checksum_address
from web3.contract import Contract

from neuroledger.chain import Chain, Receipt, contract_call, load_artifact
from neuroledger.errors import PaymentError
from neuroledger.identity import Keystore

__all__ = ["AUTHORIZATION_TYPES", "Authorization", "Credits", "format_amount", "parse_amount"]

_FIELDS = [
    {"name": "from", "type": "address"},
    {"name": "to", "type": "address"},
    {"name": "value", "type": "uint256"},
    {"name": "validAfter", "type": "uint256"},
    {"name": "validBefore", "type": "uint256"},
    {"name": "nonce", "type": "bytes32"},
]
#: The EIP-3009 message types: "transfer" may be submitted by anyone (a facilitator),
#: "receive" only by the receiver (an escrow contract), so nobody can front-run it.
AUTHORIZATION_TYPES = {
    "transfer": "TransferWithAuthorization",
    "receive": "ReceiveWithAuthorization",
}
#: The longest an authorization may stay valid: long enough for a slow network, short
#: enough that a leaked one is soon worthless.
MAX_VALIDITY = 24 * 3600


def parse_amount(text: str, decimals: int) -> int:
    """Atomic units of a decimal amount (``"12.5"`` with 6 decimals -> 12500000)."""
    if len(text) > 100:
        raise PaymentError(f"an amount of {len(text)} characters is not an amount; write e.g. 12.5")
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise PaymentError(f"{text!r} is not an amount; write e.g. 12.5") from None
    if not value.is_finite() or value < 0:
        raise PaymentError(f"{text!r} is not an amount; write a number of 0 or more, e.g. 12.5")
    atomic = value.scaleb(decimals)
    if atomic != atomic.to_integral_value():
        raise PaymentError(f"{text} has more than the token's {decimals} decimal places")
    if atomic >= 2**256:
        raise PaymentError(f"{text} is more than any token holds; check the amount")
    return int(atomic)


def format_amount(atomic: int, decimals: int) -> str:
    """A decimal string of ``atomic`` units (12500000 with 6 decimals -> ``"12.5"``)."""
    text = str(Decimal(atomic).scaleb(-decimals).normalize())
    return format(Decimal(text), "f")


@dataclass(frozen=True)
class Authorization:
    """One signed EIP-3009 authorization: ``payer`` lets ``to`` receive ``value``."""

    kind: str  # "transfer" or "receive"
    payer: str
    to: str
    value: int
    valid_after: int
    valid_before: int
    nonce: bytes
    signature: bytes

    def args(self) -> list[Any]:
        """The arguments of ``transferWithAuthorization`` / ``receiveWithAuthorization``."""
        v, r, s = self.signature[64], self.signature[:32], self.signature[32:64]
        return [self.payer, self.to, self.value, self.valid_after, self.valid_before,
                self.nonce, v if v >= 27 else v + 27, r, s]  # fmt: skip

    @classmethod
    def from_x402(cls, payload: Any) -> Authorization:
        """The authorization in an ``exact`` scheme EVM payload (a ``transfer``), each field
        checked for type, size and encoding; a bad field raises :class:`PaymentError`."""
        if not isinstance(payload, dict) or not isinstance(payload.get("authorization"), dict):
            raise PaymentError("the payment payload has no `authorization` object")
        auth = payload["authorization"]
        return cls(
            kind="transfer",
            payer=_address(auth.get("from"), "from"),
            to=_address(auth.get("to"), "to"),
            value=_uint(auth.get("value"), "value"),
            valid_after=_uint(auth.get("validAfter"), "validAfter"),
            valid_before=_uint(auth.get("validBefore"), "validBefore"),
            nonce=_hex(auth.get("nonce"), "nonce", 32),
            signature=_hex(payload.get("signature"), "signature", 65),
        )

    def to_x402(self) -> dict[str, Any]:
        """The ``exact`` scheme's EVM payload: numbers as decimal strings."""
        return {
            "signature": "0x" + self.signature.hex(),
            "authorization": {
                "from": self.payer, "to": self.to, "value": str(self.value),
                "validAfter": str(self.valid_after), "validBefore": str(self.valid_before),
                "nonce": "0x" + self.nonce.hex(),
            },
        }  # fmt: skip


def _address(value: Any, name: str) -> str:
    if not isinstance(value, str) or len(value) != 42 or not is_address(value):
        raise PaymentError(f"authorization field `{name}` is not an address (0x and 40 hex digits)")
    return to_checksum_address(value)


def _uint(value: Any, name: str) -> int:
    if not isinstance(value, str) or not value.isdigit() or len(value) > 78 or not value.isascii():
        raise PaymentError(f"authorization field `{name}` is not a decimal string of a uint256")
    number = int(value)
    if number >= 2**256:
        raise PaymentError(f"authorization field `{name}` is larger than a uint256")
    return number


def _hex(value: Any, name: str, size: int) -> bytes:
    if not isinstance(value, str) or len(value) != 2 + 2 * size or not value.startswith("0x"):
        raise PaymentError(f"authorization field `{name}` is not 0x and {2 * size} hex digits")
    try:
        return bytes.fromhex(value[2:])
    except ValueError:
        raise PaymentError(
            f"authorization field `{name}` is not 0x and {2 * size} hex digits"
        ) from None


class Credits:
    """Balances, transfers and EIP-3009 authorizations of one EIP-3009 token."""

    def __init__(self, chain: Chain, keystore: Keystore, *, token: str | None = None) -> None:
        self.chain = chain
        self.keystore = keystore
        if token is None:
            self.contract: Contract = chain.contract("Credits")
        else:
            if not is_address(token):
                raise PaymentError(f"{token!r} is not a token address; give 0x and 40 hex digits")
            self.contract = chain.w3.eth.contract(
                address=to_checksum_address(token), abi=load_artifact("Credits").abi
            )
        self.address = to_checksum_address(self.contract.address)
        self._domain: dict[str, Any] | None = None
        self._decimals: int | None = None

    # -- reads -------------------------------------------------------------------------
    @property
    def decimals(self) -> int:
        if self._decimals is None:
            self._decimals = int(self.contract.functions.decimals().call())
        return self._decimals

    def domain(self) -> dict[str, Any]:
        """The token's EIP-712 domain, read from the chain (EIP-5267)."""
        if self._domain is None:
            fields, name, version, chain_id, contract, _, _ = (
                self.contract.functions.eip712Domain().call()
            )
            if bytes(fields) != b"\x0f" or int(chain_id) != self.chain.chain_id:
                raise PaymentError(
                    f"token {self.address} reports an EIP-712 domain for chain {chain_id} "
                    f"(fields {bytes(fields).hex()}); it is not an EIP-3009 token of this chain"
                )
            self._domain = {"name": name, "version": version, "chainId": int(chain_id),
                            "verifyingContract": to_checksum_address(contract)}  # fmt: skip
        return dict(self._domain)

    def address_of(self, who: str) -> str:
        """An address, or the wallet of local identity ``who``: its current owner key, the key
        that signs its payments."""
        if is_address(who):
            return to_checksum_address(who)
        return to_checksum_address(self.keystore.get(who).owner)

    def balance(self, who: str) -> int:
        """Atomic units held by ``who`` (an identity name or an address)."""
        return int(self.contract.functions.balanceOf(self.address_of(who)).call())

    def used(self, payer: str, nonce: bytes) -> bool:
        """Whether ``payer``'s authorization ``nonce`` was used or cancelled."""
        return bool(self.contract.functions.authorizationState(payer, nonce).call())

    # -- writes ------------------------------------------------------------------------
    def faucet(self, to: str, amount: int, *, by: str) -> Receipt:
        """Mint ``amount`` to ``to`` from the development chain's faucet (``by`` pays gas)."""
        limit = int(self.contract.functions.faucetLimit().call())
        if limit == 0:
            raise PaymentError(
                f"token {self.address} has no faucet (a suite on a real network); "
                "get credits from their owner, or pay with another EIP-3009 token"
            )
        if amount > limit:
            raise PaymentError(
                f"the faucet gives at most {format_amount(limit, self.decimals)} per call; "
                "ask for less, or call it again"
            )
        return self._send(by, "faucet", [self.address_of(to), amount], f"faucet to {to}")

    def send(self, to: str, amount: int, *, by: str) -> Receipt:
        """Transfer ``amount`` from identity ``by`` to ``to``."""
        self._require_balance(by, amount)
        return self._send(by, "transfer", [self.address_of(to), amount], f"credits to {to}")

    def authorize(self, to: str, amount: int, *, by: str, kind: str = "transfer",
                  valid_for: int = 300, nonce: bytes | None = None) -> Authorization:  # fmt: skip
        """Sign an EIP-3009 authorization of identity ``by`` paying ``amount`` to ``to``,
        valid from now for ``valid_for`` seconds (chain time)."""
        if kind not in AUTHORIZATION_TYPES:
            raise PaymentError(f"unknown authorization kind {kind!r}; use transfer or receive")
        if not 0 < valid_for <= MAX_VALIDITY:
            raise PaymentError(f"validity {valid_for} s is outside 1 s to {MAX_VALIDITY} s")
        account = self.keystore.owner_account(by)
        now = int(self.chain.w3.eth.get_block("latest")["timestamp"])
        now = max(now, int(time.time()))
        after, before = now - 60, now + valid_for
        nonce = nonce if nonce is not None else os.urandom(32)
        receiver = self.address_of(to)
        message = {"from": account.address, "to": receiver, "value": int(amount),
                   "validAfter": after, "validBefore": before, "nonce": nonce}  # fmt: skip
        signed = Account.sign_typed_data(
            account.key, self.domain(), {AUTHORIZATION_TYPES[kind]: _FIELDS}, message
        )
        return Authorization(kind=kind, payer=str(account.address), to=receiver,
                             value=int(amount), valid_after=after, valid_before=before,
                             nonce=nonce, signature=bytes(signed.signature))  # fmt: skip

    def settle(self, authorization: Authorization, *, by: str) -> Receipt:
        """Submit a ``transfer`` authorization from identity ``by`` (a facilitator)."""
        if authorization.kind != "transfer":
            raise PaymentError("only its receiver submits a receive authorization")
        self._require_balance(authorization.payer, authorization.value)
        return self._send(by, "transferWithAuthorization", authorization.args(),
                          f"payment of {authorization.payer}")  # fmt: skip

    def _require_balance(self, who: str, amount: int) -> None:
        held = self.balance(who)
        if held < amount:
            raise PaymentError(
                f"{who} holds {format_amount(held, self.decimals)} credits, less than "
                f"{format_amount(amount, self.decimals)}; fund it first (`neuroledger credits "
                "faucet` on the embedded chain)"
            )

    def _send(self, by: str, fn: str, args: list[Any], label: str) -> Receipt:
        account = self.keystore.owner_account(by)
        call = contract_call(self.contract, fn, args, label=label)
        return self.chain.sender(account).send(call)
