"""Stateful fuzzing: random sequences of registry calls against a plain-Python model."""

from __future__ import annotations

import boa
from eth_account import Account
from eth_utils import keccak
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from tests.contracts.conftest import deploy

KEYS = [Account.from_key((i + 1).to_bytes(32, "big")) for i in range(4)]
ADDRS = [k.address for k in KEYS]
TYPES = [b"veriKey".ljust(32, b"\0"), b"sigAuth".ljust(32, b"\0")]
ZERO = "0x0000000000000000000000000000000000000000"


class RegistryMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.registry = deploy("DIDRegistry")
        self.owners: dict[str, str] = {}
        self.delegates: dict[tuple[str, bytes, str], int] = {}
        self.changed: dict[str, int] = {}
        self.nonce: dict[str, int] = {}
        self.deactivated: set[str] = set()

    def owner(self, identity: str) -> str:
        """The model: the identity owns itself until changed; a DID changed to the zero
        address is deactivated for good and owned by nobody (ZERO)."""
        if identity in self.deactivated:
            return ZERO
        return self.owners.get(identity, identity)

    def touch(self, identity: str) -> None:
        self.changed[identity] = boa.env.evm.patch.block_number

    @rule(
        actor=st.sampled_from(ADDRS),
        identity=st.sampled_from(ADDRS),
        new=st.sampled_from([*ADDRS, ZERO]),
    )
    def change_owner(self, actor, identity, new):
        with boa.env.prank(actor):
            if actor == self.owner(identity):
                self.registry.changeOwner(identity, new)
                self.owners[identity] = new
                if new == ZERO:
                    self.deactivated.add(identity)
                self.touch(identity)
            else:
                with boa.reverts():
                    self.registry.changeOwner(identity, new)

    @rule(
        signer=st.integers(0, 3),
        identity=st.sampled_from(ADDRS),
        new=st.sampled_from(ADDRS),
        replay=st.booleans(),
    )
    def change_owner_signed(self, signer, identity, new, replay):
        key = KEYS[signer]
        nonce = self.nonce.get(self.owner(identity), 0)
        digest = keccak(
            b"\x19\x00"
            + bytes.fromhex(self.registry.address[2:])
            + nonce.to_bytes(32, "big")
            + bytes.fromhex(identity[2:])
            + b"changeOwner"
            + bytes.fromhex(new[2:])
        )
        sig = key.unsafe_sign_hash(digest)
        args = (identity, sig.v, sig.r.to_bytes(32, "big"), sig.s.to_bytes(32, "big"), new)
        if key.address == self.owner(identity):
            self.registry.changeOwnerSigned(*args)
            self.nonce[key.address] = self.nonce.get(key.address, 0) + 1
            self.owners[identity] = new
            self.touch(identity)
            if replay:
                with boa.reverts():
                    self.registry.changeOwnerSigned(*args)
        else:
            with boa.reverts():
                self.registry.changeOwnerSigned(*args)

    @rule(
        actor=st.sampled_from(ADDRS),
        identity=st.sampled_from(ADDRS),
        kind=st.sampled_from(TYPES),
        delegate=st.sampled_from(ADDRS),
        validity=st.integers(0, 10_000),
        revoke=st.booleans(),
    )
    def delegate(self, actor, identity, kind, delegate, validity, revoke):
        with boa.env.prank(actor):
            if actor != self.owner(identity):
                with boa.reverts():
                    self.registry.addDelegate(identity, kind, delegate, validity)
                return
            if revoke:
                self.registry.revokeDelegate(identity, kind, delegate)
                self.delegates[(identity, kind, delegate)] = boa.env.timestamp
            else:
                self.registry.addDelegate(identity, kind, delegate, validity)
                self.delegates[(identity, kind, delegate)] = boa.env.timestamp + validity
            self.touch(identity)

    @rule(
        actor=st.sampled_from(ADDRS), identity=st.sampled_from(ADDRS), value=st.binary(max_size=64)
    )
    def set_attribute(self, actor, identity, value):
        name = b"did/svc/Test".ljust(32, b"\0")
        with boa.env.prank(actor):
            if actor == self.owner(identity):
                self.registry.setAttribute(identity, name, value, 100)
                self.touch(identity)
            else:
                with boa.reverts():
                    self.registry.setAttribute(identity, name, value, 100)

    @rule(seconds=st.integers(12, 5000))
    def time_passes(self, seconds):
        boa.env.time_travel(seconds=seconds)

    @invariant()
    def matches_model(self):
        now = boa.env.timestamp
        for identity in ADDRS:
            assert self.registry.identityOwner(identity) == self.owner(identity)
            assert self.registry.changed(identity) == self.changed.get(identity, 0)
            assert self.registry.nonce(identity) == self.nonce.get(identity, 0)
            for kind in TYPES:
                for delegate in ADDRS:
                    valid_to = self.delegates.get((identity, kind, delegate), 0)
                    valid = valid_to > now and identity not in self.deactivated
                    assert self.registry.validDelegate(identity, kind, delegate) == valid
                    assert self.registry.delegates(identity, keccak(kind), delegate) == valid_to


RegistryMachine.TestCase.settings = settings(max_examples=30, stateful_step_count=25, deadline=None)
TestRegistryStateful = RegistryMachine.TestCase
