"""The explorer's index on a real anvil: every suite contract's events in one SQLite file,
decoded to plain JSON, resumable, and refusing a reorg below its final block."""

from __future__ import annotations

from pathlib import Path

import pytest

from neuroledger.chain import Chain
from neuroledger.errors import IndexReorgError
from neuroledger.explorer import open_index
from neuroledger.identity import Identities
from neuroledger.market import Credits
from neuroledger.provenance import Provenance
from tests.conftest import BLOCK_TIME

# The index reads logs and headers and never waits for a block: the block-time run (which
# CI's budget holds tight) leaves it to this run; the demo's browser test reads its index.
pytestmark = [
    pytest.mark.anvil,
    pytest.mark.skipif(bool(BLOCK_TIME), reason="the index never waits for a block"),
]


def test_the_index_reads_every_contract_and_resumes(chain: Chain, identities: Identities,
                                                   prov: Provenance, keystore, tmp_path: Path) -> None:  # fmt: skip
    identities.create("hospital", "org", publish=False)
    data = tmp_path / "cohort.csv"
    data.write_text("id\n1\n")
    asset = prov.register(data, kind="dataset", owner="hospital").asset_id
    Credits(chain, keystore).faucet("hospital", 5 * 10**6, by="hospital")
    index = open_index(chain, tmp_path / "explorer.sqlite")
    stored = index.sync(chain.w3, confirmations=0)
    assert stored == index.count() > 0
    registered = index.events(contract="AssetRegistry", name="AssetRegistered")
    assert [e["args"]["id"] for e in registered] == ["0x" + asset.removeprefix("0x")]
    assert registered[0]["args"]["kind"] == 1 and registered[0]["time"] > 0
    transfers = index.events(contract="Credits", name="Transfer")
    assert transfers and transfers[-1]["args"]["value"] == 5 * 10**6
    assert index.sync(chain.w3, confirmations=0) == 0  # resumes: nothing new
    again = open_index(chain, tmp_path / "explorer.sqlite")  # reopened: same position
    assert again.count() == stored and again.sync(chain.w3) == 0
    page = index.events(limit=2)
    rest = index.events(after=(page[-1]["block"], page[-1]["log_index"]), limit=10_000)
    assert len(page) + len(rest) == stored


def test_a_reorg_below_the_final_block_is_refused(chain: Chain, identities: Identities,
                                                 keystore, tmp_path: Path) -> None:  # fmt: skip
    identities.create("hospital", "org", publish=False)
    credits = Credits(chain, keystore)
    snapshot = chain.w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
    credits.faucet("hospital", 10**6, by="hospital")
    index = open_index(chain, tmp_path / "explorer.sqlite")
    index.sync(chain.w3, confirmations=0)
    chain.w3.provider.make_request("evm_revert", [snapshot])  # type: ignore[arg-type]
    chain.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    chain.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    with pytest.raises(IndexReorgError, match="explorer index --rebuild"):
        index.sync(chain.w3, confirmations=0)
    index.rebuild()
    assert index.sync(chain.w3, confirmations=0) == index.count()


def test_the_api_is_read_only_paged_validated_and_exports_csv(chain: Chain, identities: Identities,
                                                              keystore, tmp_path: Path) -> None:  # fmt: skip
    import httpx

    from neuroledger.explorer import create_api
    from neuroledger.privacy.gateway import BackgroundServer

    for name in ("a", "b", "c"):
        identities.create(name, "org", publish=False)
        Credits(chain, keystore).faucet(name, 10**6, by=name)
    index = open_index(chain, tmp_path / "explorer.sqlite")
    total = index.sync(chain.w3)
    with BackgroundServer(create_api(index)) as server:
        api = httpx.Client(base_url=server.url, timeout=10)
        stats = api.get("/api/v1/stats").json()
        assert stats["events"] == total and any(k["name"] == "Transfer" for k in stats["by_kind"])
        seen, cursor = [], None
        while True:
            page = api.get(
                "/api/v1/events", params={"limit": 2, **({"cursor": cursor} if cursor else {})}
            ).json()
            seen += page["items"]
            cursor = page["next"]
            if cursor is None:
                break
        assert len(seen) == total and len({(e["block"], e["log_index"]) for e in seen}) == total
        one = api.get(f"/api/v1/tx/{seen[-1]['tx']}").json()
        assert seen[-1] in one["events"]
        csv_text = api.get("/api/v1/events", params={"contract": "Credits", "format": "csv"})
        assert csv_text.headers["content-type"].startswith("text/csv")
        assert csv_text.text.splitlines()[0] == "block,log_index,time,tx,contract,name,address,args"
        response = api.get("/api/v1/stats")
        assert "default-src 'none'" in response.headers["content-security-policy"]
        for bad in ({"limit": 0}, {"limit": 5000}, {"cursor": "x"}, {"contract": "a;drop"},
                    {"format": "xml"}):  # fmt: skip
            r = api.get("/api/v1/events", params=bad)
            assert r.status_code == 422, (bad, r.status_code)
        assert api.get("/api/v1/tx/0x12").status_code == 422
        assert api.get("/api/v1/tx/0x" + "ab" * 32).status_code == 404
        for method in ("POST", "PUT", "DELETE", "PATCH"):
            assert api.request(method, "/api/v1/events").status_code == 405
        assert api.get("/api/v1/openapi.json").json()["info"]["title"] == "NeuroLedger explorer API"


def test_entities_follow_their_events_and_are_searchable(chain: Chain, identities: Identities,
                                                        prov: Provenance, keystore, tmp_path: Path) -> None:  # fmt: skip
    from neuroledger.market import Listings

    for name in ("hospital", "lab"):
        identities.create(name, "org", publish=False)
    data = tmp_path / "cohort.csv"
    data.write_text("id\n1\n")
    asset = "0x" + prov.register(data, kind="dataset", owner="hospital",
                                 license="LicenseRef-cohort").asset_id.removeprefix("0x")  # fmt: skip
    market = Listings(chain, keystore, prov)
    listing = market.list_asset(asset, by="hospital", price=10**6, mode="compute", purpose="study",
                                duration=86400)  # fmt: skip
    Credits(chain, keystore).faucet("lab", 10**6, by="lab")
    index = open_index(chain, tmp_path / "explorer.sqlite")
    snapshot = chain.w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
    market.buy(listing.listing_id, by="lab")
    index.sync(chain.w3, confirmations=2)  # the sale's blocks are not final yet
    hospital = market._identity("hospital").lower()
    found = index.entity("asset", asset)
    assert found is not None and found["owner"] == hospital and found["status"] == "active"
    assert found["data"]["license"] == "LicenseRef-cohort"
    assert {e["name"] for e in found["events"]} >= {"AssetRegistered", "Listed", "AccessGranted"}
    sales = index.entities("sale")
    assert [s["status"] for s in sales] == ["held"] and sales[0]["owner"] == market._identity(
        "lab"
    ).lower()
    assert [s["key"] for s in index.entities("listing", owner=hospital)] == [
        str(listing.listing_id)
    ]
    assert any(r["key"] == asset for r in index.search("cohort"))
    # the sale is undone by a shallow reorg: its blocks were never final, the index forgets it
    chain.w3.provider.make_request("evm_revert", [snapshot])  # type: ignore[arg-type]
    for _ in range(3):
        chain.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    index.sync(chain.w3, confirmations=2)
    assert index.entities("sale") == []
    assert "AccessGranted" not in {e["name"] for e in index.entity("asset", asset)["events"]}


def test_every_page_loads_and_every_link_resolves(chain: Chain, identities: Identities,
                                                 prov: Provenance, keystore, tmp_path: Path) -> None:  # fmt: skip
    import re

    import httpx

    from neuroledger.explorer import create_api
    from neuroledger.privacy.gateway import BackgroundServer

    identities.create("hospital", "org", publish=False)
    data = tmp_path / "cohort.csv"
    data.write_text("id\n1\n")
    prov.register(data, kind="dataset", owner="hospital", license="LicenseRef-<script>")
    index = open_index(chain, tmp_path / "explorer.sqlite")
    index.sync(chain.w3)
    with BackgroundServer(create_api(index)) as server:
        web = httpx.Client(base_url=server.url, timeout=10)
        todo, seen = ["/"], set()
        while todo:
            path = todo.pop()
            if path in seen:
                continue
            seen.add(path)
            r = web.get(path)
            assert r.status_code == 200, (path, r.status_code)
            assert "<script>" not in r.text  # escaped everywhere
            if r.headers["content-type"].startswith("text/html"):
                todo += [
                    h for h in re.findall(r'href="(/[^"]*)"', r.text) if not h.startswith("/api/")
                ]
        assert "/asset" in seen and any(p.startswith("/asset/") for p in seen)
        assert any(p.startswith("/tx/") for p in seen) and "/static/style.css" in seen
        assert web.get("/nothing").status_code == 404 and web.get("/asset/0x12").status_code == 404
        asset_page = next(p for p in seen if p.startswith("/asset/"))
        assert "LicenseRef-&lt;script&gt;" in web.get(asset_page).text
