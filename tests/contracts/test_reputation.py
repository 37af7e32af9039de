"""The reputation registry: the ERC-8004 Reputation Registry's ABI, feedback only from a client
with a settled deal (a delivered escrow job, or an x402 payment settled by PaymentSettler in
the suite's token), one feedback per deal, never self-feedback, deal-weighted summaries."""

from __future__ import annotations

import os
from typing import Any

import boa
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import event_signature_to_log_topic, function_signature_to_4byte_selector
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from tests.contracts.conftest import ZERO, deploy
from tests.contracts.test_agent_registry import _types
from tests.contracts.test_credits import args, authorization, sign

pytestmark = pytest.mark.usefixtures("fresh_env")

DAY = 86400
ASSET = b"\x42" * 32
FUNCTIONS = [
    "getIdentityRegistry()",
    "giveFeedback(uint256,int128,uint8,string,string,string,string,bytes32)",
    "revokeFeedback(uint256,uint64)",
    "appendResponse(uint256,address,uint64,string,bytes32)",
    "getSummary(uint256,address[],string,string)",
    "readFeedback(uint256,address,uint64)",
    "readAllFeedback(uint256,address[],string,string,bool)",
    "getResponseCount(uint256,address,uint64,address[])",
    "getClients(uint256)",
    "getLastIndex(uint256,address)",
]
EVENTS = [
    "NewFeedback(uint256,address,uint64,int128,uint8,string,string,string,string,string,bytes32)",
    "FeedbackRevoked(uint256,address,uint64)",
    "ResponseAppended(uint256,address,uint64,address,string,bytes32)",
]


def test_the_abi_is_erc_8004s() -> None:
    from neuroledger.chain import load_artifact

    abi = load_artifact("ReputationRegistry").abi
    ours = {f"{e['name']}({_types(e)})" for e in abi if e["type"] == "function"}
    events = {f"{e['name']}({_types(e)})" for e in abi if e["type"] == "event"}
    assert set(FUNCTIONS) <= ours and set(EVENTS) <= events
    outputs = {e["name"]: [o["type"] for o in e["outputs"]] for e in abi if e["type"] == "function"}
    assert outputs["getSummary"] == ["uint64", "int128", "uint8"]
    assert outputs["readFeedback"] == ["int128", "uint8", "string", "string", "bool"]
    assert outputs["readAllFeedback"] == ["address[]", "uint64[]", "int128[]", "uint8[]",
                                          "string[]", "string[]", "bool[]"]  # fmt: skip
    indexed = {e["name"]: [i["indexed"] for i in e["inputs"]] for e in abi if e["type"] == "event"}
    assert indexed["NewFeedback"] == [True, True, False, False, False, True, False, False, False,
                                      False, False]  # fmt: skip
    assert indexed["FeedbackRevoked"] == [True, True, True]
    assert indexed["ResponseAppended"] == [True, True, False, True, False, False]
    selectors = {function_signature_to_4byte_selector(f).hex() for f in FUNCTIONS}
    assert len(selectors) == len(FUNCTIONS)
    assert event_signature_to_log_topic(EVENTS[0]).hex() == (
        event_signature_to_log_topic(
            "NewFeedback(uint256,address,uint64,int128,uint8,string,string,string,string,"
            "string,bytes32)"
        ).hex()
    )


class World:
    """Credits, the agent registry, the escrow, the settler and the reputation registry."""

    def __init__(self) -> None:
        self.token = deploy("Credits", 10**15)
        self.agents = deploy("AgentRegistry")
        self.escrow = deploy("JobEscrow", self.token.address, boa.env.generate_address("owner"),
                             boa.env.generate_address("guardian"))  # fmt: skip
        self.settler = deploy("PaymentSettler")
        self.rep = deploy("ReputationRegistry", self.agents.address, self.escrow.address,
                          self.settler.address, self.token.address)  # fmt: skip
        self.agent_owner = boa.env.generate_address("agent-owner")
        with boa.env.prank(self.agent_owner):
            self.agent = self.agents.register("https://triage.example/card.json")
        self.wallet = self.agent_owner  # register sets the registrant as the wallet
        self.evaluator = boa.env.generate_address("evaluator")

    def now(self) -> int:
        return int(boa.env.evm.patch.timestamp)

    def client(self, funds: int = 10**9) -> LocalAccount:
        account: LocalAccount = Account.create()
        self.token.faucet(account.address, funds)
        with boa.env.prank(account.address):
            self.token.approve(self.escrow.address, 2**256 - 1)
        return account

    def job(self, client: str, budget: int = 10**6, outcome: str = "complete",
            provider: str | None = None) -> int:  # fmt: skip
        e = self.escrow
        with boa.env.prank(client):
            job_id = e.createJob(
                provider or self.wallet, self.evaluator, self.now() + DAY, "label", ZERO
            )
            e.setBudget(job_id, budget, b"")
            if outcome == "reject-open":
                e.reject(job_id, b"\0" * 32, b"")
                return job_id
            e.fund(job_id, budget, b"")
        if outcome == "reject-funded":
            with boa.env.prank(self.evaluator):
                e.reject(job_id, b"\0" * 32, b"")
            return job_id
        with boa.env.prank(provider or self.wallet):
            e.submit(job_id, ASSET, b"")
        with boa.env.prank(self.evaluator):
            (e.complete if outcome == "complete" else e.reject)(job_id, b"\0" * 32, b"")
        return job_id

    def pay(self, payer: LocalAccount, value: int = 250_000, token: Any = None,
            payee: str | None = None) -> bytes:  # fmt: skip
        token = token or self.token
        message = authorization(payer, payee or self.wallet, value, nonce=os.urandom(32))
        item = (*args(message), *sign(token, payer, "TransferWithAuthorization", message))
        assert self.settler.settle(token.address, [item]) == 1
        return message["nonce"]

    def feedback(self, client: str, value: int = 90, decimals: int = 0, tag1: str = "starred",
                 tag2: str = "") -> None:  # fmt: skip
        with boa.env.prank(client):
            self.rep.giveFeedback(self.agent, value, decimals, tag1, tag2, "https://triage.example/a2a",
                                  "ipfs://feedback", b"\x11" * 32)  # fmt: skip


@pytest.fixture
def w() -> World:
    return World()


def test_no_feedback_without_a_settled_deal(w: World) -> None:
    sybil = boa.env.generate_address("sybil")
    with boa.reverts("ReputationRegistry: no settled deal with this agent backs a feedback; "
                     "pay it or finish a job first"):  # fmt: skip
        w.feedback(sybil)
    assert w.rep.getLastIndex(w.agent, sybil) == 0 and w.rep.getClients(w.agent) == []


def test_a_paid_x402_call_backs_exactly_one_feedback(w: World) -> None:
    lab = w.client()
    nonce = w.pay(lab, 250_000)
    with boa.env.prank(boa.env.generate_address("anyone")):  # anyone may record the deal
        w.rep.recordPayment(lab.address, nonce)
    assert w.rep.pendingDeals(w.agent, lab.address) == 1
    with boa.reverts("ReputationRegistry: deal already recorded"):
        w.rep.recordPayment(lab.address, nonce)
    w.feedback(lab.address, 87)
    assert w.rep.getLastIndex(w.agent, lab.address) == 1
    assert w.rep.readFeedback(w.agent, lab.address, 1) == (87, 0, "starred", "", False)
    assert w.rep.feedbackWeight(w.agent, lab.address, 1) == 250_000
    with boa.reverts():
        w.feedback(lab.address, 99)  # the deal is spent
    assert w.rep.getClients(w.agent) == [lab.address]


def test_jobs_count_when_delivered_and_settled(w: World) -> None:
    lab = w.client()
    done = w.job(lab.address, outcome="complete")
    rejected = w.job(lab.address, outcome="reject")  # rejected after delivery: a deal
    w.rep.recordJob(done)
    w.rep.recordJob(rejected)
    assert w.rep.pendingDeals(w.agent, lab.address) == 2
    for outcome in ("reject-open", "reject-funded"):  # never delivered: the client's own doing
        job = w.job(lab.address, outcome=outcome)
        with boa.reverts("ReputationRegistry: the job is not settled (completed and paid, or "
                         "rejected after delivery)"):  # fmt: skip
            w.rep.recordJob(job)


def test_deals_in_another_token_or_to_a_non_agent_do_not_count(w: World) -> None:
    lab = w.client()
    fake = deploy("Credits", 10**15)  # any contract can pose as a token
    fake.faucet(lab.address, 10**9)
    nonce = w.pay(lab, 10**6, token=fake)
    with boa.reverts("ReputationRegistry: no settled payment under this payer and nonce"):
        w.rep.recordPayment(lab.address, nonce)
    stranger = boa.env.generate_address("stranger")
    nonce = w.pay(lab, 10**6, payee=stranger)
    with boa.reverts("ReputationRegistry: the payee is no agent's wallet"):
        w.rep.recordPayment(lab.address, nonce)


def test_no_self_feedback_and_no_deal_with_oneself(w: World) -> None:
    owner = Account.create()
    w.token.faucet(owner.address, 10**9)
    with boa.env.prank(w.agent_owner):
        w.agents.setApprovalForAll(owner.address, True)  # an operator of the agent
    nonce = w.pay(owner, 10**6)
    with boa.reverts("ReputationRegistry: a deal with oneself is no deal"):
        w.rep.recordPayment(owner.address, nonce)
    lab = w.client()
    w.rep.recordPayment(lab.address, w.pay(lab))
    with (
        boa.env.prank(w.agent_owner),
        boa.reverts("ReputationRegistry: self-feedback is not allowed"),
    ):
        w.rep.giveFeedback(w.agent, 100, 0, "", "", "", "", b"\0" * 32)


def test_bounds_and_tags(w: World) -> None:
    lab = w.client()
    for _ in range(4):
        w.rep.recordPayment(lab.address, w.pay(lab))
    with boa.reverts("ReputationRegistry: valueDecimals above 18"):
        w.feedback(lab.address, 1, 19)
    with boa.reverts("ReputationRegistry: |value| above 1e38"):
        w.feedback(lab.address, 10**38 + 1)
    w.feedback(lab.address, -32, 1, "tradingYield", "month")
    w.feedback(lab.address, 9977, 2, "u" * 32, "v" * 32)  # the longest tags
    w.feedback(lab.address, 1, 0, "", "x")
    assert w.rep.readFeedback(w.agent, lab.address, 1) == (-32, 1, "tradingYield", "month", False)
    assert w.rep.readFeedback(w.agent, lab.address, 2) == (9977, 2, "u" * 32, "v" * 32, False)
    assert w.rep.readFeedback(w.agent, lab.address, 3) == (1, 0, "", "x", False)
    with pytest.raises(Exception):  # noqa: B017 - 33 bytes do not fit the ABI's String[32]
        w.feedback(lab.address, 1, 0, "t" * 33)


def test_summary_weights_by_deal_value_and_skips_revoked(w: World) -> None:
    big, small = w.client(), w.client()
    w.rep.recordPayment(big.address, w.pay(big, 3_000_000))
    w.rep.recordPayment(small.address, w.pay(small, 1_000_000))
    w.rep.recordPayment(small.address, w.pay(small, 1_000_000))
    w.feedback(big.address, 80)
    w.feedback(small.address, 40)
    w.feedback(small.address, 0, 0, "other")
    both = [big.address, small.address]
    assert w.rep.getSummary(w.agent, both, "starred", "") == (2, 70, 0)  # (3*80 + 1*40) / 4
    assert w.rep.getSummary(w.agent, both, "", "") == (3, 56, 0)  # (240 + 40 + 0) / 5
    with boa.env.prank(big.address):
        w.rep.revokeFeedback(w.agent, 1)
    with boa.env.prank(big.address), boa.reverts("ReputationRegistry: feedback already revoked"):
        w.rep.revokeFeedback(w.agent, 1)
    with (
        boa.env.prank(small.address),
        boa.reverts("ReputationRegistry: no such feedback of the caller"),
    ):
        w.rep.revokeFeedback(w.agent, 3)
    assert w.rep.getSummary(w.agent, both, "starred", "") == (1, 40, 0)
    with boa.reverts("ReputationRegistry: clientAddresses is required"):
        w.rep.getSummary(w.agent, [], "", "")
    everything = w.rep.readAllFeedback(w.agent, [], "", "", True)
    assert everything[0] == [big.address, small.address, small.address]
    assert everything[6] == [True, False, False]
    assert w.rep.readAllFeedback(w.agent, [], "", "", False)[1] == [1, 2]
    count, total, weights, _, cursor = w.rep.getSummaryPage(w.agent, [], "", "", 0, 1)
    assert (count, cursor) == (0, 1 << 64)  # the revoked one was read; page ends there
    count, total, weights, _, cursor = w.rep.getSummaryPage(w.agent, [], "", "", cursor, 10)
    assert (count, total, weights, cursor) == (2, 40 * 10**18 * 1_000_000, 2_000_000, 0)


def test_mixed_decimals_summarize_in_the_most_frequent(w: World) -> None:
    lab = w.client()
    for _ in range(3):
        w.rep.recordPayment(lab.address, w.pay(lab, 10**6))
    w.feedback(lab.address, 9977, 2, "uptime")
    w.feedback(lab.address, 9900, 2, "uptime")
    w.feedback(lab.address, 100, 0, "uptime")
    assert w.rep.getSummary(w.agent, [lab.address], "uptime", "") == (3, 9959, 2)


def test_responses_are_counted_per_responder(w: World) -> None:
    lab = w.client()
    w.rep.recordPayment(lab.address, w.pay(lab))
    w.feedback(lab.address)
    with boa.reverts("ReputationRegistry: empty responseURI"):
        w.rep.appendResponse(w.agent, lab.address, 1, "", b"\0" * 32)
    with boa.reverts("ReputationRegistry: no such feedback"):
        w.rep.appendResponse(w.agent, lab.address, 2, "ipfs://r", b"\0" * 32)
    with boa.env.prank(w.agent_owner):
        w.rep.appendResponse(w.agent, lab.address, 1, "ipfs://refund-issued", b"\1" * 32)
        w.rep.appendResponse(w.agent, lab.address, 1, "ipfs://again", b"\2" * 32)
    w.rep.appendResponse(w.agent, lab.address, 1, "ipfs://spam-check", b"\3" * 32)
    assert w.rep.getResponseCount(w.agent, lab.address, 1, []) == 3
    assert w.rep.getResponseCount(w.agent, lab.address, 1, [w.agent_owner]) == 2


def test_give_feedback_gas_is_under_120k(w: World) -> None:
    lab = w.client()
    for _ in range(2):
        w.rep.recordPayment(lab.address, w.pay(lab))
    for tags in (("starred", "quality"), ("responseTime", "")):
        with boa.env.prank(lab.address):
            w.rep.giveFeedback(w.agent, 87, 0, *tags, "https://triage.example/a2a",
                               "ipfs://bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi",
                               b"\x11" * 32)  # fmt: skip
            gas = w.rep._computation.get_gas_used() + 21_000
        assert gas < 120_000, gas


def _tdiv(a: int, b: int) -> int:
    """Integer division rounding toward zero, as the EVM's SDIV (and Vyper's //) does."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


class ReputationMachine(RuleBasedStateMachine):
    """Random deals, feedback, revocations and Sybil attempts against a mirror: a feedback
    exists only where a deal backs it, each deal backs one, nobody rates its own agent."""

    @initialize()
    def setup(self) -> None:
        self.w = World()
        self.clients = [self.w.client() for _ in range(3)]
        self.sybils = [Account.create() for _ in range(2)]
        self.deals = {c.address: 0 for c in self.clients}
        self.given = {c.address: [] for c in self.clients}  # (value, weight, revoked)
        self.weights: dict[str, list[int]] = {c.address: [] for c in self.clients}

    @rule(
        i=st.integers(0, 2), value=st.integers(1, 5 * 10**6), via=st.sampled_from(["x402", "job"])
    )
    def deal(self, i: int, value: int, via: str) -> None:
        client = self.clients[i]
        if via == "x402":
            self.w.rep.recordPayment(client.address, self.w.pay(client, value))
        else:
            self.w.rep.recordJob(self.w.job(client.address, value))
        self.deals[client.address] += 1
        self.weights[client.address].append(value)

    @rule(i=st.integers(0, 2), value=st.integers(-100, 100))
    def give(self, i: int, value: int) -> None:
        client = self.clients[i].address
        if self.deals[client] == 0:
            with boa.reverts():
                self.w.feedback(client, value)
            return
        self.w.feedback(client, value)
        self.deals[client] -= 1
        self.given[client].append([value, self.weights[client].pop(0), False])

    @rule(i=st.integers(0, 1), value=st.integers(-100, 100))
    def sybil(self, i: int, value: int) -> None:
        with boa.reverts():
            self.w.feedback(self.sybils[i].address, value)

    @rule()
    def owner_rates_itself(self) -> None:
        with boa.env.prank(self.w.agent_owner), boa.reverts():
            self.w.rep.giveFeedback(self.w.agent, 100, 0, "", "", "", "", b"\0" * 32)

    @rule(i=st.integers(0, 2), data=st.data())
    def revoke(self, i: int, data: st.DataObject) -> None:
        client = self.clients[i].address
        if not self.given[client]:
            return
        index = data.draw(st.integers(1, len(self.given[client])))
        entry = self.given[client][index - 1]
        with boa.env.prank(client):
            if entry[2]:
                with boa.reverts("ReputationRegistry: feedback already revoked"):
                    self.w.rep.revokeFeedback(self.w.agent, index)
            else:
                self.w.rep.revokeFeedback(self.w.agent, index)
                entry[2] = True

    @invariant()
    def mirror(self) -> None:
        if not hasattr(self, "w"):
            return
        rep, agent = self.w.rep, self.w.agent
        for client, entries in self.given.items():
            assert rep.getLastIndex(agent, client) == len(entries)
            assert rep.pendingDeals(agent, client) == self.deals[client]
            for k, (value, weight, revoked) in enumerate(entries, start=1):
                assert rep.readFeedback(agent, client, k)[0] == value
                assert rep.readFeedback(agent, client, k)[4] == revoked
                assert rep.feedbackWeight(agent, client, k) == weight
        for sybil in self.sybils:
            assert rep.getLastIndex(agent, sybil.address) == 0
        live = [(v, wt) for es in self.given.values() for v, wt, r in es if not r]
        raters = [c for c, es in self.given.items() if es]
        if live:
            count, value, _ = rep.getSummary(agent, raters, "", "")
            average = _tdiv(sum(v * wt for v, wt in live) * 10**18, sum(wt for _, wt in live))
            assert (count, value) == (len(live), _tdiv(average, 10**18))


ReputationMachine.TestCase.settings = settings(
    max_examples=20, stateful_step_count=12, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)  # fmt: skip
test_reputation_machine = ReputationMachine.TestCase
