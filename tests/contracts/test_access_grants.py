"""Access grants: expiry, revocation, modes and purposes, transfer, algorithm approval,
consent, with a stateful fuzz test against a plain-Python model."""

from __future__ import annotations

import hashlib
from pathlib import Path

import boa
import pytest
from eth_abi import encode as abi_encode
from eth_utils import keccak
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from tests import security_figures
from tests.contracts.conftest import ZERO, deploy

ROOT = Path(__file__).resolve().parents[2]
VERIKEY = b"veriKey".ljust(32, b"\0")
DOWNLOAD, COMPUTE = 1, 2
RESEARCH = b"research".ljust(32, b"\0")
MARKETING = b"marketing".ljust(32, b"\0")
NOT_ALLOWED = "AccessGrants: caller is not the identity owner or a delegate"
GUARDIAN = "0x" + "9a" * 20
PAUSED = "pausable: contract is paused"

pytestmark = pytest.mark.usefixtures("fresh_env")


def digest(label: str) -> bytes:
    return hashlib.sha256(label.encode()).digest()


def deploy_suite():
    did = deploy("DIDRegistry")
    assets = deploy("AssetRegistry", did.address)
    grants = deploy("AccessGrants", did.address, assets.address, ZERO, GUARDIAN)
    return did, assets, grants


@pytest.fixture
def suite():
    did, assets, grants = deploy_suite()
    hospital, lab, patient = (boa.env.generate_address() for _ in range(3))
    with boa.env.prank(hospital):
        data = assets.register(hospital, digest("records"), 1, b"\1" * 32, "", [], "")
    return did, assets, grants, hospital, lab, patient, data


def test_grant_expires(suite) -> None:
    _, _, grants, hospital, lab, _, data = suite
    expiry = boa.env.evm.patch.timestamp + 3600
    with boa.env.prank(hospital):
        grants.grant(data, lab, DOWNLOAD, RESEARCH, expiry)
    logs = grants.get_logs()
    assert logs[-1].__class__.__name__ == "AccessGranted" and logs[-1].expiry == expiry
    assert grants.hasAccess(data, lab, DOWNLOAD, RESEARCH)
    assert grants.grantOf(data, lab, RESEARCH) == (DOWNLOAD, expiry, hospital)
    boa.env.time_travel(seconds=3600)
    assert not grants.hasAccess(data, lab, DOWNLOAD, RESEARCH)
    with boa.env.prank(hospital), boa.reverts("AccessGrants: expiry is in the past"):
        grants.grant(data, lab, DOWNLOAD, RESEARCH, boa.env.evm.patch.timestamp)


def test_revocation_takes_effect_at_once(suite) -> None:
    _, _, grants, hospital, lab, _, data = suite
    with boa.env.prank(hospital):
        grants.grant(data, lab, DOWNLOAD | COMPUTE, RESEARCH, 2**40)
        grants.revoke(data, lab, RESEARCH)
    assert grants.get_logs()[-1].__class__.__name__ == "AccessRevoked"
    assert grants.get_logs()[-1].purpose == RESEARCH
    assert not grants.hasAccess(data, lab, DOWNLOAD, RESEARCH)
    assert not grants.hasAccess(data, lab, COMPUTE, RESEARCH)
    with boa.env.prank(hospital), boa.reverts("AccessGrants: no grant to revoke"):
        grants.revoke(data, lab, RESEARCH)


def test_grants_for_different_purposes_coexist(suite) -> None:
    """A one-hour research grant does not wipe a 30-day statistics grant; a second grant
    for the same purpose replaces the first and says so; revoking one purpose leaves the
    other."""
    _, _, grants, hospital, lab, _, data = suite
    now = boa.env.evm.patch.timestamp
    with boa.env.prank(hospital):
        grants.grant(data, lab, COMPUTE, MARKETING, now + 30 * 86400)
        grants.grant(data, lab, DOWNLOAD, RESEARCH, now + 3600)
        assert grants.get_logs()[-1].replaced is False
    assert grants.hasAccess(data, lab, COMPUTE, MARKETING)
    assert grants.hasAccess(data, lab, DOWNLOAD, RESEARCH)
    assert grants.grantOf(data, lab, MARKETING) == (COMPUTE, now + 30 * 86400, hospital)
    with boa.env.prank(hospital):
        grants.grant(data, lab, COMPUTE, RESEARCH, now + 7200)
        assert grants.get_logs()[-1].replaced is True
    assert not grants.hasAccess(data, lab, DOWNLOAD, RESEARCH)  # replaced: compute only now
    assert grants.hasAccess(data, lab, COMPUTE, RESEARCH)
    with boa.env.prank(hospital):
        grants.revoke(data, lab, RESEARCH)
    assert not grants.hasAccess(data, lab, COMPUTE, RESEARCH)
    assert grants.hasAccess(data, lab, COMPUTE, MARKETING)
    boa.env.time_travel(seconds=3600 * 24 * 31)
    with boa.env.prank(hospital):
        grants.grant(data, lab, COMPUTE, MARKETING, boa.env.evm.patch.timestamp + 60)
        assert grants.get_logs()[-1].replaced is False  # the old one had expired


def test_mode_and_purpose_must_match(suite) -> None:
    _, _, grants, hospital, lab, _, data = suite
    with boa.env.prank(hospital):
        grants.grant(data, lab, COMPUTE, RESEARCH, 2**40)
    assert grants.hasAccess(data, lab, COMPUTE, RESEARCH)
    assert not grants.hasAccess(data, lab, DOWNLOAD, RESEARCH)  # compute-only
    assert not grants.hasAccess(data, lab, COMPUTE, MARKETING)  # another purpose
    assert not grants.hasAccess(data, lab, 0, RESEARCH)
    assert not grants.hasAccess(data, lab, 3, RESEARCH)  # both asked, one granted
    with boa.env.prank(hospital):
        for modes in (0, 4, 7):
            with boa.reverts("AccessGrants: modes must be 1, 2 or 3"):
                grants.grant(data, lab, modes, RESEARCH, 2**40)
        with boa.reverts("AccessGrants: purpose is empty"):
            grants.grant(data, lab, COMPUTE, b"\0" * 32, 2**40)
        with boa.reverts("AccessGrants: grantee is the zero address"):
            grants.grant(data, "0x" + "00" * 20, COMPUTE, RESEARCH, 2**40)


def test_only_the_owner_or_a_delegate_grants(suite) -> None:
    did, _, grants, hospital, lab, patient, data = suite
    with boa.env.prank(lab), boa.reverts(NOT_ALLOWED):
        grants.grant(data, lab, DOWNLOAD, RESEARCH, 2**40)
    with boa.env.prank(hospital):
        did.addDelegate(hospital, VERIKEY, patient, 10**6)
    with boa.env.prank(patient):
        grants.grant(data, lab, DOWNLOAD, RESEARCH, 2**40)
    assert grants.get_logs()[-1].sender == patient
    with boa.reverts("AccessGrants: unknown asset"):
        grants.grant(digest("nothing"), lab, DOWNLOAD, RESEARCH, 2**40)


def test_transfer_and_asset_revocation_void_grants(suite) -> None:
    _, assets, grants, hospital, lab, patient, data = suite
    with boa.env.prank(hospital):
        grants.grant(data, lab, DOWNLOAD, RESEARCH, 2**40)
        assets.transfer(data, patient)
    assert not grants.hasAccess(data, lab, DOWNLOAD, RESEARCH)  # the new owner never granted
    with boa.env.prank(patient):
        grants.grant(data, lab, DOWNLOAD, RESEARCH, 2**40)
        assert grants.hasAccess(data, lab, DOWNLOAD, RESEARCH)
        assets.revoke(data, "withdrawn")
    assert not grants.hasAccess(data, lab, DOWNLOAD, RESEARCH)
    with boa.env.prank(patient), boa.reverts("AccessGrants: asset is not active"):
        grants.grant(data, lab, DOWNLOAD, RESEARCH, 2**40)


def test_algorithm_approval(suite) -> None:
    _, _, grants, hospital, lab, _, data = suite
    algorithm = digest("stats.py")
    assert not grants.isApproved(data, algorithm)
    with boa.env.prank(lab), boa.reverts(NOT_ALLOWED):
        grants.approveAlgorithm(data, algorithm, True)
    with boa.env.prank(hospital):
        grants.approveAlgorithm(data, algorithm, True)
        assert grants.isApproved(data, algorithm)
        grants.approveAlgorithm(data, algorithm, False)
    assert [e.approved for e in grants.get_logs()] == [False]
    assert not grants.isApproved(data, algorithm)


def test_consent_is_the_subjects_own(suite) -> None:
    _, _, grants, hospital, _, patient, _ = suite
    assert not grants.hasWithdrawn(patient, RESEARCH)
    with boa.env.prank(hospital), boa.reverts(NOT_ALLOWED):
        grants.setConsent(patient, RESEARCH, False)  # the hospital cannot withdraw for a patient
    with boa.env.prank(patient):
        grants.setConsent(patient, RESEARCH, False)
        assert grants.hasWithdrawn(patient, RESEARCH)
        assert not grants.hasWithdrawn(patient, MARKETING)
        grants.setConsent(patient, RESEARCH, True)
    event = grants.get_logs()[-1]
    assert not grants.hasWithdrawn(patient, RESEARCH)
    assert event.__class__.__name__ == "ConsentChanged" and event.given is True


ACTORS = [boa.env.generate_address() for _ in range(3)]
DIGESTS = [digest(f"asset-{i}") for i in range(3)]
# An asset's id is its registrant and its digest (AssetRegistry.assetId).
ASSETS = [
    keccak(abi_encode(["address", "bytes32"], [ACTORS[i % len(ACTORS)], d]))
    for i, d in enumerate(DIGESTS)
]
PURPOSES = [RESEARCH, MARKETING]
ALGORITHM = digest("stats.py")


class GrantsMachine(RuleBasedStateMachine):
    """Model: grants per (asset, grantee, purpose) with the grantor; owners; statuses; time;
    the guardian's pause, which stops new grants and nothing else: revocations, approvals
    and consent go on (their rules below do not look at the pause)."""

    def __init__(self) -> None:
        super().__init__()
        self.env = boa.swap_env(boa.Env())
        self.env.__enter__()
        self.did, self.assets, self.grants = deploy_suite()
        self.owner: dict[bytes, str] = {}
        self.active: dict[bytes, bool] = {}
        for i, content in enumerate(DIGESTS):
            owner = ACTORS[i % len(ACTORS)]
            with boa.env.prank(owner):
                asset = self.assets.register(owner, content, 1, b"\1" * 32, "", [], "")
            assert asset == ASSETS[i]
            self.owner[asset], self.active[asset] = owner, True
        self.model: dict[tuple[bytes, str, bytes], tuple[int, int, str, int]] = {}
        self.tenure: dict[bytes, int] = dict.fromkeys(ASSETS, 0)
        self.approved: dict[bytes, int] = {}  # asset -> tenure the approval was given in
        self.withdrawn: set[tuple[str, bytes]] = set()
        self.paused = False

    def teardown(self) -> None:
        self.env.__exit__(None, None, None)

    def now(self) -> int:
        return int(boa.env.evm.patch.timestamp)

    @rule(
        actor=st.sampled_from(ACTORS),
        asset=st.sampled_from(ASSETS),
        grantee=st.sampled_from(ACTORS),
        modes=st.integers(0, 4),
        purpose=st.sampled_from(PURPOSES),
        ttl=st.integers(-10, 1000),
    )
    def grant(self, actor, asset, grantee, modes, purpose, ttl) -> None:
        expiry = max(0, self.now() + ttl)
        with boa.env.prank(actor):
            if self.paused:
                with boa.reverts(PAUSED):
                    self.grants.grant(asset, grantee, modes, purpose, expiry)
            elif not self.active[asset]:
                with boa.reverts("AccessGrants: asset is not active"):
                    self.grants.grant(asset, grantee, modes, purpose, expiry)
            elif actor != self.owner[asset]:
                with boa.reverts(NOT_ALLOWED):
                    self.grants.grant(asset, grantee, modes, purpose, expiry)
            elif modes not in (1, 2, 3):
                with boa.reverts("AccessGrants: modes must be 1, 2 or 3"):
                    self.grants.grant(asset, grantee, modes, purpose, expiry)
            elif expiry <= self.now():
                with boa.reverts("AccessGrants: expiry is in the past"):
                    self.grants.grant(asset, grantee, modes, purpose, expiry)
            else:
                key = (asset, grantee, purpose)
                replaced = key in self.model and self._holds(asset, self.model[key])
                self.grants.grant(asset, grantee, modes, purpose, expiry)
                assert self.grants.get_logs()[-1].replaced == replaced
                self.model[key] = (
                    modes,
                    expiry,
                    self.owner[asset],
                    self.tenure[asset],
                )

    @rule(
        actor=st.sampled_from(ACTORS),
        asset=st.sampled_from(ASSETS),
        grantee=st.sampled_from(ACTORS),
        purpose=st.sampled_from(PURPOSES),
    )
    def revoke(self, actor, asset, grantee, purpose) -> None:
        with boa.env.prank(actor):
            if actor != self.owner[asset]:
                with boa.reverts(NOT_ALLOWED):
                    self.grants.revoke(asset, grantee, purpose)
            elif (asset, grantee, purpose) not in self.model:
                with boa.reverts("AccessGrants: no grant to revoke"):
                    self.grants.revoke(asset, grantee, purpose)
            else:
                self.grants.revoke(asset, grantee, purpose)
                del self.model[(asset, grantee, purpose)]

    def _holds(self, asset: bytes, g: tuple[int, int, str, int]) -> bool:
        return g[1] > self.now() and g[2] == self.owner[asset] and g[3] == self.tenure[asset]

    @rule(asset=st.sampled_from(ASSETS), to=st.sampled_from(ACTORS))
    def transfer(self, asset, to) -> None:
        if self.active[asset]:
            with boa.env.prank(self.owner[asset]):
                self.assets.transfer(asset, to)
            self.owner[asset] = to
            self.tenure[asset] += 1

    @rule(actor=st.sampled_from(ACTORS), asset=st.sampled_from(ASSETS), approved=st.booleans())
    def approve(self, actor, asset, approved) -> None:
        with boa.env.prank(actor):
            if actor != self.owner[asset]:
                with boa.reverts(NOT_ALLOWED):
                    self.grants.approveAlgorithm(asset, ALGORITHM, approved)
                return
            self.grants.approveAlgorithm(asset, ALGORITHM, approved)
        if approved:
            self.approved[asset] = self.tenure[asset]
        else:
            self.approved.pop(asset, None)

    @rule(asset=st.sampled_from(ASSETS))
    def revoke_asset(self, asset) -> None:
        if self.active[asset]:
            with boa.env.prank(self.owner[asset]):
                self.assets.revoke(asset, "gone")
            self.active[asset] = False

    @rule()
    def guardian_toggles_the_pause(self) -> None:
        with boa.env.prank(GUARDIAN):
            if self.paused:
                self.grants.unpause()
            else:
                self.grants.pause()
        self.paused = not self.paused

    @rule(seconds=st.integers(1, 600))
    def wait(self, seconds) -> None:
        boa.env.time_travel(seconds=seconds)

    @rule(actor=st.sampled_from(ACTORS), subject=st.sampled_from(ACTORS),
          purpose=st.sampled_from(PURPOSES), given=st.booleans())  # fmt: skip
    def consent(self, actor, subject, purpose, given) -> None:
        with boa.env.prank(actor):
            if actor != subject:
                with boa.reverts(NOT_ALLOWED):
                    self.grants.setConsent(subject, purpose, given)
                return
            self.grants.setConsent(subject, purpose, given)
        if given:
            self.withdrawn.discard((subject, purpose))
        else:
            self.withdrawn.add((subject, purpose))

    @invariant()
    def access_matches_the_model(self) -> None:
        for asset in ASSETS:
            for grantee in ACTORS:
                for purpose in PURPOSES:
                    g = self.model.get((asset, grantee, purpose))
                    for mode in (1, 2):
                        expected = (
                            g is not None
                            and g[0] & mode == mode
                            and self.active[asset]
                            and self._holds(asset, g)  # never revived by a return
                        )
                        assert self.grants.hasAccess(asset, grantee, mode, purpose) == expected

    @invariant()
    def approvals_hold_only_in_their_tenure(self) -> None:
        for asset in ASSETS:
            expected = self.approved.get(asset) == self.tenure[asset]
            assert self.grants.isApproved(asset, ALGORITHM) == expected

    @invariant()
    def consent_matches_the_model(self) -> None:
        for subject in ACTORS:
            for purpose in PURPOSES:
                assert self.grants.hasWithdrawn(subject, purpose) == (
                    (subject, purpose) in self.withdrawn
                )


GrantsMachine.TestCase.settings = settings(max_examples=15, stateful_step_count=20, deadline=None)
test_grants_machine = GrantsMachine.TestCase


def test_low_grants_and_approvals_lapse_for_good_when_the_asset_changes_hands(suite) -> None:
    """A grant and an approval given by the hospital stop when it transfers the dataset,
    and neither comes back when the dataset returns to the hospital."""
    _, assets, grants, hospital, lab, patient, data = suite
    algorithm = digest("dump.py")
    with boa.env.prank(hospital):
        grants.grant(data, lab, DOWNLOAD, RESEARCH, 2**40)
        grants.approveAlgorithm(data, algorithm, True)
        assets.transfer(data, patient)
    assert not grants.hasAccess(data, lab, DOWNLOAD, RESEARCH)
    assert not grants.isApproved(data, algorithm)
    through = int(grants.hasAccess(data, lab, DOWNLOAD, RESEARCH))
    through += int(grants.isApproved(data, algorithm))
    with boa.env.prank(patient):
        assets.transfer(data, hospital)  # the dataset comes back
    assert assets.tenureOf(data) == (hospital, 1, 2)
    through += int(grants.hasAccess(data, lab, DOWNLOAD, RESEARCH))
    through += int(grants.isApproved(data, algorithm))
    assert through == 0
    security_figures.record(
        "contracts", "Low: grants and approvals outliving a transfer",
        tried=4, through=through,
        what="a grant and an algorithm approval given before a dataset is transferred are "
        "checked after the transfer and after the dataset returns to its old owner.",
        test="tests/contracts/test_access_grants.py::"
        "test_low_grants_and_approvals_lapse_for_good_when_the_asset_changes_hands",
    )  # fmt: skip
    with boa.env.prank(hospital):  # the owner can grant and approve again, knowingly
        grants.grant(data, lab, DOWNLOAD, RESEARCH, 2**40)
        grants.approveAlgorithm(data, algorithm, True)
    assert grants.hasAccess(data, lab, DOWNLOAD, RESEARCH) and grants.isApproved(data, algorithm)


def test_a_deactivated_identity_controls_nothing(suite) -> None:
    """M7: after the hospital's DID is deactivated (owner set to zero), its own key, which
    ERC-1056 would hand control back to, can neither grant, approve nor register."""
    did, assets, grants, hospital, lab, _, data = suite
    rotated = boa.env.generate_address()
    with boa.env.prank(hospital):
        did.changeOwner(hospital, rotated)
    with boa.env.prank(rotated):
        did.changeOwner(hospital, "0x0000000000000000000000000000000000000000")
    for actor in (hospital, rotated):
        with boa.env.prank(actor), boa.reverts():
            grants.grant(data, lab, DOWNLOAD, RESEARCH, 2**40)
        with boa.env.prank(actor), boa.reverts():
            grants.approveAlgorithm(data, digest("dump.py"), True)
        with boa.env.prank(actor), boa.reverts():
            assets.register(hospital, digest("new"), 1, b"\1" * 32, "", [], "")
    assert not grants.hasAccess(data, lab, DOWNLOAD, RESEARCH)


def test_an_expiry_beyond_the_packed_field_is_refused(suite) -> None:
    """A grant is one storage word; its expiry has 48 bits (about 8.9 million years)."""
    _, _, grants, hospital, lab, _, data = suite
    with boa.env.prank(hospital), boa.reverts("AccessGrants: expiry is too far (2**48 s or later)"):
        grants.grant(data, lab, DOWNLOAD, RESEARCH, 2**48)
    with boa.env.prank(hospital):
        grants.grant(data, lab, DOWNLOAD, RESEARCH, 2**48 - 1)
    assert grants.grantOf(data, lab, RESEARCH) == (DOWNLOAD, 2**48 - 1, hospital)
