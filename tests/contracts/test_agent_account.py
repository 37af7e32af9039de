"""The agent account: an AI agent's spending held inside its owner's policy on chain (per-call
and per-period caps, allowlists of functions and recipients, expiry, rate and call limits, a
kill switch), with every refusal an event and the owner's withdrawal always open."""

from __future__ import annotations

import boa
import pytest
from eth_abi.abi import encode
from eth_utils.crypto import keccak
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from tests.contracts.conftest import deploy

pytestmark = pytest.mark.usefixtures("fresh_env")

DAY = 86400
CREDIT = 10**6
TRANSFER, APPROVE = bytes.fromhex("a9059cbb"), bytes.fromhex("095ea7b3")


def transfer(to: str, amount: int) -> bytes:
    return TRANSFER + encode(["address", "uint256"], [to, amount])


def approve(to: str, amount: int) -> bytes:
    return APPROVE + encode(["address", "uint256"], [to, amount])


class Wallet:
    """Credits, an account owned by `owner` and driven by `agent`, funded with 1,000 credits."""

    def __init__(self) -> None:
        self.owner = boa.env.generate_address("owner")
        self.agent = boa.env.generate_address("agent")
        self.guardian = boa.env.generate_address("guardian")
        self.shop = boa.env.generate_address("shop")
        self.stranger = boa.env.generate_address("stranger")
        self.token = deploy("Credits", 10**15)
        self.account = deploy(
            "AgentAccount", self.owner, self.agent, self.guardian, self.now() + 30 * DAY
        )
        self.token.faucet(self.account.address, 1_000 * CREDIT)
        with boa.env.prank(self.owner):
            self.account.setAllowance(self.token.address, 50 * CREDIT, 100 * CREDIT, DAY)
            self.account.allowCall(self.token.address, TRANSFER, True)
            self.account.allowRecipient(self.shop, True)

    def now(self) -> int:
        return int(boa.env.evm.patch.timestamp)

    def pay(self, to: str, amount: int) -> bool:
        with boa.env.prank(self.agent):
            return bool(self.account.execute(self.token.address, 0, transfer(to, amount)))


@pytest.fixture
def w() -> Wallet:
    return Wallet()


def refused(w: Wallet) -> str | None:
    """The reason the account's last call logged in `Refused`, if it did."""
    reasons = [log.reason for log in w.account.get_logs() if type(log).__name__ == "Refused"]
    return reasons[-1] if reasons else None


def test_the_agent_pays_within_its_caps_and_nothing_beyond(w: Wallet) -> None:
    assert w.pay(w.shop, 40 * CREDIT) is True
    assert w.token.balanceOf(w.shop) == 40 * CREDIT
    assert w.pay(w.shop, 60 * CREDIT) is False  # above the per-transaction cap of 50
    assert refused(w) == "above the per-transaction cap"
    assert w.pay(w.shop, 50 * CREDIT) is True
    assert w.pay(w.shop, 20 * CREDIT) is False  # 90 spent today, the daily cap is 100
    assert refused(w) == "above the spent-limit of the period"
    assert w.account.remaining(w.token.address) == 10 * CREDIT
    assert w.pay(w.stranger, 1) is False  # an unlisted recipient
    assert refused(w) == "the recipient is not allowed"
    boa.env.time_travel(seconds=DAY)
    assert w.account.remaining(w.token.address) == 100 * CREDIT
    assert w.pay(w.shop, 50 * CREDIT) is True  # a new day, a new cap
    assert w.token.balanceOf(w.shop) == 140 * CREDIT and w.token.balanceOf(w.stranger) == 0


def test_only_allowed_functions_and_configured_tokens_are_called(w: Wallet) -> None:
    other = deploy("Credits", 10**15)
    other.faucet(w.account.address, 10 * CREDIT)
    with boa.env.prank(w.owner):
        w.account.allowCall(other.address, TRANSFER, True)  # allowed, but no allowance set
    calls = [
        (other.address, 0, transfer(w.shop, 1), "above the per-transaction cap"),
        (w.token.address, 0, approve(w.shop, 1), "the token call is not allowed"),
        (
            w.token.address,
            0,
            bytes.fromhex("23b872dd") + b"\0" * 96,
            "token calls are transfer or approve only",
        ),
        (w.shop, 1, b"", "above the per-transaction cap"),  # the native coin: no allowance
        (w.account.address, 0, b"\x12\x34\x56\x78", "the account cannot call itself"),
        (w.stranger, 0, b"", "an empty call sends nothing"),
        (w.shop, 0, b"\x12\x34\x56\x78", "the contract function is not allowed"),
    ]
    for target, coin, data, reason in calls:
        with boa.env.prank(w.agent):
            assert not w.account.execute(target, coin, data)
        assert refused(w) == reason
    assert other.balanceOf(w.shop) == 0


def test_approvals_count_as_spent_in_full(w: Wallet) -> None:
    escrow = boa.env.generate_address("escrow")
    with boa.env.prank(w.owner):
        w.account.allowCall(w.token.address, APPROVE, True)
        w.account.allowRecipient(escrow, True)
    with boa.env.prank(w.agent):
        assert w.account.execute(w.token.address, 0, approve(escrow, 50 * CREDIT))
        assert w.account.execute(w.token.address, 0, approve(escrow, 50 * CREDIT))
        assert not w.account.execute(w.token.address, 0, approve(escrow, 1))
    assert w.account.remaining(w.token.address) == 0


def test_the_kill_switch_stops_everything_but_the_owners_withdrawal(w: Wallet) -> None:
    with (
        boa.env.prank(w.stranger),
        boa.reverts("AgentAccount: caller is not the owner or guardian"),
    ):
        w.account.freeze()
    with boa.env.prank(w.guardian):
        w.account.freeze()
    assert w.pay(w.shop, 1) is False and refused(w) == "the account is frozen"
    with boa.env.prank(w.guardian), boa.reverts("AgentAccount: caller is not the owner"):
        w.account.unfreeze()  # only the owner lets the agent go again
    with boa.env.prank(w.owner):
        w.account.withdraw(w.token.address, w.owner, 900 * CREDIT)
        w.account.unfreeze()
    assert w.token.balanceOf(w.owner) == 900 * CREDIT
    assert w.pay(w.shop, 1) is True


def test_expiry_call_and_rate_limits(w: Wallet) -> None:
    with boa.env.prank(w.owner):
        w.account.setLimits(2, 3600, 3, 0, w.now() + DAY)
    assert w.pay(w.shop, 1) and w.pay(w.shop, 1)
    assert not w.pay(w.shop, 1) and refused(w) == "rate-limit reached"  # two per hour
    boa.env.time_travel(seconds=3600)
    assert w.pay(w.shop, 1)
    assert not w.pay(w.shop, 1) and refused(w) == "call-limit reached"  # three in all
    with boa.env.prank(w.owner):
        w.account.setLimits(0, 0, 10, 0, w.now() + 60)
    boa.env.time_travel(seconds=61)
    assert not w.pay(w.shop, 1) and refused(w) == "the agent's permission has expired"


def test_the_agent_cannot_raise_its_own_limits(w: Wallet) -> None:
    a = w.account
    with boa.env.prank(w.agent):
        for fn, args in ((a.setAllowance, (w.token.address, 10**12, 10**12, 0)),
                         (a.allowRecipient, (w.stranger, True)), (a.unfreeze, ()),
                         (a.setLimits, (0, 0, 10**9, 0, 2**40)), (a.withdraw, (w.token.address, w.agent, 1)),
                         (a.setRoles, (w.stranger, w.stranger))):  # fmt: skip
            with boa.reverts("AgentAccount: caller is not the owner"):
                fn(*args)
        # Nor through the account itself: a call to the account is refused, never made.
        data = keccak(text="setAllowance(address,uint256,uint256,uint256)")[:4] + encode(
            ["address", "uint256", "uint256", "uint256"], [w.token.address, 10**12, 10**12, 0]
        )
        assert not a.execute(a.address, 0, data)
    with boa.env.prank(w.owner):
        with boa.reverts("AgentAccount: the account cannot call itself"):
            a.allowCall(a.address, data[:4], True)
        with boa.reverts("AgentAccount: the agent must be a key other than the owner's"):
            a.setRoles(w.owner, w.guardian)
    with boa.reverts("AgentAccount: the owner and the agent must be different keys"):
        deploy("AgentAccount", w.owner, w.owner, w.guardian, w.now() + DAY)
    assert a.allowanceOf(w.token.address).perPeriod == 100 * CREDIT
    with boa.env.prank(w.stranger), boa.reverts("AgentAccount: caller is not the agent"):
        a.execute(w.token.address, 0, transfer(w.shop, 1))


class AccountMachine(RuleBasedStateMachine):
    """Any sequence of agent calls (payments and approvals to listed and unlisted parties,
    at any amount), policy changes, freezes and time: no token leaves the account except as
    the policy in force allowed (a mirror model replays the caps), and the owner's
    withdrawal always works."""

    @initialize()
    def setup(self) -> None:
        self.env = boa.Env()
        with boa.swap_env(self.env):
            self.w = Wallet()
            with boa.env.prank(self.w.owner):
                self.w.account.allowCall(self.w.token.address, APPROVE, True)
        self.per_tx, self.per_period, self.period = 50 * CREDIT, 100 * CREDIT, DAY
        self.start = self._now()
        self.spent = 0
        self.frozen = False
        self.allowed = {self.w.shop}
        self.moved = 0  # what left the account to anyone but the owner

    def _now(self) -> int:
        with boa.swap_env(self.env):
            return self.w.now()

    def _roll(self) -> None:
        now = self._now()
        if now >= self.start + self.period:
            self.start += (now - self.start) // self.period * self.period
            self.spent = 0

    @rule(
        amount=st.one_of(st.sampled_from([c * CREDIT for c in (1, 25, 40, 50, 51, 80)]),
                         st.integers(0, 120 * CREDIT)),
        listed=st.booleans(),
        kind=st.sampled_from(["transfer", "transfer", "approve"]),
    )  # fmt: skip
    def agent_spends(self, amount: int, listed: bool, kind: str) -> None:
        w = self.w
        to = w.shop if listed else w.stranger
        data = (transfer if kind == "transfer" else approve)(to, amount)
        with boa.swap_env(self.env), boa.env.prank(w.agent):
            before = w.token.balanceOf(w.account.address)
            try:
                made = bool(w.account.execute(w.token.address, 0, data))
            except Exception:  # the token itself refused (e.g. balance too low): nothing moved
                made = False
                assert w.token.balanceOf(w.account.address) == before
            after = w.token.balanceOf(w.account.address)
        self._roll()
        expected = (not self.frozen and to in self.allowed and (amount == 0 or (
            amount <= self.per_tx and self.spent + amount <= self.per_period)))  # fmt: skip
        # (A payment of nothing is allowed to a listed recipient only, like any other.)
        if made:
            assert expected, (amount, listed, kind)
            self.spent += amount
            self.moved += before - after
        if kind == "approve" and made:
            with boa.swap_env(self.env), boa.env.prank(to):
                # The spender takes what it was allowed, at once.
                taken = min(amount, int(w.token.balanceOf(w.account.address)))
                if taken:
                    w.token.transferFrom(w.account.address, to, taken)
                    self.moved += taken

    @rule(
        per_tx=st.integers(0, 80 * CREDIT),
        extra=st.integers(0, 80 * CREDIT),
        period=st.sampled_from([3600, DAY]),
    )
    def owner_sets_allowance(self, per_tx: int, extra: int, period: int) -> None:
        with boa.swap_env(self.env), boa.env.prank(self.w.owner):
            self.w.account.setAllowance(self.w.token.address, per_tx, per_tx + extra, period)
        self._roll()
        self.per_tx, self.per_period, self.period = per_tx, per_tx + extra, period

    @rule(listed=st.booleans())
    def owner_lists_stranger(self, listed: bool) -> None:
        with boa.swap_env(self.env), boa.env.prank(self.w.owner):
            self.w.account.allowRecipient(self.w.stranger, listed)
        (self.allowed.add if listed else self.allowed.discard)(self.w.stranger)

    @rule(who=st.sampled_from(["owner", "guardian"]))
    def freeze(self, who: str) -> None:
        with boa.swap_env(self.env), boa.env.prank(getattr(self.w, who)):
            self.w.account.freeze()
        self.frozen = True

    @rule()
    def unfreeze(self) -> None:
        with boa.swap_env(self.env), boa.env.prank(self.w.owner):
            self.w.account.unfreeze()
        self.frozen = False

    @rule(seconds=st.sampled_from([60, 3600, DAY, 2 * DAY]))
    def time_passes(self, seconds: int) -> None:
        with boa.swap_env(self.env):
            boa.env.time_travel(seconds=seconds)

    @invariant()
    def nothing_leaves_outside_policy(self) -> None:
        if not hasattr(self, "w"):
            return
        w = self.w
        with boa.swap_env(self.env):
            held = int(w.token.balanceOf(w.account.address))
            assert held + self.moved == 1_000 * CREDIT
            assert w.token.balanceOf(w.stranger) + w.token.balanceOf(w.shop) == self.moved
            # The owner can always take everything out (a dry run).
            with boa.env.anchor(), boa.env.prank(w.owner):
                w.account.withdraw(w.token.address, w.owner, held)
                assert w.token.balanceOf(w.account.address) == 0


TestAccountMachine = AccountMachine.TestCase
TestAccountMachine.settings = settings(max_examples=15, stateful_step_count=30, deadline=None,
                                       suppress_health_check=list(HealthCheck))  # fmt: skip
