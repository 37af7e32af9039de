"""The private-data part of the demo: a research lab asks a hospital for its dataset.

hospital-b encrypts a patient cohort into its vault (age, to its DID-published
X25519 key) and registers it; its access gateway listens on loopback. The lab's
download is refused without a grant. A compute-only grant and an approved
statistics algorithm let the lab run a job at the hospital's side and receive
only the job's summary. A patient withdraws consent to the purpose, and the
next job leaves that record out. The auditor then reads the hospital's access
log, checks it against its signed checkpoint, and finds every decision.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from eth_account.signers.local import LocalAccount

from neuroledger.audit import AuditLog, AuditLogs, NoteVerifier, decode_event, verify_log
from neuroledger.chain import Chain
from neuroledger.errors import AccessDeniedError
from neuroledger.identity import Identities, Keystore
from neuroledger.market import Listings
from neuroledger.privacy import GatewayClient, JobLimits, Jobs, PrivateData
from neuroledger.privacy.gateway import BackgroundServer, GatewayConfig, create_app
from neuroledger.provenance import Provenance
from neuroledger.scenarios._sales import sell_cohort

__all__ = ["run_privacy"]

HOSPITAL = "hospital-b"
LAB = "research-lab"
PATIENT = "patient-17"
PURPOSE = "statistics"
RECORDS = 200

#: The lab's algorithm: aggregate statistics only; it declares its single output.
ALGORITHM = '''"""Cohort statistics: counts and means per diagnosis, nothing per patient."""
import csv
import json
import sys

OUTPUTS = ["summary.json"]

rows = list(csv.DictReader(open(sys.argv[1])))
summary = {"records": len(rows)}
for label in ("benign", "malignant"):
    group = [r for r in rows if r["diagnosis"] == label]
    summary[label] = {
        "count": len(group),
        "mean_radius": round(sum(float(r["mean_radius"]) for r in group) / max(len(group), 1), 3),
    }
json.dump(summary, open(sys.argv[2] + "/summary.json", "w"), indent=1)
'''


def _cohort(path: Path, patient: str) -> Path:
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    rng = np.random.default_rng(17)
    rows = rng.choice(len(data.target), RECORDS, replace=False)
    lines = ["subject,mean_radius,mean_texture,diagnosis"]
    for i, row in enumerate(rows):
        subject = patient if i == 0 else "0x" + rng.bytes(20).hex()
        label = "benign" if data.target[row] == 1 else "malignant"
        lines.append(f"{subject},{data.data[row, 0]:.3f},{data.data[row, 1]:.3f},{label}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def run_privacy(
    chain: Chain,
    keystore: Keystore,
    prov: Provenance,
    home: Path,
    step: Callable[[str], None],
    *,
    minter: LocalAccount | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Run the private-data scenario, with hospital-b selling compute access to its cohort
    on the market; return (summary, checks). ``minter`` funds the lab where there is no
    credits faucet."""
    ids = Identities(chain, keystore)
    checks: list[dict[str, Any]] = []
    summary: dict[str, Any] = {}
    for name, kind in ((LAB, "org"), (PATIENT, "person")):
        step(f"creating {kind} identity {name}")
        ids.create(name, kind)
    data = PrivateData(chain, keystore, prov, home)

    step(f"{HOSPITAL} encrypts its cohort ({RECORDS} patients) into its vault and registers it")
    cohort = _cohort(home / "work" / "hospital-b-cohort.csv", keystore.get(PATIENT).identity)
    dataset = data.protect(cohort, owner=HOSPITAL, license="LicenseRef-hospital-b-private").asset_id
    payload = data.vault.entry(dataset).payload.read_bytes()
    checks.append({
        "check": "privacy: the vault holds only ciphertext of the cohort",
        "ok": b"mean_radius" not in payload and len(payload) > cohort.stat().st_size,
    })  # fmt: skip

    logs = AuditLogs(home, keystore)
    logs.create("hospital-b-access", origin="neuroledger.local/hospital-b-access")
    audit = AuditLog(logs.open("hospital-b-access", with_key=True))
    jobs = Jobs(data, owner=HOSPITAL, root=home / "jobs",
                limits=JobLimits(memory_mb=768, cpu_seconds=30, wall_seconds=60), audit=audit)  # fmt: skip
    app = create_app(data, owner=HOSPITAL, audit=audit, jobs=jobs, config=GatewayConfig(),
                     state_dir=home / "gateway")  # fmt: skip
    sent: list[str] = []
    try:
        with BackgroundServer(app) as server:
            step(f"{HOSPITAL}'s access gateway listens on {server.url}")
            lab = GatewayClient(server.url, identity=data.identity(LAB),
                                account=keystore.owner_account(LAB), domain=data.domain)  # fmt: skip
            lab_key = keystore.x25519_private(LAB)
            # Count every request the lab sends, to compare with the log.
            lab.http.event_hooks["request"].append(lambda r: sent.append(r.url.path))

            step(f"{LAB} asks to download the cohort without a grant")
            refused = ""
            try:
                lab.download(dataset, PURPOSE, home / "work" / "lab-download.csv", private=lab_key)
            except AccessDeniedError as exc:
                refused = str(exc)
            checks.append({"check": "privacy: download without a grant is refused (403)",
                           "ok": "403" in refused and not (home / "work" / "lab-download.csv").exists()})  # fmt: skip

            step(f"{LAB} registers its statistics algorithm; {HOSPITAL} grants compute-only "
                 "access for statistics and approves the algorithm")  # fmt: skip
            algorithm = home / "work" / "cohort_stats.py"
            algorithm.write_text(ALGORITHM)
            code = prov.register(algorithm, kind="code", owner=LAB, license="Apache-2.0").asset_id
            data.grant(
                dataset, LAB, modes="compute", purpose=PURPOSE, expires_in=86400, owner=HOSPITAL
            )
            data.approve(dataset, code, owner=HOSPITAL)
            time.sleep(0.5)  # the gateway's poller sees the grant's block

            denied_key = ""
            try:
                lab.keywrap(dataset, PURPOSE)
            except AccessDeniedError as exc:
                denied_key = str(exc)
            checks.append({"check": "privacy: a compute-only grant yields no key (403)",
                           "ok": "403" in denied_key})  # fmt: skip

            step(f"{LAB} runs the approved job at {HOSPITAL}'s side and fetches only its output")
            first = lab.wait(
                lab.submit_job(dataset, PURPOSE, ALGORITHM.encode())["id"], dataset, PURPOSE
            )
            stats = json.loads(lab.output(first["id"], dataset, PURPOSE, "summary.json", lab_key))
            output_id = first["outputs"]["summary.json"]["asset"] if first["outputs"] else ""
            parents = set(prov.show(output_id).record.parents) if output_id else set()
            checks.append({
                "check": "privacy: the approved job ran confined; the lab got only its summary, "
                         "registered as derived from the data and the algorithm",
                "ok": first["status"] == "succeeded" and stats.get("records") == RECORDS
                and parents == {dataset, code} and list(first["outputs"]) == ["summary.json"],
            })  # fmt: skip

            step(f"{PATIENT} withdraws consent to {PURPOSE}; the lab runs the job again")
            data.consent(PATIENT, PURPOSE, given=False)
            second = lab.wait(
                lab.submit_job(dataset, PURPOSE, ALGORITHM.encode())["id"], dataset, PURPOSE
            )
            again = json.loads(lab.output(second["id"], dataset, PURPOSE, "summary.json", lab_key))
            checks.append({
                "check": "privacy: after the patient withdrew consent, the next job excludes that record",
                "ok": second["excluded"] == 1 and again.get("records") == RECORDS - 1,
            })  # fmt: skip
            summary["sale"], sold = sell_cohort(Listings(chain, keystore, prov), lab, dataset,
                                                ALGORITHM.encode(), step, minter)  # fmt: skip
            checks.extend(sold)
            summary.update(
                dataset=dataset, algorithm=code, gateway=server.url,
                jobs={"first": {"id": first["id"], "summary": stats},
                      "after_withdrawal": {"id": second["id"], "summary": again,
                                           "excluded": second["excluded"]}},
                output_asset=output_id,
            )  # fmt: skip
    finally:
        jobs.close()
        audit.checkpoint()
        audit.close()

    step("the auditor checks hospital-b's access log against its signed checkpoint")
    info = logs.info("hospital-b-access")
    report = verify_log(info.directory, NoteVerifier.from_vkey(info.vkey))
    log = logs.open("hospital-b-access")
    events = [decode_event(log.entry(i)) for i in range(log.size)]
    decisions = [e for e in events if str(e.get("event_type", "")).startswith("access.")]
    allowed = sum(e["event_type"] == "access.allowed" for e in decisions)
    denied = [e for e in decisions if e["event_type"] == "access.denied"]
    job_events = [e for e in events if str(e.get("event_type", "")).startswith("job.")]
    summary["audit"] = {"requests": len(sent), "entries": len(events), "allowed": allowed, "denied": len(denied),
                        "jobs": len(job_events), "log_ok": report.ok}  # fmt: skip
    checks.append({
        "check": "privacy: the auditor finds every gateway decision (allowed and denied) and all "
                 "three jobs (two granted, one bought) in the verified log",
        "ok": report.ok and len(denied) == 2 and allowed == len(sent) - 2 and len(job_events) == 3
        and all(e["details"]["reason"] for e in denied),
    })  # fmt: skip
    return summary, checks
