"""x402 over HTTP between NeuroLedger and the published x402 SDK (PyPI `x402`, pinned), both
ways, on a real anvil and real loopback HTTP:

- the SDK's own client (its `requests` adapter) pays a model served by NeuroLedger's
  AgentService;
- NeuroLedger's client pays a server built with the SDK's FastAPI middleware, which checks
  and settles through NeuroLedger's facilitator over HTTP.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from neuroledger.chain import Chain
from neuroledger.identity import Identities, Keystore
from neuroledger.market import AgentService, Credits, Facilitator, pay
from neuroledger.privacy.gateway import BackgroundServer

x402 = pytest.importorskip("x402")
from x402 import x402ClientSync, x402ResourceServer  # noqa: E402
from x402.http import FacilitatorConfig, HTTPFacilitatorClient  # noqa: E402
from x402.http.clients import x402_requests  # noqa: E402
from x402.http.middleware.fastapi import PaymentMiddlewareASGI  # noqa: E402
from x402.mechanisms.evm.exact.register import (  # noqa: E402
    register_exact_evm_client,
    register_exact_evm_server,
)
from x402.mechanisms.evm.signers import EthAccountSigner  # noqa: E402

pytestmark = pytest.mark.anvil

PRICE = 250_000


@pytest.fixture
def service(chain: Chain, keystore: Keystore, identities: Identities,
            tmp_path: Path) -> Iterator[tuple[str, AgentService]]:  # fmt: skip
    for name in ("lab", "triage", "operator"):
        identities.create(name, "org", publish=False)
    credits = Credits(chain, keystore)
    credits.faucet("lab", 10 * 10**6, by="lab")
    chain.fund(keystore.owner_account("operator").address)
    agent = AgentService(Facilitator(credits, "operator"), pay_to="triage",
                         calls_path=tmp_path / "calls.sqlite")  # fmt: skip

    @agent.paid("/diagnose", price=PRICE)
    def diagnose(body: Any) -> Any:
        return {"diagnosis": "benign", "features": len(body["features"])}

    with BackgroundServer(agent.app()) as server:
        yield server.url, agent


def test_the_x402_sdk_client_pays_a_neuroledger_service(service: Any, keystore: Keystore) -> None:
    url, agent = service
    credits = agent.facilitator.credits
    # The SDK pays only assets it knows unless told; name ours, with a cap per payment.
    client = x402ClientSync().set_spend_controls({"allowed_assets": [{
        "network": f"eip155:{credits.chain.chain_id}", "asset": credits.address,
        "max_amount_per_payment": str(PRICE)}]})  # fmt: skip
    register_exact_evm_client(client, EthAccountSigner(keystore.owner_account("lab")))
    with x402_requests(client) as session:
        response = session.post(url + "/diagnose", json={"features": [0.1] * 30}, timeout=60)
    assert response.status_code == 200, response.text
    assert response.json() == {"diagnosis": "benign", "features": 30}
    assert "PAYMENT-RESPONSE" in response.headers
    assert credits.balance("triage") == PRICE
    assert credits.balance("lab") == 10 * 10**6 - PRICE


def test_neuroledger_pays_a_server_on_the_sdk_middleware_with_our_facilitator(
    service: Any,
) -> None:
    url, agent = service
    credits = agent.facilitator.credits
    facilitator = HTTPFacilitatorClient(FacilitatorConfig(url=url + "/facilitator"))
    server = x402ResourceServer(facilitator)
    register_exact_evm_server(server, f"eip155:{credits.chain.chain_id}")
    domain = credits.domain()
    routes = {
        "POST /weather": {
            "accepts": {
                "scheme": "exact",
                "payTo": credits.address_of("triage"),
                "price": {"amount": str(PRICE), "asset": credits.address,
                          "extra": {"name": domain["name"], "version": domain["version"]}},
                "network": f"eip155:{credits.chain.chain_id}",
            }
        }
    }  # fmt: skip
    app = FastAPI()

    @app.post("/weather")
    async def weather() -> dict[str, Any]:
        return {"weather": "sunny"}

    app.add_middleware(PaymentMiddlewareASGI, routes=routes, server=server)
    app.state.close = lambda: None
    with BackgroundServer(app) as sdk_server:
        paid = pay(credits, sdk_server.url + "/weather", payer="lab", body={}, max_price=PRICE)
    assert paid.status == 200 and paid.body == {"weather": "sunny"}
    assert paid.settlement["success"] and paid.price == PRICE
    assert credits.balance("triage") == PRICE
    assert list(agent.facilitator.batches) == [1]  # settled by NeuroLedger's facilitator
