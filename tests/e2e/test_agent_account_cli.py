"""`neuroledger market agent policy|pay|freeze|unfreeze` as users run them: an agent's account
pays within its caps; a payment above the cap, one to an unlisted recipient and one after the
owner's kill switch are refused on chain, each with one line; the owner still withdraws."""

from __future__ import annotations

import json

import pytest

from tests.e2e.test_cli import cli  # noqa: F401  (the fixture)

pytestmark = pytest.mark.anvil


def test_an_agent_account_keeps_the_agent_inside_its_policy(cli) -> None:  # noqa: F811
    for name, kind in (
        ("hospital-a", "org"),
        ("triage", "agent"),
        ("lab", "org"),
        ("stranger", "org"),
    ):
        cli("identity", "create", name, "--kind", kind)
    made = json.loads(cli("market", "agent", "policy", "set", "triage", "--from", "hospital-a", "--create",
                          "--per-tx", "5", "--per-period", "12", "--allow-recipient", "lab", "--rate", "10/3600",
                          "--json").stdout)  # fmt: skip
    account = made["account"]
    assert made["frozen"] is False and made["allowed_recipients"] == [made["allowed_recipients"][0]]
    kinds = {p["type"] for p in made["permissions"]} | {p["type"] for p in made["policies"]}
    assert kinds == {"erc20-token-transfer", "spent-limit", "rate-limit"}
    cli("credits", "faucet", "hospital-a", "--amount", "100")
    cli("credits", "send", account, "50", "--from", "hospital-a")
    assert "paid 4 credits to lab" in cli("market", "agent", "pay", "triage", "lab", "4").stdout
    for args, reason in (
        (("lab", "6"), "above the per-transaction cap"),
        (("stranger", "1"), "the recipient is not allowed"),
        (("lab", "5"), "ok"),
        (("lab", "5"), "above the spent-limit of the period"),  # 4 + 5 + 5 > 12 today
    ):
        out = cli("market", "agent", "pay", "triage", *args, ok=reason == "ok")
        if reason != "ok":
            assert out.returncode == 17 and out.stderr.count("\n") == 1, out.stderr
            assert "triage's account refused a payment" in out.stderr and reason in out.stderr
            assert "refusal logged in 0x" in out.stderr
    # With --log, a refusal also lands in the agent's audit log.
    cli("audit", "create", "triage")
    logged = cli("market", "agent", "pay", "triage", "stranger", "2", "--log", ok=False)
    assert "the recipient is not allowed" in logged.stderr
    events = json.loads(cli("audit", "export", "triage").stdout)["events"]
    assert [(e["event_type"], e["details"]["reason"]) for e in events] == [
        ("guardrail-refusal", "the recipient is not allowed")
    ]
    assert events[0]["risk_flag"] is True and events[0]["details"]["transaction"].startswith("0x")
    cli("market", "agent", "freeze", "triage", "--from", "hospital-a")
    frozen = cli("market", "agent", "pay", "triage", "lab", "1", ok=False)
    assert "the account is frozen" in frozen.stderr
    wrong = cli("market", "agent", "unfreeze", "triage", "--from", "triage", ok=False)
    assert wrong.returncode == 17 and "does not own triage's account" in wrong.stderr
    shown = cli("market", "agent", "policy", "show", "triage").stdout
    assert "FROZEN" in shown and "spent-limit" in shown and "9 spent" in shown
    assert json.loads(cli("credits", "balance", "lab", "--json").stdout)["credits"] == "9"
    assert json.loads(cli("credits", "balance", "stranger", "--json").stdout)["credits"] == "0"
    cli("market", "agent", "unfreeze", "triage", "--from", "hospital-a")
    missing = cli("market", "agent", "pay", "lab", "triage", "1", ok=False)
    assert "agent lab has no account here" in missing.stderr


def test_the_energy_bill_per_capability(cli) -> None:  # noqa: F811
    cli("identity", "create", "lab", "--kind", "org")  # publishes its key: an identity write
    sent = cli("--energy", "credits", "faucet", "lab", "--amount", "5")
    assert (
        "energy: 1 transaction(s), " in sent.stderr
        and "Wh on a proof-of-stake network" in sent.stderr
    )
    cli("credits", "send", "0x" + "11" * 20, "1", "--from", "lab")
    bill = json.loads(cli("report", "energy", "--json").stdout)
    rows = {r["capability"]: r for r in bill["capabilities"]}
    assert {"identity", "market"} <= set(rows) and rows["market"]["transactions"] == 2
    assert bill["gas"] == sum(r["gas"] for r in bill["capabilities"]) > 0
    assert abs(bill["wh_pos"] - bill["gas"] * bill["conversion"]["wh_per_gas_pos"]) < 1e-9
    assert bill["wh_pow"] > 1000 * bill["wh_pos"]  # proof of work: thousands of times more
    human = cli("report", "energy").stdout
    assert "market" in human and "conversion: CCRI" in human
    bad = cli("report", "energy", "--days", "0", ok=False)
    assert bad.returncode != 0 and "--days must be positive" in bad.stderr
