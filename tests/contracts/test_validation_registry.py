"""The validation registry: the ERC-8004 Validation Registry's ABI and its one-validator
requests, and beyond it k-of-n staked validation with commit and reveal, a stake-weighted
median, slashing after a challenge window, a withdrawal delay, and ERC-8183 job evaluation."""

from __future__ import annotations

from typing import Any

import boa
import pytest
from eth_utils import event_signature_to_log_topic, keccak
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from tests.contracts.conftest import ZERO, deploy
from tests.contracts.test_agent_registry import _types

pytestmark = pytest.mark.usefixtures("fresh_env")

DAY = 86400
MIN_STAKE = 100 * 10**6
ASSET = b"\x42" * 32
PENDING, ACCEPTED, REJECTED, INCONCLUSIVE = 1, 2, 3, 4
PAID, SLASHED, SPARED = 1, 2, 3
FUNCTIONS = [
    "validationRequest(address,uint256,string,bytes32)",
    "validationResponse(bytes32,uint8,string,bytes32,string)",
    "getValidationStatus(bytes32)",
    "getSummary(uint256,address[],string)",
    "getAgentValidations(uint256)",
    "getValidatorRequests(address)",
    "getIdentityRegistry()",
]
EVENTS = [
    "ValidationRequest(address,uint256,string,bytes32)",
    "ValidationResponse(address,uint256,bytes32,uint8,string,bytes32,string)",
]


def mirror_median(votes: list[tuple[int, int]]) -> int:
    """The verdict as specified: the highest response that more than half of the revealed
    weight reached or exceeded (Yuma consensus's κ-quantile at κ = 1/2), 0 with no reveal."""
    total = sum(w for _, w in votes)
    best = 0
    for r, _ in votes:
        if 2 * sum(w for r2, w in votes if r2 >= r) > total:
            best = max(best, r)
    return best


def commitment(request: bytes, response: int, salt: bytes, validator: str) -> bytes:
    from eth_abi import encode

    return keccak(encode(["bytes32", "uint8", "bytes32", "address"],
                         [request, response, salt, validator]))  # fmt: skip


def rh(label: str) -> bytes:
    return keccak(text=label)


def test_the_abi_is_erc_8004s() -> None:
    from neuroledger.chain import load_artifact

    abi = load_artifact("ValidationRegistry").abi
    ours = {f"{e['name']}({_types(e)})" for e in abi if e["type"] == "function"}
    events = {f"{e['name']}({_types(e)})" for e in abi if e["type"] == "event"}
    assert set(FUNCTIONS) <= ours and set(EVENTS) <= events
    outputs = {e["name"]: [o["type"] for o in e["outputs"]] for e in abi if e["type"] == "function"}
    assert outputs["getValidationStatus"] == ["address", "uint256", "uint8", "bytes32", "string",
                                              "uint256"]  # fmt: skip
    assert outputs["getSummary"] == ["uint64", "uint8"]
    assert outputs["getAgentValidations"] == outputs["getValidatorRequests"] == ["bytes32[]"]
    indexed = {e["name"]: [i["indexed"] for i in e["inputs"]] for e in abi if e["type"] == "event"}
    assert indexed["ValidationRequest"] == [True, True, False, True]
    assert indexed["ValidationResponse"] == [True, True, True, False, False, False, False]
    assert event_signature_to_log_topic(EVENTS[1]).hex() == (
        "0x" + keccak(text=EVENTS[1]).hex()
    ).removeprefix("0x")


class Net:
    """Credits, the agent registry, the escrow, the validation registry, an agent and validators."""

    def __init__(self, validators: int = 5) -> None:
        self.owner = boa.env.generate_address("owner")
        self.guardian = boa.env.generate_address("guardian")
        self.token = deploy("Credits", 10**15)
        self.agents = deploy("AgentRegistry")
        self.escrow = deploy("JobEscrow", self.token.address, self.owner, self.guardian)
        self.reg = deploy("ValidationRegistry", self.agents.address, self.escrow.address,
                          self.owner, self.guardian)  # fmt: skip
        self.agent_owner = boa.env.generate_address("agent-owner")
        with boa.env.prank(self.agent_owner):
            self.agent = self.agents.register("https://triage.example/card.json")
        self.fund(self.agent_owner)
        self.client = boa.env.generate_address("client")
        self.fund(self.client)
        self.anyone = boa.env.generate_address("anyone")
        self.validators = [boa.env.generate_address(f"validator-{i}") for i in range(validators)]
        for v in self.validators:
            self.fund(v)
            with boa.env.prank(v):
                self.reg.stake(MIN_STAKE)

    def fund(self, who: str, amount: int = 10**12) -> None:
        self.token.faucet(who, amount)
        with boa.env.prank(who):
            self.token.approve(self.reg.address, 2**256 - 1)
            self.token.approve(self.escrow.address, 2**256 - 1)

    def now(self) -> int:
        return int(boa.env.evm.patch.timestamp)

    def request(self, label: str = "r1", *, validators: list[str] | None = None, n: int = 0,
                k: int = 3, threshold: int = 50, fee: int = 5 * 10**6, tag: str = "accuracy",
                commit: int = 600, reveal: int = 600) -> bytes:  # fmt: skip
        h = rh(label)
        listed = self.validators if validators is None else validators
        with boa.env.prank(self.agent_owner):
            self.reg.requestValidation(self.agent, f"file:///requests/{label}.json", h, listed, n, k,
                                       threshold, commit, reveal, fee, tag)  # fmt: skip
        return h

    def vote(self, h: bytes, v: str, response: int, *, reveal: bool = True) -> None:
        salt = keccak(text=f"salt-{v}")
        with boa.env.prank(v):
            self.reg.commit(h, commitment(h, response, salt, v))
        if reveal:
            self.pending_reveals.append((h, v, response, salt))

    pending_reveals: list[tuple[bytes, str, int, bytes]]

    def run(self, h: bytes, responses: dict[str, int | None]) -> None:
        """Commit every response (None: offline), then reveal them, then finalize."""
        self.pending_reveals = []
        for v, r in responses.items():
            if r is not None:
                self.vote(h, v, r)
        if len(self.pending_reveals) < len(self.reg.getRequest(h).validators):
            boa.env.time_travel(seconds=601)
        for h2, v, r, salt in self.pending_reveals:
            with boa.env.prank(v):
                self.reg.reveal(h2, r, salt, "file:///evidence.json", b"\x01" * 32)
        if len(self.pending_reveals) < len(self.reg.getRequest(h).validators):
            boa.env.time_travel(seconds=601)
        with boa.env.prank(self.anyone):
            self.reg.finalize(h)


@pytest.fixture
def net() -> Net:
    return Net()


def test_an_erc_8004_one_validator_request_works_as_the_standard_says(net: Net) -> None:
    r, v = net.reg, boa.env.generate_address("tee-validator")
    h = rh("single")
    with (
        boa.env.prank(net.anyone),
        boa.reverts("ValidationRegistry: caller is not the agent's owner or operator"),
    ):
        r.validationRequest(v, net.agent, "ipfs://req", h)
    with boa.env.prank(net.agent_owner):
        r.validationRequest(v, net.agent, "ipfs://req", h)
        with boa.reverts("ValidationRegistry: the request exists"):
            r.validationRequest(v, net.agent, "ipfs://req", h)
    assert r.getValidationStatus(h) == (v, net.agent, 0, b"\0" * 32, "", net.now())
    with (
        boa.env.prank(net.anyone),
        boa.reverts("ValidationRegistry: caller is not the request's validator"),
    ):
        r.validationResponse(h, 100, "", b"\0" * 32, "")
    with boa.env.prank(v):
        with boa.reverts("ValidationRegistry: response above 100"):
            r.validationResponse(h, 101, "", b"\0" * 32, "")
        r.validationResponse(h, 40, "ipfs://soft", b"\x01" * 32, "soft")
        r.validationResponse(h, 100, "ipfs://hard", b"\x02" * 32, "hard")  # the last one counts
        with boa.reverts("ValidationRegistry: not a k-of-n request"):
            r.commit(h, b"\x01" * 32)
    assert r.getValidationStatus(h) == (v, net.agent, 100, b"\x02" * 32, "hard", net.now())
    assert r.getSummary(net.agent, [], "") == (1, 100)
    assert r.getSummary(net.agent, [], "soft") == (0, 0)
    assert r.getAgentValidations(net.agent) == [h] and r.getValidatorRequests(v) == [h]
    with boa.reverts("ValidationRegistry: no such request"):
        r.getValidationStatus(rh("none"))


def test_k_of_n_from_commit_to_settled_pays_the_honest_and_slashes_the_liar_and_the_absent(
    net: Net,
) -> None:
    r, t = net.reg, net.token
    v = net.validators
    h = net.request(fee=5 * 10**6, k=3)
    before = {x: t.balanceOf(x) for x in v}
    net.run(h, {v[0]: 100, v[1]: 100, v[2]: 95, v[3]: 0, v[4]: None})
    req = r.getRequest(h)
    # More than half of the stake reached 95, not 100: the median is 95.
    assert (req.status, req.result, req.revealed, req.committed) == (ACCEPTED, 95, 4, 4)
    assert r.getValidationStatus(h)[0] == r.address and r.getValidationStatus(h)[2] == 95
    with (
        boa.env.prank(net.anyone),
        boa.reverts("ValidationRegistry: the challenge window is still open"),
    ):
        r.settle(h)
    boa.env.time_travel(seconds=600)
    with boa.env.prank(net.anyone):
        r.settle(h)
        with boa.reverts("ValidationRegistry: the request is settled"):
            r.settle(h)
    share = 5 * 10**6 // 3
    for x in v[:3]:
        assert t.balanceOf(x) == before[x] + share and r.getVote(h, x).outcome == PAID
        assert r.stakeOf(x) == MIN_STAKE
    for x in v[3:]:
        assert r.getVote(h, x).outcome == SLASHED and r.stakeOf(x) == MIN_STAKE * 9 // 10
        assert t.balanceOf(x) == before[x]
    assert r.slashedPool() == 2 * MIN_STAKE // 10
    assert t.balanceOf(net.agent_owner) == 10**12 - 5 * 10**6 + (5 * 10**6 - 3 * share)
    with boa.env.prank(net.anyone):
        r.sweepSlashed()
    assert t.balanceOf(net.owner) == 2 * MIN_STAKE // 10 and r.slashedPool() == 0
    # ERC-8004 views count every revealed response.
    assert r.getSummary(net.agent, [], "accuracy") == (4, (100 + 100 + 95 + 0) // 4)
    assert r.getSummary(net.agent, v[:2], "") == (2, 100)
    assert all(r.getValidatorRequests(x) == [h] for x in v)


def test_nothing_can_be_copied_before_the_reveals_open(net: Net) -> None:
    r, v = net.reg, net.validators
    h = net.request()
    salt = b"\x07" * 32
    with boa.env.prank(v[0]):
        r.commit(h, commitment(h, 100, salt, v[0]))
        # Reveals open only when all committed or at the commit deadline: nothing is shown
        # while others may still commit.
        with boa.reverts("ValidationRegistry: reveals are not open yet"):
            r.reveal(h, 100, salt, "", b"\0" * 32)
    # A copied commitment is useless: it binds the validator's own address.
    with boa.env.prank(v[1]):
        r.commit(h, commitment(h, 100, salt, v[0]))
    boa.env.time_travel(seconds=600)
    with (
        boa.env.prank(v[1]),
        boa.reverts("ValidationRegistry: the reveal does not match the commitment"),
    ):
        r.reveal(h, 100, salt, "", b"\0" * 32)
    with boa.env.prank(v[2]), boa.reverts("ValidationRegistry: the commit deadline has passed"):
        r.commit(h, commitment(h, 100, salt, v[2]))
    with boa.env.prank(v[0]):
        r.reveal(h, 100, salt, "", b"\0" * 32)


def test_bad_votes_are_refused_and_change_nothing(net: Net) -> None:
    r, v = net.reg, net.validators
    h = net.request()
    salt = b"\x07" * 32
    with (
        boa.env.prank(net.anyone),
        boa.reverts("ValidationRegistry: caller is not a validator of the request"),
    ):
        r.commit(h, commitment(h, 1, salt, net.anyone))
    with boa.env.prank(v[0]):
        with boa.reverts("ValidationRegistry: no commitment to reveal"):
            r.reveal(h, 100, salt, "", b"\0" * 32)
        with boa.reverts("ValidationRegistry: commitment is zero"):
            r.commit(h, b"\0" * 32)
        r.commit(h, commitment(h, 100, salt, v[0]))
        with boa.reverts("ValidationRegistry: already committed"):
            r.commit(h, commitment(h, 0, salt, v[0]))
    with boa.env.prank(v[1]):
        r.commit(h, commitment(h, 100, salt, v[1]))
    with boa.reverts("ValidationRegistry: no such request"):
        r.commit(rh("nothing"), b"\x01" * 32)
    boa.env.time_travel(seconds=600)
    with boa.env.prank(v[0]):
        with boa.reverts("ValidationRegistry: the reveal does not match the commitment"):
            r.reveal(h, 99, salt, "", b"\0" * 32)
        r.reveal(h, 100, salt, "", b"\0" * 32)
        with boa.reverts("ValidationRegistry: already revealed"):
            r.reveal(h, 100, salt, "", b"\0" * 32)
    with (
        boa.env.prank(net.anyone),
        boa.reverts("ValidationRegistry: the reveal deadline has not passed"),
    ):
        r.finalize(h)
    boa.env.time_travel(seconds=600)
    with boa.env.prank(v[1]), boa.reverts("ValidationRegistry: the reveal deadline has passed"):
        r.reveal(h, 100, salt, "", b"\0" * 32)
    assert r.getRequest(h).revealed == 1


def test_request_terms_are_checked(net: Net) -> None:
    r, v = net.reg, net.validators
    cases = [
        (dict(k=0), "k must be 1 to n"),
        (dict(k=6), "k must be 1 to n"),
        (dict(threshold=101), "threshold above 100"),
        (dict(commit=59), "commit and reveal periods must be 60 s to 30 days"),
        (dict(reveal=31 * DAY), "commit and reveal periods must be 60 s to 30 days"),
        (dict(validators=[v[0], v[0]], k=2), "a validator is listed twice"),
        (dict(validators=[net.anyone], k=1), "a validator has less than the minimum stake"),
        (dict(validators=[], n=0), "n must be 1 to 16"),
        (dict(validators=[], n=6), "not enough validators in the pool"),
    ]
    for kwargs, reason in cases:
        with boa.reverts(f"ValidationRegistry: {reason}"):
            net.request("bad", **kwargs)
    # The agent's own owner may not judge it, even when staked.
    with boa.env.prank(net.agent_owner):
        r.stake(MIN_STAKE)
    with boa.reverts("ValidationRegistry: a validator is a party to the request"):
        net.request("bad", validators=[net.agent_owner], k=1)
    with (
        boa.env.prank(net.anyone),
        boa.reverts("ValidationRegistry: caller is not the agent's owner or operator"),
    ):
        r.requestValidation(net.agent, "", rh("x"), v, 0, 3, 50, 600, 600, 0, "")
    assert r.getAgentValidations(net.agent) == []


def test_the_pool_draws_n_distinct_eligible_validators_never_a_party(net: Net) -> None:
    r = net.reg
    with boa.env.prank(net.agent_owner):
        r.stake(MIN_STAKE)  # in the pool, but never drawn for its own agent
    assert r.poolSize() == 6
    for i in range(8):
        h = net.request(f"draw-{i}", validators=[], n=5, k=3)
        chosen = r.getRequest(h).validators
        assert len(set(chosen)) == 5 and set(chosen) == set(net.validators)
    # One validator leaves: 4 eligible are left for a request of 5.
    with boa.env.prank(net.validators[0]):
        r.requestUnstake(1)
    assert r.poolSize() == 5
    with boa.reverts("ValidationRegistry: not enough eligible validators in the pool"):
        net.request("draw-x", validators=[], n=5, k=3)
    h = net.request("draw-last", validators=[], n=4, k=3)
    assert set(r.getRequest(h).validators) == set(net.validators[1:])


@pytest.mark.parametrize(
    ("votes", "k", "threshold", "status"),
    [
        ([100, 100, 100, None, None], 3, 50, ACCEPTED),
        ([100, 100, None, None, None], 3, 50, INCONCLUSIVE),
        ([0, 0, 0, 100, 100], 3, 50, REJECTED),
        ([60, 60, 40, 40, None], 3, 50, REJECTED),  # a tie goes to the lower response
        ([60, 60, 60, 40, None], 3, 60, ACCEPTED),
        ([59, 60, 60, 40, None], 4, 60, REJECTED),
    ],
)
def test_k_of_n_acceptance_is_exactly_as_specified(net: Net, votes: list[int | None], k: int, threshold: int,
                                                   status: int) -> None:  # fmt: skip
    h = net.request(k=k, threshold=threshold)
    net.run(h, dict(zip(net.validators, votes, strict=True)))
    req = net.reg.getRequest(h)
    revealed = [(x, MIN_STAKE) for x in votes if x is not None]
    assert req.result == mirror_median(revealed)
    assert req.status == status


def test_the_median_is_weighted_by_stake(net: Net) -> None:
    whale = net.validators[0]
    with boa.env.prank(whale):
        net.reg.stake(4 * MIN_STAKE)  # 5 of 9 stake units
    h = net.request(k=3)
    net.run(h, {whale: 0, net.validators[1]: 100, net.validators[2]: 100, net.validators[3]: 100,
                net.validators[4]: 100})  # fmt: skip
    assert net.reg.getRequest(h).result == 0 and net.reg.getRequest(h).status == REJECTED


def test_a_validated_job_is_completed_or_rejected_by_the_verdict_alone(net: Net) -> None:
    r, e, t = net.reg, net.escrow, net.token
    provider = net.agent_owner  # the agent's wallet
    check = keccak(text='{"kind":"model-accuracy"}')
    jobs = []
    for i in range(3):
        with boa.env.prank(net.client):
            j = e.createJob(provider, r.address, net.now() + 10 * DAY, "label", ZERO)
            if i == 0:
                with (
                    boa.env.prank(net.anyone),
                    boa.reverts("ValidationRegistry: caller is not the job's client"),
                ):
                    r.setJobTerms(j, 5, 3, 50, check)
                with boa.reverts(
                    "ValidationRegistry: terms need 1 <= k <= n <= 16, a threshold up to 100 and a check"
                ):
                    r.setJobTerms(j, 5, 6, 50, check)
            r.setJobTerms(j, 5, 3, 50, check)
            with boa.reverts("ValidationRegistry: the job's terms are set"):
                r.setJobTerms(j, 1, 1, 0, check)  # the client cannot soften them later
            e.setBudget(j, 10**6, b"")
            e.fund(j, 10**6, b"")
        jobs.append(j)
    with boa.env.prank(net.client):
        j = e.createJob(provider, r.address, net.now() + 10 * DAY, "label", ZERO)
        e.setBudget(j, 10**6, b"")
        e.fund(j, 10**6, b"")
        with boa.reverts("ValidationRegistry: the job is not Open"):
            r.setJobTerms(j, 5, 3, 50, check)
    assert r.jobTerms(jobs[0]) == 5 | (3 << 8) | (50 << 16) and r.jobCheck(jobs[0]) == check
    with boa.env.prank(provider), boa.reverts("ValidationRegistry: the job is not submitted"):
        r.requestJobValidation(jobs[0], "", rh("j0"), 600, 600, 0)
    with boa.env.prank(provider):
        for j in jobs:
            e.submit(j, ASSET, b"")
    # Only the provider asks: the client could otherwise point validators at nothing.
    with (
        boa.env.prank(net.client),
        boa.reverts("ValidationRegistry: caller is not the job's provider"),
    ):
        r.requestJobValidation(jobs[0], "", rh("j0"), 600, 600, 0)
    outcomes = ([100, 100, 100, 0, None], [0, 0, 0, 100, 100], [100, 100, None, None, None])
    for j, responses in zip(jobs, outcomes, strict=True):
        with boa.env.prank(provider):
            r.requestJobValidation(j, "", rh(f"j{j}"), 600, 600, 3 * 10**6)
            with boa.reverts("ValidationRegistry: the job's validation is still pending"):
                r.requestJobValidation(j, "", rh(f"again{j}"), 600, 600, 0)
        req = r.getRequest(rh(f"j{j}"))
        assert (req.n, req.k, req.threshold, req.jobId) == (5, 3, 50, j)
        assert set(req.validators) == set(net.validators)  # drawn from the pool
        net.run(rh(f"j{j}"), dict(zip(net.validators, responses, strict=True)))
    assert [int(e.getJob(j).status) for j in jobs] == [
        3,
        4,
        2,
    ]  # completed, rejected, still submitted
    assert t.balanceOf(provider) == 10**12 - 9 * 10**6 + 10**6
    # The inconclusive one may be asked again, and this time it passes.
    with boa.env.prank(provider):
        r.requestJobValidation(jobs[2], "", rh("j-retry"), 600, 600, 0)
    net.run(rh("j-retry"), dict(zip(net.validators, [100, 100, 100, 100, 100], strict=True)))
    assert int(e.getJob(jobs[2]).status) == 3
    # A job whose evaluator is someone else is not this registry's to judge.
    with boa.env.prank(net.client):
        j = e.createJob(provider, net.anyone, net.now() + DAY, "label", ZERO)
        with boa.reverts("ValidationRegistry: this registry is not the job's evaluator"):
            r.setJobTerms(j, 5, 3, 50, check)


def test_stake_stays_slashable_until_every_request_is_settled(net: Net) -> None:
    r, t = net.reg, net.token
    v = net.validators
    h = net.request()
    with boa.env.prank(v[4]):
        r.requestUnstake(MIN_STAKE)  # leaves at once, but still owes this request
        with boa.reverts("ValidationRegistry: the withdrawal delay has not passed"):
            r.withdraw()
    assert r.poolSize() == 4 and r.unbonding(v[4]) == MIN_STAKE
    net.run(h, {v[0]: 100, v[1]: 100, v[2]: 100, v[3]: 100, v[4]: None})
    boa.env.time_travel(seconds=DAY)
    with boa.env.prank(v[4]), boa.reverts("ValidationRegistry: settle your open requests first"):
        r.withdraw()
    with boa.env.prank(v[4]):
        r.settle(h)  # anyone may settle, the validator too
        before = t.balanceOf(v[4])
        r.withdraw()
        with boa.reverts("ValidationRegistry: nothing to withdraw"):
            r.withdraw()
    assert t.balanceOf(v[4]) == before + MIN_STAKE * 9 // 10  # slashed from what was unbonding


def test_the_pause_stops_new_stake_and_requests_but_never_an_exit(net: Net) -> None:
    r, v = net.reg, net.validators
    h = net.request()
    with boa.env.prank(net.guardian):
        r.pause()
    with boa.reverts("pausable: contract is paused"):
        net.request("paused")
    with boa.env.prank(v[0]), boa.reverts("pausable: contract is paused"):
        r.stake(1)
    net.run(h, {x: 100 for x in v})
    boa.env.time_travel(seconds=DAY)
    with boa.env.prank(v[0]):
        r.settle(h)
        r.requestUnstake(MIN_STAKE)
    boa.env.time_travel(seconds=DAY)
    with boa.env.prank(v[0]):
        r.withdraw()
    assert r.stakeOf(v[0]) == 0 and r.unbonding(v[0]) == 0


def test_the_guardian_may_waive_slashes_only_within_the_challenge_window(net: Net) -> None:
    r, v = net.reg, net.validators
    with boa.env.prank(net.owner):
        r.setParameters(MIN_STAKE, 1000, 10, 7200, DAY, net.owner)
    h1 = net.request("a")
    net.run(h1, {v[0]: 100, v[1]: 100, v[2]: 100, v[3]: 0, v[4]: None})
    h2 = net.request("b")
    net.run(h2, {v[0]: 100, v[1]: 100, v[2]: 100, v[3]: 0, v[4]: None})
    with boa.env.prank(net.anyone), boa.reverts("governed: caller is not the guardian"):
        r.waiveSlashing(h1, b"\0" * 32)
    with boa.env.prank(net.guardian):
        r.waiveSlashing(h1, keccak(text="the accuracy check had a bug"))
    boa.env.time_travel(seconds=7200)
    with (
        boa.env.prank(net.guardian),
        boa.reverts("ValidationRegistry: the challenge window has passed"),
    ):
        r.waiveSlashing(h2, b"\0" * 32)
    with boa.env.prank(net.anyone):
        r.settle(h1)
    assert r.getVote(h1, v[3]).outcome == SPARED and r.stakeOf(v[3]) == MIN_STAKE
    with boa.env.prank(net.anyone):
        r.settle(h2)
    assert r.getVote(h2, v[3]).outcome == SLASHED and r.stakeOf(v[3]) == MIN_STAKE * 9 // 10


def test_parameters_change_only_through_the_owner_within_bounds(net: Net) -> None:
    r = net.reg
    with boa.env.prank(net.anyone), boa.reverts("ownable: caller is not the owner"):
        r.setParameters(1, 0, 0, 0, 0, net.anyone)
    with boa.env.prank(net.owner):
        with boa.reverts("ValidationRegistry: slash above 50%"):
            r.setParameters(1, 5001, 0, 0, 0, net.owner)
        with boa.reverts("ValidationRegistry: minimum stake is zero"):
            r.setParameters(0, 0, 0, 0, 0, net.owner)
        r.setParameters(10, 2000, 5, 60, 120, net.anyone)
    assert (r.minStake(), r.slashBps(), r.tolerance(), r.challengeWindow(), r.withdrawalDelay(),
            r.treasury()) == (10, 2000, 5, 60, 120, net.anyone)  # fmt: skip


class ValidationMachine(RuleBasedStateMachine):
    """Requests made, voted (honestly, falsely or not at all), finalized and settled, with
    stakes added, unbonded and withdrawn and time passing, at random. Invariants: the
    registry holds exactly the active and unbonding stake, the unsettled fees and the
    slashed pool; no token is created or lost; every verdict is the mirror model's; a
    validator that revealed within the tolerance of the median is never slashed."""

    @initialize()
    def setup(self) -> None:
        self.env = boa.Env()
        with boa.swap_env(self.env):
            self.net = Net(validators=5)
            self.total = self.net.token.totalSupply()
        self.requests: list[bytes] = []
        self.responses: dict[bytes, dict[str, tuple[int, bytes]]] = {}
        self.settled: set[bytes] = set()
        self.count = 0
        self.done: set[str] = set()

    def _try(self, who: str, fn: Any, *args: Any) -> bool:
        with boa.swap_env(self.env), boa.env.prank(who):
            try:
                fn(*args)
                return True
            except Exception:
                return False

    @rule(k=st.integers(1, 5), threshold=st.integers(0, 100), fee=st.integers(0, 10**7),
          drawn=st.booleans())  # fmt: skip
    def request(self, k: int, threshold: int, fee: int, drawn: bool) -> None:
        self.count += 1
        h = rh(f"m{self.count}")
        n = self.net
        with boa.swap_env(self.env):
            eligible = sum(1 for v in n.validators if n.reg.stakeOf(v) >= n.reg.minStake())
        listed = [] if drawn else [v for v in n.validators if self._stake(v) >= MIN_STAKE]
        size = 3 if drawn else len(listed)
        if self._try(n.agent_owner, n.reg.requestValidation, n.agent, "", h, listed, size if drawn else 0,
                     min(k, max(size, 1)), threshold, 600, 600, fee, ""):  # fmt: skip
            self.requests.append(h)
            self.responses[h] = {}
            self.done.add("request")
        else:
            assert eligible < max(size, 1) or size == 0 or n.reg.paused()

    def _stake(self, v: str) -> int:
        with boa.swap_env(self.env):
            return int(self.net.reg.stakeOf(v))

    def _commit(self, h: bytes, v: str, response: int) -> None:
        salt = keccak(text=f"{h.hex()}{v}")
        if self._try(v, self.net.reg.commit, h, commitment(h, response, salt, v)):
            self.responses[h][v] = (response, salt)
            self.done.add("commit")

    def _finalize(self, h: bytes) -> None:
        if not self._try(self.net.anyone, self.net.reg.finalize, h):
            return
        self.done.add("finalize")
        with boa.swap_env(self.env):
            req = self.net.reg.getRequest(h)
            votes = [(int(vote.response), int(vote.weight)) for v in req.validators
                     if (vote := self.net.reg.getVote(h, v)).revealed]  # fmt: skip
        assert req.result == mirror_median(votes)
        expected = (
            INCONCLUSIVE
            if len(votes) < req.k
            else (ACCEPTED if req.result >= req.threshold else REJECTED)
        )
        assert req.status == expected

    def _settle(self, h: bytes) -> None:
        if not self._try(self.net.anyone, self.net.reg.settle, h):
            return
        self.done.add("settle")
        self.settled.add(h)
        with boa.swap_env(self.env):
            reg = self.net.reg
            req = reg.getRequest(h)
            for v in req.validators:
                vote = reg.getVote(h, v)
                honest = vote.revealed and (
                    req.status == INCONCLUSIVE
                    or abs(int(vote.response) - int(req.result)) <= reg.tolerance()
                )
                assert (vote.outcome == PAID) == honest  # honest revealers are paid, never slashed

    @rule(which=st.integers(0, 4), amount=st.sampled_from([1, MIN_STAKE, 3 * MIN_STAKE]))
    def stake_more(self, which: int, amount: int) -> None:
        v = self.net.validators[which]
        if self._try(v, self.net.reg.stake, amount):
            self.done.add("stake")

    @rule(which=st.integers(0, 4), amount=st.sampled_from([1, MIN_STAKE // 2, MIN_STAKE]))
    def unstake(self, which: int, amount: int) -> None:
        v = self.net.validators[which]
        if self._try(v, self.net.reg.requestUnstake, amount):
            self.done.add("unstake")

    @rule(which=st.integers(0, 4))
    def withdraw(self, which: int) -> None:
        v = self.net.validators[which]
        with boa.swap_env(self.env):
            due = max(int(self.net.reg.unbondingAt(v)) - self.net.now(), 0)
            boa.env.time_travel(seconds=due)
        if self._try(v, self.net.reg.withdraw):
            self.done.add("withdraw")

    @precondition(lambda self: bool(self.requests))
    @rule(data=st.data())
    def advance(self, data: st.DataObject) -> None:
        """Take a live request one step along: commit (or stay offline), reveal, finalize or
        settle, whichever comes next, after the time it needs (so short runs settle too)."""
        h = data.draw(st.sampled_from(self.requests))
        with boa.swap_env(self.env):
            reg = self.net.reg
            req, now = reg.getRequest(h), self.net.now()
            votes = {v: reg.getVote(h, v) for v in req.validators}
        if req.status != PENDING:
            self._travel(601)
            self._settle(h)
            if self._try(self.net.anyone, reg.sweepSlashed):
                self.done.add("sweep")
            return
        uncommitted = [v for v, vote in votes.items() if not vote.committed]
        unrevealed = [v for v, vote in votes.items() if vote.committed and not vote.revealed]
        if uncommitted and now < req.commitDeadline and data.draw(st.integers(0, 4)):
            response = data.draw(st.one_of(st.sampled_from([0, 95, 100]), st.integers(0, 100)))
            self._commit(h, data.draw(st.sampled_from(uncommitted)), response)
        elif (
            unrevealed
            and (now >= req.commitDeadline or not uncommitted)
            and now < req.revealDeadline
        ):
            v = data.draw(st.sampled_from(unrevealed))
            response, salt = self.responses[h][v]
            if self._try(v, reg.reveal, h, response, salt, "", b"\0" * 32):
                self.done.add("reveal")
        elif now < req.commitDeadline:
            self._travel(int(req.commitDeadline) - now)
        else:
            self._travel(max(int(req.revealDeadline) - now, 0))
            self._finalize(h)

    def _travel(self, seconds: int) -> None:
        with boa.swap_env(self.env):
            boa.env.time_travel(seconds=seconds)

    @precondition(lambda self: bool(self.requests))
    @rule(data=st.data())
    def advance_more(self, data: st.DataObject) -> None:
        """The same as `advance`: requests move along twice as often as anything else."""
        self.advance(data)

    @rule(seconds=st.sampled_from([60, 601, 1300, DAY]))
    def time_passes(self, seconds: int) -> None:
        with boa.swap_env(self.env):
            boa.env.time_travel(seconds=seconds)

    @rule()
    def toggle_pause(self) -> None:
        with boa.swap_env(self.env), boa.env.prank(self.net.guardian):
            (self.net.reg.unpause if self.net.reg.paused() else self.net.reg.pause)()

    @invariant()
    def stake_and_fees_are_conserved(self) -> None:
        if not hasattr(self, "net"):
            return
        n = self.net
        with boa.swap_env(self.env):
            reg, t = n.reg, n.token
            stakes = sum(reg.stakeOf(v) + reg.unbonding(v) for v in n.validators)
            fees = sum(reg.getRequest(h).fee for h in self.requests if h not in self.settled)
            assert t.balanceOf(reg.address) == stakes + fees + reg.slashedPool()
            holders = [*n.validators, n.agent_owner, n.owner, n.client, n.anyone, reg.address]
            assert sum(t.balanceOf(x) for x in holders) == t.totalSupply() == self.total
            for v in n.validators:
                assert reg.openRequests(v) == sum(
                    1 for h in self.requests if h not in self.settled
                    and v in reg.getRequest(h).validators)  # fmt: skip


TestValidationMachine = ValidationMachine.TestCase
TestValidationMachine.settings = settings(max_examples=12, stateful_step_count=30, deadline=None,
                                          suppress_health_check=list(HealthCheck))  # fmt: skip


@pytest.mark.slow
def test_the_validation_machine_reaches_every_action() -> None:
    """The machine is only worth its invariants if its random runs do everything."""
    reached: set[str] = set()

    class Counting(ValidationMachine):
        def teardown(self) -> None:
            reached.update(getattr(self, "done", set()))

    run = Counting.TestCase
    run.settings = settings(max_examples=20, stateful_step_count=40, deadline=None, derandomize=True,
                            suppress_health_check=list(HealthCheck))  # fmt: skip
    run("runTest").runTest()
    assert reached >= {"request", "commit", "reveal", "finalize", "settle", "stake", "unstake",
                       "withdraw", "sweep"}  # fmt: skip
