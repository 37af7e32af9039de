"""The job escrow: ERC-8183's functions, events and state machine, its front-running guard,
refunds no pause or hook can block, the optional dispute window, and funds conserved."""

from __future__ import annotations

from typing import Any

import boa
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from tests.contracts.conftest import ZERO, deploy

pytestmark = pytest.mark.usefixtures("fresh_env")

DAY = 86400
BUDGET = 50 * 10**6
OPEN, FUNDED, SUBMITTED, COMPLETED, REJECTED, EXPIRED = range(6)
ASSET = b"\x42" * 32

FUNCTIONS = [
    "createJob(address,address,uint256,string,address)", "setProvider(uint256,address,bytes)",
    "setBudget(uint256,uint256,bytes)", "fund(uint256,uint256,bytes)",
    "submit(uint256,bytes32,bytes)", "complete(uint256,bytes32,bytes)",
    "reject(uint256,bytes32,bytes)", "claimRefund(uint256)",
]  # fmt: skip
EVENTS = {
    "JobCreated(uint256,address,address,address,uint256,address)": [
        True,
        True,
        True,
        False,
        False,
        False,
    ],
    "ProviderSet(uint256,address)": [True, True],
    "BudgetSet(uint256,uint256)": [True, False],
    "JobFunded(uint256,address,uint256)": [True, True, False],
    "JobSubmitted(uint256,address,bytes32)": [True, True, False],
    "JobCompleted(uint256,address,bytes32)": [True, True, False],
    "JobRejected(uint256,address,bytes32)": [True, True, False],
    "JobExpired(uint256)": [True],
    "PaymentReleased(uint256,address,uint256)": [True, True, False],
    "Refunded(uint256,address,uint256)": [True, True, False],
}

REVERTING_HOOK = """
# pragma version 0.4.3
blocking: public(bool)

@external
def block_all():
    self.blocking = True

@external
def beforeAction(jobId: uint256, selector: bytes4, data: Bytes[2144]):
    assert not self.blocking, "hook: no"

@external
def afterAction(jobId: uint256, selector: bytes4, data: Bytes[2144]):
    assert not self.blocking, "hook: no"
"""


class Market:
    """Credits, a timelock-owned escrow (here: an owner address) and its parties."""

    def __init__(self) -> None:
        self.owner, self.guardian = (
            boa.env.generate_address("owner"),
            boa.env.generate_address("guardian"),
        )
        self.client, self.provider = (
            boa.env.generate_address("client"),
            boa.env.generate_address("provider"),
        )
        self.evaluator, self.anyone = (
            boa.env.generate_address("evaluator"),
            boa.env.generate_address("anyone"),
        )
        self.token = deploy("Credits", 10**15)
        self.escrow = deploy("JobEscrow", self.token.address, self.owner, self.guardian)
        self.token.faucet(self.client, 10**12)
        with boa.env.prank(self.client):
            self.token.approve(self.escrow.address, 2**256 - 1)

    def now(self) -> int:
        return int(boa.env.evm.patch.timestamp)

    def job(self, *, budget: int = BUDGET, fund: bool = True, window: int = 0, hook: str = ZERO,
            expires_in: int = DAY) -> int:  # fmt: skip
        with boa.env.prank(self.client):
            job_id = self.escrow.createJob(
                self.provider, self.evaluator, self.now() + expires_in, "label 1k images", hook
            )
            if window:
                self.escrow.setDisputeWindow(job_id, window)
            if budget:
                self.escrow.setBudget(job_id, budget, b"")
                if fund:
                    self.escrow.fund(job_id, budget, b"")
        return job_id

    def submit(self, job_id: int) -> None:
        with boa.env.prank(self.provider):
            self.escrow.submit(job_id, ASSET, b"")

    def status(self, job_id: int) -> int:
        return int(self.escrow.getJob(job_id).status)


@pytest.fixture
def m() -> Market:
    return Market()


def test_the_abi_is_erc_8183s() -> None:
    from neuroledger.chain import load_artifact

    abi = load_artifact("JobEscrow").abi

    def sig(e: dict) -> str:
        return f"{e['name']}({','.join(i['type'] for i in e['inputs'])})"

    functions = {sig(e) for e in abi if e["type"] == "function"}
    assert set(FUNCTIONS) <= functions
    events = {sig(e): [i["indexed"] for i in e["inputs"]] for e in abi if e["type"] == "event"}
    for signature, indexed in EVENTS.items():
        assert events[signature] == indexed, signature


def test_a_job_from_open_to_paid(m: Market) -> None:
    with boa.env.prank(m.owner):
        m.escrow.setFee(250, m.owner)  # 2.5%, in the suite only through the timelock
    job_id = m.job()
    assert m.status(job_id) == FUNDED and m.token.balanceOf(m.escrow.address) == BUDGET
    m.submit(job_id)
    with boa.env.prank(m.evaluator):
        m.escrow.complete(job_id, b"\x01" * 32, b"")
        names = [type(e).__name__ for e in m.escrow.get_logs()]
    assert names == ["JobCompleted", "Transfer", "Transfer", "PaymentReleased"]  # fee, then pay
    job = m.escrow.getJob(job_id)
    assert (job.status, job.deliverable, job.releaseAt) == (COMPLETED, ASSET, 0)  # paid
    assert m.token.balanceOf(m.provider) == BUDGET * 975 // 1000
    assert (
        m.token.balanceOf(m.owner) == BUDGET * 25 // 1000
        and m.token.balanceOf(m.escrow.address) == 0
    )


def test_a_changed_budget_cannot_be_funded(m: Market) -> None:
    job_id = m.job(fund=False)
    with boa.env.prank(m.provider):
        m.escrow.setBudget(job_id, BUDGET * 10, b"")  # the provider raises the price first
    with boa.env.prank(m.client), boa.reverts("JobEscrow: budget changed"):
        m.escrow.fund(job_id, BUDGET, b"")
    assert m.token.balanceOf(m.escrow.address) == 0


def test_who_may_do_what(m: Market) -> None:
    job_id = m.job(fund=False)
    with boa.env.prank(m.anyone), boa.reverts("JobEscrow: caller is not the client or provider"):
        m.escrow.setBudget(job_id, 1, b"")
    with boa.env.prank(m.provider), boa.reverts("JobEscrow: caller is not the client"):
        m.escrow.fund(job_id, BUDGET, b"")
    with boa.env.prank(m.client):
        m.escrow.fund(job_id, BUDGET, b"")
    with boa.env.prank(m.client), boa.reverts("JobEscrow: caller is not the provider"):
        m.escrow.submit(job_id, ASSET, b"")
    m.submit(job_id)
    with boa.env.prank(m.client), boa.reverts("JobEscrow: caller is not the evaluator"):
        m.escrow.complete(job_id, b"\0" * 32, b"")
    with boa.env.prank(m.client), boa.reverts("JobEscrow: caller is not the evaluator"):
        m.escrow.reject(job_id, b"\0" * 32, b"")
    with boa.env.prank(m.anyone), boa.reverts("ownable: caller is not the owner"):
        m.escrow.setFee(100, m.anyone)
    with boa.env.prank(m.owner), boa.reverts("JobEscrow: fee above 10%"):
        m.escrow.setFee(1001, m.owner)


@pytest.mark.parametrize("when", ["open", "funded", "submitted"])
def test_reject_refunds_what_was_escrowed(m: Market, when: str) -> None:
    job_id = m.job(fund=when != "open")
    if when == "submitted":
        m.submit(job_id)
    before = m.token.balanceOf(m.client)
    with boa.env.prank(m.client if when == "open" else m.evaluator):
        m.escrow.reject(job_id, b"\x09" * 32, b"")
    assert m.status(job_id) == REJECTED
    assert m.token.balanceOf(m.client) == before + (0 if when == "open" else BUDGET)
    with boa.env.prank(m.evaluator), boa.reverts("JobEscrow: job is already final"):
        m.escrow.reject(job_id, b"\0" * 32, b"")


def test_after_expiry_anyone_refunds_even_when_paused_or_hooked(m: Market) -> None:
    job_id = m.job()
    with boa.env.prank(m.anyone), boa.reverts("JobEscrow: job has not expired"):
        m.escrow.claimRefund(job_id)
    with boa.env.prank(m.guardian):
        m.escrow.pause()
    boa.env.time_travel(seconds=DAY)
    before = m.token.balanceOf(m.client)
    with boa.env.prank(m.anyone):
        m.escrow.claimRefund(job_id)
    assert m.status(job_id) == EXPIRED and m.token.balanceOf(m.client) == before + BUDGET
    with boa.env.prank(m.anyone), boa.reverts("JobEscrow: job is not funded"):
        m.escrow.claimRefund(job_id)


def test_a_hook_can_block_actions_but_never_the_refund(m: Market) -> None:
    hook = boa.loads(REVERTING_HOOK)
    job_id = m.job(hook=hook.address, budget=0)
    with boa.env.prank(m.client):
        m.escrow.setBudget(job_id, BUDGET, b"")
        m.escrow.fund(job_id, BUDGET, b"")
    hook.block_all()  # the hook now refuses everything
    with boa.env.prank(m.provider), boa.reverts("hook: no"):
        m.escrow.submit(job_id, ASSET, b"")
    with boa.env.prank(m.evaluator), boa.reverts("hook: no"):
        m.escrow.reject(job_id, b"\0" * 32, b"")
    boa.env.time_travel(seconds=DAY)
    before = m.token.balanceOf(m.client)
    with boa.env.prank(m.anyone):
        m.escrow.claimRefund(job_id)
    assert m.status(job_id) == EXPIRED and m.token.balanceOf(m.client) == before + BUDGET


def test_the_pause_stops_new_money_only(m: Market) -> None:
    funded, submitted = m.job(), m.job()
    m.submit(submitted)
    with boa.env.prank(m.guardian):
        m.escrow.pause()
    with boa.env.prank(m.client), boa.reverts("pausable: contract is paused"):
        m.escrow.createJob(m.provider, m.evaluator, m.now() + DAY, "x", ZERO)
    m.submit(funded)  # delivery, completion and rejection go on
    with boa.env.prank(m.evaluator):
        m.escrow.complete(funded, b"\0" * 32, b"")
        m.escrow.reject(submitted, b"\0" * 32, b"")
    assert (m.status(funded), m.status(submitted)) == (COMPLETED, REJECTED)


def test_a_dispute_window_holds_the_money_and_allows_one_dispute(m: Market) -> None:
    job_id = m.job(window=3600)
    m.submit(job_id)
    with boa.env.prank(m.evaluator):
        m.escrow.complete(job_id, b"\0" * 32, b"")
    assert m.token.balanceOf(m.provider) == 0 and m.token.balanceOf(m.escrow.address) == BUDGET
    with boa.env.prank(m.anyone), boa.reverts("JobEscrow: the dispute window is still open"):
        m.escrow.release(job_id)
    with boa.env.prank(m.client):
        m.escrow.dispute(job_id, b"\x0e" * 32)
    assert m.status(job_id) == SUBMITTED
    with boa.env.prank(m.evaluator):  # the evaluator decides again; now it is final
        m.escrow.complete(job_id, b"\x0f" * 32, b"")
    assert m.token.balanceOf(m.provider) == BUDGET
    with boa.env.prank(m.client), boa.reverts("JobEscrow: nothing to dispute"):
        m.escrow.dispute(job_id, b"\0" * 32)

    quiet = m.job(window=3600)
    m.submit(quiet)
    with boa.env.prank(m.evaluator):
        m.escrow.complete(quiet, b"\0" * 32, b"")
    boa.env.time_travel(seconds=3600)
    with boa.env.prank(m.client), boa.reverts("JobEscrow: the dispute window has passed"):
        m.escrow.dispute(quiet, b"\0" * 32)
    with boa.env.prank(m.anyone):
        m.escrow.release(quiet)
    assert m.token.balanceOf(m.provider) == 2 * BUDGET


def test_a_dispute_keeps_the_job_open_for_the_evaluator(m: Market) -> None:
    job_id = m.job(window=3600, expires_in=1800)
    m.submit(job_id)
    with boa.env.prank(m.evaluator):
        m.escrow.complete(job_id, b"\0" * 32, b"")
    boa.env.time_travel(seconds=1700)
    with boa.env.prank(m.client):
        m.escrow.dispute(job_id, b"\0" * 32)
    boa.env.time_travel(seconds=200)  # past the original expiry: the client cannot take it back yet
    with boa.env.prank(m.client), boa.reverts("JobEscrow: job has not expired"):
        m.escrow.claimRefund(job_id)


class EscrowMachine(RuleBasedStateMachine):
    """Jobs created, funded, delivered, completed, rejected, disputed, released and refunded
    at random, with pauses and time: the escrow always holds exactly the money of its live
    jobs, no credit is created or lost, and an expired funded job can always be refunded."""

    @initialize()
    def setup(self) -> None:
        self.env = boa.Env()
        with boa.swap_env(self.env):
            self.m = Market()
            self.total = self.m.token.totalSupply()
            # Three funded jobs to start from (one with a dispute window), so that short runs
            # reach deep states too.
            self.jobs: list[int] = [self.m.job(budget=BUDGET, window=w, expires_in=e)
                                    for w, e in ((0, 600), (3600, 3 * DAY), (0, DAY))]  # fmt: skip
        self.done: set[str] = set()

    def _with(self, who: str, fn: Any, *args: Any) -> bool:
        with boa.swap_env(self.env), boa.env.prank(getattr(self.m, who)):
            try:
                fn(*args)
                return True
            except Exception:
                return False

    @rule(
        budget=st.integers(1, 10**9),
        window=st.sampled_from([0, 60]),
        expires=st.integers(60, DAY),
    )
    def create(self, budget: int, window: int, expires: int) -> None:
        with boa.swap_env(self.env):
            if self.m.escrow.paused():
                return
            self.jobs.append(self.m.job(budget=budget, window=window, expires_in=expires))

    @precondition(lambda self: bool(self.jobs))
    @rule(
        data=st.data(),
        action=st.sampled_from(["submit", "complete", "reject", "dispute", "release", "refund"]),
    )
    def act(self, data: st.DataObject, action: str) -> None:
        self._act(data.draw(st.sampled_from(self.jobs)), action)

    def _act(self, job_id: int, action: str) -> None:
        e, z = self.m.escrow, b"\0" * 32
        calls = {
            "submit": ("provider", e.submit, job_id, ASSET, b""),
            "complete": ("evaluator", e.complete, job_id, z, b""),
            "reject": ("evaluator", e.reject, job_id, z, b""),
            "dispute": ("client", e.dispute, job_id, z),
            "release": ("anyone", e.release, job_id),
            "refund": ("anyone", e.claimRefund, job_id),
        }
        who, fn, *args = calls[action]
        if self._with(who, fn, *args):
            self.done.add(action)

    @precondition(lambda self: bool(self.jobs))
    @rule(data=st.data())
    def advance(self, data: st.DataObject) -> None:
        """Take a live job one step along its state machine, forward steps twice as likely
        (the step may still be refused, e.g. after the expiry or inside a dispute window)."""
        with boa.swap_env(self.env):
            jobs = {j: self.m.escrow.getJob(j) for j in self.jobs}
        live = [j for j, job in jobs.items() if job.status in (FUNDED, SUBMITTED) or job.releaseAt]
        if not live:
            return
        job_id = data.draw(st.sampled_from(live))
        steps = {FUNDED: ["submit", "submit", "reject", "refund"],
                 SUBMITTED: ["complete", "complete", "reject", "refund"],
                 COMPLETED: ["release", "dispute"]}[jobs[job_id].status]  # fmt: skip
        self._act(job_id, data.draw(st.sampled_from(steps)))

    @rule(seconds=st.sampled_from([30, 900, 4000, DAY, 2 * DAY]))
    def time_passes(self, seconds: int) -> None:
        with boa.swap_env(self.env):
            boa.env.time_travel(seconds=seconds)

    @rule()
    def toggle_pause(self) -> None:
        with boa.swap_env(self.env), boa.env.prank(self.m.guardian):
            (self.m.escrow.unpause if self.m.escrow.paused() else self.m.escrow.pause)()

    @invariant()
    def funds_are_conserved(self) -> None:
        if not hasattr(self, "m"):
            return
        with boa.swap_env(self.env):
            m, held = self.m, 0
            for job_id in self.jobs:
                job = m.escrow.getJob(job_id)
                if job.status in (FUNDED, SUBMITTED) or (
                    job.status == COMPLETED and job.releaseAt != 0
                ):
                    held += job.budget
                if job.status in (FUNDED, SUBMITTED) and m.now() >= job.expiredAt:
                    # An expired funded job can always be refunded, paused or not (dry run).
                    with boa.env.anchor(), boa.env.prank(m.anyone):
                        m.escrow.claimRefund(job_id)
            assert m.token.balanceOf(m.escrow.address) == held
            parties = [m.client, m.provider, m.owner, m.escrow.address]
            assert sum(m.token.balanceOf(p) for p in parties) == self.total


@pytest.mark.slow
def test_the_escrow_machine_reaches_every_action() -> None:
    """The machine below is only worth its invariants if its random runs do everything."""
    reached: set[str] = set()

    class Counting(EscrowMachine):
        def teardown(self) -> None:
            reached.update(getattr(self, "done", set()))

    run = Counting.TestCase
    run.settings = settings(max_examples=30, stateful_step_count=30, deadline=None, derandomize=True,
                            suppress_health_check=list(HealthCheck))  # fmt: skip
    run("runTest").runTest()
    assert reached == {"submit", "complete", "reject", "dispute", "release", "refund"}


TestEscrowMachine = EscrowMachine.TestCase
TestEscrowMachine.settings = settings(max_examples=12, stateful_step_count=25, deadline=None,
                                      suppress_health_check=list(HealthCheck))  # fmt: skip
