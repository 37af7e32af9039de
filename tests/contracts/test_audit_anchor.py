"""Unit, fuzz and stateful tests of the audit anchor contract."""

from __future__ import annotations

import hashlib
from pathlib import Path

import boa
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

SOURCE = Path(__file__).resolve().parents[2] / "contracts" / "AuditAnchor.vy"
ZERO = "0x0000000000000000000000000000000000000000"


pytestmark = pytest.mark.usefixtures("fresh_env")


def h(label: str) -> bytes:
    return hashlib.sha256(label.encode()).digest()


def test_first_anchor_claims_the_log_and_emits() -> None:
    c = boa.load(str(SOURCE))
    agent = boa.env.generate_address()
    with boa.env.prank(agent):
        c.anchor(h("log"), 10, h("root10"))
    (event,) = c.get_logs()
    assert type(event).__name__ == "Anchored"
    assert (event.logId, event.owner, event.treeSize, event.rootHash, event.previousSize) == (
        h("log"), agent, 10, h("root10"), 0,
    )  # fmt: skip
    assert c.latest(h("log")) == (agent, 10)
    assert c.latest(h("other")) == (ZERO, 0)


def test_sizes_only_grow_and_only_the_owner_anchors() -> None:
    c = boa.load(str(SOURCE))
    agent, mallory = boa.env.generate_address(), boa.env.generate_address()
    with boa.env.prank(agent):
        c.anchor(h("log"), 10, h("r10"))
        with boa.reverts("anchor: tree size does not grow"):
            c.anchor(h("log"), 10, h("r10b"))
        with boa.reverts("anchor: tree size does not grow"):
            c.anchor(h("log"), 9, h("r9"))
        c.anchor(h("log"), 11, h("r11"))
    assert c.get_logs()[-1].previousSize == 10
    with boa.env.prank(mallory), boa.reverts("anchor: log is anchored by another account"):
        c.anchor(h("log"), 1000, h("forged"))
    assert c.latest(h("log")) == (agent, 11)


def test_zero_values_rejected() -> None:
    c = boa.load(str(SOURCE))
    with boa.reverts("anchor: log id is zero"):
        c.anchor(b"\0" * 32, 1, h("r"))
    with boa.reverts("anchor: root hash is zero"):
        c.anchor(h("log"), 1, b"\0" * 32)
    with boa.reverts("anchor: tree size does not grow"):
        c.anchor(h("log"), 0, h("r"))


ACTORS = [boa.env.generate_address() for _ in range(3)]
LOGS = [h(f"log{i}") for i in range(3)]


class AnchorMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.c = boa.load(str(SOURCE))
        self.owner: dict[bytes, str] = {}
        self.size: dict[bytes, int] = {}

    @rule(actor=st.sampled_from(ACTORS), log=st.sampled_from(LOGS), size=st.integers(0, 2**64 - 1))
    def anchor(self, actor, log, size):
        expected = None
        if log in self.owner and self.owner[log] != actor:
            expected = "anchor: log is anchored by another account"
        elif size <= self.size.get(log, 0):
            expected = "anchor: tree size does not grow"
        with boa.env.prank(actor):
            if expected:
                with boa.reverts(expected):
                    self.c.anchor(log, size, h(f"{size}"))
                return
            self.c.anchor(log, size, h(f"{size}"))
        self.owner.setdefault(log, actor)
        self.size[log] = size

    @invariant()
    def storage_matches_model(self):
        for log in LOGS:
            assert self.c.latest(log) == (self.owner.get(log, ZERO), self.size.get(log, 0))


AnchorMachine.TestCase.settings = settings(max_examples=30, stateful_step_count=25, deadline=None)
test_anchor_machine = AnchorMachine.TestCase
