"""Agents in the ERC-8004 registry: registered with a checked card, found by what they offer.

:meth:`Agents.register` mints the agent from its identity's owner key (which is also the
agent's wallet for credits), then points it at its registration file and pins the file's
Keccak-256 on chain. :meth:`Agents.show` reads an agent back and checks everything a
buyer should not take on trust: the file's hash, that it names this agent in this
registry, and that the ``did:ethr`` it names is owned by the agent's owner.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from eth_utils.address import is_address, to_checksum_address
from eth_utils.crypto import keccak
from web3 import Web3

from neuroledger.chain import Chain, Receipt, contract_call
from neuroledger.errors import MarketError, NeuroLedgerError
from neuroledger.identity import Identities, Keystore, parse_did
from neuroledger.market._card import AgentCard, Service, data_uri, read_uri

__all__ = ["AgentView", "Agents"]

HASH_KEY = "registrationHash"
DID_KEY = "did"
#: The most agents one discovery scan reads (pages of 100).
MAX_SCAN = 2000
_REGISTERED = "Registered(uint256,string,address)"


@dataclass(frozen=True)
class AgentView:
    """An agent as the chain and its registration file show it, with what failed to check."""

    agent_id: int
    registry: str  # eip155:<chain id>:<registry address>
    owner: str
    wallet: str | None
    uri: str
    card: AgentCard | None
    problems: list[str] = field(default_factory=list)

    @property
    def verified(self) -> bool:
        return self.card is not None and not self.problems

    def to_json(self) -> dict[str, Any]:
        return {"agentId": self.agent_id, "agentRegistry": self.registry, "owner": self.owner,
                "wallet": self.wallet, "agentURI": self.uri, "verified": self.verified,
                "problems": self.problems,
                "card": self.card.to_json() if self.card else None}  # fmt: skip


class Agents:
    """The ERC-8004 agent registry of a suite."""

    def __init__(self, chain: Chain, keystore: Keystore) -> None:
        self.chain = chain
        self.keystore = keystore
        self.contract = chain.contract("AgentRegistry")
        self.registry = f"eip155:{chain.chain_id}:{to_checksum_address(self.contract.address)}"
        self.identities = Identities(chain, keystore)

    # -- writes ------------------------------------------------------------------------
    def register(self, name: str, *, description: str, services: list[Service] = (),  # type: ignore[assignment]
                 x402: bool = False, trust: tuple[str, ...] = ("reputation",),
                 uri: str | None = None) -> AgentView:  # fmt: skip
        """Register identity ``name`` as an agent offering ``services``; its DID is added as
        the ``DID`` service. ``uri``: where the file will be served over https (its hash
        is pinned); by default the file travels on chain as a ``data:`` URI."""
        did = self.identities.did(name)
        f = self.contract
        receipt = self._send(name, f, "register", ["", [(DID_KEY, did.encode())]], "register agent")
        agent_id = _registered_id(receipt)
        card = AgentCard(
            name=name, description=description,
            services=(Service("DID", did, "v1"), *services),
            registrations=({"agentId": agent_id, "agentRegistry": self.registry},),
            x402_support=x402, supported_trust=tuple(trust),
        )  # fmt: skip
        raw = card.encode()
        self._send(name, f, "setMetadata", [agent_id, HASH_KEY, keccak(raw)], "pin agent card")
        self._send(name, f, "setAgentURI", [agent_id, uri or data_uri(raw)], "set agent URI")
        return self.show(agent_id, raw=raw)

    # -- reads -------------------------------------------------------------------------
    def show(self, agent_id: int, *, raw: bytes | None = None) -> AgentView:
        """Agent ``agent_id`` with its registration file read and checked."""
        f = self.contract.functions
        try:
            owner = str(f.ownerOf(agent_id).call())
        except Exception:
            raise MarketError(f"no agent {agent_id} in registry {self.registry}") from None
        uri = str(f.tokenURI(agent_id).call())
        wallet = str(f.getAgentWallet(agent_id).call())
        view = dict(agent_id=agent_id, registry=self.registry, owner=owner, uri=uri,
                    wallet=None if int(wallet, 16) == 0 else wallet)  # fmt: skip
        problems: list[str] = []
        try:
            raw = raw if raw is not None else read_uri(uri)
            card = AgentCard.decode(raw)
        except NeuroLedgerError as e:
            return AgentView(**view, card=None, problems=[str(e)])  # type: ignore[arg-type]
        pinned = bytes(f.getMetadata(agent_id, HASH_KEY).call())
        if pinned != keccak(raw):
            problems.append("the registration file does not match the hash pinned on chain")
        if {"agentId": agent_id, "agentRegistry": self.registry} not in card.registrations:
            problems.append("the registration file does not name this agent in this registry")
        problems += self._did_problems(agent_id, card, owner)
        return AgentView(**view, card=card, problems=problems)  # type: ignore[arg-type]

    def _did_problems(self, agent_id: int, card: AgentCard, owner: str) -> list[str]:
        service = card.service("DID")
        if service is None:
            return []
        on_chain = bytes(self.contract.functions.getMetadata(agent_id, DID_KEY).call()).decode(
            errors="replace"
        )
        if service.endpoint != on_chain:
            return ["the card's DID is not the one recorded on chain"]
        try:
            identity = parse_did(service.endpoint).address
        except NeuroLedgerError as e:
            return [str(e)]
        if self.identities.registry.identity_owner(identity) != owner:
            return [f"{service.endpoint} is not owned by the agent's owner {owner}"]
        return []

    def page(self, offset: int = 0, limit: int = 100) -> list[int]:
        """Agent ids in registration order (at most 100 per call, as the registry caps it)."""
        return [int(i) for i in self.contract.functions.agents(offset, min(limit, 100)).call()]

    def by_wallet(self, wallet: str) -> AgentView | None:
        """The agent whose payment wallet ``wallet`` is (the reverse lookup)."""
        if not is_address(wallet):
            raise MarketError(f"{wallet!r} is not an address; give 0x and 40 hex digits")
        found, agent_id = self.contract.functions.getAgentByWallet(
            Web3.to_checksum_address(wallet)
        ).call()
        return self.show(int(agent_id)) if found else None

    def find(self, *, service: str | None = None, trust: str | None = None,
             limit: int = 20) -> list[AgentView]:  # fmt: skip
        """Verified, active agents offering ``service`` and supporting ``trust``, oldest first."""
        found: list[AgentView] = []
        for offset in range(0, MAX_SCAN, 100):
            ids = self.page(offset, 100)
            for agent_id in ids:
                view = self.show(agent_id)
                card = view.card
                if not view.verified or card is None or not card.active:
                    continue
                if service and card.service(service) is None:
                    continue
                if trust and trust not in card.supported_trust:
                    continue
                found.append(view)
                if len(found) >= limit:
                    return found
            if len(ids) < 100:
                break
        return found

    def _send(self, name: str, contract: Any, fn: str, args: list[Any], label: str) -> Receipt:
        account = self.keystore.owner_account(name)
        return self.chain.sender(account).send(contract_call(contract, fn, args, label=label))


def _registered_id(receipt: Receipt) -> int:
    found = receipt.first_indexed(_REGISTERED)
    if found is None:
        raise MarketError(f"register was mined in {receipt.tx_hash} but logged no agent")
    return found
