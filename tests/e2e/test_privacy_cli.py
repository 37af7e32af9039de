"""`neuroledger data|grant|consent|job|gateway …` as users run them: subprocesses, a real
gateway process on loopback, the `age` tool, exit codes and one-line errors."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_cli import cli  # noqa: F401 (fixture)

pytestmark = pytest.mark.anvil

STATS = """import csv, json, sys
OUTPUTS = ["summary.json"]
rows = list(csv.DictReader(open(sys.argv[1])))
json.dump({"records": len(rows)}, open(sys.argv[2] + "/summary.json", "w"))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_private_data_from_the_command_line(cli, tmp_path: Path) -> None:  # noqa: F811
    for name, kind in (("hospital", "org"), ("lab", "org"), ("patient", "person")):
        cli("identity", "create", name, "--kind", kind)
    patient = json.loads(cli("identity", "show", "patient", "--json").stdout)["identity"]
    cohort = tmp_path / "cohort.csv"
    cohort.write_text(
        "subject,age\n" + f"{patient},70\n" + "".join(f"0x{i:040x},{30 + i}\n" for i in range(1, 9))
    )
    asset = json.loads(cli("data", "encrypt", str(cohort), "--owner", "hospital", "--json").stdout)[
        "asset"
    ]
    listed = json.loads(cli("data", "list", "--json").stdout)
    assert [e["asset"] for e in listed] == [asset]

    # Plain age files to a DID-published key; the age tool reads them with the exported key.
    notes = tmp_path / "notes.txt"
    notes.write_text("for the lab only\n")
    cli("data", "encrypt", str(notes), "--to", "lab", "-o", str(tmp_path / "notes.age"))
    cli("data", "key", "lab", "-o", str(tmp_path / "lab.key"))
    assert (tmp_path / "lab.key").stat().st_mode & 0o777 == 0o600
    age_tool = shutil.which("age")
    assert age_tool, "the age tool is missing; run `make setup`"
    plain = subprocess.run([age_tool, "-d", "-i", str(tmp_path / "lab.key"), str(tmp_path / "notes.age")],
                           capture_output=True, check=True)  # fmt: skip
    assert plain.stdout == notes.read_bytes()
    cli(
        "data",
        "decrypt",
        str(tmp_path / "notes.age"),
        "--identity",
        "lab",
        "-o",
        str(tmp_path / "n.out"),
    )
    assert (tmp_path / "n.out").read_bytes() == notes.read_bytes()

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    gateway = subprocess.Popen(
        [str(Path(sys.executable).parent / "neuroledger"), "gateway", "serve", "--owner", "hospital",
         "--port", str(port), "--log", "access", "--cache-blocks", "0"],
        env=cli.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                health = httpx.get(url + "/v1/health").json()
                break
            except httpx.HTTPError:
                assert gateway.poll() is None, gateway.stderr.read() if gateway.stderr else ""
                assert time.monotonic() < deadline, "the gateway did not start"
                time.sleep(0.2)
        assert health["owner"].endswith(
            json.loads(cli("identity", "show", "hospital", "--json").stdout)["identity"]
        )
        fetch = ["data", "fetch", asset[:10], "--gateway", url, "--identity", "lab", "--purpose", "research",
                 "-o", str(tmp_path / "got.csv")]  # fmt: skip
        refused = cli(*fetch, ok=False)
        assert refused.returncode == 16 and "403" in refused.stderr and "no grant" in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1
        assert not (tmp_path / "got.csv").exists()

        cli("grant", "add", asset[:10], "lab", "--owner", "hospital", "--mode", "download",
            "--purpose", "research", "--expires", "1h")  # fmt: skip
        cli(*fetch)
        assert (tmp_path / "got.csv").read_bytes() == cohort.read_bytes()
        grants = json.loads(cli("grant", "list", asset[:10], "--json").stdout)
        assert [(g["purpose"], g["modes"]) for g in grants] == [("research", ["download"])]

        # Compute only: a statistics grant joins the research one (issue 13: it replaced it);
        # once research is revoked, the lab can no longer download but runs an approved job.
        algorithm = tmp_path / "stats.py"
        algorithm.write_text(STATS)
        code = json.loads(
            cli(
                "asset", "register", str(algorithm), "--kind", "code", "--as", "lab", "--json"
            ).stdout
        )["id"]
        cli("grant", "add", asset[:10], "lab", "--owner", "hospital", "--mode", "compute",
            "--purpose", "statistics", "--expires", "1h")  # fmt: skip
        grants = json.loads(cli("grant", "list", asset[:10], "--json").stdout)
        assert sorted(g["purpose"] for g in grants) == ["research", "statistics"]
        again_research = cli("grant", "add", asset[:10], "lab", "--owner", "hospital", "--mode",
                             "compute", "--purpose", "research", ok=False)  # fmt: skip
        assert again_research.returncode != 0 and "--replace" in again_research.stderr
        ambiguous = cli("grant", "revoke", asset[:10], "lab", "--owner", "hospital", ok=False)
        assert ambiguous.returncode != 0 and "--purpose" in ambiguous.stderr
        cli("grant", "revoke", asset[:10], "lab", "--owner", "hospital", "--purpose", "research")
        assert cli(*fetch, ok=False).returncode == 16
        submit = ["job", "submit", asset[:10], str(algorithm), "--gateway", url, "--identity", "lab",
                  "--purpose", "statistics", "--wait", "--json"]  # fmt: skip
        unapproved = cli(*submit, ok=False)
        assert unapproved.returncode == 16 and "not approved" in unapproved.stderr
        cli("grant", "approve", asset[:10], code[:10], "--owner", "hospital")
        job = json.loads(cli(*submit).stdout)
        assert job["status"] == "succeeded" and job["excluded"] == 0
        cli("job", "result", job["id"], "-o", str(tmp_path / "out"))
        assert json.loads((tmp_path / "out" / "summary.json").read_text()) == {"records": 9}

        cli("consent", "withdraw", "statistics", "--subject", "patient")
        again = json.loads(cli(*submit).stdout)
        status = cli("job", "status", again["id"]).stdout
        assert "succeeded" in status and "excluded by withdrawn consent: 1" in status
        cli("job", "result", again["id"], "-o", str(tmp_path / "out2"))
        assert json.loads((tmp_path / "out2" / "summary.json").read_text()) == {"records": 8}

        # A job that fails: `--wait` reports it and exits non-zero (issue 13: it exited 0).
        crash = tmp_path / "crash.py"
        crash.write_text('OUTPUTS = ["summary.json"]\nraise SystemExit(3)\n')
        crash_id = json.loads(
            cli("asset", "register", str(crash), "--kind", "code", "--as", "lab", "--json").stdout
        )["id"]
        cli("grant", "approve", asset[:10], crash_id[:10], "--owner", "hospital")
        failed = cli("job", "submit", asset[:10], str(crash), "--gateway", url, "--identity", "lab",
                     "--purpose", "statistics", "--wait", "--json", ok=False)  # fmt: skip
        assert failed.returncode == 16 and json.loads(failed.stdout)["status"] == "failed"

        cli("grant", "revoke", asset[:10], "lab", "--owner", "hospital")
        assert cli(*submit, ok=False).returncode == 16
    finally:
        gateway.send_signal(signal.SIGINT)
        gateway.wait(timeout=30)
    assert gateway.returncode == 0

    exported = json.loads(cli("audit", "export", "access").stdout)["events"]
    kinds = [e["event_type"] for e in exported]
    assert kinds.count("access.denied") >= 4 and kinds.count("access.allowed") >= 6
    assert kinds.count("job.succeeded") == 2


def test_bad_input_gets_one_line_and_loses_nothing(cli, tmp_path: Path) -> None:  # noqa: F811
    cli("identity", "create", "hospital", "--kind", "org")
    missing = cli("data", "encrypt", str(tmp_path / "missing.csv"), "--owner", "hospital", ok=False)
    assert missing.returncode == 16 and "is not a file" in missing.stderr
    both = cli("data", "encrypt", str(tmp_path), ok=False)
    assert both.returncode == 16 and "either --owner" in both.stderr
    data = tmp_path / "d.csv"
    data.write_text("subject,age\n0x" + "00" * 20 + ",3\n")
    cli("data", "encrypt", str(data), "--to", "hospital", "-o", str(tmp_path / "d.age"))
    blob = bytearray((tmp_path / "d.age").read_bytes())
    blob[-5] ^= 1
    (tmp_path / "bad.age").write_bytes(bytes(blob))
    corrupt = cli("data", "decrypt", str(tmp_path / "bad.age"), "--identity", "hospital",
                  "-o", str(tmp_path / "out.csv"), ok=False)  # fmt: skip
    assert corrupt.returncode == 16 and "corrupted" in corrupt.stderr
    assert len(corrupt.stderr.strip().splitlines()) == 1 and not (tmp_path / "out.csv").exists()
    cli("identity", "create", "other", "--kind", "org")
    wrong = cli(
        "data",
        "decrypt",
        str(tmp_path / "d.age"),
        "--identity",
        "other",
        "-o",
        str(tmp_path / "o"),
        ok=False,
    )
    assert wrong.returncode == 16 and "not encrypted to the given key" in wrong.stderr
    unknown = cli(
        "grant", "add", "abcdef12", "other", "--owner", "hospital", "--purpose", "x", ok=False
    )
    assert unknown.returncode == 9 and "abcdef12" in unknown.stderr
    duration = cli("grant", "add", "abcdef12", "other", "--owner", "hospital", "--purpose", "x",
                   "--expires", "soon", ok=False)  # fmt: skip
    assert duration.returncode == 16 and "duration" in duration.stderr
    unknown_job = cli("job", "status", "0" * 32, ok=False)
    assert unknown_job.returncode == 16 and "no job" in unknown_job.stderr
    bad_purpose = cli("consent", "withdraw", "Not OK", "--subject", "other", ok=False)
    assert bad_purpose.returncode == 16 and "purpose" in bad_purpose.stderr
    # A port in use: one line naming --port, before any banner, and no audit log created.
    import socket

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        busy = cli("gateway", "serve", "--owner", "hospital", "--log", "busy", "--port",
                   str(taken), "--no-jobs", ok=False)  # fmt: skip
    assert busy.returncode == 16 and "--port" in busy.stderr, busy.stderr
    assert len(busy.stderr.strip().splitlines()) == 1 and busy.stdout == ""
    assert not (Path(cli.env["NEUROLEDGER_HOME"]) / "audit" / "busy").exists()
