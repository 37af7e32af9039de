"""Agents on a real anvil: registered with an ERC-8004 card that names their DID, read back
and checked, found by service and trust, and caught when the card or its hash is changed."""

from __future__ import annotations

import base64
import json

import pytest
from eth_utils.crypto import keccak

from neuroledger.chain import Chain, contract_call
from neuroledger.errors import MarketError
from neuroledger.identity import Identities, Keystore
from neuroledger.market import REGISTRATION_TYPE, AgentCard, Agents, Service, data_uri

pytestmark = pytest.mark.anvil


@pytest.fixture
def agents(chain: Chain, keystore: Keystore, identities: Identities) -> Agents:
    for name in ("triage-agent", "labeler", "lab"):
        identities.create(name, "agent", publish=False)
    return Agents(chain, keystore)


def test_an_agent_is_registered_and_verified(agents: Agents, keystore: Keystore) -> None:
    view = agents.register("triage-agent", description="Triage of chest X-rays",
                           services=[Service("A2A", "https://triage.example/agent-card.json", "0.3.0")],
                           x402=True)  # fmt: skip
    assert view.verified, view.problems
    card = view.card
    assert card is not None and card.x402_support and card.supported_trust == ("reputation",)
    assert card.service("DID").endpoint == agents.identities.did("triage-agent")  # type: ignore[union-attr]
    assert view.uri.startswith("data:application/json;base64,")
    doc = json.loads(base64.b64decode(view.uri.split(",", 1)[1]))
    assert doc["type"] == REGISTRATION_TYPE
    assert doc["registrations"] == [{"agentId": view.agent_id, "agentRegistry": agents.registry}]
    owner = keystore.get("triage-agent").owner
    assert view.owner == owner == view.wallet
    assert agents.by_wallet(owner).agent_id == view.agent_id  # type: ignore[union-attr]
    assert agents.show(view.agent_id).to_json()["verified"] is True


def test_find_by_service_and_trust(agents: Agents) -> None:
    a = agents.register(
        "triage-agent", description="triage", services=[Service("A2A", "https://a")]
    )
    b = agents.register("labeler", description="labels", services=[Service("MCP", "https://m")],
                        trust=("reputation", "crypto-economic"))  # fmt: skip
    assert [v.agent_id for v in agents.find(service="A2A")] == [a.agent_id]
    assert [v.agent_id for v in agents.find(trust="crypto-economic")] == [b.agent_id]
    assert [v.agent_id for v in agents.find(trust="reputation")] == [a.agent_id, b.agent_id]
    assert agents.find(service="OASF") == []


def _set(agents: Agents, keystore: Keystore, who: str, fn: str, args: list) -> None:
    call = contract_call(agents.contract, fn, args, label=fn)
    agents.chain.sender(keystore.owner_account(who)).send(call)


def test_a_changed_card_or_a_foreign_did_is_caught(agents: Agents, keystore: Keystore) -> None:
    view = agents.register("triage-agent", description="triage")
    card = view.card
    assert card is not None
    # One changed byte of the file: the pinned hash no longer matches.
    forged = AgentCard(**{**card.__dict__, "description": "triage, now certified"})
    _set(
        agents, keystore, "triage-agent", "setAgentURI", [view.agent_id, data_uri(forged.encode())]
    )
    assert agents.show(view.agent_id).problems == [
        "the registration file does not match the hash pinned on chain"
    ]
    # Another identity's DID claimed by this agent: its owner is not the agent's owner.
    other = agents.identities.did("lab")
    stolen = AgentCard(**{**card.__dict__, "services": (Service("DID", other, "v1"),)})
    raw = stolen.encode()
    _set(agents, keystore, "triage-agent", "setMetadata", [view.agent_id, "did", other.encode()])
    _set(agents, keystore, "triage-agent", "setMetadata",
         [view.agent_id, "registrationHash", keccak(raw)])  # fmt: skip
    _set(agents, keystore, "triage-agent", "setAgentURI", [view.agent_id, data_uri(raw)])
    problems = agents.show(view.agent_id).problems
    assert problems == [f"{other} is not owned by the agent's owner {view.owner}"]
    assert agents.find() == []  # unverified agents are not offered


def test_bad_cards_and_uris_get_one_line(agents: Agents) -> None:
    with pytest.raises(MarketError, match="no agent 99"):
        agents.show(99)
    with pytest.raises(MarketError, match="`type` is not"):
        AgentCard.decode(b'{"type": "x", "name": "a"}')
    with pytest.raises(MarketError, match="not JSON we can read"):
        AgentCard.decode(b"[" * 100)
    with pytest.raises(MarketError, match="give a data: or an https:// URI"):
        from neuroledger.market import read_uri

        read_uri("ipfs://bafy")
    with pytest.raises(MarketError, match="is not an address"):
        agents.by_wallet("0x1234")
