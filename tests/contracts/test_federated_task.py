"""The federated task contract: joining with a stake, rounds with k-of-n attestations,
rewards paid once, and an end for every task (cancel, deadline, refund, share-out)."""

from __future__ import annotations

import hashlib

import boa
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from tests import security_figures
from tests.contracts.conftest import ZERO, deploy

TEST = "tests/contracts/test_federated_task.py"
POOL = 10**18
STAKE = 10**16
DAY = 86400

OPEN, FINISHED, REFUNDED, EXPIRED = 1, 2, 3, 4
GUARDIAN = "0x" + "9a" * 20  # pauses; never a party to a task
PAUSED = "pausable: contract is paused"

pytestmark = pytest.mark.usefixtures("fresh_env")


def h(label: str) -> bytes:
    return hashlib.sha256(label.encode()).digest()


def now() -> int:
    return int(boa.env.evm.patch.timestamp)


def funded() -> str:
    a = boa.env.generate_address()
    boa.env.set_balance(a, 10 * POOL)
    return a


def bits(c, task_id: int, accounts) -> int:
    """The round's contributor map: bit i for the participant numbered i."""
    out = 0
    for a in accounts:
        slot = c.participantSlot(task_id, a)
        assert slot, a
        out |= 1 << (slot - 1)
    return out


def setup_task(rounds: int = 2, k: int = 2, n: int = 3, days: int = 7):
    c = deploy("FederatedTask", ZERO, GUARDIAN)
    owner = funded()
    with boa.env.prank(owner):
        task_id = c.createTask(
            h("model"), h("code"), rounds, k, STAKE, now() + days * DAY, value=POOL
        )
    people = sorted((funded() for _ in range(n)), key=lambda a: int(a, 16))
    for p in people:
        with boa.env.prank(p):
            c.join(task_id, value=STAKE)
    return c, owner, task_id, people


def test_create_and_join() -> None:
    c, owner, task_id, people = setup_task()
    task = c.tasks(task_id)
    assert (task.owner, task.rounds, task.validators, task.participants, task.pool) == (
        owner,
        2,
        2,
        3,
        POOL,
    )
    assert (task.stake, task.status) == (STAKE, OPEN)
    assert boa.env.get_balance(c.address) == POOL + 3 * STAKE
    with boa.env.prank(people[0]), boa.reverts("FederatedTask: already joined"):
        c.join(task_id, value=STAKE)
    with boa.reverts("FederatedTask: unknown task"):
        c.join(99)
    for args, why in [
        ((1, 0, STAKE, now() + DAY), "FederatedTask: no validators"),
        ((1, 1, 0, now() + DAY), "FederatedTask: participants must stake"),
        ((1, 1, STAKE, now()), "FederatedTask: deadline has passed"),
        ((1, 1, STAKE, now() + 400 * DAY), "FederatedTask: deadline too far"),
        ((1, 129, STAKE, now() + DAY), "FederatedTask: more validators than payees"),
        ((1025, 1, STAKE, now() + DAY), "FederatedTask: too many rounds"),
    ]:
        with boa.reverts(why):
            c.createTask(h("m"), h("c"), *args)


def _through(call) -> int:
    """1 if the call went through, 0 if the contract refused it."""
    try:
        call()
    except boa.BoaError:
        return 0
    return 1


def test_m6_validators_cannot_be_minted_for_free() -> None:
    """A throw-away address joins only with the task's stake; the owner never joins."""
    c, owner, task_id, _ = setup_task()
    sybil = funded()
    with boa.env.prank(sybil):
        through = _through(lambda: c.join(task_id)) + _through(
            lambda: c.join(task_id, value=STAKE - 1)
        )
    with boa.env.prank(owner):
        through += _through(lambda: c.join(task_id, value=STAKE))
    assert through == 0
    assert not c.isParticipant(task_id, sybil) and not c.isParticipant(task_id, owner)
    with boa.env.prank(owner), boa.reverts("FederatedTask: the owner cannot participate"):
        c.join(task_id, value=STAKE)
    security_figures.record(
        "contracts", "M6 validators minted for free, or the owner as a validator",
        tried=3, through=through,
        what="a fresh address joins a task with no stake and with one wei short; the owner "
        "joins its own task (so it could attest and be paid).",
        test=f"{TEST}::test_m6_validators_cannot_be_minted_for_free",
    )  # fmt: skip


def test_m6_the_owner_cannot_self_attest_and_pay_itself() -> None:
    """The audit's attack: the owner joins, self-attests with k=1 and takes the pool."""
    c = deploy("FederatedTask", ZERO, GUARDIAN)
    owner = funded()
    with boa.env.prank(owner):
        task_id = c.createTask(h("m"), h("c"), 1, 1, STAKE, now() + DAY, value=POOL)
        through = _through(lambda: c.join(task_id, value=STAKE))
        through += _through(lambda: c.recordRound(task_id, 1, h("root"), h("agg"), 0))
        through += _through(lambda: c.attest(task_id, 1, h("agg")))
        through += _through(lambda: c.finish(task_id, h("final"), [owner], [POOL]))
        with boa.reverts("FederatedTask: fewer participants than validators"):
            c.recordRound(task_id, 1, h("root"), h("agg"), 0)
    assert through == 0 and boa.env.get_balance(c.address) == POOL
    security_figures.record(
        "contracts", "M6 the task owner pays itself the pool",
        tried=4, through=through,
        what="the owner of a k=1 task joins it, records round 1, attests it and finishes "
        "with itself as the only payee.",
        test=f"{TEST}::test_m6_the_owner_cannot_self_attest_and_pay_itself",
    )  # fmt: skip


def test_m6_round_one_needs_k_participants() -> None:
    c, owner, task_id, people = setup_task(rounds=1, k=3, n=2)
    with boa.env.prank(owner), boa.reverts("FederatedTask: fewer participants than validators"):
        c.recordRound(task_id, 1, h("root"), h("agg"), bits(c, task_id, people))
    third = funded()
    with boa.env.prank(third):
        c.join(task_id, value=STAKE)
    with boa.env.prank(owner):
        c.recordRound(task_id, 1, h("root"), h("agg"), bits(c, task_id, people))


def test_m6_cancel_before_round_one_returns_pool_and_stakes() -> None:
    c, owner, task_id, people = setup_task()
    with boa.env.prank(people[0]), boa.reverts("FederatedTask: caller is not the task owner"):
        c.cancel(task_id)
    with boa.env.prank(owner):
        c.cancel(task_id)
    assert c.tasks(task_id).status == REFUNDED
    owner_before = boa.env.get_balance(owner)
    with boa.env.prank(owner):
        c.claim(task_id)
        with boa.reverts("FederatedTask: already paid"):
            c.claim(task_id)
    assert boa.env.get_balance(owner) - owner_before == POOL
    for p in people:
        before = boa.env.get_balance(p)
        with boa.env.prank(p):
            c.claim(task_id)
        assert boa.env.get_balance(p) - before == STAKE
    assert boa.env.get_balance(c.address) == 0
    with boa.env.prank(funded()), boa.reverts("FederatedTask: not open"):
        c.join(task_id, value=STAKE)


def test_m6_a_task_that_never_starts_returns_its_pool_after_the_deadline() -> None:
    """k greater than the participants, or an owner who disappears: nothing stays locked."""
    c, owner, task_id, people = setup_task(k=3, n=2, days=1)
    with boa.reverts("FederatedTask: deadline not reached"):
        c.expire(task_id)
    with boa.env.prank(people[0]), boa.reverts("FederatedTask: not ended"):
        c.claim(task_id)
    boa.env.time_travel(seconds=DAY)
    with boa.env.prank(owner), boa.reverts("FederatedTask: deadline has passed"):
        c.recordRound(task_id, 1, h("root"), h("agg"), 0)
    with boa.env.prank(funded()), boa.reverts("FederatedTask: deadline has passed"):
        c.join(task_id, value=STAKE)
    before = boa.env.get_balance(people[0])
    with boa.env.prank(people[0]):
        c.claim(task_id)  # expires the task on the way
    assert boa.env.get_balance(people[0]) - before == STAKE
    assert c.tasks(task_id).status == REFUNDED
    before = boa.env.get_balance(owner)
    with boa.env.prank(owner):
        c.claim(task_id)
    assert boa.env.get_balance(owner) - before == POOL
    security_figures.record(
        "contracts", "M6 a pool locked forever by a task that never starts",
        tried=1, through=int(boa.env.get_balance(c.address) != STAKE),  # one stake unclaimed
        what="k is more than ever join; the owner disappears. After the deadline the pool "
        "must return to the owner and the stakes to the participants.",
        test=f"{TEST}::test_m6_a_task_that_never_starts_returns_its_pool_after_the_deadline",
    )  # fmt: skip


def test_m6_after_round_one_the_pool_goes_to_participants_by_contribution() -> None:
    c, owner, task_id, people = setup_task(rounds=3, k=2, n=3, days=2)
    a, b, d = people
    with boa.env.prank(owner):
        with boa.reverts("FederatedTask: contributor is not a participant"):
            c.recordRound(task_id, 1, h("r1"), h("agg1"), 0b1000)  # nobody is number 3
        c.recordRound(task_id, 1, h("r1"), h("agg1"), bits(c, task_id, [a, b, d]))
    for p in (a, b):
        with boa.env.prank(p):
            c.attest(task_id, 1, h("agg1"))
    with boa.env.prank(owner):
        c.recordRound(task_id, 2, h("r2"), h("agg2"), bits(c, task_id, [a, b]))  # not d's
        with boa.reverts("FederatedTask: caller is not the task owner"), boa.env.prank(a):
            c.cancel(task_id)
        with boa.reverts("FederatedTask: training has started"):
            c.cancel(task_id)
    assert [c.contributionOf(task_id, p) for p in people] == [2, 2, 1]
    assert c.contributionOf(task_id, owner) == 0 and c.tasks(task_id).contributions == 5
    # The owner disappears before round 2 is final. After the deadline anyone ends it.
    boa.env.time_travel(seconds=2 * DAY)
    with boa.env.prank(a), boa.reverts("FederatedTask: deadline has passed"):
        c.attest(task_id, 2, h("agg2"))
    with boa.env.prank(owner), boa.reverts("FederatedTask: deadline has passed"):
        c.finish(task_id, h("final"), people, [POOL // 3, POOL // 3, POOL - 2 * (POOL // 3)])
    c.expire(task_id)
    assert c.tasks(task_id).status == EXPIRED
    with boa.env.prank(owner), boa.reverts("FederatedTask: nothing owed to the owner"):
        c.claim(task_id)
    got = {}
    for p in (d, b, a):
        before = boa.env.get_balance(p)
        with boa.env.prank(p):
            c.claim(task_id)
        got[p] = boa.env.get_balance(p) - before - STAKE
    assert got[d] == POOL // 5 and got[b] == 2 * POOL // 5
    assert sum(got.values()) == POOL
    assert boa.env.get_balance(c.address) == 0


def test_m6_without_recorded_contributors_an_expired_pool_is_shared_equally() -> None:
    c, owner, task_id, people = setup_task(rounds=2, k=2, n=3, days=1)
    with boa.env.prank(owner):
        c.recordRound(task_id, 1, h("r1"), h("agg1"), 0)
    boa.env.time_travel(seconds=DAY)
    c.expire(task_id)
    with boa.reverts("FederatedTask: not open"):
        c.expire(task_id)
    paid = 0
    for p in people:
        before = boa.env.get_balance(p)
        with boa.env.prank(p):
            c.claim(task_id)
        paid += boa.env.get_balance(p) - before - STAKE
    assert paid == POOL
    assert boa.env.get_balance(c.address) == 0


def test_round_needs_k_matching_attestations() -> None:
    c, owner, task_id, people = setup_task(rounds=2, k=2)
    with boa.env.prank(people[0]), boa.reverts("FederatedTask: caller is not the task owner"):
        c.recordRound(task_id, 1, h("root1"), h("agg1"), 0)
    with boa.env.prank(owner):
        c.recordRound(task_id, 1, h("root1"), h("agg1"), bits(c, task_id, people))
        with boa.reverts("FederatedTask: previous round not final"):
            c.recordRound(task_id, 2, h("root2"), h("agg2"), 0)
    with boa.env.prank(people[0]):
        with boa.reverts("FederatedTask: digest differs from the recorded aggregate"):
            c.attest(task_id, 1, h("wrong"))
        c.attest(task_id, 1, h("agg1"))
        with boa.reverts("FederatedTask: already attested"):
            c.attest(task_id, 1, h("agg1"))
    assert c.tasks(task_id).finalizedRound == 0  # one attestation is not enough
    stranger = boa.env.generate_address()
    with boa.env.prank(stranger), boa.reverts("FederatedTask: caller is not a participant"):
        c.attest(task_id, 1, h("agg1"))
    with boa.env.prank(people[1]):
        c.attest(task_id, 1, h("agg1"))
    assert c.tasks(task_id).finalizedRound == 1
    with boa.env.prank(people[2]), boa.reverts("FederatedTask: training has started"):
        c.join(task_id, value=STAKE)


def finish_rounds(c, owner, task_id, people, rounds: int, k: int) -> None:
    for r in range(1, rounds + 1):
        with boa.env.prank(owner):
            c.recordRound(task_id, r, h(f"root{r}"), h(f"agg{r}"), bits(c, task_id, people))
        for p in people[:k]:
            with boa.env.prank(p):
                c.attest(task_id, r, h(f"agg{r}"))


def test_rewards_add_up_to_the_pool_and_are_paid_once() -> None:
    c, owner, task_id, people = setup_task(rounds=1, k=2)
    with boa.env.prank(owner), boa.reverts("FederatedTask: rounds are not all final"):
        c.finish(task_id, h("final"), people, [POOL // 3] * 3)
    finish_rounds(c, owner, task_id, people, 1, 2)
    with boa.env.prank(owner):
        with boa.reverts("FederatedTask: rewards do not add up to the pool"):
            c.finish(task_id, h("final"), people, [1, 2, 3])
        with boa.reverts("FederatedTask: payee listed twice"):
            c.finish(task_id, h("final"), [people[0], people[0]], [POOL // 2, POOL // 2])
        with boa.reverts("FederatedTask: payee is not a participant"):
            c.finish(task_id, h("final"), [owner], [POOL])
        c.finish(task_id, h("final"), people[:2], [POOL // 2, POOL // 2])
    before = boa.env.get_balance(people[0])
    with boa.env.prank(people[0]):
        c.claim(task_id)
        with boa.reverts("FederatedTask: already paid"):
            c.claim(task_id)
    assert boa.env.get_balance(people[0]) - before == POOL // 2 + STAKE
    before = boa.env.get_balance(people[2])  # not a payee: gets its stake back
    with boa.env.prank(people[2]):
        c.claim(task_id)
    assert boa.env.get_balance(people[2]) - before == STAKE
    with boa.env.prank(owner):
        with boa.reverts("FederatedTask: not open"):
            c.finish(task_id, h("final"), people, [POOL // 2, POOL // 4, POOL // 4])
        with boa.reverts("FederatedTask: nothing owed to the owner"):
            c.claim(task_id)
    boa.env.time_travel(seconds=30 * DAY)  # a finished task never expires
    with boa.reverts("FederatedTask: not open"):
        c.expire(task_id)


class TaskMachine(RuleBasedStateMachine):
    """Random rounds, attestations, joins, cancels, clock jumps, claims and pauses against
    a model.

    Money is conserved: the contract always holds exactly the pool and the stakes not
    yet paid out, and when every party has claimed it holds nothing. The guardian's
    pause stops joins, rounds and attestations, and nothing else: `finish`, `cancel` and
    `claim` never look at it (their rules below do not either), so no pause holds funds.
    """

    def __init__(self) -> None:
        super().__init__()
        self.k = 2
        self.c, self.owner, self.task, self.people = setup_task(rounds=3, k=self.k, n=2)
        self.outsider = funded()
        self.joined = set(self.people)
        self.deadline = int(self.c.tasks(self.task).deadline)
        self.current = 0
        self.final = 0
        self.attested: set[tuple[int, str]] = set()
        self.status = OPEN
        self.settled: set[str] = set()
        self.out = 0
        self.paused = False

    def live(self) -> bool:
        return self.status == OPEN and now() < self.deadline

    @rule()
    def guardian_toggles_the_pause(self):
        with boa.env.prank(GUARDIAN):
            if self.paused:
                self.c.unpause()
            else:
                self.c.pause()
        self.paused = not self.paused
        assert self.c.paused() == self.paused

    @rule()
    def outsider_joins(self):
        with boa.env.prank(self.outsider):
            if self.paused and self.live():
                with boa.reverts(PAUSED):
                    self.c.join(self.task, value=STAKE)
                return
            if not self.live() or self.current > 0 or self.outsider in self.joined:
                with boa.reverts():
                    self.c.join(self.task, value=STAKE)
                return
            self.c.join(self.task, value=STAKE)
        self.joined.add(self.outsider)

    @rule()
    def record(self):
        contributors = bits(self.c, self.task, self.joined)
        ok = (
            self.live()
            and not self.paused
            and self.current == self.final
            and self.current < 3
            and len(self.joined) >= self.k
        )
        with boa.env.prank(self.owner):
            if not ok:
                with boa.reverts():
                    self.c.recordRound(
                        self.task,
                        self.current + 1,
                        h("r"),
                        h(f"agg{self.current + 1}"),
                        contributors,
                    )
                return
            self.c.recordRound(
                self.task, self.current + 1, h("r"), h(f"agg{self.current + 1}"), contributors
            )
        self.current += 1

    @rule(who=st.integers(0, 2), honest=st.booleans())
    def attest(self, who, honest):
        person = [*self.people, self.outsider][who]
        digest = h(f"agg{self.current}") if honest else h("forged")
        ok = (
            self.live()
            and not self.paused
            and person in self.joined
            and self.current >= 1
            and honest
            and (self.current, person) not in self.attested
        )
        with boa.env.prank(person):
            if not ok:
                with boa.reverts():
                    self.c.attest(self.task, max(self.current, 1), digest)
                return
            self.c.attest(self.task, self.current, digest)
        self.attested.add((self.current, person))
        if sum(1 for r, _ in self.attested if r == self.current) == self.k:
            self.final = self.current

    @rule()
    def finish(self):
        payees = sorted(self.joined, key=lambda a: int(a, 16))
        amounts = [POOL // len(payees)] * len(payees)
        amounts[0] += POOL - sum(amounts)
        with boa.env.prank(self.owner):
            if not (self.live() and self.final == 3):
                with boa.reverts():
                    self.c.finish(self.task, h("final"), payees, amounts)
                return
            self.c.finish(self.task, h("final"), payees, amounts)
        self.status = FINISHED

    @rule()
    def cancel(self):
        with boa.env.prank(self.owner):
            if not (self.live() and self.current == 0):
                with boa.reverts():
                    self.c.cancel(self.task)
                return
            self.c.cancel(self.task)
        self.status = REFUNDED

    @rule(days=st.integers(1, 5))
    def clock(self, days):
        boa.env.time_travel(seconds=days * DAY)

    @rule(who=st.integers(0, 3))
    def claim(self, who):
        person = [*self.people, self.outsider, self.owner][who]
        if self.status == OPEN and now() >= self.deadline:
            self.status = REFUNDED if self.current == 0 else EXPIRED
        owed = (
            self.status != OPEN
            and person not in self.settled
            and (person in self.joined or (person == self.owner and self.status == REFUNDED))
        )
        before = boa.env.get_balance(person)
        with boa.env.prank(person):
            if not owed:
                with boa.reverts():
                    self.c.claim(self.task)
                # the revert also undoes a lazy expiry: the model's status is only a view
                return
            self.c.claim(self.task)
        self.settled.add(person)
        self.out += boa.env.get_balance(person) - before

    @invariant()
    def matches_model(self):
        task = self.c.tasks(self.task)
        assert (task.currentRound, task.finalizedRound) == (self.current, self.final)
        held = POOL + STAKE * len(self.joined) - self.out
        assert boa.env.get_balance(self.c.address) == held
        everyone = set(self.joined) | ({self.owner} if self.status == REFUNDED else set())
        if self.status != OPEN and everyone <= self.settled:
            assert held == 0


TaskMachine.TestCase.settings = settings(max_examples=30, stateful_step_count=30, deadline=None)
test_task_machine = TaskMachine.TestCase
