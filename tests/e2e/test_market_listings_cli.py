"""`neuroledger market list|listings|buy|refund|royalties` as users run them: a hospital lists
compute access to a dataset, a lab buys it and holds the grant, a revoked grant refunds the
lab; bad input gets one line that names the fix, and nothing moves."""

from __future__ import annotations

import json

import pytest

from tests.e2e.test_cli import cli  # noqa: F401  (the fixture)

pytestmark = pytest.mark.anvil


def test_list_buy_refund_and_bad_input(cli, tmp_path) -> None:  # noqa: F811
    for name in ("hospital", "lab"):
        cli("identity", "create", name, "--kind", "org")
    cli("credits", "faucet", "lab", "--amount", "50")
    data = tmp_path / "cohort.csv"
    data.write_text("id,x\n1,2\n")
    asset = json.loads(cli("asset", "register", str(data), "--kind", "dataset", "--as", "hospital",
                           "--json").stdout)["id"]  # fmt: skip
    listed = json.loads(cli("market", "list", str(data), "--from", "hospital", "--price", "12.5",
                            "--mode", "compute", "--purpose", "study", "--duration", "604800",
                            "--license", "LicenseRef-hospital", "--json").stdout)  # fmt: skip
    assert (listed["listing_id"], listed["price"], listed["mode"], listed["contributors"]) == (
        1, 12_500_000, "compute", [])  # fmt: skip
    shown = cli("market", "listings").stdout
    assert shown.startswith("listing 1: asset 0x") and "12.5 credits, compute for 'study'" in shown
    sale = json.loads(cli("market", "buy", "1", "--from", "lab", "--json").stdout)
    assert sale["status"] == "held" and sale["price"] == 12_500_000
    grants = cli("grant", "list", asset).stdout
    assert "study" in grants
    assert "37.5" in cli("credits", "balance", "lab").stdout
    royalties = cli("market", "royalties", "1").stdout
    assert "verified from chain data: OK" in royalties and "sale 1: held" in royalties
    cli("grant", "revoke", asset, "lab", "--owner", "hospital", "--purpose", "study")
    assert (
        json.loads(cli("market", "refund", "1", "--from", "lab", "--json").stdout)["status"]
        == "refunded"
    )
    assert "50" in cli("credits", "balance", "lab").stdout

    other = tmp_path / "other.csv"
    other.write_text("id\n3\n")
    cli("asset", "register", str(other), "--kind", "dataset", "--as", "lab")
    cli("market", "list", str(data), "--from", "hospital", "--price", "1", "--purpose", "study")
    cli("market", "delist", "1", "--from", "hospital")
    cases = [
        (("market", "list", str(other), "--from", "hospital", "--price", "1"),
         "hospital does not own asset"),
        (("market", "list", str(data), "--from", "hospital", "--price", "0"), "the price must be positive"),
        (("market", "list", str(data), "--from", "hospital", "--price", "1", "--mode", "stream"),
         "mode 'stream' is not one of download, compute, both, per-call"),
        (("market", "buy", "1", "--from", "lab"), "listing 1 was withdrawn by its seller"),
        (("market", "buy", "7", "--from", "lab"), "no listing 7"),
        (("market", "refund", "1", "--from", "lab"), "Marketplace: sale is settled"),
        (("market", "withdraw", "--from", "hospital"), "the marketplace owes hospital nothing"),
    ]  # fmt: skip
    for args, message in cases:
        bad = cli(*args, ok=False)
        assert bad.returncode != 0 and bad.stderr.count("\n") == 1, (args, bad.stderr)
        assert message in bad.stderr, (args, bad.stderr)
    cli("asset", "revoke", asset, "--as", "hospital", "--reason", "withdrawn")
    bad = cli("market", "buy", "2", "--from", "lab", ok=False)
    assert bad.stderr.count("\n") == 1 and "is revoked; it can no longer be bought" in bad.stderr
    assert "50" in cli("credits", "balance", "lab").stdout
