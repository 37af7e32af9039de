"""`neuroledger credits` as users run it: a subprocess in a temporary home."""

from __future__ import annotations

import json

import pytest

from tests.e2e.test_cli import cli  # noqa: F401  (the fixture)

pytestmark = pytest.mark.anvil


def test_credits_faucet_balance_send(cli) -> None:  # noqa: F811
    cli("identity", "create", "lab", "--kind", "org")
    cli("identity", "create", "triage-agent", "--kind", "agent")
    funded = json.loads(cli("credits", "faucet", "lab", "--amount", "50", "--json").stdout)
    assert funded["amount"] == funded["balance"] == "50000000"
    sent = cli("credits", "send", "triage-agent", "12.25", "--from", "lab").stdout
    assert "sent 12.25 credits from lab to triage-agent" in sent
    balance = json.loads(cli("credits", "balance", "triage-agent", "--json").stdout)
    assert balance["credits"] == "12.25" and balance["balance"] == "12250000"
    assert cli("credits", "balance", "lab").stdout.strip() == "lab: 37.75 credits"

    too_much = cli("credits", "send", "lab", "13", "--from", "triage-agent", ok=False)
    assert too_much.returncode == 17 and too_much.stderr.count("\n") == 1
    assert "holds 12.25 credits, less than 13; fund it first" in too_much.stderr
    bad = cli("credits", "send", "lab", "1.0000001", "--from", "triage-agent", ok=False)
    assert bad.returncode == 17 and "more than the token's 6 decimal places" in bad.stderr
    assert json.loads(cli("credits", "balance", "lab", "--json").stdout)["credits"] == "37.75"


def test_market_agent_register_show_list_find(cli) -> None:  # noqa: F811
    cli("identity", "create", "triage-agent", "--kind", "agent")
    cli("identity", "create", "labeler", "--kind", "agent")
    made = json.loads(cli("market", "agent", "register", "triage-agent", "--description", "triage",
                          "--service", "A2A=https://triage.example/card.json@0.3.0",
                          "--service", "email=ops@triage.example", "--x402", "--json").stdout)  # fmt: skip
    assert made["verified"] and made["agentId"] == 0
    services = {s["name"]: s for s in made["card"]["services"]}
    assert services["A2A"] == {
        "name": "A2A",
        "endpoint": "https://triage.example/card.json",
        "version": "0.3.0",
    }
    assert services["email"]["endpoint"] == "ops@triage.example" and services["DID"][
        "endpoint"
    ].startswith("did:ethr:")
    cli(
        "market",
        "agent",
        "register",
        "labeler",
        "--description",
        "labels",
        "--trust",
        "crypto-economic",
    )
    shown = cli("market", "agent", "show", "0").stdout
    assert shown.startswith("agent 0  triage-agent  [DID, A2A, email]") and "verified" in shown
    listed = json.loads(cli("market", "agent", "list", "--json").stdout)
    assert [a["agentId"] for a in listed] == [0, 1]
    found = json.loads(
        cli("market", "agent", "find", "--service", "A2A", "--trust", "reputation", "--json").stdout
    )
    assert [a["agentId"] for a in found] == [0]
    assert (
        cli("market", "agent", "find", "--trust", "tee-attestation").stdout.strip()
        == "no agent matches"
    )
    bad = cli(
        "market", "agent", "register", "labeler", "--description", "x", "--service", "A2A", ok=False
    )
    assert bad.returncode == 17 and "write NAME=ENDPOINT or NAME=ENDPOINT@VERSION" in bad.stderr
    missing = cli("market", "agent", "show", "7", ok=False)
    assert missing.returncode == 17 and "no agent 7" in missing.stderr


def test_market_job_lifecycle(cli) -> None:  # noqa: F811
    for name in ("lab", "labeler", "reviewer"):
        cli("identity", "create", name, "--kind", "agent")
    cli("credits", "faucet", "lab", "--amount", "100")
    made = json.loads(cli("market", "job", "create", "--from", "lab", "--provider", "labeler",
                          "--evaluator", "reviewer", "--description", "label 1,000 X-rays",
                          "--budget", "12.5", "--json").stdout)  # fmt: skip
    job = str(made["job_id"])
    assert made["status"] == "open" and made["budget"] == 12_500_000
    assert "FUNDED" in cli("market", "job", "fund", job, "--from", "lab").stdout
    cli("market", "job", "submit", job, "0x" + "42" * 32, "--from", "labeler")
    done = json.loads(cli("market", "job", "complete", job, "--from", "reviewer", "--json").stdout)
    assert done["status"] == "completed" and done["deliverable"] == "0x" + "42" * 32
    assert json.loads(cli("credits", "balance", "labeler", "--json").stdout)["credits"] == "12.5"
    again = cli("market", "job", "complete", job, "--from", "reviewer", ok=False)
    assert again.returncode == 4 and "JobEscrow: job is not submitted" in again.stderr
    bad = cli("market", "job", "submit", job, "result.bin", "--from", "labeler", ok=False)
    assert bad.returncode == 17 and "is not an asset id" in bad.stderr


def test_market_serve_and_pay_per_call(cli, tmp_path) -> None:  # noqa: F811
    import signal
    import socket
    import subprocess
    import sys
    import time
    from pathlib import Path

    import httpx
    import numpy as np

    from neuroledger.federated._run_records import write_model

    cli("identity", "create", "lab", "--kind", "org")
    cli("identity", "create", "triage-agent", "--kind", "agent")
    cli("identity", "create", "sybil", "--kind", "agent")
    cli("market", "agent", "register", "triage-agent", "--description", "triage", "--x402")
    cli("credits", "faucet", "lab", "--amount", "5")
    model = tmp_path / "model"
    w = np.zeros(3 * 2 + 2)
    w[0], w[1] = -1.0, 1.0  # feature 0 below 0 says class 0, above 0 class 1
    write_model(model, w, features=3, classes=2, extra={})
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "neuroledger"), "market", "serve", "triage-agent",
         "--model", str(model), "--price", "0.25", "--port", str(port)],
        env=cli.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/predict"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except httpx.TransportError:
                assert server.poll() is None, server.stderr.read() if server.stderr else ""
                time.sleep(0.2)
        card = httpx.get(f"http://127.0.0.1:{port}/.well-known/agent-registration.json").json()
        assert card["type"] == "https://eips.ethereum.org/EIPS/eip-8004#registration-v1"
        body = json.dumps({"features": [[-2.0, 0.0, 0.0], [2.0, 0.0, 0.0]]})
        refused = cli("market", "pay", url, "--from", "lab", "--body", body, ok=False)
        assert refused.returncode == 17 and refused.stderr.count("\n") == 1
        assert "costs 0.25 of token" in refused.stderr and "--max-price" in refused.stderr
        paid = json.loads(cli("market", "pay", url, "--from", "lab", "--body", body,
                              "--max-price", "0.25", "--json").stdout)  # fmt: skip
        assert paid["status"] == 200 and paid["paid"] == "0.25" and paid["transaction"]
        assert paid["answer"]["classes"] == [0, 1]
        bad = cli("market", "pay", url, "--from", "lab", "--body", "{\"features\": 1}",
                  "--max-price", "1", "--json", ok=False)  # fmt: skip
        assert bad.returncode == 1 and json.loads(bad.stdout)["status"] == 422
        assert json.loads(bad.stdout)["paid"] == "0"  # a bad request is refused before payment
        balance = json.loads(cli("credits", "balance", "triage-agent", "--json").stdout)
        assert balance["credits"] == "0.25"
        # The lab's feedback is backed by its payment; a fresh key's is refused.
        given = json.loads(cli("market", "feedback", "give", "0", "4.5", "--from", "lab",
                               "--tag1", "starred", "--json").stdout)  # fmt: skip
        assert given["rating"] == "4.5" and given["dealValue"] == "250000"
        sybil = cli("market", "feedback", "give", "0", "5", "--from", "sybil", ok=False)
        assert sybil.returncode == 17 and sybil.stderr.count("\n") == 1
        assert "sybil has no settled deal with agent 0" in sybil.stderr
        again = cli("market", "feedback", "give", "0", "5", "--from", "lab", ok=False)
        assert again.returncode == 17  # one payment, one feedback
        summary = json.loads(cli("market", "feedback", "summary", "0", "--json").stdout)
        assert (summary["count"], summary["rating"]) == (1, "4.5")
        assert "#1 from" in cli("market", "feedback", "list", "0").stdout
    finally:
        server.send_signal(signal.SIGINT)  # Ctrl-C: the last checkpoint covers every call
        out, err = server.communicate(timeout=30)
    entries = cli("audit", "export", "paid-calls", ok=False)
    assert entries.returncode == 0 and entries.stdout.count('"paid-call"') == 1, (out, err)
