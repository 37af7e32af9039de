"""Unit, fuzz and stateful tests of the DID registry in titanoboa's EVM."""

from __future__ import annotations

from pathlib import Path

import boa
import pytest
from eth_account import Account
from eth_utils import keccak
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tests.contracts.conftest import deploy

ROOT = Path(__file__).resolve().parents[2]
ZERO = "0x0000000000000000000000000000000000000000"
DEAD = "0x000000000000000000000000000000000000dead"  # the contract's deactivation marker
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def b32(text: str) -> bytes:
    return text.encode().ljust(32, b"\0")


@pytest.fixture
def registry():
    return deploy("DIDRegistry")


def sign(registry, owner, identity: str, action: str, payload: bytes) -> tuple[int, bytes, bytes]:
    nonce = registry.nonce(owner.address)
    digest = keccak(
        b"\x19\x00"
        + bytes.fromhex(registry.address[2:])
        + nonce.to_bytes(32, "big")
        + bytes.fromhex(identity[2:])
        + action.encode()
        + payload
    )
    sig = owner.unsafe_sign_hash(digest)
    return sig.v, sig.r.to_bytes(32, "big"), sig.s.to_bytes(32, "big")


# -- ownership -------------------------------------------------------------------------


def test_identity_owns_itself_until_changed(registry):
    who = boa.env.generate_address()
    assert registry.identityOwner(who) == who
    assert registry.changed(who) == 0


def test_change_owner_emits_and_moves_pointer(registry):
    identity, new = boa.env.generate_address(), boa.env.generate_address()
    with boa.env.prank(identity):
        registry.changeOwner(identity, new)
    [event] = registry.get_logs()
    assert registry.identityOwner(identity) == new
    assert registry.owners(identity) == new
    assert type(event).__name__ == "DIDOwnerChanged"
    assert event.owner == new and event.previousChange == 0
    assert registry.changed(identity) == boa.env.evm.patch.block_number


def test_only_owner_may_change_owner(registry):
    identity, stranger = boa.env.generate_address(), boa.env.generate_address()
    with boa.env.prank(stranger), boa.reverts("DIDRegistry: caller is not the identity owner"):
        registry.changeOwner(identity, stranger)


def test_old_owner_loses_control_after_rotation(registry):
    identity, new = boa.env.generate_address(), boa.env.generate_address()
    with boa.env.prank(identity):
        registry.changeOwner(identity, new)
    with boa.env.prank(identity), boa.reverts("DIDRegistry: caller is not the identity owner"):
        registry.changeOwner(identity, identity)
    with boa.env.prank(new):
        registry.changeOwner(identity, identity)
    assert registry.identityOwner(identity) == identity


def test_previous_change_links_history(registry):
    identity = boa.env.generate_address()
    with boa.env.prank(identity):
        registry.setAttribute(identity, b32("did/svc/Hub"), b"https://a", 100)
        first = registry.changed(identity)
        boa.env.time_travel(blocks=3)
        registry.setAttribute(identity, b32("did/svc/Hub"), b"https://b", 100)
        [event] = registry.get_logs()
    assert event.previousChange == first
    assert registry.changed(identity) == first + 3


# -- delegates ---------------------------------------------------------------------------


def test_delegate_valid_until_expiry_then_invalid(registry):
    identity, delegate = boa.env.generate_address(), boa.env.generate_address()
    with boa.env.prank(identity):
        registry.addDelegate(identity, b32("veriKey"), delegate, 100)
    assert registry.validDelegate(identity, b32("veriKey"), delegate)
    assert not registry.validDelegate(identity, b32("sigAuth"), delegate)
    assert registry.delegates(identity, keccak(b32("veriKey")), delegate) == boa.env.timestamp + 100
    boa.env.time_travel(seconds=101)
    assert not registry.validDelegate(identity, b32("veriKey"), delegate)


def test_revoke_delegate(registry):
    identity, delegate = boa.env.generate_address(), boa.env.generate_address()
    with boa.env.prank(identity):
        registry.addDelegate(identity, b32("sigAuth"), delegate, 1000)
        registry.revokeDelegate(identity, b32("sigAuth"), delegate)
    [event] = registry.get_logs()
    assert not registry.validDelegate(identity, b32("sigAuth"), delegate)
    assert event.validTo == boa.env.timestamp


def test_stranger_cannot_add_or_revoke_delegates(registry):
    identity, stranger = boa.env.generate_address(), boa.env.generate_address()
    with boa.env.prank(stranger), boa.reverts("DIDRegistry: caller is not the identity owner"):
        registry.addDelegate(identity, b32("veriKey"), stranger, 100)
    with boa.env.prank(stranger), boa.reverts("DIDRegistry: caller is not the identity owner"):
        registry.revokeDelegate(identity, b32("veriKey"), stranger)


def test_delegate_validity_overflow_reverts(registry):
    identity = boa.env.generate_address()
    with boa.env.prank(identity), boa.reverts():
        registry.addDelegate(identity, b32("veriKey"), identity, 2**256 - 1)


# -- attributes --------------------------------------------------------------------------


def test_set_and_revoke_attribute_events(registry):
    identity = boa.env.generate_address()
    key = bytes(range(32))
    with boa.env.prank(identity):
        registry.setAttribute(identity, b32("did/pub/X25519/enc/base64"), key, 3600)
    [event] = registry.get_logs()
    assert event.value == key
    assert event.validTo == boa.env.timestamp + 3600
    with boa.env.prank(identity):
        registry.revokeAttribute(identity, b32("did/pub/X25519/enc/base64"), key)
    [event] = registry.get_logs()
    assert event.validTo == 0


def test_attribute_value_bound(registry):
    identity = boa.env.generate_address()
    with boa.env.prank(identity):
        registry.setAttribute(identity, b32("did/svc/X"), b"x" * 1024, 1)
        with boa.reverts():
            registry.setAttribute(identity, b32("did/svc/X"), b"x" * 1025, 1)


def test_stranger_cannot_set_attribute(registry):
    identity, stranger = boa.env.generate_address(), boa.env.generate_address()
    with boa.env.prank(stranger), boa.reverts("DIDRegistry: caller is not the identity owner"):
        registry.setAttribute(identity, b32("did/svc/X"), b"x", 1)


# -- signed variants -----------------------------------------------------------------------


def test_change_owner_signed_and_replay_rejected(registry):
    owner = Account.create()
    new = boa.env.generate_address()
    v, r, s = sign(registry, owner, owner.address, "changeOwner", bytes.fromhex(new[2:]))
    registry.changeOwnerSigned(owner.address, v, r, s, new)  # relayed by anyone
    assert registry.identityOwner(owner.address) == new
    assert registry.nonce(owner.address) == 1
    with boa.reverts():
        registry.changeOwnerSigned(owner.address, v, r, s, new)  # replay: nonce moved on


def test_signed_by_wrong_key_rejected(registry):
    owner, forger = Account.create(), Account.create()
    v, r, s = sign(
        registry, forger, owner.address, "changeOwner", bytes.fromhex(forger.address[2:])
    )
    with boa.reverts("DIDRegistry: signature is not from the identity owner"):
        registry.changeOwnerSigned(owner.address, v, r, s, forger.address)


def test_high_s_signature_rejected(registry):
    owner = Account.create()
    new = boa.env.generate_address()
    v, r, s = sign(registry, owner, owner.address, "changeOwner", bytes.fromhex(new[2:]))
    high_s = (SECP256K1_N - int.from_bytes(s, "big")).to_bytes(32, "big")
    flipped_v = 55 - v  # 27 <-> 28
    with boa.reverts("ecdsa: invalid signature `s` value"):
        registry.changeOwnerSigned(owner.address, flipped_v, r, high_s, new)


def test_garbage_signature_rejected_for_zero_identity(registry):
    with boa.reverts("ecdsa: invalid signature"):
        registry.changeOwnerSigned(ZERO, 27, b"\x00" * 32, b"\x01" * 32, ZERO)


def test_set_attribute_signed(registry):
    owner = Account.create()
    name, value, validity = b32("did/svc/Hub"), b"https://hub.example", 500
    payload = name + value + validity.to_bytes(32, "big")
    v, r, s = sign(registry, owner, owner.address, "setAttribute", payload)
    registry.setAttributeSigned(owner.address, v, r, s, name, value, validity)
    [event] = registry.get_logs()
    assert event.value == value
    v, r, s = sign(registry, owner, owner.address, "revokeAttribute", name + value)
    registry.revokeAttributeSigned(owner.address, v, r, s, name, value)
    assert registry.nonce(owner.address) == 2


def test_delegate_signed_variants(registry):
    owner = Account.create()
    delegate = boa.env.generate_address()
    kind = b32("sigAuth")
    payload = kind + bytes.fromhex(delegate[2:]) + (60).to_bytes(32, "big")
    v, r, s = sign(registry, owner, owner.address, "addDelegate", payload)
    registry.addDelegateSigned(owner.address, v, r, s, kind, delegate, 60)
    assert registry.validDelegate(owner.address, kind, delegate)
    v, r, s = sign(
        registry, owner, owner.address, "revokeDelegate", kind + bytes.fromhex(delegate[2:])
    )
    registry.revokeDelegateSigned(owner.address, v, r, s, kind, delegate)
    assert not registry.validDelegate(owner.address, kind, delegate)


def test_signature_for_one_action_cannot_be_used_for_another(registry):
    owner = Account.create()
    delegate = boa.env.generate_address()
    kind = b32("veriKey")
    v, r, s = sign(
        registry, owner, owner.address, "revokeDelegate", kind + bytes.fromhex(delegate[2:])
    )
    with boa.reverts():
        registry.addDelegateSigned(owner.address, v, r, s, kind, delegate, 0)


def test_signature_bound_to_registry_address():
    a, b = deploy("DIDRegistry"), deploy("DIDRegistry")
    owner = Account.create()
    new = boa.env.generate_address()
    v, r, s = sign(a, owner, owner.address, "changeOwner", bytes.fromhex(new[2:]))
    with boa.reverts("DIDRegistry: signature is not from the identity owner"):
        b.changeOwnerSigned(owner.address, v, r, s, new)


# -- fuzzing -----------------------------------------------------------------------------------

addresses = st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex())


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    name=st.binary(min_size=32, max_size=32),
    value=st.binary(max_size=1024),
    validity=st.integers(0, 2**64),
)
def test_fuzz_set_attribute_roundtrip(registry, name, value, validity):
    identity = boa.env.generate_address()
    with boa.env.prank(identity):
        registry.setAttribute(identity, name, value, validity)
    [event] = registry.get_logs()
    assert event.name == name
    assert event.value == value
    assert event.validTo == boa.env.timestamp + validity


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(caller=addresses, identity=addresses, new=addresses)
def test_fuzz_only_owner_changes_owner(registry, caller, identity, new):
    assume(identity != ZERO)  # no key is the zero address: nobody controls that identity
    before = registry.identityOwner(identity)
    with boa.env.prank(caller):
        if caller.lower() == before.lower() and new.lower() != DEAD:
            registry.changeOwner(identity, new)
            assert registry.identityOwner(identity).lower() == new.lower()  # zero: deactivated
        else:
            with boa.reverts():
                registry.changeOwner(identity, new)
            assert registry.identityOwner(identity) == before


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(key=st.integers(1, SECP256K1_N - 1), nonce_offset=st.integers(1, 3))
def test_fuzz_signature_with_stale_or_future_nonce_rejected(registry, key, nonce_offset):
    owner = Account.from_key(key.to_bytes(32, "big"))
    new = boa.env.generate_address()
    nonce = registry.nonce(owner.address) + nonce_offset
    digest = keccak(
        b"\x19\x00"
        + bytes.fromhex(registry.address[2:])
        + nonce.to_bytes(32, "big")
        + bytes.fromhex(owner.address[2:])
        + b"changeOwner"
        + bytes.fromhex(new[2:])
    )
    sig = owner.unsafe_sign_hash(digest)
    with boa.reverts():
        registry.changeOwnerSigned(
            owner.address, sig.v, sig.r.to_bytes(32, "big"), sig.s.to_bytes(32, "big"), new
        )


# -- deactivation (issue 12, M7) --------------------------------------------------------


def test_a_deactivated_identity_is_controlled_by_nobody(registry):
    identity, owner, delegate = (boa.env.generate_address() for _ in range(3))
    with boa.env.prank(identity):
        registry.changeOwner(identity, owner)
    with boa.env.prank(owner):
        registry.addDelegate(identity, b32("veriKey"), delegate, 86400)
        assert registry.validDelegate(identity, b32("veriKey"), delegate)
        registry.changeOwner(identity, ZERO)  # deactivate
    assert registry.identityOwner(identity) == ZERO
    assert not registry.validDelegate(identity, b32("veriKey"), delegate)
    # Neither the identity's own (perhaps leaked) key, nor the last owner, nor a delegate
    # can take it back or change it.
    for actor in (identity, owner, delegate):
        with (
            boa.env.prank(actor),
            boa.reverts("DIDRegistry: caller is not the identity owner (it is deactivated)"),
        ):
            registry.changeOwner(identity, actor)
        with boa.env.prank(actor), boa.reverts():
            registry.setAttribute(identity, b32("did/svc/X"), b"x", 60)


def test_a_deactivated_identity_refuses_signed_changes_too(registry):
    key = Account.create()
    identity = key.address
    with boa.env.prank(identity):
        registry.changeOwner(identity, ZERO)
    v, r, s = sign(registry, key, identity, "changeOwner", bytes.fromhex(key.address[2:]))
    with boa.reverts():
        registry.changeOwnerSigned(identity, v, r, s, key.address)
    assert registry.identityOwner(identity) == ZERO
