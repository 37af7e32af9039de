"""`neuroledger demo` in a temporary home, then its records seen as auditors see them: the
explorer served on loopback, read by a real browser (Debian's Chromium driven by
playwright-core from npm), judged by axe-core, and its API fuzzed by schemathesis."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import hypothesis
import pytest

from neuroledger.core import canonical
from neuroledger.federated._ledger import commitments_root
from tests.e2e.test_cli import _failed_checks

pytestmark = pytest.mark.anvil
ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent / "neuroledger"


def _run(env: dict[str, str], *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(BIN), *args], capture_output=True, text=True, env=env,
                          timeout=timeout)  # fmt: skip
    assert proc.returncode == 0, proc.stderr + _failed_checks(proc.stdout)
    return proc


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    home = tmp_path_factory.mktemp("demo") / "home"
    pw = home.parent / "pw"
    pw.write_text("s3cret\n")
    env = {**os.environ, "NEUROLEDGER_HOME": str(home), "NEUROLEDGER_PASSPHRASE_FILE": str(pw),
           "NEUROLEDGER_SCRYPT_N": "16384"}  # fmt: skip
    env.pop("NEUROLEDGER_RPC_URL", None)
    _run(env, "init")
    homes = [str(home)]
    try:
        report = json.loads(_run(env, "demo", "--json").stdout)
        homes.append(report["home"])  # the demo runs in a fresh home of its own
        yield {"report": report, "env": env, "home": home}
    finally:
        for h in homes:
            subprocess.run([str(BIN), "--home", h, "node", "stop"], env=env,
                           capture_output=True, timeout=60)  # fmt: skip


def test_demo_runs_and_reports_json(demo: dict[str, Any]) -> None:
    report = demo["report"]
    assert report["ok"] and len(report["identities"]) == 5
    assert all(c["ok"] for c in report["checks"])
    assert len(report["checks"]) == 41
    assert report["energy"]["gas"] > 0 and len(report["market"]["guardrails"]["refusals"]) == 3
    assert report["audit"]["entries"] == 300 and report["audit"]["anchor"]["size"] == 300
    assert report["rotation"]["old_owner"] != report["rotation"]["new_owner"]
    p = report["provenance"]
    assert set(p["datasets"]) == {"hospital-a", "hospital-b", "hospital-c"}
    assert "MODIFIED" in p["tampered_verify"] and "weights.bin" in p["tampered_verify"]
    f = report["federated"]
    assert f["private"]["epsilon"] > 0 and f["robust"]["accuracy_median"] >= 0.9
    assert Path(f["plot"]["file"]).read_bytes()[:4] == b"\x89PNG"
    v = report["privacy"]
    assert v["jobs"]["first"]["summary"]["records"] == 200
    assert v["jobs"]["after_withdrawal"]["summary"]["records"] == 199
    assert v["audit"]["denied"] == 2 and v["audit"]["jobs"] == 3 and v["audit"]["log_ok"]
    for asset_id in [*p["datasets"].values(), p["code"], p["model"]]:
        assert asset_id[:12] in p["lineage_tree"]
    m = report["market"]
    assert len(m["paid_calls"]) == 3 and all(c["tx"] for c in m["paid_calls"])
    assert m["reputation"]["count"] == 2 and m["jobs"]["completed"] != m["jobs"]["refunded"]
    royalties = report["sales"]["royalties"]
    assert royalties["hospital-c"] == min(royalties.values()) < max(royalties.values())
    assert report["explorer"].endswith(" explorer serve") and report["home"] in report["explorer"]


@pytest.fixture(scope="module")
def explorer(demo: dict[str, Any]) -> Iterator[str]:
    """`neuroledger explorer serve` on a free loopback port, over the demo's home."""
    home = demo["report"]["home"]  # the demo runs in a fresh home of its own
    proc = subprocess.Popen([str(BIN), "--home", home, "explorer", "serve", "--port", "0"], env=demo["env"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        found = re.search(r"http://127\.0\.0\.1:\d+/", line)
        assert found, (line, proc.stderr.read() if proc.poll() is not None and proc.stderr else "")
        base = found.group(0).rstrip("/")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(base + "/api/v1/stats", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _flip(src: Path, dst: Path, name: str | None = None) -> Path:
    """A copy of ``src`` (file or folder) with one byte of ``name`` (or the file) flipped."""
    if src.is_dir():
        shutil.copytree(src, dst)
        target = dst / (name or "")
    else:
        shutil.copyfile(src, dst)
        target = dst
    raw = bytearray(target.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    target.write_bytes(bytes(raw))
    return dst


def test_the_explorer_in_a_real_browser(demo: dict[str, Any], explorer: str,
                                        tmp_path: Path) -> None:  # fmt: skip
    report = demo["report"]
    home = Path(report["home"])
    p = report["provenance"]
    model_dir = next(home.rglob("triage-model"))
    # the demo flipped one byte of weights.bin to show `asset verify` catching it: undo it
    good_model = _flip(model_dir, tmp_path / "good" / "triage-model", "weights.bin")
    cohort = next(home.rglob("hospital-a-cohort.csv"))
    files = {
        "goodFile": {"asset": p["datasets"]["hospital-a"], "path": str(cohort), "rpc": True},
        "tamperedFile": {"asset": p["datasets"]["hospital-a"],
                         "path": str(_flip(cohort, tmp_path / "hospital-a-cohort.csv"))},
        "goodFolder": {"asset": p["model"], "folder": True, "path": str(good_model), "rpc": True},
        "tamperedFolder": {"asset": p["model"], "folder": True, "path": str(model_dir)},
    }  # fmt: skip
    bundle = next(home.glob("decision-*.tlog-proof"))
    text = bundle.read_text()
    extra = json.loads(base64.b64decode(text.split("\n")[1][6:]))
    log = "0x" + hashlib.sha256(extra["vkey"].encode()).hexdigest()
    entry = bytearray(base64.b64decode(extra["entry"]))
    entry[len(entry) // 2] ^= 0x01  # one changed byte of the entry
    forged = base64.b64encode(canonical({**extra, "entry": base64.b64encode(entry).decode()}))
    head, _, checkpoint = text.partition("\n\n")
    lines = head.split("\n")
    (tmp_path / "entry.tlog-proof").write_text(
        "\n".join([lines[0], "extra " + forged.decode(), *lines[2:]]) + "\n\n" + checkpoint
    )
    origin, size, rest = checkpoint.split("\n", 2)  # a checkpoint claiming one entry less
    (tmp_path / "checkpoint.tlog-proof").write_text(
        head + "\n\n" + "\n".join([origin, str(int(size) - 1), rest])
    )
    bundles = {
        "goodEntry": {"log": log, "path": str(bundle), "rpc": True},
        "goodEntryIndexOnly": {"log": log, "path": str(bundle)},
        "tamperedEntry": {"log": log, "path": str(tmp_path / "entry.tlog-proof"), "rpc": True},
        "tamperedCheckpoint": {"log": log, "path": str(tmp_path / "checkpoint.tlog-proof"), "rpc": True},
    }  # fmt: skip
    task = int(report["federated"]["robust"]["task"])
    documents = [json.loads(f.read_text()) for f in (home / "shared" / "store").rglob("*")
                 if f.is_file() and f.stat().st_size < 100_000 and b"federated-round/v1" in f.read_bytes()]  # fmt: skip
    round_doc = next(d for d in documents if d["task"] == task)
    (tmp_path / "round.json").write_text(json.dumps(round_doc))
    name = sorted(round_doc["updates"])[0]  # one update changed, its root recomputed to match
    changed = {**round_doc["updates"], name: "00" * 32}
    forged_round = {**round_doc, "updates": changed, "commitmentsRoot": commitments_root(changed)}
    (tmp_path / "forged-round.json").write_text(json.dumps(forged_round))
    rounds = {
        "goodRound": {"task": task, "path": str(tmp_path / "round.json"), "rpc": True},
        "goodRoundIndexOnly": {"task": task, "path": str(tmp_path / "round.json")},
        "forgedRound": {"task": task, "path": str(tmp_path / "forged-round.json"), "rpc": True},
    }  # fmt: skip
    shots = tmp_path / "shots"
    shots.mkdir()
    config = {"base": explorer, "rpc": report["rpc_url"], "shots": str(shots),
              "maxPages": 150, "lineageAsset": p["model"], "files": files, "bundles": bundles, "rounds": rounds,
              "task": str(report["federated"]["robust"]["task"]),
              "privateTask": str(report["federated"]["private"]["task"])}  # fmt: skip
    chromium = BIN.parent / "chromium" if (BIN.parent / "chromium").exists() else None
    chromium = chromium or shutil.which("chromium")
    if chromium is None:
        pytest.fail("Chromium is missing: `make test` installs Debian's chromium package")
    proc = subprocess.run(["node", str(ROOT / "tests" / "e2e" / "explorer_browser.mjs"),
                           json.dumps(config)], capture_output=True, text=True, timeout=600,
                          cwd=ROOT, env={**os.environ, "CHROMIUM": str(chromium)})  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    seen = json.loads(proc.stdout)
    assert seen["crawled"] >= 40 and not seen["broken"], seen["broken"]
    assert not seen["console"], seen["console"]
    serious = {shape: [v for v in found if v["impact"] in ("serious", "critical")]
               for shape, found in seen["axe"].items()}  # fmt: skip
    assert not any(serious.values()), serious
    assert {"/", "/asset/:key", "/task/:key", "/governance"} <= set(seen["axe"])
    d = seen["drawings"]
    assert d["lineageBoxes"] >= 6 and d["lineageEdges"] >= 5 and d["ancestorsFolded"]
    assert d["governanceRows"] >= 1
    assert d["energyBars"] >= 5  # identity, provenance, audit, federated, private data, market...
    # contributors, attestations and accuracy (from the owner's round documents); the
    # private task charts the privacy spent (ε) too
    assert d["chartLines"] == 3 and d["privateChartLines"] == 4, d
    assert d["accuracyCells"] and all(0 < float(a) <= 1 for a in d["accuracyCells"]), d
    c = seen["checks"]
    assert c["goodFile"]["state"] == "pass" and "chain records as active" in c["goodFile"]["text"]
    assert c["goodFolder"]["state"] == "pass", c["goodFolder"]
    assert c["tamperedFile"]["state"] == "fail" and "registered with" in c["tamperedFile"]["text"]
    assert c["tamperedFolder"]["state"] == "fail"
    assert (
        c["goodEntry"]["state"] == "pass" and "anchored on chain in block" in c["goodEntry"]["text"]
    )
    assert c["goodEntry"]["entry"].strip(), c["goodEntry"]  # the entry shown once verified
    assert c["goodEntryIndexOnly"]["state"] == "pass" and "index" in c["goodEntryIndexOnly"]["text"]
    assert c["tamperedEntry"]["state"] == "fail" and "inclusion proof" in c["tamperedEntry"]["text"]
    assert c["tamperedCheckpoint"]["state"] == "fail", c["tamperedCheckpoint"]
    assert "signature" in c["tamperedCheckpoint"]["text"]
    assert (
        c["goodRound"]["state"] == "pass" and "recorded on chain in block" in c["goodRound"]["text"]
    )
    assert c["goodRoundIndexOnly"]["state"] == "pass"
    assert c["forgedRound"]["state"] == "fail" and "the chain recorded" in c["forgedRound"]["text"]
    for shot in ("home", "asset", "task", "energy"):
        assert (shots / f"{shot}.png").read_bytes()[:4] == b"\x89PNG"


def test_the_api_never_answers_with_a_server_error(explorer: str) -> None:
    """schemathesis over the OpenAPI document, on the demo's data: no 5xx in 40 valid and 40
    invalid generated requests per operation; a refused query is a 4xx that says what was
    wrong."""
    import schemathesis

    schema = schemathesis.openapi.from_url(explorer + "/api/v1/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 8
    modes = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)
    runs = [(o, m) for o in operations for m in modes if list(o.iter_parameters()) or m == modes[0]]
    assert len(runs) == 13  # stats, governance and energy take no parameter to get wrong
    for operation, mode in runs:

        @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
        @hypothesis.settings(max_examples=40, deadline=None, derandomize=True, database=None,
                             suppress_health_check=list(hypothesis.HealthCheck))  # fmt: skip
        def call(case: Any) -> None:
            response = case.call(timeout=30)
            assert response.status_code < 500, (case.as_curl_command(), response.text[:500])
            if response.status_code >= 400:
                detail = response.json()["detail"]
                assert detail and (isinstance(detail, str) or detail[0]["msg"]), detail

        call()


def test_the_explorer_is_read_only_confined_and_shows_no_personal_data(
    demo: dict[str, Any], explorer: str
) -> None:
    home = Path(demo["report"]["home"])
    rows = {line for f in home.rglob("*-cohort.csv") for line in f.read_text().splitlines()[1:]}
    # the records' measurements (e.g. 50.0148); a subject column holds the subject's own
    # pseudonymous identity, which its consent transactions put on chain by design
    values = {v for row in rows for v in row.split(",") if re.fullmatch(r"\d+\.\d{3,}", v)}
    assert len(rows) >= 600 and values
    seen, queue = set(), ["/"]
    with httpx.Client(base_url=explorer, timeout=30) as client:
        while queue and len(seen) < 300:
            path = queue.pop()
            if path in seen:
                continue
            seen.add(path)
            page = client.get(path)
            assert page.status_code == 200, path
            assert "default-src 'none'" in page.headers["content-security-policy"], path
            text = page.text
            leaked = [v for v in values if v in text]
            assert not leaked, (path, leaked[:3])  # only digests and commitments, never data
            queue += [
                h for h in re.findall(r'href="(/[^"]*)"', text) if not h.startswith("/static")
            ]
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            for path in ("/", "/api/v1/stats", "/api/v1/entities/asset", "/asset"):
                assert client.request(method, path).status_code == 405, (method, path)
        for evil in ("/static/../../../../etc/passwd", "/static/%2e%2e/%2e%2e/pyproject.toml",
                     "/static/..%2f..%2f_api.py", "/asset/..%2f..%2fetc%2fpasswd"):  # fmt: skip
            got = client.get(evil)
            assert got.status_code == 404 and "root:" not in got.text and "import" not in got.text
    assert len(seen) >= 60
