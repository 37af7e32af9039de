"""Identities against a real anvil: create, rotate, delegate, resolve; reference resolver agrees."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from eth_account import Account

from neuroledger.chain._client import Chain
from neuroledger.chain._tx import Call
from neuroledger.config import KdfParams, Settings
from neuroledger.errors import NotAuthorizedError
from neuroledger.identity._registry import X25519_ATTRIBUTE
from tests import security_figures

pytestmark = pytest.mark.anvil
HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def test_create_publishes_key_and_resolves(identities) -> None:
    record = identities.create("hospital-a", "org")
    doc = identities.resolve("hospital-a").document
    assert doc["id"] == identities.did("hospital-a")
    [agreement_ref] = doc["keyAgreement"]
    method = next(m for m in doc["verificationMethod"] if m["id"] == agreement_ref)
    assert method["type"] == "X25519KeyAgreementKey2019"
    assert method["publicKeyBase64"] == record.x25519_public


def test_rotation_keeps_did_and_moves_control(identities) -> None:
    identities.create("bank", "org")
    before = identities.did("bank")
    rotation = identities.rotate("bank")
    assert identities.did("bank") == before
    assert identities.registry.identity_owner(rotation.identity) == rotation.new_owner
    controller = identities.resolve("bank").document["verificationMethod"][0]
    assert controller["blockchainAccountId"].endswith(rotation.new_owner)
    # the retired key can no longer act for the identity
    old = identities.keystore.account_for(rotation.old_owner, what="old key")
    call = identities.registry.set_attribute(rotation.identity, X25519_ATTRIBUTE, b"x" * 32, 10)
    with pytest.raises(NotAuthorizedError, match="not the identity owner"):
        identities.chain.sender(old).send(call)
    # and the new one can
    identities.publish_key("bank")


def test_delegate_add_expire_revoke(identities) -> None:
    identities.create("org", "org")
    agent = identities.create("agent", "agent")
    identities.add_delegate("org", "agent", "sigAuth", 100)
    reg = identities.registry
    org = identities.keystore.get("org").identity
    assert reg.valid_delegate(org, "sigAuth", agent.identity)
    doc = identities.resolve("org").document
    delegate_ref = next(
        m["id"]
        for m in doc["verificationMethod"]
        if m.get("blockchainAccountId", "").endswith(agent.identity)
    )
    assert delegate_ref in doc["authentication"]
    identities.chain.wait_block_time(101)
    assert not reg.valid_delegate(org, "sigAuth", agent.identity)
    identities.add_delegate("org", "agent", "veriKey", 1000)
    identities.revoke_delegate("org", "agent", "veriKey")
    assert not reg.valid_delegate(org, "veriKey", agent.identity)


def test_signed_attribute_relayed_by_another_account(identities) -> None:
    owner_rec = identities.create("device-1", "device")
    relayer_rec = identities.create("relayer", "org")
    owner = identities.keystore.owner_account("device-1")
    relayer = identities.keystore.owner_account("relayer")
    call = identities.registry.set_attribute_signed(
        owner, owner_rec.identity, "did/svc/Telemetry", b"https://d.example", 3600
    )
    identities.chain.sender(relayer).send(call)
    assert identities.registry.nonce(owner_rec.owner) == 1
    doc = identities.resolve("device-1").document
    assert doc["service"][0]["serviceEndpoint"] == "https://d.example"
    with pytest.raises(Exception, match="signature"):
        identities.chain.sender(relayer).send(call)  # replay
    assert relayer_rec.identity != owner_rec.identity


def test_low_a_signed_did_change_does_not_replay_in_another_home(identities, tmp_path) -> None:
    """Every embedded home has chain id 20044; its suite is deployed from a throw-away key,
    so its registry has an address of its own and a change signed for one home (the
    signature covers the registry's address) is refused by another."""
    record = identities.create("device-1", "device")
    owner = identities.keystore.owner_account("device-1")
    signed = identities.registry.set_attribute_signed(
        owner, record.identity, "did/svc/Telemetry", b"https://d.example", 3600
    )
    other = Chain.connect(Settings(home=tmp_path / "home-b", kdf=KdfParams.light()))
    try:
        here = identities.chain.deployment().contracts["DIDRegistry"]["address"]
        there = other.deployment().contracts["DIDRegistry"]["address"]
        assert other.chain_id == identities.chain.chain_id and here != there
        relayer = Account.create()
        other.fund(relayer.address)
        replay = Call(to=there, data=signed.data, label="replayed setAttributeSigned")
        got_through = 0
        try:
            other.sender(relayer).send(replay)
            got_through = 1
        except Exception as exc:  # the registry refuses the signature
            assert "signature" in str(exc)
    finally:
        assert other.node is not None
        other.node.stop()
    security_figures.record(
        "identity",
        "Low: a signed DID change replayed in another home",
        tried=1,
        through=got_through,
        what="a setAttributeSigned made for one embedded home (chain id 20044) is sent to "
        "another home's registry; it must be refused.",
        test="tests/integration/test_identity.py::"
        "test_low_a_signed_did_change_does_not_replay_in_another_home",
    )
    assert got_through == 0


@pytest.mark.node
def test_reference_resolver_agrees(identities) -> None:
    node = shutil.which("node")
    if node is None or not (ROOT / "node_modules" / "ethr-did-resolver").exists():
        pytest.fail("node and `npm ci` are required (run `make test`)")
    identities.create("hospital-a", "org")
    identities.create("agent", "agent")
    identities.add_delegate("hospital-a", "agent", "sigAuth", 3600)
    identities.add_delegate("hospital-a", "agent", "veriKey", 3600)
    owner = identities.keystore.owner_account("hospital-a")
    ident = identities.keystore.get("hospital-a").identity
    sender = identities.chain.sender(owner)
    sender.send(
        identities.registry.set_attribute(
            ident, "did/svc/HubService", b'{"uri":"https://hub.example"}', 3600
        )
    )
    sender.send(
        identities.registry.set_attribute(
            ident, "did/pub/Ed25519/veriKey/base64", b"\x07" * 32, 3600
        )
    )
    identities.revoke_delegate("hospital-a", "agent", "veriKey")
    identities.rotate("hospital-a")
    chain = identities.chain
    registry = chain.deployment().contracts["DIDRegistry"]["address"]
    # The reference resolver judges expiry by the wall clock, ours by the latest block's
    # time; anvil's block times run ahead of the wall clock when many blocks are mined in
    # one second. Wait until the wall clock has caught up so both see the same "now".
    import time

    latest = int(chain.w3.eth.get_block("latest")["timestamp"])
    while time.time() < latest + 1.5:
        time.sleep(0.1)
    for name in ("hospital-a", "agent"):
        did = identities.did(name)
        out = subprocess.run(
            [
                node,
                str(HERE / "resolve_reference.mjs"),
                chain.url,
                registry,
                hex(chain.chain_id),
                did,
            ],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
            timeout=60,
        )
        reference = json.loads(out.stdout)
        ours = identities.resolve(did).to_json()
        assert ours["didDocument"] == reference["didDocument"], name
        assert (
            ours["didDocumentMetadata"]["versionId"]
            == reference["didDocumentMetadata"]["versionId"]
        )
