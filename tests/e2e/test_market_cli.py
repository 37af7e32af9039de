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
