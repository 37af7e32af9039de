"""Pay per call over real HTTP on loopback, on a real anvil: NeuroLedger's server, client and
facilitator, each bad payment answered with 402 and the spec's error code, nothing settled twice."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from neuroledger.chain import Chain
from neuroledger.errors import PaymentError
from neuroledger.identity import Identities, Keystore
from neuroledger.market import AgentService, Credits, Facilitator, pay
from neuroledger.market._x402 import decode_header, encode_header
from neuroledger.privacy.gateway import BackgroundServer

pytestmark = pytest.mark.anvil

PRICE, DEAR = 250_000, 2_000_000


@pytest.fixture
def credits(chain: Chain, keystore: Keystore, identities: Identities) -> Credits:
    for name in ("lab", "triage", "operator", "sybil"):
        identities.create(name, "org", publish=False)
    credits = Credits(chain, keystore)
    credits.faucet("lab", 10 * 10**6, by="lab")
    return credits


@pytest.fixture
def served(credits: Credits, tmp_path: Path) -> Iterator[tuple[str, AgentService]]:
    chain = credits.chain
    chain.fund(credits.keystore.owner_account("operator").address)
    facilitator = Facilitator(credits, "operator")
    calls: list[dict[str, Any]] = []
    service = AgentService(facilitator, pay_to="triage", calls_path=tmp_path / "calls.sqlite",
                           card=b'{"name":"triage"}', on_paid=calls.append)  # fmt: skip
    counter = {"n": 0}

    @service.paid("/diagnose", price=PRICE, description="one diagnosis")
    def diagnose(body: Any) -> Any:
        counter["n"] += 1
        return {"diagnosis": "benign", "call": counter["n"], "echo": body}

    @service.paid("/second-opinion", price=DEAR)
    def second(body: Any) -> Any:
        return {"opinion": "malignant"}

    service.calls_seen = calls  # type: ignore[attr-defined]
    with BackgroundServer(service.app()) as server:
        yield server.url, service


def test_unpaid_request_gets_402_with_v2_requirements(credits: Credits, served: Any) -> None:
    url, _ = served
    response = httpx.post(url + "/diagnose", json={"x": 1})
    assert response.status_code == 402
    required = decode_header(response.headers["PAYMENT-REQUIRED"])
    assert required["x402Version"] == 2 and required["resource"]["url"] == url + "/diagnose"
    (offer,) = required["accepts"]
    domain = credits.domain()
    assert offer == {
        "scheme": "exact", "network": f"eip155:{credits.chain.chain_id}", "asset": credits.address,
        "amount": str(PRICE), "payTo": credits.address_of("triage"), "maxTimeoutSeconds": 300,
        "extra": {"name": domain["name"], "version": domain["version"]},
    }  # fmt: skip
    assert response.json()["accepts"] == [offer]


def test_a_paid_call_is_settled_before_it_is_served_and_retries_are_free(
    credits: Credits, served: Any
) -> None:
    url, service = served
    paid = pay(credits, url + "/diagnose", payer="lab", body={"x": 1}, max_price=PRICE)
    assert paid.status == 200 and paid.body["diagnosis"] == "benign" and paid.price == PRICE
    assert paid.settlement["success"] and paid.settlement["transaction"].startswith("0x")
    assert credits.balance("triage") == PRICE
    assert [c["route"] for c in service.calls_seen] == ["/diagnose"]
    # The same payment header again (a client that lost the answer) gets the same answer free.
    header, answer = _paid_once(credits, url, service)
    assert credits.balance("triage") == 2 * PRICE and len(service.calls_seen) == 2
    again = httpx.post(url + "/diagnose", json={"x": 3}, headers={"PAYMENT-SIGNATURE": header})
    assert again.status_code == 200 and again.json() == answer
    assert decode_header(again.headers["PAYMENT-RESPONSE"])["success"]
    assert credits.balance("triage") == 2 * PRICE and len(service.calls_seen) == 2
    # ... and on another route it is refused: a payment is bound to its resource.
    other = httpx.post(url + "/second-opinion", json={}, headers={"PAYMENT-SIGNATURE": header})
    assert other.status_code == 402
    assert (
        decode_header(other.headers["PAYMENT-REQUIRED"])["error"] == "invalid_payment_requirements"
    )
    assert credits.balance("triage") == 2 * PRICE


def _paid_once(credits: Credits, url: str, service: AgentService) -> tuple[str, Any]:
    """A payment header for /diagnose, paid once through the server, and the answer it got."""
    auth = credits.authorize("triage", PRICE, by="lab")
    req = service.requirements("/diagnose", url + "/diagnose")
    header = encode_header({"x402Version": 2, "accepted": req.to_json(),
                            "resource": {"url": url + "/diagnose"}, "payload": auth.to_x402()})  # fmt: skip
    first = httpx.post(url + "/diagnose", json={"x": 2}, headers={"PAYMENT-SIGNATURE": header})
    assert first.status_code == 200
    return header, first.json()


def test_the_client_asks_before_paying_above_max_price(credits: Credits, served: Any) -> None:
    url, _ = served
    with pytest.raises(PaymentError, match="above --max-price"):
        pay(credits, url + "/second-opinion", payer="lab", body={}, max_price=PRICE)
    asked: list[int] = []
    declined = lambda req, decimals: asked.append(req.amount) or False  # noqa: E731
    with pytest.raises(PaymentError, match="costs 2 of token"):
        pay(credits, url + "/second-opinion", payer="lab", body={}, confirm=declined)
    assert asked == [DEAR] and credits.balance("triage") == 0
    accepted = pay(credits, url + "/second-opinion", payer="lab", body={},
                   confirm=lambda req, decimals: True)  # fmt: skip
    assert accepted.status == 200 and credits.balance("triage") == DEAR


def _header(credits: Credits, url: str, service: AgentService, *, by: str = "lab",
            amount: int = PRICE, to: str = "triage", valid_for: int = 300,
            change: dict[str, Any] | None = None, route: str = "/diagnose") -> str:  # fmt: skip
    auth = credits.authorize(to, amount, by=by, valid_for=valid_for)
    payload = {"x402Version": 2, "accepted": service.requirements(route, url + route).to_json(),
               "payload": auth.to_x402()}  # fmt: skip
    for key, value in (change or {}).items():
        target = payload
        *path, last = key.split(".")
        for part in path:
            target = target[part]
        target[last] = value
    return encode_header(payload)


#: Bad payments and the spec's code each gets (one server for all: with a real block time,
#: a fresh chain per case would cost more than the cases).
BAD_PAYMENTS: list[tuple[dict[str, Any], str]] = [
    ({"amount": PRICE - 1}, "invalid_exact_evm_payload_authorization_value"),
    ({"amount": PRICE + 1}, "invalid_exact_evm_payload_authorization_value"),
    ({"to": "sybil"}, "invalid_exact_evm_payload_recipient_mismatch"),
    ({"change": {"accepted.network": "eip155:1"}}, "invalid_network"),
    ({"change": {"accepted.scheme": "upto"}}, "unsupported_scheme"),
    ({"change": {"accepted.asset": "0x" + "11" * 20}}, "invalid_payment_requirements"),
    ({"change": {"x402Version": 1}}, "invalid_x402_version"),
    ({"change": {"payload.signature": "0x" + "00" * 65}}, "invalid_exact_evm_payload_signature"),
    ({"change": {"payload.authorization.value": "1e6"}}, "invalid_payload"),
    ({"by": "sybil"}, "insufficient_funds"),  # signed, but holds nothing
    ({"valid_for": 3}, "invalid_exact_evm_payload_authorization_valid_before"),
]
MALFORMED = ["not base64!", base64.b64encode(b"[" * 5000).decode(), "A" * 9000,
             base64.b64encode(b'"text"').decode()]  # fmt: skip


def test_bad_payments_get_402_with_the_spec_code_and_move_nothing(
    credits: Credits, served: Any
) -> None:
    url, service = served
    for case, code in BAD_PAYMENTS:
        header = _header(credits, url, service, **case)
        response = httpx.post(url + "/diagnose", json={}, headers={"PAYMENT-SIGNATURE": header})
        assert response.status_code == 402, (case, response.text)
        assert decode_header(response.headers["PAYMENT-REQUIRED"])["error"] == code, case
        assert response.json()["message"]
    assert credits.balance("triage") == 0 and service.calls_seen == []
    for raw in MALFORMED:
        for name in ("PAYMENT-SIGNATURE", "X-PAYMENT"):
            response = httpx.post(url + "/diagnose", json={}, headers={name: raw})
            assert response.status_code in (402, 431), (raw[:20], response.text)
            if response.status_code == 402:
                assert (
                    decode_header(response.headers["PAYMENT-REQUIRED"])["error"]
                    == "invalid_payload"
                )
    assert credits.balance("triage") == 0 and service.calls_seen == []


def test_a_reused_authorization_is_refused_and_settled_once(credits: Credits, served: Any) -> None:
    url, service = served
    auth = credits.authorize("triage", PRICE, by="lab")
    credits.settle(auth, by="operator")  # used elsewhere first, outside this server
    header = encode_header({"x402Version": 2, "payload": auth.to_x402(),
                            "accepted": service.requirements("/diagnose", url).to_json()})  # fmt: skip
    response = httpx.post(url + "/diagnose", json={}, headers={"PAYMENT-SIGNATURE": header})
    assert response.status_code == 402
    assert decode_header(response.headers["PAYMENT-REQUIRED"])["error"] == "nonce_already_used"
    assert credits.balance("triage") == PRICE


def test_v1_x_payment_is_accepted(credits: Credits, served: Any) -> None:
    url, _ = served
    auth = credits.authorize("triage", PRICE, by="lab")
    header = encode_header({"x402Version": 1, "scheme": "exact",
                            "network": f"eip155:{credits.chain.chain_id}",
                            "payload": auth.to_x402()})  # fmt: skip
    response = httpx.post(url + "/diagnose", json={"v": 1}, headers={"X-PAYMENT": header})
    assert response.status_code == 200 and response.json()["diagnosis"] == "benign"
    settled = decode_header(response.headers["X-PAYMENT-RESPONSE"])
    assert settled["success"] and credits.balance("triage") == PRICE


def test_concurrent_payments_settle_in_batches(credits: Credits, served: Any) -> None:
    url, service = served
    headers = [_header(credits, url, service) for _ in range(24)]
    results: list[int] = []

    def call(header: str) -> None:
        with httpx.Client(timeout=60) as client:
            r = client.post(url + "/diagnose", json={}, headers={"PAYMENT-SIGNATURE": header})
            results.append(r.status_code)

    threads = [threading.Thread(target=call, args=(h,)) for h in headers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [200] * 24 and credits.balance("triage") == 24 * PRICE
    assert sum(service.facilitator.batches) == 24 and len(service.facilitator.batches) < 24


def test_facilitator_api_speaks_the_spec(credits: Credits, served: Any) -> None:
    url, service = served
    card = httpx.get(url + "/.well-known/agent-registration.json")
    assert (
        card.content == b'{"name":"triage"}' and card.headers["content-type"] == "application/json"
    )
    supported = httpx.get(url + "/facilitator/supported").json()
    network = f"eip155:{credits.chain.chain_id}"
    assert {"x402Version": 2, "scheme": "exact", "network": network} in supported["kinds"]
    req = service.requirements("/diagnose", url + "/diagnose")
    auth = credits.authorize("triage", PRICE, by="lab")
    body = {"x402Version": 2, "paymentRequirements": req.to_json(),
            "paymentPayload": {"x402Version": 2, "accepted": req.to_json(),
                               "payload": auth.to_x402()}}  # fmt: skip
    verdict = httpx.post(url + "/facilitator/verify", json=body).json()
    assert verdict == {"isValid": True, "payer": credits.address_of("lab")}
    settled = httpx.post(url + "/facilitator/settle", json=body).json()
    assert settled["success"] and settled["network"] == network and settled["amount"] == str(PRICE)
    again = httpx.post(url + "/facilitator/settle", json=body).json()  # idempotent
    assert again["success"] and again["transaction"] == settled["transaction"]
    assert credits.balance("triage") == PRICE
    replay = httpx.post(url + "/facilitator/verify", json=body).json()
    assert replay["isValid"] is False and replay["invalidReason"] == "nonce_already_used"
    bad = httpx.post(url + "/facilitator/verify", content=b"{").json()
    assert "error" in bad
    assert json.dumps(httpx.post(url + "/facilitator/verify", json={"x402Version": 3}).json())


def test_payment_attacks_get_nothing(credits: Credits, served: Any) -> None:
    """Each kind of payment attack, tried repeatedly against the live server: nothing served
    unpaid, nothing paid twice, nothing moved for a refused payment."""
    from tests import security_figures

    url, service = served
    cheap = service.requirements("/diagnose", url + "/diagnose").to_json()
    tries: dict[str, list[bool]] = {"replay": [], "dear": [], "forged": [], "unfunded": []}
    for _ in range(5):
        # A payment for the cheap route, presented again and on the dear route.
        header, _ = _paid_once(credits, url, service)
        paid_before = credits.balance("triage")
        for route in ("/diagnose", "/second-opinion"):
            r = httpx.post(url + route, json={}, headers={"PAYMENT-SIGNATURE": header})
            if route == "/second-opinion":
                tries["dear"].append(r.status_code == 200)
            tries["replay"].append(credits.balance("triage") != paid_before)
        # A signature over another amount; and a fresh key that holds nothing.
        auth = credits.authorize("triage", PRICE - 1, by="lab").to_x402()
        auth["authorization"]["value"] = str(PRICE)
        forged = encode_header({"x402Version": 2, "accepted": cheap, "payload": auth})
        r = httpx.post(url + "/diagnose", json={}, headers={"PAYMENT-SIGNATURE": forged})
        tries["forged"].append(r.status_code == 200)
        broke = _header(credits, url, service, by="sybil")
        r = httpx.post(url + "/diagnose", json={}, headers={"PAYMENT-SIGNATURE": broke})
        tries["unfunded"].append(r.status_code == 200)
    what = {
        "replay": ("a paid request's payment header sent again (same route and another): "
                   "no second charge, no second settlement", "replayed payment"),
        "dear": ("a settled payment for a cheap route presented on a dearer one", "cheap payment on a dear route"),
        "forged": ("an authorization whose amount was raised after signing", "forged amount"),
        "unfunded": ("a valid signature from a key holding no credits: refused before any gas is spent",
                     "unfunded payer"),
    }  # fmt: skip
    for kind, results in tries.items():
        security_figures.record("x402 server", what[kind][1], tried=len(results),
                                through=sum(results), what=what[kind][0],
                                test="tests/integration/test_x402_http.py")  # fmt: skip
        assert not any(results), kind
    assert service.facilitator.batches and sum(service.facilitator.batches) == 5
