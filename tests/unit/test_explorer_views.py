"""What the explorer's pages conclude from the index, on events built by hand: which round
documents a task's charts believe, how far a lineage is drawn, what the governance queue
says is ready, and that the pages say so in their HTML."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from neuroledger.chain import load_artifact
from neuroledger.explorer import DecodedEvent, EventCatalog, ExplorerIndex, create_api
from neuroledger.explorer._documents import trusted_rounds
from neuroledger.explorer._lineage import lineage
from neuroledger.explorer._views import governance

ADDRESSES = {"AssetRegistry": "0x" + "22" * 20, "FederatedTask": "0x" + "44" * 20,
             "Timelock": "0x" + "55" * 20, "AccessGrants": "0x" + "66" * 20,
             "DIDRegistry": "0x" + "11" * 20, "JobEscrow": "0x" + "77" * 20,
             "ValidationRegistry": "0x" + "88" * 20, "ReputationRegistry": "0x" + "99" * 20,
             "Marketplace": "0x" + "aa" * 20}  # fmt: skip
OWNER, MALLORY = "0x" + "0a" * 20, "0x" + "0b" * 20
ROOT = "0x" + "ab" * 32


class Chainless:
    """Events stored through the indexer's own path, one block each."""

    def __init__(self, tmp_path: Path, documents: dict[str, bytes] | None = None) -> None:
        abis = {name: load_artifact(name).abi for name in ADDRESSES}
        blobs = documents if documents is not None else {}
        self.blobs = blobs
        self.index = ExplorerIndex(tmp_path / "x.sqlite", chain_id=1,
                                   catalog=EventCatalog(abis, ADDRESSES),
                                   documents=lambda d, n: blobs.get(d))  # fmt: skip
        self.block = 0

    def add(self, contract: str, name: str, /, time: int = 1_800_000_000, **args: Any) -> None:
        self.block += 1
        event = DecodedEvent(block=self.block, log_index=0, tx="0x" + f"{self.block:064x}",
                             block_hash="", address=ADDRESSES[contract], contract=contract,
                             name=name, args=args)  # fmt: skip
        with self.index.db:
            self.index._store([event], {self.block: time})

    def asset(
        self, asset: str, owner: str, parents: list[str] = (), document: dict | None = None
    ) -> None:  # type: ignore[assignment]
        digest = "00" * 32
        if document is not None:
            raw = json.dumps(document).encode()
            digest = hashlib.sha256(raw).hexdigest()
            self.blobs[digest] = raw
        self.add("AssetRegistry", "AssetRegistered", id=asset, owner=owner, digest="0x" + "11" * 32,
                 kind=5, metadataURI=f"sha256:{digest}", metadataDigest="0x" + digest,
                 parents=list(parents), license="")  # fmt: skip


def _round_doc(root: str, accuracy: float) -> dict[str, Any]:
    return {"type": "https://neuroledger.dev/federated-round/v1", "task": 1, "round": 1,
            "commitmentsRoot": root.removeprefix("0x"), "metrics": {"accuracy": accuracy}}  # fmt: skip


def test_the_charts_believe_only_the_owners_document_with_the_recorded_root(tmp_path: Path) -> None:
    c = Chainless(tmp_path)
    c.add("FederatedTask", "TaskCreated", taskId=1, owner=OWNER, modelAsset="0x" + "01" * 32,
          codeAsset="0x" + "02" * 32, rounds=1, validators=0, pool=0, stake=0, deadline=0)  # fmt: skip
    c.add("FederatedTask", "RoundRecorded", taskId=1, round=1, commitmentsRoot=ROOT,
          aggregateDigest="0x" + "cd" * 32, contributors=3)  # fmt: skip
    # registered first, with the right root, but by someone else: a forgery
    c.asset("0x" + "f1" * 32, MALLORY, document=_round_doc(ROOT, 0.99))
    # the owner's, but not the root the chain recorded for the round
    c.asset("0x" + "f2" * 32, OWNER, document=_round_doc("0x" + "ee" * 32, 0.98))
    c.asset("0x" + "f3" * 32, OWNER, document=_round_doc(ROOT, 0.91))
    found = trusted_rounds(c.index.db, "1", OWNER, {1: ROOT})
    assert found == {1: {"asset": "0x" + "f3" * 32, "accuracy": 0.91}}
    page = TestClient(create_api(c.index)).get("/task/1").text
    assert "Accuracy per round" in page and "0.91" in page and "0.99" not in page


def test_a_lineage_is_drawn_both_ways_and_says_where_it_was_cut(tmp_path: Path) -> None:
    c = Chainless(tmp_path)
    keys = ["0x" + f"{i:064x}" for i in range(1, 8)]
    c.asset(keys[0], OWNER)
    c.asset(keys[1], OWNER, [keys[0]])
    c.asset(keys[2], OWNER, [keys[0]])
    c.asset(keys[3], OWNER, [keys[1], keys[2]])  # a diamond
    for i in range(4, 7):  # a chain below it, deeper than 3 generations from keys[1]
        c.asset(keys[i], OWNER, [keys[i - 1]])
    drawn = lineage(c.index.db, keys[1], depth=3)
    assert drawn.generations[-1] == [keys[0]] and drawn.generations[1] == [keys[3]]
    assert drawn.generations[3] == [keys[5]] and drawn.cut  # keys[6] is beyond
    full = lineage(c.index.db, keys[3], depth=3)
    assert set(full.generations[-1]) == {keys[1], keys[2]} and full.generations[-2] == [keys[0]]
    assert not full.cut and (keys[0], keys[1]) in full.edges
    tree = full.tree(up=True)
    assert {n["key"] for n in tree} == {keys[1], keys[2]}
    assert [n["again"] for n in tree[1]["children"]] == [True]  # keys[0] shown once, then named
    page = TestClient(create_api(c.index)).get(f"/asset/{keys[3]}").text
    assert page.count('class="node') == 7 and "goes on beyond" not in page


def test_the_governance_queue_counts_down_and_shows_pauses(tmp_path: Path) -> None:
    c = Chainless(tmp_path)
    c.add("Timelock", "CallScheduled", time=1000, id="0x" + "01" * 32, index=0,
          target=ADDRESSES["AccessGrants"], amount=0, payload="0x", predecessor="0x" + "00" * 32,
          delay=3600)  # fmt: skip
    c.add("Timelock", "CallScheduled", time=1000, id="0x" + "02" * 32, index=0,
          target=ADDRESSES["AccessGrants"], amount=0, payload="0x", predecessor="0x" + "00" * 32,
          delay=60)  # fmt: skip
    c.add("Timelock", "Cancelled", time=1100, id="0x" + "02" * 32)
    c.add("AccessGrants", "Paused", account=OWNER)
    state = governance(c.index, now=1000 + 600)
    queue = {op["key"][:4]: op for op in state["queue"]}
    assert queue["0x01"]["state"] == "scheduled" and queue["0x01"]["wait"] == 3000
    assert queue["0x01"]["target"] == "AccessGrants" and queue["0x02"]["state"] == "cancelled"
    assert governance(c.index, now=1000 + 3600)["queue"][0]["state"] == "ready"
    assert dict(state["contracts"])["AccessGrants"]["paused"]


@pytest.mark.parametrize("path", ["/energy", "/api/v1/energy"])
def test_an_index_with_no_bill_yet_says_so(tmp_path: Path, path: str) -> None:
    got = TestClient(create_api(Chainless(tmp_path).index)).get(path)
    assert got.status_code == 200
    assert "Nothing billed yet" in got.text if path == "/energy" else got.json()["items"] == []


def _b32(text: str) -> str:
    return "0x" + text.encode().ljust(32, b"\0").hex()


def test_an_identity_page_shows_its_did_document_as_it_stands(tmp_path: Path) -> None:
    c = Chainless(tmp_path)
    who, helper, gone = OWNER, "0x" + "0c" * 20, "0x" + "0d" * 20
    c.add("DIDRegistry", "DIDDelegateChanged", identity=who, delegateType=_b32("sigAuth"),
          delegate=helper, validTo=2**63, previousChange=0)  # fmt: skip
    c.add(
        "DIDRegistry",
        "DIDDelegateChanged",
        identity=who,
        delegateType=_b32("veriKey"),
        delegate=gone,
        validTo=1_000,
        previousChange=1,
    )  # expired long ago
    c.add("DIDRegistry", "DIDAttributeChanged", identity=who, name=_b32("did/svc/AuditLog"),
          value="0x" + b"https://log.example".hex(), validTo=2**63, previousChange=2)  # fmt: skip
    page = TestClient(create_api(c.index)).get(f"/identity/{who}").text
    assert f"did:ethr:0x1:{who}" in page and helper in page and gone not in page.split("History")[0]
    assert "sigAuth" in page and "did/svc/AuditLog" in page and "https://log.example" in page


def test_jobs_validations_and_sales_show_each_step_and_who_got_what(tmp_path: Path) -> None:
    c = Chainless(tmp_path)
    c.add("JobEscrow", "JobCreated", jobId=3, client=OWNER, provider=MALLORY, evaluator=OWNER,
          expiredAt=0)  # fmt: skip
    c.add("JobEscrow", "JobFunded", jobId=3, client=OWNER, amount=10)
    c.add("JobEscrow", "JobCompleted", jobId=3, evaluator=OWNER, reason="0x" + "00" * 32)
    client = TestClient(create_api(c.index))
    steps = client.get("/job/3").text.split('class="steps"')[1]
    assert steps.index("open") < steps.index("funded") < steps.index("completed")
    request = "0x" + "5e" * 32
    c.add("ValidationRegistry", "ValidationCommitted", requestHash=request,
          validatorAddress=MALLORY, commitment="0x" + "c0" * 32)  # fmt: skip
    c.add("ValidationRegistry", "ValidationResponse", validatorAddress=MALLORY, agentId=1,
          requestHash=request, response=87, responseURI="", responseHash="0x" + "00" * 32,
          tag="accuracy")  # fmt: skip
    row = client.get(f"/validation/{request}").text.split(MALLORY.lower())[1]
    assert "0xc0c0" in row and ">87<" in row
    assert [
        i["key"] for i in client.get("/api/v1/entities/validation?tag=accuracy").json()["items"]
    ] == [request]
    assert client.get("/api/v1/entities/validation?tag=other").json()["items"] == []
    c.add("Marketplace", "Sold", saleId=1, listingId=1, buyer=OWNER, grantee=OWNER, price=100,
          expiry=0, releaseAt=0)  # fmt: skip
    c.add("Marketplace", "RoyaltyPaid", saleId=1, payee=MALLORY, source="0x" + "ad" * 32, amount=7)
    sale = client.get("/sale/1").text
    assert "Royalties credited" in sale and MALLORY in sale and ">7<" in sale


def test_an_agent_page_shows_its_inline_card_as_text(tmp_path: Path) -> None:
    import base64

    c = Chainless(tmp_path)
    card = {"name": "triage <b>agent</b>", "description": "reads scans",
            "services": [{"name": "DID", "endpoint": "did:ethr:0x1:" + OWNER}], "supportedTrust": ["reputation"]}  # fmt: skip
    uri = "data:application/json;base64," + base64.b64encode(json.dumps(card).encode()).decode()
    c.add("ReputationRegistry", "NewFeedback", agentId=5, clientAddress=OWNER, feedbackIndex=1, value=42,
          valueDecimals=1, indexedTag1="x", tag1="x", tag2="", endpoint="", feedbackURI="",
          feedbackHash="0x" + "00" * 32)  # fmt: skip
    page = TestClient(create_api(c.index)).get("/agent/5").text
    assert "The card is not inline" in page  # no registration indexed: no card to show
    # its registration, stored as the indexer stores a decoded event
    event = DecodedEvent(block=99, log_index=0, tx="0x" + "99" * 32, block_hash="", address="0x" + "ab" * 20,
                         contract="AgentRegistry", name="Registered", args={"agentId": 5, "agentURI": uri, "owner": OWNER})  # fmt: skip
    with c.index.db:
        c.index._store([event], {99: 1_800_000_000})
    page = TestClient(create_api(c.index)).get("/agent/5").text
    assert (
        "triage &lt;b&gt;agent&lt;/b&gt;" in page
        and "reputation" in page
        and "did:ethr:0x1:" in page
    )
