"""Unit and fuzz tests of the asset registry in titanoboa's EVM."""

from __future__ import annotations

import hashlib
from pathlib import Path

import boa
import pytest
from eth_abi import encode as abi_encode
from eth_utils import keccak
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.contracts.conftest import deploy

ROOT = Path(__file__).resolve().parents[2]
ZERO = "0x0000000000000000000000000000000000000000"
VERIKEY = b"veriKey".ljust(32, b"\0")
SIGAUTH = b"sigAuth".ljust(32, b"\0")
DATASET, CODE, MODEL = 1, 2, 3


def digest(label: str) -> bytes:
    return hashlib.sha256(label.encode()).digest()


def aid(identity: str, label: str) -> bytes:
    """The id content ``label`` gets when ``identity`` registers it."""
    return keccak(abi_encode(["address", "bytes32"], [identity, digest(label)]))


@pytest.fixture
def did():
    return deploy("DIDRegistry")


@pytest.fixture
def assets(did):
    return deploy("AssetRegistry", did.address)


@pytest.fixture
def alice():
    return boa.env.generate_address()


def register(
    assets, who, asset_id, *, kind=DATASET, parents=(), identity=None, license="CC-BY-4.0"
):
    with boa.env.prank(who):
        return assets.register(
            identity or who,
            asset_id,
            kind,
            digest("meta"),
            "sha256:" + "ab" * 32,
            list(parents),
            license,
        )


def test_constructor_rejects_zero_registry():
    with boa.reverts("AssetRegistry: DID registry is the zero address"):
        deploy("AssetRegistry", ZERO)


def test_register_stores_owner_kind_status_and_emits(assets, alice):
    register(assets, alice, digest("d1"), kind=DATASET, license="CC0-1.0")
    (event,) = assets.get_logs()
    assert type(event).__name__ == "AssetRegistered"
    assert event.id == aid(alice, "d1") == assets.assetId(alice, digest("d1"))
    assert event.digest == digest("d1")
    assert event.owner == alice
    assert event.kind == DATASET
    assert event.license == "CC0-1.0"
    assert event.sender == alice
    assert assets.assetOf(aid(alice, "d1")) == (alice, DATASET, 1)
    assert assets.isActive(aid(alice, "d1"))


def test_unknown_asset_reads_as_zero(assets):
    assert assets.assetOf(digest("nothing")) == (ZERO, 0, 0)
    assert not assets.isActive(digest("nothing"))


def test_register_with_parents_emits_lineage(assets, alice):
    register(assets, alice, digest("d1"))
    register(assets, alice, digest("c1"), kind=CODE)
    register(assets, alice, digest("m1"), kind=MODEL, parents=[aid(alice, "d1"), aid(alice, "c1")])
    event = assets.get_logs()[-1]
    assert list(event.parents) == [aid(alice, "d1"), aid(alice, "c1")]


def test_duplicate_digest_rejected(assets, alice):
    register(assets, alice, digest("d1"))
    with boa.reverts("AssetRegistry: digest already registered by this identity"):
        register(assets, alice, digest("d1"))


def test_m5_nobody_can_occupy_another_identitys_asset(assets, alice):
    """Front-running a pending registration, or squatting a public digest (published
    weights), gives the attacker an asset of its own, never the victim's id."""
    mallory = boa.env.generate_address()
    squatted = register(assets, mallory, digest("published-weights"))  # first, in the mempool
    assert squatted == aid(mallory, "published-weights")
    mine = register(assets, alice, digest("published-weights"))  # the real owner, second
    assert mine == aid(alice, "published-weights") != squatted
    assert assets.assetOf(mine) == (alice, DATASET, 1)
    assert assets.assetOf(squatted) == (mallory, DATASET, 1)
    with boa.env.prank(mallory):
        for call in (
            lambda: assets.revoke(mine, "x"),
            lambda: assets.deprecate(mine, "x"),
            lambda: assets.transfer(mine, mallory),
        ):
            with boa.reverts("AssetRegistry: caller is not the identity owner or a delegate"):
                call()


def test_unknown_parent_rejected(assets, alice):
    with boa.reverts("AssetRegistry: unknown parent"):
        register(assets, alice, digest("m1"), parents=[digest("ghost")])
    assert assets.assetOf(aid(alice, "m1")) == (ZERO, 0, 0)


def test_duplicate_parent_rejected(assets, alice):
    register(assets, alice, digest("d1"))
    with boa.reverts("AssetRegistry: duplicate parent"):
        register(assets, alice, digest("m1"), parents=[aid(alice, "d1"), aid(alice, "d1")])


def test_revoked_parent_rejected(assets, alice):
    register(assets, alice, digest("d1"))
    with boa.env.prank(alice):
        assets.revoke(aid(alice, "d1"), "consent withdrawn")
    with boa.reverts("AssetRegistry: parent is revoked"):
        register(assets, alice, digest("m1"), parents=[aid(alice, "d1")])


def test_deprecated_parent_allowed(assets, alice):
    register(assets, alice, digest("d1"))
    with boa.env.prank(alice):
        assets.deprecate(aid(alice, "d1"), "superseded by d2")
    register(assets, alice, digest("m1"), parents=[aid(alice, "d1")])
    assert assets.isActive(aid(alice, "m1"))


def test_zero_id_and_zero_kind_rejected(assets, alice):
    with boa.reverts("AssetRegistry: digest is zero"):
        register(assets, alice, b"\0" * 32)
    with boa.reverts("AssetRegistry: kind is zero"):
        register(assets, alice, digest("d1"), kind=0)


def test_stranger_cannot_register_for_identity(assets, alice):
    mallory = boa.env.generate_address()
    with boa.reverts("AssetRegistry: caller is not the identity owner or a delegate"):
        register(assets, mallory, digest("d1"), identity=alice)


def test_rotated_owner_acts_for_identity(did, assets, alice):
    new_owner = boa.env.generate_address()
    with boa.env.prank(alice):
        did.changeOwner(alice, new_owner)
    with boa.reverts("AssetRegistry: caller is not the identity owner or a delegate"):
        register(assets, alice, digest("d1"), identity=alice)
    register(assets, new_owner, digest("d1"), identity=alice)
    assert assets.assetOf(aid(alice, "d1"))[0] == alice


def test_verikey_delegate_acts_until_expiry(did, assets, alice):
    agent = boa.env.generate_address()
    with boa.env.prank(alice):
        did.addDelegate(alice, VERIKEY, agent, 100)
    register(assets, agent, digest("d1"), identity=alice)
    assert assets.get_logs()[-1].sender == agent
    boa.env.time_travel(seconds=101)
    with boa.reverts("AssetRegistry: caller is not the identity owner or a delegate"):
        register(assets, agent, digest("d2"), identity=alice)


def test_sigauth_delegate_is_not_enough(did, assets, alice):
    agent = boa.env.generate_address()
    with boa.env.prank(alice):
        did.addDelegate(alice, SIGAUTH, agent, 100)
    with boa.reverts("AssetRegistry: caller is not the identity owner or a delegate"):
        register(assets, agent, digest("d1"), identity=alice)


def test_deprecate_then_revoke(assets, alice):
    register(assets, alice, digest("d1"))
    with boa.env.prank(alice):
        assets.deprecate(aid(alice, "d1"), "superseded")
        assert type(assets.get_logs()[-1]).__name__ == "AssetDeprecated"
        assert assets.assetOf(aid(alice, "d1"))[2] == 2
        with boa.reverts("AssetRegistry: asset is not active"):
            assets.deprecate(aid(alice, "d1"), "again")
        assets.revoke(aid(alice, "d1"), "leaked PII")
    event = assets.get_logs()[-1]
    assert (type(event).__name__, event.reason, event.owner) == (
        "AssetRevoked",
        "leaked PII",
        alice,
    )
    assert assets.assetOf(aid(alice, "d1")) == (alice, DATASET, 3)


def test_revoked_stays_revoked(assets, alice):
    register(assets, alice, digest("d1"))
    bob = boa.env.generate_address()
    with boa.env.prank(alice):
        assets.revoke(aid(alice, "d1"), "withdrawn")
        with boa.reverts("AssetRegistry: asset is already revoked"):
            assets.revoke(aid(alice, "d1"), "twice")
        with boa.reverts("AssetRegistry: asset is not active"):
            assets.deprecate(aid(alice, "d1"), "too late")
        with boa.reverts("AssetRegistry: asset is revoked"):
            assets.transfer(aid(alice, "d1"), bob)
    with boa.reverts("AssetRegistry: digest already registered by this identity"):
        register(assets, alice, digest("d1"))
    assert assets.assetOf(aid(alice, "d1"))[2] == 3


def test_transfer_moves_control(assets, alice):
    bob = boa.env.generate_address()
    register(assets, alice, digest("d1"))
    with boa.env.prank(alice):
        assets.transfer(aid(alice, "d1"), bob)
    event = assets.get_logs()[-1]
    assert (event.previousOwner, event.newOwner) == (alice, bob)
    with (
        boa.env.prank(alice),
        boa.reverts("AssetRegistry: caller is not the identity owner or a delegate"),
    ):
        assets.revoke(aid(alice, "d1"), "not mine any more")
    with boa.env.prank(bob):
        assets.deprecate(aid(alice, "d1"), "mine now")
    assert assets.assetOf(aid(alice, "d1")) == (bob, DATASET, 2)


def test_transfer_to_zero_rejected(assets, alice):
    register(assets, alice, digest("d1"))
    with boa.env.prank(alice), boa.reverts("AssetRegistry: owner is the zero address"):
        assets.transfer(aid(alice, "d1"), ZERO)


def test_others_cannot_change_an_asset(assets, alice):
    mallory = boa.env.generate_address()
    register(assets, alice, digest("d1"))
    with boa.env.prank(mallory):
        for call in (
            lambda: assets.revoke(aid(alice, "d1"), "x"),
            lambda: assets.deprecate(aid(alice, "d1"), "x"),
            lambda: assets.transfer(aid(alice, "d1"), mallory),
        ):
            with boa.reverts("AssetRegistry: caller is not the identity owner or a delegate"):
                call()
    assert assets.assetOf(aid(alice, "d1")) == (alice, DATASET, 1)


def test_changes_to_unknown_asset_rejected(assets, alice):
    with boa.env.prank(alice):
        with boa.reverts("AssetRegistry: unknown asset"):
            assets.revoke(aid(alice, "ghost"), "x")
        with boa.reverts("AssetRegistry: unknown asset"):
            assets.attest(aid(alice, "ghost"), alice, digest("s"), "")


def test_attest_by_third_party(assets, alice):
    auditor = boa.env.generate_address()
    register(assets, alice, digest("m1"), kind=MODEL)
    with boa.env.prank(auditor):
        assets.attest(aid(alice, "m1"), auditor, digest("eval"), "sha256:" + "cd" * 32)
    event = assets.get_logs()[-1]
    assert type(event).__name__ == "AssetAttested"
    assert (event.id, event.attester, event.statementDigest) == (
        aid(alice, "m1"),
        auditor,
        digest("eval"),
    )
    with (
        boa.env.prank(auditor),
        boa.reverts("AssetRegistry: caller is not the identity owner or a delegate"),
    ):
        assets.attest(aid(alice, "m1"), alice, digest("forged"), "")
    with boa.env.prank(auditor), boa.reverts("AssetRegistry: statement digest is zero"):
        assets.attest(aid(alice, "m1"), auditor, b"\0" * 32, "")


def test_parent_limit(assets, alice):
    parents = [register(assets, alice, digest(f"p{i}")) for i in range(17)]
    register(assets, alice, digest("m16"), parents=parents[:16])
    with boa.reverts():  # the contract's ABI decoder refuses a 17-element array
        register(assets, alice, digest("m17"), parents=parents)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    kind=st.integers(min_value=1, max_value=255),
    uri=st.text(max_size=64),
    license=st.text(max_size=32),
    raw=st.binary(min_size=32, max_size=32).filter(lambda b: any(b)),
)
def test_fuzz_register_round_trips(assets, alice, kind, uri, license, raw):
    asset = keccak(abi_encode(["address", "bytes32"], [alice, raw]))
    if assets.assetOf(asset)[2] != 0:
        return
    with boa.env.prank(alice):
        assert assets.register(alice, raw, kind, digest(uri), uri[:64], [], license[:32]) == asset
    event = assets.get_logs()[-1]
    assert (event.kind, event.metadataURI, event.license) == (kind, uri[:64], license[:32])
    assert (event.id, event.digest) == (asset, raw)
    assert assets.assetOf(asset) == (alice, kind, 1)
