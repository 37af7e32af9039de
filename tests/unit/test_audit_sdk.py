"""The agent SDK: receipts after durability, group commit from threads, spans, commitments."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from neuroledger.audit._entries import (
    AuditEvent,
    commit,
    decode_event,
    encode_event,
    open_commitment,
)
from neuroledger.audit._log import TileLog
from neuroledger.audit._note import NoteSigner
from neuroledger.audit._sdk import AuditLog
from neuroledger.core._merkle import verify_inclusion
from neuroledger.errors import AuditError, BlobNotFoundError
from neuroledger.store import FileStore


@pytest.fixture
def signer() -> NoteSigner:
    return NoteSigner.generate("log.example/agent")


def test_receipts_are_durable_and_provable(tmp_path: Path, signer: NoteSigner) -> None:
    with AuditLog.create(tmp_path / "log", signer=signer) as log:
        receipts = [
            log.record(AuditEvent(system="triage", event_type="decision", details={"n": i}))
            for i in range(5)
        ]
        assert [r.index for r in receipts] == list(range(5))
    reopened = TileLog.open(tmp_path / "log")  # a new process would see the same
    assert reopened.size == 5
    r = receipts[3]
    verify_inclusion(
        r.leaf_hash, r.index, 5, reopened.inclusion_proof(r.index), reopened.root_hash()
    )
    assert decode_event(reopened.entry(3))["details"] == {"n": 3}


def test_group_commit_from_many_threads(tmp_path: Path, signer: NoteSigner) -> None:
    log = AuditLog.create(tmp_path / "log", signer=signer, batch_size=64)
    seen: list[int] = []
    lock = threading.Lock()

    def worker(k: int) -> None:
        for i in range(50):
            index = log.record({"worker": k, "i": i}).index
            with lock:
                seen.append(index)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log.close()
    assert sorted(seen) == list(range(300))
    assert TileLog.open(tmp_path / "log").size == 300


def test_span_and_decorator_hash_inputs_and_outputs(tmp_path: Path, signer: NoteSigner) -> None:
    with AuditLog.create(tmp_path / "log", signer=signer) as log:

        @log.traced("triage", "decision")
        def decide(score: float) -> str:
            return "urgent" if score > 0.5 else "routine"

        assert decide(0.9) == "urgent"
        with pytest.raises(ValueError), log.span("triage", "inference", inputs={"q": "x"}) as span:
            span.output = "partial"
            raise ValueError("model crashed")
    raw = TileLog.open(tmp_path / "log")
    first, second = decode_event(raw.entry(0)), decode_event(raw.entry(1))
    assert first["event_type"] == "decision" and first["details"]["function"].endswith("decide")
    assert len(first["input_digest"]) == 64 and len(first["output_digest"]) == 64
    assert second["risk_flag"] is True and second["details"]["error"] == "ValueError"
    assert first["start"] <= first["end"]


def test_failed_batch_acknowledges_nothing(tmp_path: Path, signer: NoteSigner) -> None:
    with AuditLog.create(tmp_path / "log", signer=signer) as log:
        with pytest.raises(AuditError, match="65535-byte limit"):
            log.record(b"x" * 70_000)
        assert log.record({"ok": True}).index == 0
    with pytest.raises(AuditError, match="closed"):
        log.record({"late": True})


def test_canonical_events_and_commitments(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "store")
    assert encode_event({"b": 1, "a": 2}) == b'{"a":2,"b":1}'
    c = commit(b"patient 1234: chest pain", store)
    event = AuditEvent(system="triage", event_type="decision", commitments={"input": c.digest})
    assert c.digest in encode_event(event).decode()
    assert b"patient" not in encode_event(event)
    assert open_commitment(c, store) == b"patient 1234: chest pain"
    store.delete(c.opening)  # crypto-shredding: the log keeps only the commitment
    with pytest.raises(BlobNotFoundError):
        open_commitment(c, store)
    with pytest.raises(AuditError, match="JSON object"):
        decode_event(b"[1, 2]")


def test_periodic_checkpoints_cover_what_was_recorded(tmp_path: Path, signer: NoteSigner) -> None:
    import time

    with AuditLog.create(tmp_path / "log", signer=signer) as log:
        with log.checkpoints_every(0.02):
            log.record({"system": "agent", "event_type": "step"})
            deadline = time.monotonic() + 10
            while log.log.state.checkpoint_size < 1 and time.monotonic() < deadline:
                time.sleep(0.01)  # polls for the signer thread; the assertion decides
            assert log.log.state.checkpoint_size == 1
            log.record({"system": "agent", "event_type": "last"})
        assert log.log.state.checkpoint_size == 2  # the final checkpoint holds the last entry
