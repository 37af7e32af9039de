"""Anchors on a real anvil, and proof bundles verified with only the bundle and an RPC URL."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from eth_account import Account
from web3 import Web3

from neuroledger.audit._anchor import (
    AnchorPolicy,
    Anchors,
    AnchorService,
    fee_history,
    log_id,
    read_anchor,
)
from neuroledger.audit._bundle import make_bundle, verify_bundle
from neuroledger.audit._entries import decode_event
from neuroledger.audit._log import TileLog
from neuroledger.audit._note import NoteSigner
from neuroledger.audit._sdk import AuditLog
from neuroledger.chain._anvil import start_dev_anvil
from neuroledger.chain._client import Chain
from neuroledger.errors import AuditError, InvalidProofError, SignatureError

pytestmark = pytest.mark.anvil


@pytest.fixture
def anchored(chain: Chain, tmp_path: Path):
    signer = NoteSigner.generate("log.example/triage-agent")
    with AuditLog.create(tmp_path / "log", signer=signer) as sdk:
        sdk.record_many([{"decision": i, "risk": i % 7 == 0} for i in range(300)])
        checkpoint_text = sdk.checkpoint()
    log = TileLog.open(tmp_path / "log", signer=signer)
    account = Account.create()
    chain.fund(account.address)
    anchors = Anchors(log, chain)
    record = anchors.anchor(account)
    return log, anchors, record, checkpoint_text, account


def test_anchor_is_recorded_and_readable(chain: Chain, anchored) -> None:
    log, anchors, record, _, account = anchored
    assert anchors.records() == [record]
    size, root, owner = read_anchor(chain.w3, record)
    assert (size, root, owner) == (300, log.root_hash(), account.address)
    assert record.log_id == log_id(log.signer.verifier).hex()
    with pytest.raises(AuditError, match="already anchored"):
        anchors.anchor(account)


def test_bundle_verifies_with_only_an_rpc_url(chain: Chain, anchored) -> None:
    log, _, record, checkpoint_text, _ = anchored
    bundle = make_bundle(log, 123, record, checkpoint_text)
    assert bundle.startswith("c2sp.org/tlog-proof@v1\nextra ")
    auditor = Web3(Web3.HTTPProvider(chain.url))
    result = verify_bundle(bundle, auditor)
    assert (result.index, result.size, result.tx) == (123, 300, record.tx)
    assert decode_event(result.entry) == {"decision": 123, "risk": False}


def tamper_extra(bundle: str, **changes) -> str:
    lines = bundle.split("\n")
    extra = json.loads(base64.b64decode(lines[1][6:]))
    extra.update(changes)
    lines[1] = "extra " + base64.b64encode(json.dumps(extra).encode()).decode()
    return "\n".join(lines)


def test_tampered_bundles_fail(chain: Chain, anchored) -> None:
    log, _, record, checkpoint_text, _ = anchored
    bundle = make_bundle(log, 5, record, checkpoint_text)
    w3 = Web3(Web3.HTTPProvider(chain.url))
    forged_entry = base64.b64encode(b'{"decision":999}').decode()
    with pytest.raises(InvalidProofError):
        verify_bundle(tamper_extra(bundle, entry=forged_entry), w3)
    other = NoteSigner.generate("log.example/triage-agent")
    with pytest.raises(SignatureError):
        verify_bundle(tamper_extra(bundle, vkey=other.verifier.vkey), w3)
    lines = bundle.split("\n")
    lines[2] = "index 6"
    with pytest.raises(InvalidProofError):
        verify_bundle("\n".join(lines), w3)
    with pytest.raises(AuditError, match="not a proof bundle"):
        verify_bundle("hello\n\n" + checkpoint_text, w3)
    with pytest.raises(AuditError, match="not covered"):
        make_bundle(log, 300, record, checkpoint_text)


def test_anchor_on_another_chain_is_refused(anchored) -> None:
    log, _, record, checkpoint_text, _ = anchored
    bundle = make_bundle(log, 1, record, checkpoint_text)
    proc, url = start_dev_anvil()
    try:
        with pytest.raises(AuditError, match="give an RPC URL of chain"):
            verify_bundle(bundle, Web3(Web3.HTTPProvider(url)))
    finally:
        proc.kill()
        proc.wait()


def test_fee_history_and_policy(chain: Chain) -> None:
    base, recent = fee_history(chain.w3, 5)
    assert base > 0 and all(f > 0 for f in recent)
    policy = AnchorPolicy(every=100, interval=60, max_latency=300)
    calm = [10, 10, 10, 10, 30, 30, 30, 30]
    assert not policy.should_anchor(pending=0, waited=999, base_fee=1, recent_fees=calm)
    assert policy.should_anchor(
        pending=100, waited=1, base_fee=10, recent_fees=calm
    )  # due and cheap
    assert not policy.should_anchor(
        pending=100, waited=1, base_fee=30, recent_fees=calm
    )  # due, costly
    assert policy.should_anchor(
        pending=1, waited=300, base_fee=30, recent_fees=calm
    )  # latency bound
    assert not AnchorPolicy(fee_aware=False).should_anchor(
        pending=1, waited=1, base_fee=1, recent_fees=calm
    )


def test_anchor_service_anchors_every_n_entries_or_t_seconds(chain: Chain, tmp_path: Path) -> None:
    signer = NoteSigner.generate("log.example/service")
    log = TileLog.create(tmp_path / "log", origin=signer.name, signer=signer)
    account = Account.create()
    chain.fund(account.address)
    service = AnchorService(
        Anchors(log, chain),
        account,
        AnchorPolicy(every=50, interval=60, max_latency=120, fee_aware=False),
    )
    assert service.tick(0.0) is None  # nothing to anchor
    log.append([b"e"] * 10)
    assert service.tick(1.0) is None  # neither 50 entries nor 60 s
    log.append([b"e"] * 40)
    first = service.tick(2.0)
    assert first is not None and first.size == 50  # 50 entries
    log.append([b"e"] * 5)
    assert service.tick(3.0) is None
    second = service.tick(70.0)  # 60 s after the first pending entry was seen
    assert second is not None and second.size == 55
    assert [r.size for r in Anchors(log).records()] == [50, 55]
    assert read_anchor(chain.w3, second)[0] == 55
