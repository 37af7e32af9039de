"""The agent registry: the ERC-8004 Identity Registry's ABI and rules, plus a reverse lookup
from wallet to agent, bounded paginated reads, and a wallet cleared on every transfer."""

from __future__ import annotations

from typing import Any

import boa
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import event_signature_to_log_topic, function_signature_to_4byte_selector
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from tests.contracts.conftest import ZERO, deploy

pytestmark = pytest.mark.usefixtures("fresh_env")

NOT_ALLOWED = "AgentRegistry: caller is not the agent's owner or operator"

#: The ERC-8004 Identity Registry (January 2026) and ERC-721 functions, by signature.
FUNCTIONS = [
    "register()", "register(string)", "register(string,(string,bytes)[])",
    "setAgentURI(uint256,string)", "getMetadata(uint256,string)",
    "setMetadata(uint256,string,bytes)", "setAgentWallet(uint256,address,uint256,bytes)",
    "getAgentWallet(uint256)", "unsetAgentWallet(uint256)", "isAuthorizedOrOwner(address,uint256)",
    "getVersion()", "tokenURI(uint256)", "name()", "symbol()", "balanceOf(address)",
    "ownerOf(uint256)", "approve(address,uint256)", "getApproved(uint256)",
    "setApprovalForAll(address,bool)", "isApprovedForAll(address,address)",
    "transferFrom(address,address,uint256)", "safeTransferFrom(address,address,uint256)",
    "safeTransferFrom(address,address,uint256,bytes)", "supportsInterface(bytes4)",
    "eip712Domain()",
]  # fmt: skip
EVENTS = [
    "Registered(uint256,string,address)", "MetadataSet(uint256,string,string,bytes)",
    "URIUpdated(uint256,string,address)", "Transfer(address,address,uint256)",
    "Approval(address,address,uint256)", "ApprovalForAll(address,address,bool)",
    "MetadataUpdate(uint256)",
]  # fmt: skip

WALLET_TYPES = {
    "AgentWalletSet": [
        {"name": "agentId", "type": "uint256"},
        {"name": "newWallet", "type": "address"},
        {"name": "owner", "type": "address"},
        {"name": "deadline", "type": "uint256"},
    ]
}

#: A contract wallet that accepts, per ERC-1271, the digests its owner approved.
ERC1271_WALLET = """
# pragma version 0.4.3
approved: public(HashMap[bytes32, bool])

@external
def approve(digest: bytes32):
    self.approved[digest] = True

@external
@view
def isValidSignature(digest: bytes32, signature: Bytes[1024]) -> bytes4:
    if self.approved[digest]:
        return 0x1626BA7E
    return 0xFFFFFFFF
"""


_TOPICS = {int.from_bytes(event_signature_to_log_topic(s), "big"): s.split("(")[0] for s in EVENTS}


def event_names(contract: Any) -> list[str]:
    """The names of the last call's events (titanoboa cannot decode an indexed string, so
    those come back raw and are named by their topic)."""
    names = []
    for entry in contract.get_logs(strict=False):
        raw = getattr(entry, "topics", None)
        names.append(_TOPICS[raw[0]] if raw is not None else type(entry).__name__)
    return names


def now() -> int:
    return int(boa.env.evm.patch.timestamp)


def _types(abi_entry: dict[str, Any]) -> str:
    def one(i: dict[str, Any]) -> str:
        if i["type"].startswith("tuple"):
            return "(" + ",".join(one(c) for c in i["components"]) + ")" + i["type"][5:]
        return str(i["type"])

    return ",".join(one(i) for i in abi_entry["inputs"])


@pytest.fixture
def registry() -> Any:
    return deploy("AgentRegistry")


def wallet_signature(registry: Any, agent_id: int, wallet: LocalAccount, deadline: int) -> bytes:
    _, name, version, chain_id, contract, _, _ = registry.eip712Domain()
    domain = {"name": name, "version": version, "chainId": chain_id, "verifyingContract": contract}
    message = {"agentId": agent_id, "newWallet": wallet.address,
               "owner": registry.ownerOf(agent_id), "deadline": deadline}  # fmt: skip
    return bytes(wallet.sign_typed_data(domain, WALLET_TYPES, message).signature)


def test_the_abi_is_erc_8004s() -> None:
    from neuroledger.chain import load_artifact

    abi = load_artifact("AgentRegistry").abi
    ours = {f"{e['name']}({_types(e)})" for e in abi if e["type"] == "function"}
    events = {f"{e['name']}({_types(e)})" for e in abi if e["type"] == "event"}
    assert set(FUNCTIONS) <= ours and set(EVENTS) <= events
    # The selectors and topics indexers match on, computed from the standard's signatures.
    assert (
        function_signature_to_4byte_selector("register(string,(string,bytes)[])").hex()
        == "8ea42286"
    )
    indexed = {e["name"]: [i["indexed"] for i in e["inputs"]] for e in abi if e["type"] == "event"}
    assert indexed["Registered"] == [True, False, True]
    assert indexed["MetadataSet"] == [True, True, False, False]
    assert indexed["URIUpdated"] == [True, False, True]
    assert event_signature_to_log_topic("Registered(uint256,string,address)").hex() == (
        "ca52e62c367d81bb2e328eb795f7c7ba24afb478408a26c0e201d155c449bc4a"
    )


def test_register_in_its_three_forms(registry: Any) -> None:
    alice, bob = boa.env.generate_address("alice"), boa.env.generate_address("bob")
    assert (registry.name(), registry.symbol(), registry.getVersion()) == (
        "AgentIdentity",
        "AGENT",
        "2.0.0",
    )
    with boa.env.prank(alice):
        first = registry.register()
        logs = event_names(registry)
        second = registry.register("https://agent.example/card.json")
        third = registry.register(
            "data:application/json;base64,e30=", [("did", b"did:ethr:0x1"), ("model", b"\x01" * 32)]
        )
    assert (first, second, third) == (0, 1, 2)  # the first agent is 0, as in the reference
    assert logs == ["Transfer", "Registered", "MetadataSet"]
    assert registry.tokenURI(1) == "https://agent.example/card.json" and registry.tokenURI(0) == ""
    assert registry.getMetadata(2, "did") == b"did:ethr:0x1"
    # The registrant's address is the first agent's wallet; one wallet names one agent.
    assert registry.getAgentWallet(0) == alice and registry.getAgentWallet(1) == ZERO
    assert registry.getMetadata(0, "agentWallet") == bytes.fromhex(alice[2:])
    assert registry.getAgentByWallet(alice) == (True, 0) and registry.getAgentByWallet(bob) == (
        False,
        0,
    )
    with boa.env.prank(alice), boa.reverts("AgentRegistry: reserved key"):
        registry.register("", [("agentWallet", bytes.fromhex(bob[2:]))])
    with boa.env.prank(alice), boa.reverts("AgentRegistry: reserved key"):
        registry.setMetadata(0, "agentWallet", bytes.fromhex(bob[2:]))


def test_only_the_owner_or_its_operators_change_an_agent(registry: Any) -> None:
    alice, bob, carol = (boa.env.generate_address(n) for n in ("alice", "bob", "carol"))
    with boa.env.prank(alice):
        agent = registry.register("https://a")
    with boa.env.prank(bob), boa.reverts(NOT_ALLOWED):
        registry.setAgentURI(agent, "https://evil")
    with boa.env.prank(bob), boa.reverts(NOT_ALLOWED):
        registry.setMetadata(agent, "model", b"x")
    with boa.env.prank(bob), boa.reverts(NOT_ALLOWED):
        registry.unsetAgentWallet(agent)
    with boa.env.prank(alice):
        registry.setApprovalForAll(bob, True)
        registry.approve(carol, agent)
    assert registry.isAuthorizedOrOwner(bob, agent) and registry.isAuthorizedOrOwner(carol, agent)
    with boa.env.prank(carol):
        registry.setAgentURI(agent, "https://b")
        updated = registry.get_logs()
    assert [type(e).__name__ for e in updated] == ["URIUpdated", "MetadataUpdate"]
    assert (updated[0].agentId, updated[0].newURI, updated[0].updatedBy) == (
        agent,
        "https://b",
        carol,
    )
    with boa.reverts("erc721: invalid token ID"):
        registry.isAuthorizedOrOwner(alice, 99)


def test_a_wallet_consents_with_its_signature_within_five_minutes(registry: Any) -> None:
    alice = boa.env.generate_address("alice")
    wallet: LocalAccount = Account.create()
    with boa.env.prank(alice):
        agent = registry.register()
        deadline = now() + 300
        with boa.reverts("AgentRegistry: deadline is more than 5 minutes ahead"):
            registry.setAgentWallet(
                agent,
                wallet.address,
                now() + 301,
                wallet_signature(registry, agent, wallet, now() + 301),
            )
        with boa.reverts("AgentRegistry: invalid signature"):  # signed by someone else
            registry.setAgentWallet(
                agent,
                wallet.address,
                deadline,
                wallet_signature(registry, agent, Account.create(), deadline),
            )
        signature = wallet_signature(registry, agent, wallet, deadline)
        with boa.reverts("AgentRegistry: invalid signature"):  # signed for another deadline
            registry.setAgentWallet(agent, wallet.address, deadline - 1, signature)
        registry.setAgentWallet(agent, wallet.address, deadline, signature)
    assert registry.getAgentWallet(agent) == wallet.address
    assert registry.getAgentByWallet(wallet.address) == (True, agent)
    assert registry.getAgentByWallet(alice) == (False, 0)  # the old wallet's lookup is gone
    boa.env.time_travel(seconds=301)
    with boa.env.prank(alice), boa.reverts("AgentRegistry: the deadline has passed"):
        registry.setAgentWallet(agent, wallet.address, deadline, signature)


def test_one_wallet_names_one_agent(registry: Any) -> None:
    alice = boa.env.generate_address("alice")
    wallet: LocalAccount = Account.create()
    with boa.env.prank(alice):
        a, b = registry.register(), registry.register()
        registry.setAgentWallet(
            a, wallet.address, now() + 60, wallet_signature(registry, a, wallet, now() + 60)
        )
        with boa.reverts("AgentRegistry: wallet already assigned"):
            registry.setAgentWallet(
                b, wallet.address, now() + 60, wallet_signature(registry, b, wallet, now() + 60)
            )
        registry.unsetAgentWallet(a)
        registry.setAgentWallet(
            b, wallet.address, now() + 60, wallet_signature(registry, b, wallet, now() + 60)
        )
    assert (
        registry.getAgentByWallet(wallet.address) == (True, b)
        and registry.getAgentWallet(a) == ZERO
    )


def test_a_contract_wallet_consents_by_erc_1271(registry: Any) -> None:
    alice = boa.env.generate_address("alice")
    contract_wallet = boa.loads(ERC1271_WALLET)
    with boa.env.prank(alice):
        agent = registry.register()
    deadline = now() + 60
    with boa.env.prank(alice), boa.reverts("AgentRegistry: invalid signature"):
        registry.setAgentWallet(agent, contract_wallet.address, deadline, b"\x00" * 200)
    # The wallet approves the exact EIP-712 digest (as a multisig would), then it holds.
    _, name, version, chain_id, contract, _, _ = registry.eip712Domain()
    from eth_account.messages import encode_typed_data

    message = {
        "agentId": agent,
        "newWallet": contract_wallet.address,
        "owner": alice,
        "deadline": deadline,
    }
    digest = encode_typed_data(
        {"name": name, "version": version, "chainId": chain_id, "verifyingContract": contract},
        WALLET_TYPES, message,
    )  # fmt: skip
    from eth_utils import keccak

    contract_wallet.approve(keccak(b"\x19\x01" + digest.header + digest.body))
    with boa.env.prank(alice):
        registry.setAgentWallet(agent, contract_wallet.address, deadline, b"\x00" * 200)
    assert registry.getAgentWallet(agent) == contract_wallet.address
    # A contract that cannot hold ERC-721 tokens cannot register (a safe mint): its missing
    # `onERC721Received` reverts the registration.
    supply = registry.totalSupply()
    with boa.env.prank(contract_wallet.address), boa.reverts():
        registry.register()
    assert registry.totalSupply() == supply


def test_a_transfer_clears_the_wallet(registry: Any) -> None:
    alice, bob = boa.env.generate_address("alice"), boa.env.generate_address("bob")
    with boa.env.prank(alice):
        agent = registry.register("https://a")
        registry.safeTransferFrom(alice, bob, agent)
    assert registry.ownerOf(agent) == bob and registry.getAgentWallet(agent) == ZERO
    assert (
        registry.getAgentByWallet(alice) == (False, 0) and registry.tokenURI(agent) == "https://a"
    )
    with (
        boa.env.prank(alice),
        boa.reverts("AgentRegistry: caller is not the agent's owner or approved"),
    ):
        registry.transferFrom(bob, alice, agent)


def test_reads_are_paginated_with_a_hard_cap(registry: Any) -> None:
    alice, bob = boa.env.generate_address("alice"), boa.env.generate_address("bob")
    for i in range(130):
        with boa.env.prank(alice if i % 2 else bob):
            registry.register()
    assert registry.totalSupply() == 130
    assert registry.agents(0, 1000) == list(range(100))  # capped at 100 per call
    assert registry.agents(100, 100) == list(range(100, 130)) and registry.agents(500, 10) == []
    assert registry.agentsOf(alice, 0, 10) == list(range(1, 20, 2))
    assert registry.agentsOf(alice, 60, 10) == [121, 123, 125, 127, 129]


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(key=st.text(min_size=1, max_size=20).filter(lambda k: k != "agentWallet" and len(k.encode()) <= 64),
       value=st.binary(max_size=1024))  # fmt: skip
def test_metadata_round_trips(key: str, value: bytes) -> None:
    with boa.swap_env(boa.Env()):
        registry = deploy("AgentRegistry")
        agent = registry.register()
        registry.setMetadata(agent, key, value)
        assert registry.getMetadata(agent, key) == value


class RegistryMachine(RuleBasedStateMachine):
    """Registrations, transfers and wallet changes at random, against a mirror: the wallet
    map and the reverse lookup always agree, and no wallet names two agents."""

    @initialize()
    def setup(self) -> None:
        self.env = boa.Env()
        with boa.swap_env(self.env):
            self.registry = deploy("AgentRegistry")
            self.people = [boa.env.generate_address(f"p{i}") for i in range(3)]
        self.wallets = [Account.create() for _ in range(3)]
        self.owner: dict[int, str] = {}
        self.wallet: dict[int, str] = {}

    def _holder(self, wallet: str) -> int | None:
        return next((a for a, w in self.wallet.items() if w == wallet), None)

    @rule(who=st.integers(0, 2))
    def register(self, who: int) -> None:
        person = self.people[who]
        with boa.swap_env(self.env), boa.env.prank(person):
            agent = self.registry.register()
        self.owner[agent] = person
        if self._holder(person) is None:
            self.wallet[agent] = person

    @rule(data=st.data(), to=st.integers(0, 2))
    def transfer(self, data: st.DataObject, to: int) -> None:
        if not self.owner:
            return
        agent = data.draw(st.sampled_from(sorted(self.owner)))
        with boa.swap_env(self.env), boa.env.prank(self.owner[agent]):
            self.registry.transferFrom(self.owner[agent], self.people[to], agent)
        self.owner[agent] = self.people[to]
        self.wallet.pop(agent, None)

    @rule(data=st.data(), which=st.integers(0, 2))
    def set_wallet(self, data: st.DataObject, which: int) -> None:
        if not self.owner:
            return
        agent = data.draw(st.sampled_from(sorted(self.owner)))
        wallet = self.wallets[which]
        with boa.swap_env(self.env), boa.env.prank(self.owner[agent]):
            deadline = now() + 60
            signature = wallet_signature(self.registry, agent, wallet, deadline)
            holder = self._holder(wallet.address)
            if holder is not None and holder != agent:
                with boa.reverts("AgentRegistry: wallet already assigned"):
                    self.registry.setAgentWallet(agent, wallet.address, deadline, signature)
                return
            self.registry.setAgentWallet(agent, wallet.address, deadline, signature)
        self.wallet[agent] = wallet.address

    @rule(data=st.data())
    def unset_wallet(self, data: st.DataObject) -> None:
        if not self.owner:
            return
        agent = data.draw(st.sampled_from(sorted(self.owner)))
        with boa.swap_env(self.env), boa.env.prank(self.owner[agent]):
            self.registry.unsetAgentWallet(agent)
        self.wallet.pop(agent, None)

    @invariant()
    def mirror_holds(self) -> None:
        if not hasattr(self, "registry"):
            return
        with boa.swap_env(self.env):
            for agent, person in self.owner.items():
                assert self.registry.ownerOf(agent) == person
                assert self.registry.getAgentWallet(agent) == self.wallet.get(agent, ZERO)
            for address in [*self.people, *(w.address for w in self.wallets)]:
                holder = self._holder(address)
                expected = (False, 0) if holder is None else (True, holder)
                assert self.registry.getAgentByWallet(address) == expected


TestRegistryMachine = RegistryMachine.TestCase
TestRegistryMachine.settings = settings(max_examples=15, stateful_step_count=20, deadline=None,
                                        suppress_health_check=list(HealthCheck))  # fmt: skip
