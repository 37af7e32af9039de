"""Reputation from settled deals: the suite's ERC-8004 Reputation Registry.

:class:`Reputation` records a client's settled deals with an agent (a delivered escrow job,
an x402 payment settled through PaymentSettler), gives feedback backed by one of them,
revokes it, and reads feedback and deal-weighted summaries page by page. :meth:`give`
finds the client's own settled payments to the agent when no recorded deal is left, so a
client that paid only needs to say what it thinks.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from eth_abi.abi import encode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from web3.contract import Contract

from neuroledger.chain import Chain, Receipt, contract_call
from neuroledger.errors import MarketError
from neuroledger.identity import Keystore
from neuroledger.market._credits import Credits

__all__ = ["Feedback", "Reputation", "parse_rating"]

#: The most feedbacks one summary page reads (the contract's cap).
PAGE = 1000
_JOB, _PAYMENT = 0, 1


def parse_rating(text: str) -> tuple[int, int]:
    """``"4.5"`` -> ``(45, 1)``: the ERC-8004 value and valueDecimals of a decimal rating."""
    try:
        number = Decimal(text.strip())
    except InvalidOperation:
        raise MarketError(f"{text!r} is not a rating; write a number such as 87 or 4.5") from None
    if not number.is_finite():
        raise MarketError(f"{text!r} is not a rating; write a number such as 87 or 4.5")
    exponent = number.as_tuple().exponent
    decimals = max(0, -int(exponent)) if isinstance(exponent, int) else 0
    if decimals > 18:
        raise MarketError(f"{text} has more than 18 decimal places; round it")
    value = int(number.scaleb(decimals))
    if abs(value) > 10**38:
        raise MarketError(f"{text} is too large for a rating (at most 1e38 in units)")
    return value, decimals


@dataclass(frozen=True)
class Feedback:
    """One feedback as the registry holds it."""

    agent_id: int
    client: str
    index: int
    value: int
    decimals: int
    tag1: str
    tag2: str
    revoked: bool
    weight: int  # the value of the deal behind it, in the payment token's atomic units

    @property
    def rating(self) -> str:
        return format(Decimal(self.value).scaleb(-self.decimals), "f")

    def to_json(self) -> dict[str, Any]:
        return {"agentId": self.agent_id, "client": self.client, "feedbackIndex": self.index,
                "value": self.value, "valueDecimals": self.decimals, "rating": self.rating,
                "tag1": self.tag1, "tag2": self.tag2, "revoked": self.revoked,
                "dealValue": str(self.weight)}  # fmt: skip


class Reputation:
    """Deals, feedback and summaries in the suite's reputation registry."""

    def __init__(self, chain: Chain, keystore: Keystore) -> None:
        self.chain = chain
        self.keystore = keystore
        self.contract: Contract = chain.contract("ReputationRegistry")
        self.credits = Credits(chain, keystore)
        self.agents: Contract = chain.contract("AgentRegistry")

    # -- deals ---------------------------------------------------------------------------
    def record_job(self, job_id: int, *, by: str) -> Receipt:
        """Record escrow job ``job_id`` (delivered and settled) as its client's deal."""
        return self._send(by, "recordJob", [job_id], f"record job {job_id} as a deal")

    def record_payment(self, payer: str, nonce: bytes, *, by: str) -> Receipt:
        """Record the x402 payment of ``payer`` (an address or identity) under ``nonce``."""
        return self._send(by, "recordPayment", [self.credits.address_of(payer), nonce],
                          f"record the payment {nonce.hex()[:12]}… as a deal")  # fmt: skip

    def pending(self, agent_id: int, client: str) -> int:
        """How many more feedbacks ``client`` may give ``agent_id``."""
        return int(
            self.contract.functions.pendingDeals(agent_id, self.credits.address_of(client)).call()
        )

    def unrecorded_payments(self, agent_id: int, client: str) -> list[bytes]:
        """Nonces of ``client``'s settled x402 payments to the agent's wallet, not yet deals."""
        wallet = self.agents.functions.getAgentWallet(agent_id).call()
        if int(wallet, 16) == 0:
            return []
        payer = self.credits.address_of(client)
        settler = self.chain.contract("PaymentSettler")
        logs = settler.events.PaymentSettled().get_logs(
            from_block=0, argument_filters={"token": self.credits.address, "payer": payer,
                                            "payee": to_checksum_address(wallet)})  # fmt: skip
        nonces = [bytes(log["args"]["nonce"]) for log in logs]
        return [n for n in nonces if not self.contract.functions.isRecorded(
            _PAYMENT, keccak(encode(["address", "bytes32"], [payer, n]))).call()]  # fmt: skip

    # -- feedback ------------------------------------------------------------------------
    def give(self, agent_id: int, rating: str, *, by: str, tag1: str = "", tag2: str = "",
             endpoint: str = "", uri: str = "", file_hash: bytes = b"\0" * 32) -> Feedback:  # fmt: skip
        """Rate agent ``agent_id`` as identity ``by``, spending one settled deal (recording one
        of ``by``'s settled payments to the agent first if none is left)."""
        value, decimals = parse_rating(rating)
        for name, tag in (("tag1", tag1), ("tag2", tag2)):
            if len(tag.encode()) > 32:
                raise MarketError(f"--{name} {tag[:40]!r} is over 32 bytes; shorten it")
        client = self.credits.address_of(by)
        if self.agents.functions.isAuthorizedOrOwner(client, agent_id).call():
            raise MarketError(f"{by} owns or operates agent {agent_id}: no self-feedback")
        if self.pending(agent_id, by) == 0:
            unrecorded = self.unrecorded_payments(agent_id, by)
            if not unrecorded:
                raise MarketError(
                    f"{by} has no settled deal with agent {agent_id} to back a feedback; pay it "
                    "(`market pay`) or finish a job with it (`market feedback record --job ID`)"
                )
            self.record_payment(by, unrecorded[0], by=by)
        self._send(by, "giveFeedback", [agent_id, value, decimals, tag1, tag2, endpoint[:256],
                                        uri[:512], file_hash], f"feedback on agent {agent_id}")  # fmt: skip
        index = int(self.contract.functions.getLastIndex(agent_id, client).call())
        return self.read(agent_id, client, index)

    def revoke(self, agent_id: int, index: int, *, by: str) -> Receipt:
        """Revoke feedback ``index`` of identity ``by`` on ``agent_id``."""
        return self._send(by, "revokeFeedback", [agent_id, index], f"revoke feedback {index}")

    def read(self, agent_id: int, client: str, index: int) -> Feedback:
        address = self.credits.address_of(client)
        value, decimals, tag1, tag2, revoked = self.contract.functions.readFeedback(
            agent_id, address, index).call()  # fmt: skip
        weight = self.contract.functions.feedbackWeight(agent_id, address, index).call()
        return Feedback(agent_id, address, index, int(value), int(decimals), tag1, tag2,
                        bool(revoked), int(weight))  # fmt: skip

    def clients(self, agent_id: int) -> list[str]:
        """Every client with a deal with the agent, page by page."""
        out: list[str] = []
        while True:
            page = self.contract.functions.getClientsPage(agent_id, len(out), 100).call()
            out += [to_checksum_address(a) for a in page]
            if len(page) < 100:
                return out

    def feedback(self, agent_id: int, *, clients: list[str] | None = None,
                 include_revoked: bool = False) -> list[Feedback]:  # fmt: skip
        """Every feedback on the agent (of ``clients``, default all), oldest first per client."""
        out = []
        for client in clients or self.clients(agent_id):
            last = int(self.contract.functions.getLastIndex(agent_id, client).call())
            for index in range(1, last + 1):
                item = self.read(agent_id, client, index)
                if include_revoked or not item.revoked:
                    out.append(item)
        return out

    def summary(self, agent_id: int, *, clients: list[str] | None = None, tag1: str = "",
                tag2: str = "") -> dict[str, Any]:  # fmt: skip
        """The deal-weighted average rating of ``clients`` (default: all), over every page."""
        who = [self.credits.address_of(c) for c in clients or []]
        if len(who) > 100:
            raise MarketError("at most 100 clients per summary; leave them out to count all")
        count, total, weights, modes, cursor = 0, 0, 0, [0] * 19, 0
        while True:
            n, t, w, m, cursor = self.contract.functions.getSummaryPage(
                agent_id, who, tag1, tag2, cursor, PAGE).call()  # fmt: skip
            count, total, weights = count + n, total + t, weights + w
            modes = [a + b for a, b in zip(modes, m, strict=True)]
            if cursor == 0:
                break
        average = Decimal(total) / Decimal(weights) / Decimal(10**18) if weights else Decimal(0)
        mode = max(range(19), key=lambda d: (modes[d], -d)) if count else 0
        return {"agentId": agent_id, "count": count, "rating": format(round(average, mode), "f"),
                "valueDecimals": mode, "dealValue": str(weights),
                "clients": len(who) if who else len(self.clients(agent_id))}  # fmt: skip

    def _send(self, by: str, fn: str, args: list[Any], label: str) -> Receipt:
        account = self.keystore.owner_account(by)
        return self.chain.sender(account).send(contract_call(self.contract, fn, args, label=label))
