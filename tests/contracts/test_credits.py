"""The Credits token: ERC-20 with EIP-2612 permit and EIP-3009 transfers with authorization.

Signatures are made with eth-account's EIP-712 signer from the full typed-data message,
as a wallet or an x402 client makes them, not with NeuroLedger's own helpers.
"""

from __future__ import annotations

import os
from typing import Any

import boa
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from tests.contracts.conftest import deploy

pytestmark = pytest.mark.usefixtures("fresh_env")

LIMIT = 1_000 * 10**6
#: The order of secp256k1, to make the high-s twin of a signature.
SECP_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
AUTH_FIELDS = [
    {"name": "from", "type": "address"},
    {"name": "to", "type": "address"},
    {"name": "value", "type": "uint256"},
    {"name": "validAfter", "type": "uint256"},
    {"name": "validBefore", "type": "uint256"},
    {"name": "nonce", "type": "bytes32"},
]


def domain(token: Any) -> dict[str, Any]:
    _, name, version, chain_id, contract, _, _ = token.eip712Domain()
    return {"name": name, "version": version, "chainId": chain_id, "verifyingContract": contract}


def sign(token: Any, account: LocalAccount, primary: str, message: dict[str, Any]) -> tuple:
    fields = (
        [{"name": "authorizer", "type": "address"}, {"name": "nonce", "type": "bytes32"}]
        if primary == "CancelAuthorization"
        else AUTH_FIELDS
    )
    signed = account.sign_typed_data(domain(token), {primary: fields}, message)
    return signed.v, signed.r.to_bytes(32, "big"), signed.s.to_bytes(32, "big")


def now() -> int:
    return int(boa.env.evm.patch.timestamp)


def authorization(payer: LocalAccount, to: str, value: int, *, after: int | None = None,
                  before: int | None = None, nonce: bytes | None = None) -> dict[str, Any]:  # fmt: skip
    return {
        "from": payer.address,
        "to": to,
        "value": value,
        "validAfter": now() - 1 if after is None else after,
        "validBefore": now() + 300 if before is None else before,
        "nonce": os.urandom(32) if nonce is None else nonce,
    }


def args(message: dict[str, Any]) -> tuple:
    return (message["from"], message["to"], message["value"], message["validAfter"],
            message["validBefore"], message["nonce"])  # fmt: skip


@pytest.fixture
def token() -> Any:
    return deploy("Credits", LIMIT)


@pytest.fixture
def payer(token: Any) -> LocalAccount:
    account: LocalAccount = Account.create()
    token.faucet(account.address, 100 * 10**6)
    return account


def test_metadata_and_domain(token: Any) -> None:
    assert (token.name(), token.symbol(), token.decimals(), token.version()) == (
        "NeuroLedger Credits", "NLC", 6, "1")  # fmt: skip
    fields, name, version, _, contract, salt, extensions = token.eip712Domain()
    assert fields == b"\x0f" and (name, version) == ("NeuroLedger Credits", "1")
    assert contract == token.address and salt == b"\0" * 32 and extensions == []


def test_a_signed_authorization_moves_credits_once(token: Any, payer: LocalAccount) -> None:
    shop, facilitator = boa.env.generate_address(), boa.env.generate_address()
    message = authorization(payer, shop, 10**6)
    with boa.env.prank(facilitator):  # anyone may submit a transfer authorization
        token.transferWithAuthorization(
            *args(message), *sign(token, payer, "TransferWithAuthorization", message)
        )
    used = [e for e in token.get_logs() if type(e).__name__ == "AuthorizationUsed"]
    assert token.balanceOf(shop) == 10**6 and token.balanceOf(payer.address) == 99 * 10**6
    assert token.authorizationState(payer.address, message["nonce"])
    assert [(e.authorizer, e.nonce) for e in used] == [(payer.address, message["nonce"])]
    with boa.reverts("Credits: authorization is used or canceled"):
        token.transferWithAuthorization(
            *args(message), *sign(token, payer, "TransferWithAuthorization", message)
        )
    assert token.balanceOf(shop) == 10**6


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"validAfter": "now"}, "Credits: authorization is not yet valid"),  # strictly after
        ({"validBefore": "now"}, "Credits: authorization is expired"),  # strictly before
        ({"value": 2 * 10**6}, "Credits: invalid signature"),  # a changed amount
        ({"to": "other"}, "Credits: invalid signature"),  # another receiver
    ],
)
def test_the_window_and_every_signed_field_are_checked(
    token: Any, payer: LocalAccount, change: dict[str, Any], reason: str
) -> None:
    shop = boa.env.generate_address()
    message = authorization(payer, shop, 10**6)
    signed = dict(message)
    for key, value in change.items():
        if value == "now":
            signed[key] = message[key] = now()
        elif value == "other":
            message[key] = boa.env.generate_address()
        else:
            message[key] = value
    with boa.reverts(reason):
        token.transferWithAuthorization(
            *args(message), *sign(token, payer, "TransferWithAuthorization", signed)
        )
    assert not token.authorizationState(payer.address, message["nonce"])


def test_another_signer_or_a_high_s_signature_is_refused(token: Any, payer: LocalAccount) -> None:
    shop = boa.env.generate_address()
    message = authorization(payer, shop, 10**6)
    with boa.reverts("Credits: invalid signature"):
        token.transferWithAuthorization(
            *args(message), *sign(token, Account.create(), "TransferWithAuthorization", message)
        )
    v, r, s = sign(token, payer, "TransferWithAuthorization", message)
    high_s = (SECP_N - int.from_bytes(s, "big")).to_bytes(32, "big")
    with boa.reverts("ecdsa: invalid signature `s` value"):
        token.transferWithAuthorization(*args(message), 55 - v, r, high_s)


def test_an_unfunded_payer_moves_nothing_and_keeps_its_nonce(token: Any) -> None:
    poor: LocalAccount = Account.create()
    message = authorization(poor, boa.env.generate_address(), 1)
    with boa.reverts("erc20: transfer amount exceeds balance"):
        token.transferWithAuthorization(
            *args(message), *sign(token, poor, "TransferWithAuthorization", message)
        )
    assert not token.authorizationState(poor.address, message["nonce"])


def test_receive_with_authorization_is_for_the_receiver_only(
    token: Any, payer: LocalAccount
) -> None:
    escrow, thief = boa.env.generate_address(), boa.env.generate_address()
    message = authorization(payer, escrow, 5 * 10**6)
    signature = sign(token, payer, "ReceiveWithAuthorization", message)
    with (
        boa.env.prank(thief),
        boa.reverts("Credits: only the receiver may submit this authorization"),
    ):
        token.receiveWithAuthorization(*args(message), *signature)
    with boa.env.prank(escrow), boa.reverts("Credits: invalid signature"):  # a transfer signature
        token.receiveWithAuthorization(
            *args(message), *sign(token, payer, "TransferWithAuthorization", message)
        )
    with boa.env.prank(escrow):
        token.receiveWithAuthorization(*args(message), *signature)
    assert token.balanceOf(escrow) == 5 * 10**6
    # ... and a receive signature is no transfer authorization for a front-runner.
    other = authorization(payer, escrow, 1)
    with boa.env.prank(thief), boa.reverts("Credits: invalid signature"):
        token.transferWithAuthorization(
            *args(other), *sign(token, payer, "ReceiveWithAuthorization", other)
        )


def test_a_cancelled_authorization_cannot_be_used(token: Any, payer: LocalAccount) -> None:
    message = authorization(payer, boa.env.generate_address(), 10**6)
    cancel = {"authorizer": payer.address, "nonce": message["nonce"]}
    with boa.reverts("Credits: invalid signature"):
        token.cancelAuthorization(
            payer.address,
            message["nonce"],
            *sign(token, Account.create(), "CancelAuthorization", cancel),
        )
    token.cancelAuthorization(
        payer.address, message["nonce"], *sign(token, payer, "CancelAuthorization", cancel)
    )
    canceled = [e for e in token.get_logs() if type(e).__name__ == "AuthorizationCanceled"]
    assert [(e.authorizer, e.nonce) for e in canceled] == [(payer.address, message["nonce"])]
    with boa.reverts("Credits: authorization is used or canceled"):
        token.transferWithAuthorization(
            *args(message), *sign(token, payer, "TransferWithAuthorization", message)
        )
    with boa.reverts("Credits: authorization is used or canceled"):
        token.cancelAuthorization(
            payer.address, message["nonce"], *sign(token, payer, "CancelAuthorization", cancel)
        )


def test_permit_sets_an_allowance_from_a_signature(token: Any, payer: LocalAccount) -> None:
    spender = boa.env.generate_address()
    message = {
        "owner": payer.address,
        "spender": spender,
        "value": 7,
        "nonce": 0,
        "deadline": now() + 60,
    }
    fields = [
        {"name": k, "type": "address" if k in ("owner", "spender") else "uint256"} for k in message
    ]
    signed = payer.sign_typed_data(domain(token), {"Permit": fields}, message)
    token.permit(payer.address, spender, 7, message["deadline"], signed.v,
                 signed.r.to_bytes(32, "big"), signed.s.to_bytes(32, "big"))  # fmt: skip
    assert token.allowance(payer.address, spender) == 7 and token.nonces(payer.address) == 1


def test_the_faucet_is_bounded_and_absent_on_a_real_network(token: Any) -> None:
    someone = boa.env.generate_address()
    with boa.reverts("Credits: more than the faucet's limit per call"):
        token.faucet(someone, LIMIT + 1)
    token.faucet(someone, LIMIT)
    assert token.balanceOf(someone) == LIMIT == token.totalSupply()
    production = deploy("Credits", 0)
    with boa.reverts("Credits: this token has no faucet"):
        production.faucet(someone, 1)


def test_the_deployer_owns_and_mints_and_nobody_else(token: Any) -> None:
    deployer, stranger = boa.env.eoa, boa.env.generate_address()
    assert token.owner() == deployer and token.is_minter(deployer)
    token.mint(stranger, 5)
    with boa.env.prank(stranger), boa.reverts("erc20: access is denied"):
        token.mint(stranger, 5)
    assert token.balanceOf(stranger) == 5


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(balance=st.integers(0, LIMIT), value=st.integers(0, 2 * LIMIT))
def test_an_authorization_moves_exactly_its_value_or_nothing(balance: int, value: int) -> None:
    with boa.swap_env(boa.Env()):
        token = deploy("Credits", LIMIT)
        payer: LocalAccount = Account.create()
        shop = boa.env.generate_address()
        token.faucet(payer.address, balance)
        message = authorization(payer, shop, value)
        signature = sign(token, payer, "TransferWithAuthorization", message)
        if value > balance:
            with boa.reverts("erc20: transfer amount exceeds balance"):
                token.transferWithAuthorization(*args(message), *signature)
            assert token.balanceOf(payer.address) == balance and token.balanceOf(shop) == 0
        else:
            token.transferWithAuthorization(*args(message), *signature)
            assert (
                token.balanceOf(payer.address) == balance - value and token.balanceOf(shop) == value
            )
        assert token.totalSupply() == balance


class CreditsMachine(RuleBasedStateMachine):
    """Random faucets, transfers, authorizations (fresh, replayed, cancelled, expired) and time,
    against a mirror of balances and used nonces: credits are never created or lost by a
    transfer, and each authorization moves money at most once."""

    @initialize()
    def setup(self) -> None:
        self.env = boa.Env()
        with boa.swap_env(self.env):
            self.token = deploy("Credits", LIMIT)
        self.accounts: list[LocalAccount] = [Account.create() for _ in range(3)]
        with boa.swap_env(self.env):  # funded from the start, so that payments go through
            for account in self.accounts:
                self.token.faucet(account.address, LIMIT)
        self.balances = {a.address: LIMIT for a in self.accounts}
        self.used: set[tuple[str, bytes]] = set()
        self.signed: list[tuple[dict[str, Any], tuple, str]] = []
        self.outcomes: set[bool] = set()

    @rule(who=st.integers(0, 2), amount=st.integers(0, LIMIT))
    def faucet(self, who: int, amount: int) -> None:
        address = self.accounts[who].address
        with boa.swap_env(self.env):
            self.token.faucet(address, amount)
        self.balances[address] += amount

    @rule(payer=st.integers(0, 2), to=st.integers(0, 2), amount=st.integers(0, LIMIT // 2),
          window=st.sampled_from(["open", "early", "late"]), receive=st.booleans())  # fmt: skip
    def authorize(self, payer: int, to: int, amount: int, window: str, receive: bool) -> None:
        account, receiver = self.accounts[payer], self.accounts[to].address
        with boa.swap_env(self.env):
            t = now()
            after, before = {"open": (t - 1, t + 600), "early": (t + 60, t + 600),
                             "late": (t - 600, t)}[window]  # fmt: skip
            message = authorization(account, receiver, amount, after=after, before=before)
            kind = "ReceiveWithAuthorization" if receive else "TransferWithAuthorization"
            signature = sign(self.token, account, kind, message)
            self.signed.append((message, signature, kind))
            ok = window == "open" and self.balances[account.address] >= amount
            if receive:
                with boa.env.prank(receiver):
                    self._submit(self.token.receiveWithAuthorization, message, signature, ok)
            else:
                self._submit(self.token.transferWithAuthorization, message, signature, ok)

    def _submit(self, function: Any, message: dict[str, Any], signature: tuple, ok: bool) -> None:
        self.outcomes.add(ok)
        if ok:
            function(*args(message), *signature)
            self.balances[message["from"]] -= message["value"]
            self.balances[message["to"]] += message["value"]
            self.used.add((message["from"], message["nonce"]))
        else:
            with boa.reverts():
                function(*args(message), *signature)

    @rule(data=st.data())
    def replay_or_cancel(self, data: st.DataObject) -> None:
        if not self.signed:
            return
        message, signature, kind = data.draw(st.sampled_from(self.signed))
        payer = next(a for a in self.accounts if a.address == message["from"])
        key = (message["from"], message["nonce"])
        with boa.swap_env(self.env):
            if data.draw(st.booleans()):
                # Submitted again as a transfer: it goes through only if it is a transfer
                # authorization, unused, inside its window now, and the payer can pay.
                ok = (kind == "TransferWithAuthorization" and key not in self.used
                      and message["validAfter"] < now() < message["validBefore"]
                      and self.balances[message["from"]] >= message["value"])  # fmt: skip
                self._submit(self.token.transferWithAuthorization, message, signature, ok)
            elif key in self.used:
                cancel = {"authorizer": payer.address, "nonce": message["nonce"]}
                with boa.reverts("Credits: authorization is used or canceled"):
                    self.token.cancelAuthorization(payer.address, message["nonce"],
                                                   *sign(self.token, payer, "CancelAuthorization", cancel))  # fmt: skip
            else:
                cancel = {"authorizer": payer.address, "nonce": message["nonce"]}
                self.token.cancelAuthorization(payer.address, message["nonce"],
                                               *sign(self.token, payer, "CancelAuthorization", cancel))  # fmt: skip
                self.used.add(key)

    @rule(seconds=st.integers(1, 900))
    def time_passes(self, seconds: int) -> None:
        with boa.swap_env(self.env):
            boa.env.time_travel(seconds=seconds)

    @invariant()
    def mirror_holds(self) -> None:
        if not hasattr(self, "token"):
            return
        with boa.swap_env(self.env):
            for address, balance in self.balances.items():
                assert self.token.balanceOf(address) == balance
            assert self.token.totalSupply() == sum(self.balances.values())
            for message, _, _ in self.signed:
                key = (message["from"], message["nonce"])
                assert self.token.authorizationState(*key) == (key in self.used)


def test_the_credits_machine_both_pays_and_refuses() -> None:
    """The machine is only worth its invariants if its runs settle payments and refuse some."""
    seen: set[bool] = set()

    class Counting(CreditsMachine):
        def teardown(self) -> None:
            seen.update(getattr(self, "outcomes", set()))

    run = Counting.TestCase
    run.settings = settings(max_examples=10, stateful_step_count=15, deadline=None, derandomize=True,
                            suppress_health_check=list(HealthCheck))  # fmt: skip
    run("runTest").runTest()
    assert seen == {True, False}


TestCreditsMachine = CreditsMachine.TestCase
TestCreditsMachine.settings = settings(max_examples=15, stateful_step_count=20, deadline=None,
                                       suppress_health_check=list(HealthCheck))  # fmt: skip
