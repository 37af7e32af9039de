"""Marketplace: listings, atomic sale and grant, escrow with refund and release, royalties
along lineage (bounded) and by federated contribution, pause and governance, and a
stateful machine: no payment without a grant, no grant without a payment, money conserved."""

from __future__ import annotations

import hashlib

import boa
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from neuroledger.market._lineage_walk import MAX_CONTRIBUTORS, walk_lineage
from tests.contracts.conftest import ZERO, deploy

VERIKEY = b"veriKey".ljust(32, b"\0")
DOWNLOAD, COMPUTE, PER_CALL = 1, 2, 4
RESEARCH = b"research".ljust(32, b"\0")
GUARDIAN = "0x" + "9a" * 20
PRICE = 1_000_000
DAY = 86_400
HOLD = DAY

pytestmark = pytest.mark.usefixtures("fresh_env")


def h(label: str) -> bytes:
    return hashlib.sha256(label.encode()).digest()


def now() -> int:
    return int(boa.env.evm.patch.timestamp)


class World:
    """A suite with a token, registries, grants, a federated task contract and the market."""

    def __init__(self) -> None:
        self.did = deploy("DIDRegistry")
        self.assets = deploy("AssetRegistry", self.did.address)
        self.grants = deploy("AccessGrants", self.did.address, self.assets.address, ZERO, GUARDIAN)
        self.fl = deploy("FederatedTask", ZERO, GUARDIAN)
        self.token = deploy("Credits", 10**15)
        self.admin = boa.env.generate_address()
        self.market = deploy("Marketplace", self.token.address, self.did.address,
                             self.assets.address, self.grants.address, self.fl.address,
                             self.admin, GUARDIAN)  # fmt: skip
        self.parents: dict[bytes, list[bytes]] = {}

    def register(self, owner: str, label: str, parents: list[bytes] | None = None) -> bytes:
        with boa.env.prank(owner):
            asset = self.assets.register(owner, h(label), 1, h("meta"), "", parents or [], "MIT")
        self.parents[asset] = list(parents or [])
        return asset

    def delegate(self, seller: str, validity: int = 365 * DAY) -> None:
        with boa.env.prank(seller):
            self.did.addDelegate(seller, VERIKEY, self.market.address, validity)

    def lineage(self, asset: bytes) -> list[list[bytes]]:
        return walk_lineage(asset, lambda a: self.parents.get(a, [])).lists

    def list(self, seller: str, asset: bytes, *, price: int = PRICE, modes: int = COMPUTE,
             duration: int = 30 * DAY, task: int = 0, participants=(), lineage=None) -> int:  # fmt: skip
        if lineage is None:
            lineage = [] if task else self.lineage(asset)
        with boa.env.prank(seller):
            return self.market.list(seller, asset, price, modes, RESEARCH, duration, "CC-BY-4.0",
                                    "https://example.org/terms", task, lineage,
                                    list(participants))  # fmt: skip

    def fund(self, buyer: str, amount: int = 10 * PRICE, approve: int | None = None) -> None:
        self.token.faucet(buyer, amount)
        with boa.env.prank(buyer):
            self.token.approve(self.market.address, amount if approve is None else approve)

    def buy(self, buyer: str, listing: int, grantee: str | None = None) -> int:
        with boa.env.prank(buyer):
            return self.market.buy(listing, grantee or buyer)


@pytest.fixture
def world() -> World:
    return World()


@pytest.fixture
def people() -> dict[str, str]:
    return {n: boa.env.generate_address() for n in ("seller", "buyer", "a", "b", "c", "other")}


def test_listing_needs_ownership_an_active_asset_and_the_delegation(world, people) -> None:
    seller, other = people["seller"], people["other"]
    data = world.register(seller, "cohort")
    theirs = world.register(other, "theirs")
    with boa.reverts("Marketplace: the marketplace is not a delegate of the seller"):
        world.list(seller, data)
    world.delegate(seller)
    with boa.reverts("Marketplace: the seller does not own the asset"):
        world.list(seller, theirs)
    with (
        boa.env.prank(other),
        boa.reverts("Marketplace: caller is not the identity owner or a delegate"),
    ):
        world.market.list(seller, data, PRICE, COMPUTE, RESEARCH, DAY, "", "", 0, [[]], [])
    with boa.reverts("Marketplace: unknown asset"):
        world.list(seller, h("nothing"), lineage=[[]])
    for bad, reason in ((0, "modes must be 1, 2, 3 or 4"), (5, "modes must be 1, 2, 3 or 4")):
        with boa.reverts(f"Marketplace: {reason}"):
            world.list(seller, data, modes=bad)
    with boa.reverts("Marketplace: price is zero"):
        world.list(seller, data, price=0)
    with boa.reverts("Marketplace: duration is under a minute"):
        world.list(seller, data, duration=59)
    listing = world.list(seller, data)
    event = world.market.get_logs()[-1]
    assert type(event).__name__ == "Listed" and event.listingId == listing
    assert event.license == "CC-BY-4.0" and event.royaltyBps == 1000
    assert world.market.getListing(listing)[:6] == (data, seller, PRICE, COMPUTE, True, 1000)
    with boa.env.prank(seller):
        world.assets.revoke(data, "withdrawn")
    with boa.reverts("Marketplace: the asset is not active"):
        world.list(seller, data)
    assert world.market.listingCount() == 1


def test_a_sale_pays_into_escrow_and_grants_in_one_transaction(world, people) -> None:
    seller, buyer = people["seller"], people["buyer"]
    data = world.register(seller, "cohort")
    world.delegate(seller)
    listing = world.list(seller, data)
    world.token.faucet(buyer, PRICE)
    # no payment, no grant: without an allowance the whole sale reverts
    with boa.reverts():
        world.buy(buyer, listing)
    assert not world.grants.hasAccess(data, buyer, COMPUTE, RESEARCH)
    assert world.token.balanceOf(buyer) == PRICE and world.market.saleCount() == 0
    with boa.env.prank(buyer):
        world.token.approve(world.market.address, PRICE)
    # no grant, no payment: with new grants paused, the payment does not happen either
    with boa.env.prank(GUARDIAN):
        world.grants.pause()
    with boa.reverts("pausable: contract is paused"):
        world.buy(buyer, listing)
    assert world.token.balanceOf(buyer) == PRICE
    with boa.env.prank(GUARDIAN):
        world.grants.unpause()
    sale = world.buy(buyer, listing)
    assert world.grants.hasAccess(data, buyer, COMPUTE, RESEARCH)
    assert not world.grants.hasAccess(data, buyer, DOWNLOAD, RESEARCH)
    assert world.token.balanceOf(world.market.address) == PRICE == world.market.heldTotal()
    s = world.market.getSale(sale)
    assert (s.listing, s.buyer, s.grantee, s.price, s.status) == (listing, buyer, buyer, PRICE, 1)
    assert s.expiry == now() + 30 * DAY and s.releaseAt == now() + HOLD
    assert world.grants.grantOf(data, buyer, RESEARCH)[2] == seller  # granted as the seller


def test_buying_what_is_not_for_sale_fails_and_moves_nothing(world, people) -> None:
    seller, buyer, other = people["seller"], people["buyer"], people["other"]
    data = world.register(seller, "cohort")
    world.delegate(seller)
    listing = world.list(seller, data)
    per_call = world.list(seller, data, modes=PER_CALL)
    world.fund(buyer)
    with boa.reverts("Marketplace: unknown listing"):
        world.buy(buyer, 99)
    with boa.reverts("Marketplace: a per-call listing is paid per request over x402"):
        world.buy(buyer, per_call)
    with (
        boa.env.prank(other),
        boa.reverts("Marketplace: caller is not the identity owner or a delegate"),
    ):
        world.market.delist(listing)
    with boa.env.prank(seller):
        world.market.delist(listing)
    with boa.reverts("Marketplace: listing is not active"):
        world.buy(buyer, listing)
    relisted = world.list(seller, data)
    with boa.env.prank(seller):
        world.assets.transfer(data, other)
    with boa.reverts("Marketplace: the asset changed hands since it was listed"):
        world.buy(buyer, relisted)
    mine = world.register(seller, "second")
    again = world.list(seller, mine)
    with boa.env.prank(seller):
        world.assets.deprecate(mine, "superseded")
    with boa.reverts("Marketplace: the asset is not active"):
        world.buy(buyer, again)
    # the delegation lapsed: the grant cannot be issued, so nothing is paid
    late = world.register(seller, "third")
    third = world.list(seller, late)
    boa.env.time_travel(seconds=366 * DAY)
    with boa.reverts("AccessGrants: caller is not the identity owner or a delegate"):
        world.buy(buyer, third)
    assert world.token.balanceOf(buyer) == 10 * PRICE and world.market.saleCount() == 0


def test_release_after_the_hold_pays_seller_and_ancestors_exactly_the_price(world, people) -> None:
    seller, buyer, a, b = people["seller"], people["buyer"], people["a"], people["b"]
    data_a = world.register(a, "data a")
    code_b = world.register(b, "code b")
    run = world.register(seller, "run", [data_a, code_b])
    model = world.register(seller, "model", [run])
    world.delegate(seller)
    listing = world.list(seller, model, price=999_999)
    contributors, weights = world.market.contributorsOf(listing)
    assert list(contributors) == [run, data_a, code_b] and list(weights) == []
    world.fund(buyer)
    sale = world.buy(buyer, listing)
    with boa.reverts("Marketplace: the hold period has not passed"):
        world.market.release(sale)
    boa.env.time_travel(seconds=HOLD)
    with boa.env.prank(people["other"]):
        world.market.release(sale)  # anyone may release
    logs = world.market.get_logs()
    royalty = 999_999 * 1000 // 10_000
    part = royalty // 3
    assert world.market.owed(a) == part and world.market.owed(b) == part
    assert world.market.owed(seller) == 999_999 - 2 * part  # its own run's part and the dust
    assert sum(world.market.owed(x) for x in (a, b, seller)) == 999_999
    paid = [e for e in logs if type(e).__name__ == "RoyaltyPaid"]
    assert [(e.payee, e.source, e.amount) for e in paid] == [
        (seller, run, part), (a, data_a, part), (b, code_b, part)]  # fmt: skip
    with boa.reverts("Marketplace: sale is settled"):
        world.market.release(sale)
    with boa.env.prank(a):
        world.market.withdraw(a)
        with boa.reverts("Marketplace: nothing owed"):
            world.market.withdraw(a)
    assert world.token.balanceOf(a) == part


def test_a_revoked_grant_refunds_the_buyer_within_the_hold(world, people) -> None:
    seller, buyer = people["seller"], people["buyer"]
    data = world.register(seller, "cohort")
    world.delegate(seller)
    listing = world.list(seller, data)
    world.fund(buyer)
    sale = world.buy(buyer, listing)
    with boa.reverts("Marketplace: the buyer's access still holds"):
        world.market.refund(sale)
    with boa.env.prank(seller):
        world.grants.revoke(data, buyer, RESEARCH)
    world.market.refund(sale)
    assert world.token.balanceOf(buyer) == 10 * PRICE and world.market.heldTotal() == 0
    with boa.reverts("Marketplace: sale is settled"):
        world.market.release(sale)
    # after the hold the seller's payment is final
    second = world.buy(buyer, listing)
    boa.env.time_travel(seconds=HOLD)
    with boa.env.prank(seller):
        world.grants.revoke(data, buyer, RESEARCH)
    with boa.reverts("Marketplace: the hold period has passed"):
        world.market.refund(second)
    world.market.release(second)


def test_a_purchase_never_narrows_a_grant_the_buyer_holds(world, people) -> None:
    seller, buyer = people["seller"], people["buyer"]
    data = world.register(seller, "cohort")
    world.delegate(seller)
    download = world.list(seller, data, modes=DOWNLOAD, duration=300 * DAY)
    compute = world.list(seller, data, modes=COMPUTE, duration=DAY, price=1)
    world.fund(buyer)
    first = world.buy(buyer, download)
    world.buy(buyer, compute)
    assert world.grants.hasAccess(data, buyer, DOWNLOAD | COMPUTE, RESEARCH)
    assert world.grants.grantOf(data, buyer, RESEARCH)[1] == world.market.getSale(first).expiry
    with boa.reverts("Marketplace: the buyer's access still holds"):
        world.market.refund(first)  # the cheap compute purchase did not cost the download


def test_the_walk_is_checked_deduplicated_and_bounded(world, people) -> None:
    seller, a = people["seller"], people["a"]
    world.delegate(seller)
    g3 = world.register(a, "great-great")
    g2 = world.register(a, "great", [g3])
    g1 = world.register(a, "grand", [g2])
    p = world.register(a, "parent", [g1])
    side = world.register(a, "side", [g1])  # a diamond: g1 reached twice
    child = world.register(seller, "child", [p, side])
    listing = world.list(seller, child)
    assert list(world.market.contributorsOf(listing)[0]) == [p, side, g1, g2]  # g3 is depth 4
    good = world.lineage(child)
    with boa.reverts("Marketplace: lineage does not match the asset registry"):
        world.list(seller, child, lineage=[[side, p], *good[1:]])
    with boa.reverts("Marketplace: lineage does not match the asset registry"):
        world.list(seller, child, lineage=[[p], *good[1:]])  # a parent left out
    with boa.reverts("Marketplace: lineage is incomplete"):
        world.list(seller, child, lineage=good[:-1])
    with boa.reverts("Marketplace: lineage has extra entries"):
        world.list(seller, child, lineage=[*good, []])
    # 40 datasets behind 4 runs: the walk stops before the generation that passes 32
    runs = []
    for r in range(4):
        data = [world.register(a, f"d{r}-{i}") for i in range(10)]
        runs.append(world.register(seller, f"run{r}", data))
    big = world.register(seller, "big", runs)
    listing = world.list(seller, big)
    assert list(world.market.contributorsOf(listing)[0]) == runs


def test_gas_of_the_largest_listing_and_release_is_bounded(world, people) -> None:
    seller, a, buyer = people["seller"], people["a"], people["buyer"]
    world.delegate(seller)
    level1 = [world.register(a, f"l1-{i}") for i in range(16)]
    top = [world.register(a, f"top-{i}", level1[i : i + 1]) for i in range(16)]
    model = world.register(seller, "model", top)
    lineage = world.lineage(model)
    assert len(lineage) == 1 + 16 + 16
    listing = world.list(seller, model, lineage=lineage)
    listing_gas = world.market._computation.get_gas_used()
    assert len(world.market.contributorsOf(listing)[0]) == MAX_CONTRIBUTORS
    world.fund(buyer)
    sale = world.buy(buyer, listing)
    boa.env.time_travel(seconds=HOLD)
    world.market.release(sale)
    release_gas = world.market._computation.get_gas_used()
    assert listing_gas < 3_000_000 and release_gas < 1_500_000, (listing_gas, release_gas)
    assert sum(world.market.owed(x) for x in (a, seller)) == PRICE


def _finished_task(world, owner, people, rewards):
    fl = world.fl
    boa.env.set_balance(owner, 10**20)
    with boa.env.prank(owner):
        task = fl.createTask(h("m"), h("c"), 1, 1, 1, now() + 7 * DAY, value=sum(rewards))
    for p in people:
        boa.env.set_balance(p, 10)
        with boa.env.prank(p):
            fl.join(task, value=1)
    bits = sum(1 << (fl.participantSlot(task, p) - 1) for p in people)
    with boa.env.prank(owner):
        fl.recordRound(task, 1, h("root"), h("agg"), bits)
    with boa.env.prank(people[0]):
        fl.attest(task, 1, h("agg"))
    return task


def test_a_federated_model_pays_participants_by_their_rewards(world, people) -> None:
    owner, buyer = people["seller"], people["buyer"]
    hospitals = [people["a"], people["b"], people["c"]]
    model = world.register(owner, "federated model")
    world.delegate(owner)
    task = _finished_task(world, owner, hospitals, [5 * 10**9, 3 * 10**9, 2 * 10**9])
    with boa.reverts("Marketplace: the task has not finished"):
        world.list(owner, model, task=task, participants=hospitals)
    with boa.env.prank(owner):
        world.fl.finish(task, model, hospitals, [5 * 10**9, 3 * 10**9, 2 * 10**9])
    other = world.register(owner, "another model")
    with boa.reverts("Marketplace: the asset is not the task's final model"):
        world.list(owner, other, task=task, participants=hospitals)
    with boa.reverts("Marketplace: name every participant of the task once"):
        world.list(owner, model, task=task, participants=hospitals[:2])
    with boa.reverts("Marketplace: participant named twice"):
        world.list(owner, model, task=task, participants=[hospitals[0]] * 3)
    with boa.reverts("Marketplace: not a participant of the task"):
        world.list(owner, model, task=task, participants=[*hospitals[:2], buyer])
    listing = world.list(owner, model, task=task, participants=hospitals, price=10_000)
    with boa.env.prank(hospitals[0]):
        world.fl.claim(task)  # the reward set at finish stays on record after the claim
    world.fund(buyer)
    sale = world.buy(buyer, listing)
    boa.env.time_travel(seconds=HOLD)
    world.market.release(sale)
    assert [world.market.owed(x) for x in hospitals] == [500, 300, 200]
    assert world.market.owed(owner) == 9_000


def test_pause_stops_new_business_and_never_an_exit(world, people) -> None:
    seller, buyer = people["seller"], people["buyer"]
    data = world.register(seller, "cohort")
    world.delegate(seller)
    listing = world.list(seller, data)
    world.fund(buyer)
    held = world.buy(buyer, listing)
    refundable = world.buy(buyer, world.list(seller, world.register(seller, "other")))
    with boa.env.prank(GUARDIAN):
        world.market.pause()
    with boa.reverts("pausable: contract is paused"):
        world.list(seller, data)
    with boa.reverts("pausable: contract is paused"):
        world.buy(buyer, listing)
    with boa.env.prank(seller):
        world.grants.revoke(world.market.getListing(2).asset, buyer, RESEARCH)
    world.market.refund(refundable)
    boa.env.time_travel(seconds=HOLD)
    world.market.release(held)
    with (
        boa.env.prank(people["other"]),
        boa.reverts("Marketplace: caller is not the identity owner or a delegate"),
    ):
        world.market.withdraw(seller)
    with boa.env.prank(seller):
        world.market.withdraw(seller)
        world.market.delist(listing)
    assert world.token.balanceOf(seller) == PRICE


def test_parameters_change_only_through_the_owner_and_never_for_past_listings(
    world, people
) -> None:
    seller = people["seller"]
    data = world.register(seller, "cohort")
    world.delegate(seller)
    before = world.list(seller, data)
    with boa.reverts("ownable: caller is not the owner"):
        world.market.setParameters(2000, HOLD)
    with boa.env.prank(world.admin):
        with boa.reverts("Marketplace: royalty over 50%"):
            world.market.setParameters(5001, HOLD)
        with boa.reverts("Marketplace: hold period out of range"):
            world.market.setParameters(2000, 59)
        world.market.setParameters(2000, 3600)
    assert type(world.market.get_logs()[-1]).__name__ == "ParametersChanged"
    after = world.list(seller, data)
    assert world.market.getListing(before).royaltyBps == 1000
    assert world.market.getListing(after).royaltyBps == 2000


class MarketMachine(RuleBasedStateMachine):
    """Random listings, sales (with and without allowance, with grants paused), revocations,
    refunds, releases, withdrawals and clock jumps against a mirror of the money.

    Invariants: the market holds exactly the escrowed payments plus the balances owed;
    every sale that exists was paid and granted at once (a failed sale moved nothing and
    granted nothing); every release splits exactly the price.
    """

    @initialize()
    def setup(self) -> None:
        self.w = World()
        self.seller, self.a, self.b = (boa.env.generate_address() for _ in range(3))
        self.buyers = [boa.env.generate_address() for _ in range(3)]
        d1 = self.w.register(self.a, "d1")
        d2 = self.w.register(self.b, "d2")
        run = self.w.register(self.seller, "run", [d1, d2])
        self.models = [self.w.register(self.seller, f"m{i}", [run]) for i in range(2)]
        self.w.delegate(self.seller)
        self.listings = [self.w.list(self.seller, m, price=PRICE + 7 * i)
                         for i, m in enumerate(self.models)]  # fmt: skip
        for b in self.buyers:
            self.w.fund(b, 5 * PRICE, approve=0)
        self.sales: dict[int, tuple[int, str]] = {}
        self.paused = False
        self.settled = 0

    @rule(b=st.integers(0, 2), i=st.integers(0, 1), approve=st.booleans())
    def buy(self, b: int, i: int, approve: bool) -> None:
        buyer, listing = self.buyers[b], self.listings[i]
        price = self.w.market.getListing(listing).price
        with boa.env.prank(buyer):
            self.w.token.approve(self.w.market.address, price if approve else price - 1)
        before = (self.w.token.balanceOf(buyer), self.w.market.saleCount())
        had = self.w.grants.hasAccess(self.models[i], buyer, COMPUTE, RESEARCH)
        ok = approve and not self.paused and self.w.token.balanceOf(buyer) >= price
        if ok:
            sale = self.w.buy(buyer, listing)
            self.sales[sale] = (price, buyer)
            assert self.w.token.balanceOf(buyer) == before[0] - price
            assert self.w.grants.hasAccess(self.models[i], buyer, COMPUTE, RESEARCH)
        else:
            with boa.reverts():
                self.w.buy(buyer, listing)
            assert (self.w.token.balanceOf(buyer), self.w.market.saleCount()) == before
            assert self.w.grants.hasAccess(self.models[i], buyer, COMPUTE, RESEARCH) == had

    @rule()
    def toggle_grants_pause(self) -> None:
        with boa.env.prank(GUARDIAN):
            (self.w.grants.unpause if self.paused else self.w.grants.pause)()
        self.paused = not self.paused

    @rule(b=st.integers(0, 2), i=st.integers(0, 1))
    def revoke(self, b: int, i: int) -> None:
        if self.w.grants.grantOf(self.models[i], self.buyers[b], RESEARCH)[0]:
            with boa.env.prank(self.seller):
                self.w.grants.revoke(self.models[i], self.buyers[b], RESEARCH)

    @precondition(lambda self: self.sales)
    @rule(data=st.data())
    def settle(self, data) -> None:
        sale = data.draw(st.sampled_from(sorted(self.sales)))
        s = self.w.market.getSale(sale)
        listing = self.w.market.getListing(s.listing)
        holds = self.w.grants.hasAccess(listing.asset, s.grantee, listing.modes, RESEARCH)
        if s.status != 1:
            with boa.reverts("Marketplace: sale is settled"):
                self.w.market.release(sale)
        elif now() >= s.releaseAt:
            owed = {x: self.w.market.owed(x) for x in (self.seller, self.a, self.b)}
            self.w.market.release(sale)
            gained = sum(self.w.market.owed(x) - owed[x] for x in owed)
            assert gained == s.price
            self.settled += 1
        elif not holds and now() < s.expiry:
            before = self.w.token.balanceOf(s.buyer)
            self.w.market.refund(sale)
            assert self.w.token.balanceOf(s.buyer) == before + s.price
        else:
            with boa.reverts("Marketplace: the buyer's access still holds"):
                self.w.market.refund(sale)

    @rule(hours=st.integers(1, 30))
    def clock(self, hours: int) -> None:
        boa.env.time_travel(seconds=hours * 3600)

    @rule(who=st.integers(0, 2))
    def withdraw(self, who: int) -> None:
        account = (self.seller, self.a, self.b)[who]
        if self.w.market.owed(account):
            with boa.env.prank(account):
                self.w.market.withdraw(account)

    @invariant()
    def money_is_conserved(self) -> None:
        if not hasattr(self, "w"):
            return
        m = self.w.market
        owed = sum(m.owed(x) for x in (self.seller, self.a, self.b))
        held = sum(m.getSale(s).price for s in self.sales if m.getSale(s).status == 1)
        assert m.heldTotal() == held
        assert self.w.token.balanceOf(m.address) == held + owed
        assert m.saleCount() == len(self.sales)


TestMarketMachine = MarketMachine.TestCase
TestMarketMachine.settings = settings(max_examples=25, stateful_step_count=25, deadline=None)
