"""`neuroledger validator` and `neuroledger market validate` as users run them: three staked
validators check an agent's registered work, each by one pass of its loop; bad input gets one
line that names the fix."""

from __future__ import annotations

import json

import pytest

from tests.e2e.test_cli import cli  # noqa: F401  (the fixture)

pytestmark = pytest.mark.anvil


def test_validators_stake_check_commit_reveal_and_agree(cli, tmp_path) -> None:  # noqa: F811
    for name in ("triage", "val-a", "val-b", "val-c"):
        cli("identity", "create", name, "--kind", "agent")
    for name in ("val-a", "val-b", "val-c"):
        cli("credits", "faucet", name, "--amount", "150")
        cli("validator", "stake", "100", "--as", name)
    status = json.loads(cli("validator", "status", "val-a", "--json").stdout)
    assert status["active"] == 100_000_000 and status["in_pool"] and status["open_requests"] == 0
    cli("market", "agent", "register", "triage", "--description", "diagnoses")
    work = tmp_path / "report"
    work.mkdir()
    (work / "findings.txt").write_text("no anomaly in 1,000 scans\n")
    asset = json.loads(cli("asset", "register", str(work), "--kind", "dataset", "--as", "triage",
                           "--json").stdout)["id"]  # fmt: skip
    asset = "0x" + asset.removeprefix("0x")
    made = json.loads(cli("market", "validate", "request", "0", "--from", "triage", "--asset", asset,
                          "--location", str(work), "--k", "2", "--validator", "val-a", "--validator",
                          "val-b", "--validator", "val-c", "--commit-period", "60", "--reveal-period",
                          "60", "--tag", "integrity", "--json").stdout)  # fmt: skip
    h = made["request_hash"]
    assert (made["status"], made["k"], made["n"]) == ("pending", 2, 3)
    for name in ("val-a", "val-b", "val-c"):
        assert cli("validator", "run", "--as", name, "--once").stdout.startswith(
            f"committed  {h}  response 100"
        )
    revealed = [json.loads(cli("validator", "run", "--as", n, "--once", "--json").stdout.splitlines()[0])
                for n in ("val-a", "val-b", "val-c")]  # fmt: skip
    assert [r["action"] for r in revealed] == ["revealed"] * 3
    cli("validator", "run", "--as", "val-a", "--once")  # every one revealed: val-a finalizes
    shown = cli("market", "validate", "show", h).stdout
    assert shown.startswith(f"request {h}: ACCEPTED (median 100, threshold 50); agent 0; 2 of 3")
    assert shown.count("revealed 100") == 3

    # Bad input: one line that names the fix, and nothing moved.
    cases = [
        (("validator", "withdraw", "--as", "val-a"), "nothing unbonding; `validator unstake` first"),
        (("validator", "stake", "1000", "--as", "val-a"), "less than the stake"),
        (("market", "validate", "show", "0x" + "ab" * 32), "no validation request 0x"),
        (("market", "validate", "show", "12"), "is not a request hash"),
        (("market", "validate", "request", "0", "--from", "triage", "--asset", asset, "--location",
          str(work), "--k", "5", "--validator", "val-a"), "k = 5: the quorum must be 1 to n = 1"),
        (("market", "validate", "request", "0", "--from", "triage", "--asset", asset, "--location",
          str(work), "--k", "1"), "name validators with --validator, or draw them with --n"),
        (("market", "validate", "terms", "999", "--from", "triage"),
         "ValidationRegistry: this registry is not the job's evaluator"),
        (("market", "validate", "finalize", h, "--from", "triage"), "ValidationRegistry: the request is final"),
    ]  # fmt: skip
    for args, message in cases:
        bad = cli(*args, ok=False)
        assert bad.returncode != 0 and bad.stderr.count("\n") == 1, (args, bad.stderr)
        assert message in bad.stderr, (args, bad.stderr)
    assert json.loads(cli("validator", "status", "val-a", "--json").stdout)["active"] == 100_000_000
