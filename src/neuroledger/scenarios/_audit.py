"""The audit part of the demo: the deployed model's agent logs every decision.

The triage agent answers requests with the model registered in the
provenance scenario and logs each decision (patient data only as salted
commitments) in its own tamper-evident log; a checkpoint is signed and
anchored on chain; the auditor checks one decision with nothing but a proof
bundle and the chain's RPC URL; then one byte of a tile is changed on disk
and whole-log verification reports exactly which file.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from web3 import Web3

from neuroledger.audit import (
    Anchors,
    AuditEvent,
    AuditLog,
    AuditLogs,
    NoteVerifier,
    commit,
    decode_event,
    digest_of_value,
    make_bundle,
    verify_bundle,
    verify_log,
)
from neuroledger.chain import Chain
from neuroledger.identity import Keystore, format_did
from neuroledger.scenarios._provenance import HOSPITALS, _cohort, _predict, _train
from neuroledger.store import BlobStore

__all__ = ["run_audit"]

REQUESTS = 300


def run_audit(
    chain: Chain, keystore: Keystore, store: BlobStore, home: Path, model_id: str,
    step: Callable[[str], None],
) -> tuple[dict[str, Any], list[dict[str, Any]]]:  # fmt: skip
    """Run the audit scenario; return (summary, checks)."""
    work = home / "work"
    cohorts = [_cohort(work / f"{h}-cohort.csv", seed=1000 + i) for i, h in enumerate(HOSPITALS)]
    centroids = _train(cohorts)
    requests = _cohort(work / "incoming-requests.csv", seed=777, rows=REQUESTS)
    logs = AuditLogs(home, keystore)
    summary: dict[str, Any] = {}
    checks: list[dict[str, Any]] = []

    step("triage-agent creates its audit log and answers requests, logging every decision")
    info = logs.create("triage-agent", origin="neuroledger.local/triage-agent")
    operator = format_did(chain.chain_id, keystore.get("hospital-a").identity)
    flagged = 0
    with AuditLog.open(info.directory, signer=logs.signer("triage-agent")) as log:
        for features, _label in requests:
            start = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            decision = "urgent" if _predict(centroids, features) == 1 else "routine"
            flagged += decision == "urgent"
            patient = commit(json.dumps({"features": features}).encode(), store)
            log.submit(
                AuditEvent(
                    system="triage-agent",
                    event_type="triage-decision",
                    model_digest=model_id,
                    start=start,
                    end=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                    input_digest=patient.digest,
                    output_digest=digest_of_value(decision),
                    operator=operator,
                    risk_flag=decision == "urgent",
                    details={"decision": decision},
                    commitments={"patient": patient.digest},
                )
            )
        log.flush()
        log.checkpoint()
        size = log.log.size
    summary.update(log=info.origin, vkey=info.vkey, entries=size, urgent=flagged)

    step("anchoring the agent's checkpoint on chain")
    tile_log = logs.open("triage-agent", with_key=True)
    record = Anchors(tile_log, chain).anchor(keystore.owner_account("triage-agent"))
    summary["anchor"] = {"tx": record.tx, "block": record.block, "size": record.size}

    step("the auditor verifies one decision from a proof bundle and the chain's RPC URL")
    index = REQUESTS // 2
    bundle = make_bundle(tile_log, index, record, tile_log.checkpoint_text(record.size))
    (home / f"decision-{index}.tlog-proof").write_text(bundle)
    result = verify_bundle(bundle, Web3(Web3.HTTPProvider(chain.url)))
    event = decode_event(result.entry)
    summary["bundle"] = {
        "file": str(home / f"decision-{index}.tlog-proof"),
        "index": index,
        "event": event,
    }
    checks.append({
        "check": f"audit: decision {index} verifies from its bundle alone (anchored in block {result.block})",
        "ok": result.index == index and event["model_digest"] == model_id and result.tx == record.tx,
    })  # fmt: skip
    checks.append({
        "check": "audit: no patient data in the log, only salted commitments",
        "ok": all("features" not in json.dumps(decode_event(tile_log.entry(i))) for i in range(0, size, 37)),
    })  # fmt: skip

    step("whole-log verification, then one byte of a tile changed on disk")
    verifier = NoteVerifier.from_vkey(info.vkey)
    clean = verify_log(info.directory, verifier)
    checks.append(
        {"check": f"audit verify: {size} entries, every tile and checkpoint intact", "ok": clean.ok}
    )
    target = "tile/0/000"  # C2SP tlog-tiles: level 0, tile 0 (entries 0-255)
    path = info.directory / target
    raw = bytearray(path.read_bytes())
    raw[32 * 5 + 3] ^= 0x01  # the leaf hash of entry 5
    path.write_bytes(bytes(raw))
    damaged = verify_log(info.directory, verifier)
    summary["tampered_verify"] = [str(p) for p in damaged.problems]
    checks.append({
        "check": "audit verify: one flipped byte is reported at tile/0/000, hash 5",
        "ok": not damaged.ok and any(p.place == target and "hash 5" in p.message for p in damaged.problems),
    })  # fmt: skip
    raw[32 * 5 + 3] ^= 0x01  # put the byte back: the agent goes on logging (the market part)
    path.write_bytes(bytes(raw))
    checks.append({"check": "audit verify: with the byte put back, the log verifies again",
                   "ok": verify_log(info.directory, verifier).ok})  # fmt: skip
    return summary, checks
