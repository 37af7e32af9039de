"""Agent accounts: an AI agent's spending held, on chain, inside limits its owner set.

:class:`AgentAccounts` deploys an ``AgentAccount`` for an agent (the agent's key drives it;
another identity, the organization behind the agent, owns it), sets its policy, shows it
in ERC-7715's terms, freezes and unfreezes it, and pays through it. A refused payment is
not made: the account logs ``Refused`` with the reason, and :meth:`AgentAccounts.pay`
raises :class:`~neuroledger.errors.GuardrailError` with it.

The home keeps which account serves which agent (``market/accounts.json``); the chain is
checked each time: the account's code, its agent key and its owner.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from eth_abi.abi import encode
from eth_utils.address import is_address, to_checksum_address
from eth_utils.crypto import keccak
from web3.contract import Contract

from neuroledger._fs import atomic_write, file_lock
from neuroledger.chain import Call, Chain, Receipt, contract_call, load_artifact
from neuroledger.errors import GuardrailError, MarketError
from neuroledger.identity import Keystore

__all__ = ["AccountPolicy", "AgentAccounts", "selector_of"]

_ZERO = "0x" + "00" * 20
_TRANSFER = bytes.fromhex("a9059cbb")
_REFUSED = "0x" + keccak(text="Refused(address,bytes4,uint256,uint256,string)").hex()
_MAX_CALLS = 2**48 - 1


def selector_of(text: str) -> bytes:
    """``0x12345678`` or a signature such as ``transfer(address,uint256)`` -> 4 bytes."""
    if text.startswith("0x") and len(text) == 10:
        return bytes.fromhex(text[2:])
    if "(" in text and text.endswith(")"):
        return keccak(text=text.replace(" ", ""))[:4]
    raise MarketError(f"{text!r} is not a selector: give 0x and 8 hex digits, or a signature such "
                      "as transfer(address,uint256)")  # fmt: skip


@dataclass(frozen=True)
class AccountPolicy:
    """An account's policy as ERC-7715 names it, with its counters."""

    account: str
    owner: str
    agent: str
    guardian: str | None
    frozen: bool
    expiry: int
    permissions: list[dict[str, Any]] = field(default_factory=list)
    policies: list[dict[str, Any]] = field(default_factory=list)
    allowed_calls: list[dict[str, str]] = field(default_factory=list)
    allowed_recipients: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class AgentAccounts:
    """Agent accounts of one home, on one chain."""

    def __init__(self, chain: Chain, keystore: Keystore, home: Path,
                 on_refused: Callable[[dict[str, Any]], None] | None = None) -> None:  # fmt: skip
        self.chain = chain
        self.keystore = keystore
        self.path = home / "market" / "accounts.json"
        self.artifact = load_artifact("AgentAccount")
        self.on_refused = on_refused  # e.g. record the refusal in the agent's audit log

    # -- the record --------------------------------------------------------------------
    def _records(self) -> dict[str, str]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except ValueError:
            raise MarketError(
                f"{self.path} is damaged; restore it or delete it and deploy again"
            ) from None
        return {str(k): str(v) for k, v in data.get(str(self.chain.chain_id), {}).items()}

    def _remember(self, agent: str, address: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with file_lock(self.path.with_suffix(".lock")):
            try:
                data = json.loads(self.path.read_text())
            except FileNotFoundError:
                data = {}
            data.setdefault(str(self.chain.chain_id), {})[agent] = address
            atomic_write(self.path, json.dumps(data, indent=1, sort_keys=True).encode(), mode=0o644)

    def all(self) -> dict[str, str]:
        """Every agent's account this home recorded on this chain (agent name -> address)."""
        return self._records()

    def address_of(self, who: str) -> str:
        if is_address(who):
            return to_checksum_address(who)
        return to_checksum_address(self.keystore.get(who).owner)

    def find(self, agent: str) -> str | None:
        """The account serving ``agent``, if this home deployed one (checked on chain)."""
        address = self._records().get(agent)
        if address is None:
            return None
        code = bytes(self.chain.w3.eth.get_code(to_checksum_address(address)))
        if not code.startswith(self.artifact.runtime_bytecode):  # then its immutables
            raise MarketError(
                f"{address} (agent {agent}'s account in {self.path}) holds no AgentAccount code on this chain"
            )
        return address

    def contract(self, agent: str) -> Contract:
        address = self.find(agent)
        if address is None:
            raise MarketError(f"agent {agent} has no account here; create it with "
                              f"`neuroledger market agent policy set {agent} --owner ORG …`")  # fmt: skip
        contract: Contract = self.chain.w3.eth.contract(
            address=to_checksum_address(address), abi=self.artifact.abi
        )
        return contract

    # -- the owner -----------------------------------------------------------------------
    def deploy(
        self, agent: str, *, owner: str, guardian: str | None = None, expires_in: int = 30 * 86400
    ) -> str:
        """Deploy the account of ``agent`` (its key drives it), owned by ``owner``."""
        if self.find(agent) is not None:
            raise MarketError(f"agent {agent} already has an account, {self.find(agent)}")
        agent_key, owner_key = self.address_of(agent), self.address_of(owner)
        if agent_key == owner_key:
            raise MarketError(f"{owner} and {agent} share a key; the owner must be another identity "
                              "(the organization behind the agent)")  # fmt: skip
        if expires_in <= 0:
            raise MarketError("give --expires-in of 1 s or more")
        expiry = int(self.chain.w3.eth.get_block("latest")["timestamp"]) + expires_in
        args = encode(["address", "address", "address", "uint256"],
                      [owner_key, agent_key, self.address_of(guardian) if guardian else _ZERO, expiry])  # fmt: skip
        receipt = self._owner_send(owner, Call(to="", data=self.artifact.bytecode + args,
                                               label=f"deployment of {agent}'s account"))  # fmt: skip
        if not receipt.contract_address:
            raise MarketError(f"deploying the account left no contract ({receipt.tx_hash})")
        address = to_checksum_address(receipt.contract_address)
        self._remember(agent, address)
        return address

    def _owner_send(self, owner: str, call: Call) -> Receipt:
        return self.chain.sender(self.keystore.owner_account(owner)).send(call)

    def _owner_call(self, agent: str, fn: str, args: list[Any], *, by: str) -> Receipt:
        c = self.contract(agent)
        if self.address_of(by) != c.functions.owner().call() and fn != "freeze":
            raise MarketError(
                f"{by} does not own {agent}'s account; its owner is {c.functions.owner().call()}"
            )
        return self._owner_send(by, contract_call(c, fn, args, label=f"{fn} on {agent}'s account"))

    def set_allowance(self, agent: str, token: str, *, per_transaction: int, per_period: int, period: int,
                      by: str) -> Receipt:  # fmt: skip
        """``erc20-token-transfer`` (or ``native-token-transfer`` for the zero address) with
        its ``spent-limit``: at most ``per_transaction`` a call, ``per_period`` a period."""
        if not 0 <= per_transaction <= per_period:
            raise MarketError("the per-transaction cap must be between 0 and the per-period cap")
        return self._owner_call(agent, "setAllowance", [to_checksum_address(token), per_transaction,
                                                        per_period, period], by=by)  # fmt: skip

    def allow_call(
        self, agent: str, target: str, selector: str, *, by: str, allowed: bool = True
    ) -> Receipt:
        return self._owner_call(agent, "allowCall", [self.address_of(target), selector_of(selector), allowed],
                                by=by)  # fmt: skip

    def allow_recipient(
        self, agent: str, recipient: str, *, by: str, allowed: bool = True
    ) -> Receipt:
        return self._owner_call(
            agent, "allowRecipient", [self.address_of(recipient), allowed], by=by
        )

    def set_limits(self, agent: str, *, by: str, rate: tuple[int, int] = (0, 0), calls: int | None = None,
                   gas: int = 0, expires_in: int | None = None) -> Receipt:  # fmt: skip
        """``rate-limit`` (count per interval), ``call-limit``, ``gas-limit`` and the expiry."""
        c = self.contract(agent)
        expiry = int(c.functions.expiresAt().call())
        if expires_in is not None:
            expiry = int(self.chain.w3.eth.get_block("latest")["timestamp"]) + expires_in
        count, interval = rate
        if count and not interval:
            raise MarketError("a rate limit needs an interval: write COUNT/SECONDS, e.g. 10/3600")
        return self._owner_call(agent, "setLimits", [count, interval, _MAX_CALLS if calls is None else calls,
                                                     gas, expiry], by=by)  # fmt: skip

    def freeze(self, agent: str, *, by: str) -> Receipt:
        """The kill switch (the owner or the guardian): the agent can make no call."""
        return self._owner_call(agent, "freeze", [], by=by)

    def unfreeze(self, agent: str, *, by: str) -> Receipt:
        return self._owner_call(agent, "unfreeze", [], by=by)

    def withdraw(
        self, agent: str, token: str, amount: int, *, by: str, to: str | None = None
    ) -> Receipt:
        """Take funds out of the account (the owner; frozen or not)."""
        return self._owner_call(agent, "withdraw", [to_checksum_address(token), self.address_of(to or by), amount],
                                by=by)  # fmt: skip

    # -- the agent ------------------------------------------------------------------------
    def execute(
        self, agent: str, target: str, data: bytes, *, value: int = 0, label: str = "call"
    ) -> Receipt:
        """Make a call as ``agent``'s account; :class:`GuardrailError` if the policy refused it."""
        c = self.contract(agent)
        call = contract_call(c, "execute", [to_checksum_address(target), value, data], label=label)
        receipt = self.chain.sender(self.keystore.owner_account(agent)).send(call)
        for log in receipt.logs:
            topics = [t if isinstance(t, str) else "0x" + bytes(t).hex() for t in log["topics"]]
            if (
                topics
                and topics[0].lower() == _REFUSED.lower()
                and log["address"].lower() == c.address.lower()
            ):
                event = c.events.Refused().process_log(log)
                if self.on_refused is not None:
                    self.on_refused({"agent": agent, "account": c.address, "target": event["args"]["target"],
                                     "selector": "0x" + bytes(event["args"]["selector"]).hex(),
                                     "amount": str(event["args"]["amount"]), "reason": event["args"]["reason"],
                                     "transaction": receipt.tx_hash, "label": label})  # fmt: skip
                raise GuardrailError(f"{agent}'s account refused {label}: {event['args']['reason']} "
                                     f"(refusal logged in {receipt.tx_hash})", tx_hash=receipt.tx_hash)  # fmt: skip
        return receipt

    def pay(self, agent: str, token: str, to: str, amount: int) -> Receipt:
        """Pay ``amount`` of ``token`` to ``to`` from ``agent``'s account, within its policy."""
        data = _TRANSFER + encode(["address", "uint256"], [self.address_of(to), amount])
        return self.execute(agent, token, data, label=f"a payment of {amount} to {to}")

    # -- reads -----------------------------------------------------------------------------
    def policy(self, agent: str, tokens: list[str] = ()) -> AccountPolicy:  # type: ignore[assignment]
        """The account's policy in ERC-7715's terms, read from the chain (the allowlists
        from its events)."""
        c = self.contract(agent)
        f = c.functions
        rate_count, rate_interval, call_limit, calls_made, gas_limit, _, _ = f.limits().call()
        guardian = f.guardian().call()
        calls: dict[tuple[str, str], bool] = {}
        recipients: dict[str, bool] = {}
        assets: set[str] = {to_checksum_address(t) for t in tokens}
        for event in c.events.CallAllowed().get_logs(from_block=0):
            calls[(event["args"]["target"], "0x" + bytes(event["args"]["selector"]).hex())] = event[
                "args"
            ]["allowed"]
        for event in c.events.RecipientAllowed().get_logs(from_block=0):
            recipients[event["args"]["recipient"]] = event["args"]["allowed"]
        for event in c.events.AllowanceSet().get_logs(from_block=0):
            assets.add(event["args"]["token"])
        permissions, policies = [], []
        for token in sorted(assets):
            per_tx, per_period, period, spent, start = f.allowanceOf(token).call()
            kind = "native-token-transfer" if int(token, 16) == 0 else "erc20-token-transfer"
            data: dict[str, Any] = {"allowance": str(per_period)}
            if kind == "erc20-token-transfer":
                data = {"address": token, **data}
            permissions.append({"type": kind, "data": data})
            policies.append({"type": "spent-limit", "data": {"token": token, "allowance": str(per_period),
                                                            "period": period, "perTransaction": str(per_tx),
                                                            "spent": str(spent), "periodStart": start}})  # fmt: skip
        if rate_count:
            policies.append(
                {"type": "rate-limit", "data": {"count": rate_count, "interval": rate_interval}}
            )
        if call_limit != _MAX_CALLS:
            policies.append(
                {"type": "call-limit", "data": {"count": call_limit, "used": calls_made}}
            )
        if gas_limit:
            policies.append({"type": "gas-limit", "data": {"limit": gas_limit}})
        return AccountPolicy(
            account=c.address, owner=f.owner().call(), agent=f.agent().call(),
            guardian=None if int(guardian, 16) == 0 else guardian, frozen=bool(f.frozen().call()),
            expiry=int(f.expiresAt().call()), permissions=permissions, policies=policies,
            allowed_calls=[{"target": t, "selector": s} for (t, s), ok in sorted(calls.items()) if ok],
            allowed_recipients=sorted(r for r, ok in recipients.items() if ok),
        )  # fmt: skip
