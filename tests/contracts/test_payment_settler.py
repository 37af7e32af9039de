"""The payment settler: batches of EIP-3009 authorizations, one refusal never stops the others,
and a receipt for exactly each payment that moved money."""

from __future__ import annotations

import os
from typing import Any

import boa
import pytest
from eth_abi import encode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from tests.contracts.conftest import deploy
from tests.contracts.test_credits import args, authorization, sign

pytestmark = pytest.mark.usefixtures("fresh_env")

LIMIT = 1_000 * 10**6


def payment(token: Any, payer: LocalAccount, payee: str, value: int, **kw: Any) -> tuple:
    message = authorization(payer, payee, value, **kw)
    return (*args(message), *sign(token, payer, "TransferWithAuthorization", message))


def events(contract: Any, name: str) -> list[Any]:
    return [e for e in contract.get_logs() if type(e).__name__ == name]


@pytest.fixture
def token() -> Any:
    return deploy("Credits", LIMIT)


@pytest.fixture
def settler() -> Any:
    return deploy("PaymentSettler")


def funded(token: Any, amount: int = 100 * 10**6) -> LocalAccount:
    account: LocalAccount = Account.create()
    token.faucet(account.address, amount)
    return account


def test_a_batch_settles_each_payment_and_keeps_its_receipt(token: Any, settler: Any) -> None:
    payers = [funded(token) for _ in range(3)]
    shop = boa.env.generate_address()
    batch = [payment(token, p, shop, (i + 1) * 10**6) for i, p in enumerate(payers)]
    with boa.env.prank(boa.env.generate_address()):  # anyone may submit
        assert settler.settle(token.address, batch) == 3
    assert token.balanceOf(shop) == 6 * 10**6
    settled = events(settler, "PaymentSettled")
    assert [(e.payer, e.payee, e.value) for e in settled] == [
        (p.address, shop, (i + 1) * 10**6) for i, p in enumerate(payers)
    ]
    for i, (p, item) in enumerate(zip(payers, batch, strict=True)):
        assert settler.receipt(token.address, p.address, item[5]) == (shop, (i + 1) * 10**6)
        key = keccak(encode(["address", "address", "bytes32"], [token.address, p.address, item[5]]))
        assert settler.receipts(key) >> 96 == int(shop, 16)


def test_one_refused_payment_leaves_the_others_and_no_receipt(token: Any, settler: Any) -> None:
    rich, poor = funded(token), funded(token, 10**6)
    shop = boa.env.generate_address()
    good = payment(token, rich, shop, 5 * 10**6)
    short = payment(token, poor, shop, 5 * 10**6)  # holds 1, pays 5
    forged = list(payment(token, rich, shop, 10**6))
    forged[2] = 2 * 10**6  # a changed amount breaks the signature
    assert settler.settle(token.address, [short, good, tuple(forged)]) == 1
    assert token.balanceOf(shop) == 5 * 10**6
    assert [e.payer for e in events(settler, "PaymentFailed")] == [poor.address, rich.address]
    assert settler.receipt(token.address, poor.address, short[5]) == (boa.eval("empty(address)"), 0)
    # A replay of a settled payment is refused by the token, and its receipt stays as it was.
    assert settler.settle(token.address, [good]) == 0
    assert token.balanceOf(shop) == 5 * 10**6
    assert settler.receipt(token.address, rich.address, good[5]) == (shop, 5 * 10**6)


def test_bad_batches_revert(token: Any, settler: Any) -> None:
    payer = funded(token)
    item = payment(token, payer, boa.env.generate_address(), 10**6)
    with boa.reverts("PaymentSettler: token is not a contract"):
        settler.settle(boa.env.generate_address(), [item])
    with pytest.raises(Exception):  # noqa: B017 - the ABI decoder refuses 101 entries
        settler.settle(token.address, [item] * 101)
    assert settler.MAX_BATCH() == 100 and settler.settle(token.address, []) == 0


class SettlerMachine(RuleBasedStateMachine):
    """Random batches of good, replayed, forged, expired and unfunded payments against a mirror
    model: every payment moves money at most once, and a receipt exists exactly for those."""

    @initialize()
    def setup(self) -> None:
        self.token, self.settler = deploy("Credits", LIMIT), deploy("PaymentSettler")
        self.payers = [funded(self.token, 20 * 10**6) for _ in range(3)]
        self.shops = [boa.env.generate_address() for _ in range(2)]
        self.balances = {p.address: 20 * 10**6 for p in self.payers} | dict.fromkeys(self.shops, 0)
        self.receipts: dict[tuple[str, bytes], tuple[str, int]] = {}
        self.seen: list[tuple] = []

    @rule(data=st.data(), size=st.integers(0, 6))
    def settle(self, data: st.DataObject, size: int) -> None:
        batch = []
        for _ in range(size):
            kind = data.draw(st.sampled_from(["good", "replay", "forged", "expired"]))
            payer = data.draw(st.sampled_from(self.payers))
            shop = data.draw(st.sampled_from(self.shops))
            value = data.draw(st.integers(0, 8 * 10**6))
            if kind == "replay" and self.seen:
                item = data.draw(st.sampled_from(self.seen))
            elif kind == "expired":
                item = payment(self.token, payer, shop, value, before=1)  # long past
            else:
                item = payment(self.token, payer, shop, value, nonce=os.urandom(32))
                if kind == "forged":
                    item = (*item[:2], value + 1, *item[3:])
            batch.append(item)
            self.seen.append(item)
        settled = self.settler.settle(self.token.address, batch)
        count = 0
        for item in batch:
            payer, shop, value, _, before, nonce = item[:6]
            ok = ((payer, nonce) not in self.receipts and before > 1
                  and self._signed(item) and self.balances[payer] >= value)  # fmt: skip
            if ok:
                self.balances[payer] -= value
                self.balances[shop] += value
                self.receipts[(payer, nonce)] = (shop, value)
                count += 1
        assert settled == count

    def _signed(self, item: tuple) -> bool:
        # forged items carry a value one above the signed one; the mirror recomputes the hash
        payer = next(p for p in self.payers if p.address == item[0])
        message = dict(zip(["from", "to", "value", "validAfter", "validBefore", "nonce"],
                           item[:6], strict=True))  # fmt: skip
        return sign(self.token, payer, "TransferWithAuthorization", message) == tuple(item[6:])

    @invariant()
    def balances_and_receipts_match(self) -> None:
        if not hasattr(self, "token"):
            return
        for address, balance in self.balances.items():
            assert self.token.balanceOf(address) == balance
        for (payer, nonce), receipt in self.receipts.items():
            assert self.settler.receipt(self.token.address, payer, nonce) == receipt


SettlerMachine.TestCase.settings = settings(
    max_examples=25, stateful_step_count=8, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)  # fmt: skip
test_settler_machine = SettlerMachine.TestCase


def test_settleable_flags_used_nonces_and_short_balances(token: Any, settler: Any) -> None:
    rich, poor = funded(token), funded(token, 10**6)
    shop = boa.env.generate_address()
    good, short = payment(token, rich, shop, 5 * 10**6), payment(token, poor, shop, 5 * 10**6)
    used = payment(token, rich, shop, 10**6)
    settler.settle(token.address, [used])
    assert settler.settleable(token.address, [good, short, used]) == [True, False, False]
