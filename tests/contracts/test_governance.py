"""Governance of the contracts that hold value or gate access: the guardian's pause, the
timelock every parameter change waits in, and ownership that moves in two steps.

The pause's other half (every exit still works while paused) is in the stateful machines
of test_federated_task.py and test_access_grants.py, which pause at random.
"""

from __future__ import annotations

import boa
import pytest
from eth_abi import encode as abi_encode
from eth_utils import keccak
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from neuroledger.privacy._requests import Domain
from tests.contracts.conftest import ZERO, deploy

DAY = 86400
DELAY = 3600
NOT_READY = "timelock_controller: operation is not ready"
NOT_OWNER = "ownable: caller is not the owner"
NOT_GUARDIAN = "governed: caller is not the guardian"
NOT_PENDING = "ownable_2step: caller is not the new owner"

pytestmark = pytest.mark.usefixtures("fresh_env")


def calldata(signature: str, types: list[str], args: list) -> bytes:
    return keccak(text=signature)[:4] + abi_encode(types, args)


def now() -> int:
    return int(boa.env.evm.patch.timestamp)


class Governed:
    """A timelock (proposer and executor: `governor`) owning FederatedTask and AccessGrants."""

    def __init__(self, delay: int = DELAY) -> None:
        self.governor = boa.env.generate_address("governor")
        self.guardian = boa.env.generate_address("guardian")
        self.timelock = deploy("Timelock", delay, [self.governor], [self.governor])
        self.task = deploy("FederatedTask", self.timelock.address, self.guardian)
        did = deploy("DIDRegistry")
        assets = deploy("AssetRegistry", did.address)
        self.grants = deploy(
            "AccessGrants", did.address, assets.address, self.timelock.address, self.guardian
        )

    def schedule(self, target: str, payload: bytes, delay: int = DELAY, salt: int = 0) -> bytes:
        salt_bytes = salt.to_bytes(32, "big")
        with boa.env.prank(self.governor):
            self.timelock.schedule(target, 0, payload, b"\0" * 32, salt_bytes, delay)
        self.scheduled = self.timelock.get_logs()
        return self.timelock.hash_operation(target, 0, payload, b"\0" * 32, salt_bytes)

    def execute(self, target: str, payload: bytes, salt: int = 0) -> None:
        with boa.env.prank(self.governor):
            self.timelock.execute(target, 0, payload, b"\0" * 32, salt.to_bytes(32, "big"))


def test_a_parameter_change_is_announced_and_waits_for_its_delay() -> None:
    g = Governed()
    payload = calldata("setMaxDuration(uint256)", ["uint256"], [30 * DAY])
    op = g.schedule(g.task.address, payload)
    (scheduled,) = g.scheduled  # announced before it can take effect
    assert (scheduled.id, scheduled.target, scheduled.delay) == (op, g.task.address, DELAY)
    assert scheduled.payload == payload
    assert g.timelock.is_operation_pending(op) and not g.timelock.is_operation_ready(op)
    with pytest.raises(boa.BoaError, match=NOT_READY):
        g.execute(g.task.address, payload)
    boa.env.time_travel(seconds=DELAY - 1)
    with pytest.raises(boa.BoaError, match=NOT_READY):
        g.execute(g.task.address, payload)
    assert g.task.maxDuration() == 366 * DAY
    boa.env.time_travel(seconds=1)
    g.execute(g.task.address, payload)
    assert g.task.maxDuration() == 30 * DAY
    assert g.timelock.is_operation_done(op)
    with boa.env.prank(boa.env.generate_address()), boa.reverts("FederatedTask: deadline too far"):
        g.task.createTask(b"m" * 32, b"c" * 32, 1, 1, 1, now() + 31 * DAY)


def test_a_delay_shorter_than_the_minimum_cannot_be_scheduled() -> None:
    g = Governed()
    payload = calldata("setMaxDuration(uint256)", ["uint256"], [30 * DAY])
    with pytest.raises(boa.BoaError, match="timelock_controller: insufficient delay"):
        g.schedule(g.task.address, payload, delay=DELAY - 1)


def test_only_the_owner_changes_parameters_and_only_within_bounds() -> None:
    g = Governed()
    for who in (g.governor, g.guardian, boa.env.generate_address()):
        with boa.env.prank(who), boa.reverts(NOT_OWNER):
            g.task.setMaxDuration(30 * DAY)
        with boa.env.prank(who), boa.reverts(NOT_OWNER):
            g.grants.setGuardian(who)
    with boa.env.prank(g.timelock.address), boa.reverts("FederatedTask: duration out of bounds"):
        g.task.setMaxDuration(DAY - 1)
    with pytest.raises(boa.BoaError, match="duration out of bounds"):
        payload = calldata("setMaxDuration(uint256)", ["uint256"], [3661 * DAY])
        g.schedule(g.task.address, payload)
        boa.env.time_travel(seconds=DELAY)
        g.execute(g.task.address, payload)


def test_only_the_guardian_pauses_and_a_new_guardian_waits_for_the_timelock() -> None:
    g = Governed()
    for contract in (g.task, g.grants):
        with boa.env.prank(boa.env.generate_address()), boa.reverts(NOT_GUARDIAN):
            contract.pause()
        with boa.env.prank(g.governor), boa.reverts(NOT_GUARDIAN):
            contract.pause()  # the governor proposes; it does not hold the brake
        with boa.env.prank(g.guardian):
            contract.pause()
        assert contract.paused()
        with boa.env.prank(g.guardian), boa.reverts("pausable: contract is paused"):
            contract.pause()
        with boa.env.prank(g.guardian):
            contract.unpause()
        assert not contract.paused()
    successor = boa.env.generate_address("successor")
    payload = calldata("setGuardian(address)", ["address"], [successor])
    g.schedule(g.grants.address, payload)
    boa.env.time_travel(seconds=DELAY)
    g.execute(g.grants.address, payload)
    assert g.grants.guardian() == successor
    with boa.env.prank(g.guardian), boa.reverts(NOT_GUARDIAN):
        g.grants.pause()
    with boa.env.prank(successor):
        g.grants.pause()
    with boa.env.prank(g.timelock.address):
        g.task.setGuardian(successor)
    (event,) = g.task.get_logs()
    assert (event.previousGuardian, event.newGuardian) == (g.guardian, successor)


def test_ownership_moves_in_two_steps() -> None:
    g = Governed()
    new_owner, stranger = boa.env.generate_address("new"), boa.env.generate_address()
    payload = calldata("transfer_ownership(address)", ["address"], [new_owner])
    g.schedule(g.task.address, payload)
    boa.env.time_travel(seconds=DELAY)
    g.execute(g.task.address, payload)
    assert g.task.owner() == g.timelock.address  # nothing moved yet
    assert g.task.pending_owner() == new_owner
    with boa.env.prank(stranger), boa.reverts(NOT_PENDING):
        g.task.accept_ownership()
    with boa.env.prank(new_owner):
        g.task.accept_ownership()
    assert g.task.owner() == new_owner and g.task.pending_owner() == ZERO
    with boa.env.prank(new_owner):
        g.task.setMaxDuration(10 * DAY)  # the new owner may now act without the timelock
    assert g.task.maxDuration() == 10 * DAY


def test_an_ungoverned_suite_is_frozen() -> None:
    """Deployed without a governor (the embedded chain's default): nobody can propose,
    nobody can pause, and the parameters never change."""
    timelock = deploy("Timelock", DELAY, [], [])
    task = deploy("FederatedTask", timelock.address, ZERO)
    anyone = boa.env.generate_address()
    with boa.env.prank(anyone), boa.reverts(NOT_GUARDIAN):
        task.pause()
    with boa.env.prank(anyone), boa.reverts("access_control: account is missing role"):
        timelock.schedule(task.address, 0, b"", b"\0" * 32, b"\0" * 32, DELAY)


def test_the_gateway_domain_is_read_from_chain() -> None:
    g = Governed()
    fields, name, version, chain_id, contract, salt, extensions = g.grants.eip712Domain()
    assert (fields, name, version, salt, extensions) == (b"\x0f", "NeuroLedger Gateway", "1",
                                                         b"\0" * 32, [])  # fmt: skip
    assert contract == g.grants.address and chain_id == boa.env.evm.patch.chain_id
    domain = Domain(chain_id, contract, name=name, version=version)
    assert domain.separator == Domain(chain_id, contract).separator


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(delay=st.integers(DELAY, 30 * DAY), wait=st.integers(0, 31 * DAY))
def test_a_scheduled_change_runs_exactly_when_its_delay_has_passed(delay: int, wait: int) -> None:
    with boa.swap_env(boa.Env()):
        g = Governed()
        payload = calldata("setMaxDuration(uint256)", ["uint256"], [2 * DAY])
        g.schedule(g.task.address, payload, delay=delay)
        boa.env.time_travel(seconds=wait)
        if wait < delay:
            with pytest.raises(boa.BoaError, match=NOT_READY):
                g.execute(g.task.address, payload)
            assert g.task.maxDuration() == 366 * DAY
        else:
            g.execute(g.task.address, payload)
            assert g.task.maxDuration() == 2 * DAY


class GovernanceMachine(RuleBasedStateMachine):
    """Scheduled parameter changes, clock jumps, executions and cancellations, and two-step
    ownership transfers, against a model: a change runs only once, only after its delay,
    unless cancelled; only the pending owner accepts, and the owner changes only then."""

    def __init__(self) -> None:
        super().__init__()
        self.env = boa.swap_env(boa.Env())
        self.env.__enter__()
        self.g = Governed()
        self.ops: dict[int, tuple[int, int]] = {}  # salt -> (value, ready at)
        self.done: set[int] = set()
        self.max_duration = 366 * DAY
        self.people = [boa.env.generate_address() for _ in range(3)]
        # A second contract owned by a plain account, to move ownership without the timelock.
        self.owned = deploy("FederatedTask", self.people[0], ZERO)
        self.owner, self.pending = self.people[0], ZERO

    def teardown(self) -> None:
        self.env.__exit__(None, None, None)

    @rule(days=st.integers(1, 3650), extra=st.integers(0, 3 * DELAY))
    def schedule(self, days: int, extra: int) -> None:
        salt = len(self.ops) + 1
        payload = calldata("setMaxDuration(uint256)", ["uint256"], [days * DAY])
        self.g.schedule(self.g.task.address, payload, delay=DELAY + extra, salt=salt)
        self.ops[salt] = (days * DAY, now() + DELAY + extra)

    @rule(seconds=st.integers(1, 2 * DELAY))
    def wait(self, seconds: int) -> None:
        boa.env.time_travel(seconds=seconds)

    @precondition(lambda self: self.ops)
    @rule(data=st.data())
    def execute(self, data) -> None:
        salt = data.draw(st.sampled_from(sorted(self.ops)))
        value, ready_at = self.ops[salt]
        payload = calldata("setMaxDuration(uint256)", ["uint256"], [value])
        if salt in self.done or now() < ready_at:
            with pytest.raises(boa.BoaError):
                self.g.execute(self.g.task.address, payload, salt=salt)
            return
        self.g.execute(self.g.task.address, payload, salt=salt)
        self.done.add(salt)
        self.max_duration = value

    @precondition(lambda self: self.ops)
    @rule(data=st.data())
    def cancel(self, data) -> None:
        salt = data.draw(st.sampled_from(sorted(self.ops)))
        value, _ = self.ops[salt]
        payload = calldata("setMaxDuration(uint256)", ["uint256"], [value])
        op = self.g.timelock.hash_operation(self.g.task.address, 0, payload, b"\0" * 32,
                                            salt.to_bytes(32, "big"))  # fmt: skip
        with boa.env.prank(self.g.governor):
            if salt in self.done:
                with boa.reverts():
                    self.g.timelock.cancel(op)
                return
            self.g.timelock.cancel(op)
        self.done.add(salt)  # cancelled: it can never run

    @rule(who=st.integers(0, 2), to=st.integers(0, 2))
    def transfer(self, who: int, to: int) -> None:
        caller, target = self.people[who], self.people[to]
        with boa.env.prank(caller):
            if caller != self.owner:
                with boa.reverts(NOT_OWNER):
                    self.owned.transfer_ownership(target)
                return
            self.owned.transfer_ownership(target)
        self.pending = target

    @rule(who=st.integers(0, 2))
    def accept(self, who: int) -> None:
        caller = self.people[who]
        with boa.env.prank(caller):
            if caller != self.pending:
                with boa.reverts(NOT_PENDING):
                    self.owned.accept_ownership()
                return
            self.owned.accept_ownership()
        self.owner, self.pending = caller, ZERO

    @invariant()
    def matches_the_model(self) -> None:
        assert self.g.task.maxDuration() == self.max_duration
        assert (self.owned.owner(), self.owned.pending_owner()) == (self.owner, self.pending)


GovernanceMachine.TestCase.settings = settings(
    max_examples=15, stateful_step_count=25, deadline=None
)
test_governance_machine = GovernanceMachine.TestCase
