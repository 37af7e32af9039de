"""Stateful fuzzing of the asset registry against a plain-Python model.

Invariants checked after every step: no asset has an unregistered parent, an
asset's id is its registrant and digest (so one identity registers a digest
once, and nobody occupies another identity's id), only the owner identity (its DID owner or a veriKey
delegate) changes an asset, and a revoked asset stays revoked.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import boa
from eth_abi import encode as abi_encode
from eth_utils import keccak
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from tests.contracts.conftest import deploy

ROOT = Path(__file__).resolve().parents[2]
ACTORS = [boa.env.generate_address() for _ in range(4)]
DIGESTS = [hashlib.sha256(f"asset-{i}".encode()).digest() for i in range(4)]


def asset_id(identity: str, digest: bytes) -> bytes:
    return keccak(abi_encode(["address", "bytes32"], [identity, digest]))


IDS = [asset_id(a, d) for a in ACTORS for d in DIGESTS]
VERIKEY = b"veriKey".ljust(32, b"\0")
ACTIVE, DEPRECATED, REVOKED = 1, 2, 3
NOT_ALLOWED = "AssetRegistry: caller is not the identity owner or a delegate"


class AssetRegistryMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.did = deploy("DIDRegistry")
        self.assets = deploy("AssetRegistry", self.did.address)
        self.owner: dict[bytes, str] = {}
        self.status: dict[bytes, int] = {}
        self.parents: dict[bytes, list[bytes]] = {}
        self.delegates: set[tuple[str, str]] = set()  # (identity, delegate)

    def may_act(self, actor: str, identity: str) -> bool:
        return actor == identity or (identity, actor) in self.delegates

    @rule(identity=st.sampled_from(ACTORS), delegate=st.sampled_from(ACTORS))
    def add_delegate(self, identity, delegate):
        with boa.env.prank(identity):
            self.did.addDelegate(identity, VERIKEY, delegate, 10**9)
        self.delegates.add((identity, delegate))

    @rule(
        actor=st.sampled_from(ACTORS),
        identity=st.sampled_from(ACTORS),
        digest=st.sampled_from(DIGESTS),
        parents=st.lists(st.sampled_from(IDS), max_size=3),
    )
    def register(self, actor, identity, digest, parents):
        asset = asset_id(identity, digest)
        expected = None
        if asset in self.owner:
            expected = "AssetRegistry: digest already registered by this identity"
        elif not self.may_act(actor, identity):
            expected = NOT_ALLOWED
        else:
            for i, p in enumerate(parents):
                if p not in self.owner:
                    expected = "AssetRegistry: unknown parent"
                elif self.status[p] == REVOKED:
                    expected = "AssetRegistry: parent is revoked"
                elif p in parents[:i]:
                    expected = "AssetRegistry: duplicate parent"
                if expected:
                    break
        with boa.env.prank(actor):
            if expected:
                with boa.reverts(expected):
                    self.assets.register(identity, digest, 1, b"\1" * 32, "", parents, "")
                return
            assert self.assets.register(identity, digest, 1, b"\1" * 32, "", parents, "") == asset
        self.owner[asset] = identity
        self.status[asset] = ACTIVE
        self.parents[asset] = list(parents)

    def _change(self, actor: str, asset: bytes, allowed_from: set[int], message: str, call) -> bool:
        if asset not in self.owner:
            expected = "AssetRegistry: unknown asset"
        elif not self.may_act(actor, self.owner[asset]):
            expected = NOT_ALLOWED
        elif self.status[asset] not in allowed_from:
            expected = message
        else:
            expected = None
        with boa.env.prank(actor):
            if expected:
                with boa.reverts(expected):
                    call()
                return False
            call()
        return True

    @rule(actor=st.sampled_from(ACTORS), asset=st.sampled_from(IDS))
    def deprecate(self, actor, asset):
        ok = self._change(
            actor,
            asset,
            {ACTIVE},
            "AssetRegistry: asset is not active",
            lambda: self.assets.deprecate(asset, "superseded"),
        )
        if ok:
            self.status[asset] = DEPRECATED

    @rule(actor=st.sampled_from(ACTORS), asset=st.sampled_from(IDS))
    def revoke(self, actor, asset):
        ok = self._change(
            actor,
            asset,
            {ACTIVE, DEPRECATED},
            "AssetRegistry: asset is already revoked",
            lambda: self.assets.revoke(asset, "withdrawn"),
        )
        if ok:
            self.status[asset] = REVOKED

    @rule(actor=st.sampled_from(ACTORS), asset=st.sampled_from(IDS), to=st.sampled_from(ACTORS))
    def transfer(self, actor, asset, to):
        ok = self._change(
            actor,
            asset,
            {ACTIVE, DEPRECATED},
            "AssetRegistry: asset is revoked",
            lambda: self.assets.transfer(asset, to),
        )
        if ok:
            self.owner[asset] = to

    @invariant()
    def storage_matches_model(self):
        for asset in IDS:
            owner, kind, status = self.assets.assetOf(asset)
            if asset in self.owner:
                assert (owner, kind, status) == (self.owner[asset], 1, self.status[asset])
            else:
                assert status == 0

    @invariant()
    def no_orphans_or_cycles(self):
        for child, parents in self.parents.items():
            for p in parents:
                assert p in self.owner
                assert p != child


AssetRegistryMachine.TestCase.settings = settings(
    max_examples=40, stateful_step_count=30, deadline=None
)
test_asset_registry_machine = AssetRegistryMachine.TestCase
