"""The federated task contract: joining, rounds with k-of-n attestations, rewards paid once."""

from __future__ import annotations

import hashlib
from pathlib import Path

import boa
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

SOURCE = Path(__file__).resolve().parents[2] / "contracts" / "FederatedTask.vy"
POOL = 10**18


pytestmark = pytest.mark.usefixtures("fresh_env")


def h(label: str) -> bytes:
    return hashlib.sha256(label.encode()).digest()


def setup_task(rounds: int = 2, k: int = 2, n: int = 3):
    c = boa.load(str(SOURCE))
    owner = boa.env.generate_address()
    boa.env.set_balance(owner, 10 * POOL)
    with boa.env.prank(owner):
        task_id = c.createTask(h("model"), h("code"), rounds, k, value=POOL)
    people = [boa.env.generate_address() for _ in range(n)]
    for p in people:
        with boa.env.prank(p):
            c.join(task_id)
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
    with boa.env.prank(people[0]), boa.reverts("task: already joined"):
        c.join(task_id)
    with boa.reverts("task: unknown task"):
        c.join(99)
    with boa.reverts("task: no validators"):
        c.createTask(h("m"), h("c"), 1, 0)


def test_round_needs_k_matching_attestations() -> None:
    c, owner, task_id, people = setup_task(rounds=2, k=2)
    with boa.env.prank(people[0]), boa.reverts("task: caller is not the task owner"):
        c.recordRound(task_id, 1, h("root1"), h("agg1"))
    with boa.env.prank(owner):
        c.recordRound(task_id, 1, h("root1"), h("agg1"))
        with boa.reverts("task: previous round not final"):
            c.recordRound(task_id, 2, h("root2"), h("agg2"))
    with boa.env.prank(people[0]):
        with boa.reverts("task: digest differs from the recorded aggregate"):
            c.attest(task_id, 1, h("wrong"))
        c.attest(task_id, 1, h("agg1"))
        with boa.reverts("task: already attested"):
            c.attest(task_id, 1, h("agg1"))
    assert c.tasks(task_id).finalizedRound == 0  # one attestation is not enough
    stranger = boa.env.generate_address()
    with boa.env.prank(stranger), boa.reverts("task: caller is not a participant"):
        c.attest(task_id, 1, h("agg1"))
    with boa.env.prank(people[1]):
        c.attest(task_id, 1, h("agg1"))
    assert c.tasks(task_id).finalizedRound == 1
    with boa.env.prank(people[2]), boa.reverts("task: training has started"):
        c.join(task_id)


def finish_rounds(c, owner, task_id, people, rounds: int, k: int) -> None:
    for r in range(1, rounds + 1):
        with boa.env.prank(owner):
            c.recordRound(task_id, r, h(f"root{r}"), h(f"agg{r}"))
        for p in people[:k]:
            with boa.env.prank(p):
                c.attest(task_id, r, h(f"agg{r}"))


def test_rewards_add_up_to_the_pool_and_are_paid_once() -> None:
    c, owner, task_id, people = setup_task(rounds=1, k=2)
    with boa.env.prank(owner), boa.reverts("task: rounds are not all final"):
        c.finish(task_id, h("final"), people, [POOL // 3] * 3)
    finish_rounds(c, owner, task_id, people, 1, 2)
    with boa.env.prank(owner):
        with boa.reverts("task: rewards do not add up to the pool"):
            c.finish(task_id, h("final"), people, [1, 2, 3])
        with boa.reverts("task: payee listed twice"):
            c.finish(task_id, h("final"), [people[0], people[0]], [POOL // 2, POOL // 2])
        with boa.reverts("task: payee is not a participant"):
            c.finish(task_id, h("final"), [owner], [POOL])
        c.finish(task_id, h("final"), people, [POOL // 2, POOL // 4, POOL // 4])
    before = boa.env.get_balance(people[0])
    with boa.env.prank(people[0]):
        c.claim(task_id)
        with boa.reverts("task: already paid"):
            c.claim(task_id)
    assert boa.env.get_balance(people[0]) - before == POOL // 2
    with boa.env.prank(owner), boa.reverts("task: not open"):
        c.finish(task_id, h("final"), people, [POOL // 2, POOL // 4, POOL // 4])


class TaskMachine(RuleBasedStateMachine):
    """Random sequences of rounds, attestations and claims against a Python model."""

    def __init__(self) -> None:
        super().__init__()
        self.k = 2
        self.c, self.owner, self.task, self.people = setup_task(rounds=3, k=self.k, n=4)
        self.current = 0
        self.final = 0
        self.attested: set[tuple[int, str]] = set()
        self.finished = False
        self.paid: dict[str, int] = {}
        self.rewards: dict[str, int] = {}

    @rule()
    def record(self):
        with boa.env.prank(self.owner):
            if self.finished or self.current != self.final or self.current == 3:
                with boa.reverts():
                    self.c.recordRound(
                        self.task, self.current + 1, h("r"), h(f"agg{self.current + 1}")
                    )
                return
            self.c.recordRound(self.task, self.current + 1, h("r"), h(f"agg{self.current + 1}"))
        self.current += 1

    @rule(who=st.integers(0, 3), honest=st.booleans())
    def attest(self, who, honest):
        person = self.people[who]
        digest = h(f"agg{self.current}") if honest else h("forged")
        ok = self.current >= 1 and honest and (self.current, person) not in self.attested
        with boa.env.prank(person):
            if not ok:
                with boa.reverts():
                    self.c.attest(self.task, max(self.current, 1), digest)
                return
            self.c.attest(self.task, self.current, digest)
        self.attested.add((self.current, person))
        if sum(1 for r, _ in self.attested if r == self.current) == self.k:
            self.final = self.current

    @precondition(lambda self: not self.finished)
    @rule()
    def finish(self):
        amounts = [POOL // 2, POOL // 4, POOL // 8, POOL // 8]
        with boa.env.prank(self.owner):
            if self.final != 3:
                with boa.reverts("task: rounds are not all final"):
                    self.c.finish(self.task, h("final"), self.people, amounts)
                return
            self.c.finish(self.task, h("final"), self.people, amounts)
        self.finished = True
        self.rewards = dict(zip(self.people, amounts, strict=True))

    @rule(who=st.integers(0, 3))
    def claim(self, who):
        person = self.people[who]
        with boa.env.prank(person):
            if not self.finished or person in self.paid:
                with boa.reverts():
                    self.c.claim(self.task)
                return
            self.c.claim(self.task)
        self.paid[person] = self.rewards[person]

    @invariant()
    def matches_model(self):
        task = self.c.tasks(self.task)
        assert (task.currentRound, task.finalizedRound) == (self.current, self.final)
        # Never more paid out than the pool; what is left in escrow is what is owed.
        assert sum(self.paid.values()) <= POOL
        assert boa.env.get_balance(self.c.address) == POOL - sum(self.paid.values())


TaskMachine.TestCase.settings = settings(max_examples=25, stateful_step_count=30, deadline=None)
test_task_machine = TaskMachine.TestCase
