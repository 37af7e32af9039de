"""Unit, fuzz and stateful tests of the audit anchor contract."""

from __future__ import annotations

import hashlib

import boa
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from tests import security_figures
from tests.contracts.conftest import deploy

ZERO = "0x0000000000000000000000000000000000000000"


pytestmark = pytest.mark.usefixtures("fresh_env")


def h(label: str) -> bytes:
    return hashlib.sha256(label.encode()).digest()


def test_an_anchor_is_kept_in_its_accounts_namespace_and_emits() -> None:
    c = deploy("AuditAnchor")
    agent = boa.env.generate_address()
    with boa.env.prank(agent):
        c.anchor(h("log"), 10, h("root10"))
    (event,) = c.get_logs()
    assert type(event).__name__ == "Anchored"
    assert (event.logId, event.owner, event.treeSize, event.rootHash, event.previousSize) == (
        h("log"), agent, 10, h("root10"), 0,
    )  # fmt: skip
    assert c.latest(agent, h("log")) == 10
    assert c.latest(agent, h("other")) == 0
    assert c.latest(ZERO, h("log")) == 0


def test_sizes_only_grow_and_nobody_can_squat_a_log() -> None:
    c = deploy("AuditAnchor")
    agent, mallory = boa.env.generate_address(), boa.env.generate_address()
    with boa.env.prank(agent):
        c.anchor(h("log"), 10, h("r10"))
        with boa.reverts("AuditAnchor: tree size does not grow"):
            c.anchor(h("log"), 10, h("r10b"))
        with boa.reverts("AuditAnchor: tree size does not grow"):
            c.anchor(h("log"), 9, h("r9"))
        c.anchor(h("log"), 11, h("r11"))
    assert c.get_logs()[-1].previousSize == 10
    with boa.env.prank(mallory):
        c.anchor(h("log"), 1000, h("forged"))  # lands in mallory's namespace only
    assert c.latest(agent, h("log")) == 11 and c.latest(mallory, h("log")) == 1000


def test_low_a_squatter_anchoring_the_largest_size_first_locks_nobody_out() -> None:
    """The audit's attack: anchor size 2^64-1 under the operator's log id before it does."""
    c = deploy("AuditAnchor")
    operator, squatter = boa.env.generate_address(), boa.env.generate_address()
    with boa.env.prank(squatter):
        c.anchor(h("log"), 2**64 - 1, h("squat"))
    through = 0
    with boa.env.prank(operator):
        for size in (1, 2):
            try:
                c.anchor(h("log"), size, h(f"r{size}"))
            except boa.BoaError:
                through += 1  # the squatter locked the operator out
    assert through == 0 and c.latest(operator, h("log")) == 2
    security_figures.record(
        "contracts", "Low: squatting an audit log id",
        tried=2, through=through,
        what="a squatter anchors size 2^64-1 under the operator's log id first; the operator "
        "must still anchor its sizes 1 and 2.",
        test="tests/contracts/test_audit_anchor.py::"
        "test_low_a_squatter_anchoring_the_largest_size_first_locks_nobody_out",
    )  # fmt: skip


def test_zero_values_rejected() -> None:
    c = deploy("AuditAnchor")
    with boa.reverts("AuditAnchor: log id is zero"):
        c.anchor(b"\0" * 32, 1, h("r"))
    with boa.reverts("AuditAnchor: root hash is zero"):
        c.anchor(h("log"), 1, b"\0" * 32)
    with boa.reverts("AuditAnchor: tree size does not grow"):
        c.anchor(h("log"), 0, h("r"))


ACTORS = [boa.env.generate_address() for _ in range(3)]
LOGS = [h(f"log{i}") for i in range(3)]


class AnchorMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.c = deploy("AuditAnchor")
        self.size: dict[tuple[str, bytes], int] = {}

    @rule(actor=st.sampled_from(ACTORS), log=st.sampled_from(LOGS), size=st.integers(0, 2**64 - 1))
    def anchor(self, actor, log, size):
        expected = None
        if size <= self.size.get((actor, log), 0):
            expected = "AuditAnchor: tree size does not grow"
        with boa.env.prank(actor):
            if expected:
                with boa.reverts(expected):
                    self.c.anchor(log, size, h(f"{size}"))
                return
            self.c.anchor(log, size, h(f"{size}"))
        self.size[(actor, log)] = size

    @invariant()
    def storage_matches_model(self):
        for actor in ACTORS:
            for log in LOGS:
                assert self.c.latest(actor, log) == self.size.get((actor, log), 0)


AnchorMachine.TestCase.settings = settings(max_examples=30, stateful_step_count=25, deadline=None)
test_anchor_machine = AnchorMachine.TestCase
