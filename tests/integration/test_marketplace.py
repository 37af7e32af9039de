"""Data and models for sale on a real anvil: a hospital lists compute access to its cohort,
a lab buys it (payment and grant in one transaction), the hold passes and the sale pays the
seller and every ancestor's owner; a revoked grant refunds the buyer; a federated model
pays its participants by their rewards. Royalties are re-derived from chain data and any
doctored figure is caught."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from neuroledger.chain import Chain
from neuroledger.errors import MarketError, TransactionRevertedError
from neuroledger.identity import Identities, Keystore
from neuroledger.market import Credits, Listings
from neuroledger.provenance import Provenance
from tests.conftest import BLOCK_TIME

# With a 2 s block time the demo's sales part (list, buy, release, royalties) runs beside
# these tests in `make test-block-time`; here they would only repeat it, slower.
pytestmark = [
    pytest.mark.anvil,
    pytest.mark.skipif(bool(BLOCK_TIME), reason="the block-time demo sells and releases"),
]

CREDIT = 10**6
DAY = 86_400


def _file(root: Path, name: str, text: str) -> Path:
    path = root / name
    path.write_text(text)
    return path


@pytest.fixture
def world(chain: Chain, keystore: Keystore, identities: Identities, prov: Provenance,
          tmp_path: Path) -> dict:  # fmt: skip
    for name, kind in (("hospital", "org"), ("coder", "org"), ("lab", "org"), ("seller", "org")):
        identities.create(name, kind, publish=False)
    data = "0x" + prov.register(_file(tmp_path, "cohort.csv", "id,x\n1,2\n"), kind="dataset",
                         owner="hospital").asset_id  # fmt: skip
    code = "0x" + prov.register(_file(tmp_path, "train.py", "print('fit')\n"), kind="code",
                         owner="coder").asset_id  # fmt: skip
    model = "0x" + prov.register(_file(tmp_path, "model.bin", "weights"), kind="model", owner="seller",
                          parents=[data, code]).asset_id  # fmt: skip
    credits = Credits(chain, keystore)
    credits.faucet("lab", 100 * CREDIT, by="lab")
    return {"m": Listings(chain, keystore, prov), "data": data, "code": code, "model": model,
            "credits": credits, "chain": chain}  # fmt: skip


def test_a_sale_grants_access_and_pays_along_lineage_after_the_hold(world: dict) -> None:
    m: Listings = world["m"]
    chain: Chain = world["chain"]
    listing = m.list_asset(world["model"], by="seller", price=10 * CREDIT, mode="compute",
                           purpose="research", duration=30 * DAY, license="CC-BY-4.0")  # fmt: skip
    assert listing.contributors == [world["data"], world["code"]]
    assert [v.listing_id for v in m.listings()] == [listing.listing_id]
    sale = m.buy(listing.listing_id, by="lab")
    grants = chain.contract("AccessGrants")
    lab = world["m"]._identity("lab")
    asset = bytes.fromhex(world["model"][2:])
    assert grants.functions.hasAccess(asset, lab, 2, b"research".ljust(32, b"\0")).call()
    assert sale.status == "held" and world["credits"].balance("lab") == 90 * CREDIT
    with pytest.raises(MarketError, match="is held until"):
        m.release(sale.sale_id, by="lab")
    chain.wait_block_time(DAY)
    assert m.release(sale.sale_id, by="lab").status == "released"
    assert m.owed("hospital") == m.owed("coder") == CREDIT // 2  # 10% royalty, two ancestors
    assert m.owed("seller") == 9 * CREDIT
    report = m.royalties(listing.listing_id)
    assert report["ok"], report["problems"]
    assert [c["payee"].lower() for c in report["contributors"]] == [
        m._identity("hospital").lower(), m._identity("coder").lower()]  # fmt: skip
    assert report["sales"][0]["seller_amount"] == 9 * CREDIT
    assert m.withdraw(by="hospital") == CREDIT // 2
    assert world["credits"].balance(m._identity("hospital")) == CREDIT // 2
    with pytest.raises(MarketError, match="owes hospital nothing"):
        m.withdraw(by="hospital")

    # a doctored listing (a contributor dropped, a weight changed) does not verify
    from neuroledger.market._royalty_check import verify_royalties

    doctored = dataclasses.replace(m.listing(listing.listing_id), contributors=[world["data"]])
    assert not verify_royalties(m, doctored)["ok"]
    cheaper = dataclasses.replace(m.listing(listing.listing_id), royalty_bps=500)
    found = verify_royalties(m, cheaper)
    assert not found["ok"] and "paid royalties" in found["problems"][0]


def test_a_revoked_grant_refunds_and_bad_purchases_move_nothing(
    world: dict, keystore: Keystore
) -> None:
    m: Listings = world["m"]
    listing = m.list_asset(world["data"], by="hospital", price=5 * CREDIT, mode="compute",
                           purpose="study", duration=7 * DAY)  # fmt: skip
    sale = m.buy(listing.listing_id, by="lab")
    with pytest.raises(TransactionRevertedError, match="the buyer's access still holds"):
        m.refund(sale.sale_id, by="lab")
    grants = world["chain"].contract("AccessGrants")
    hospital = keystore.owner_account("hospital")
    from neuroledger.chain import contract_call

    revoke = contract_call(grants, "revoke", [bytes.fromhex(world["data"][2:]),
                           m._identity("lab"), b"study".ljust(32, b"\0")], label="revoke")  # fmt: skip
    world["chain"].sender(hospital).send(revoke)
    assert m.refund(sale.sale_id, by="lab").status == "refunded"
    assert world["credits"].balance("lab") == 100 * CREDIT

    with pytest.raises(MarketError, match="hospital does not own asset"):
        m.list_asset(world["model"], by="hospital", price=1, mode="compute", purpose="x",
                     duration=DAY)  # fmt: skip
    with pytest.raises(MarketError, match="no listing 99"):
        m.buy(99, by="lab")
    m.delist(listing.listing_id, by="hospital")
    with pytest.raises(MarketError, match="was withdrawn by its seller"):
        m.buy(listing.listing_id, by="lab")
    per_call = m.list_asset(world["data"], by="hospital", price=CREDIT, mode="per-call",
                            purpose="inference", duration=0, uri="http://127.0.0.1:9/x")  # fmt: skip
    with pytest.raises(MarketError, match="sold per call over x402"):
        m.buy(per_call.listing_id, by="lab")
    again = m.list_asset(world["data"], by="hospital", price=CREDIT, mode="compute",
                         purpose="study", duration=DAY)  # fmt: skip
    m.prov.revoke(world["data"], reason="consent withdrawn", actor="hospital")
    with pytest.raises(MarketError, match="is revoked; it can no longer be bought"):
        m.buy(again.listing_id, by="lab")
    assert world["credits"].balance("lab") == 100 * CREDIT
