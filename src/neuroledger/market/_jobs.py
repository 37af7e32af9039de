"""Jobs in escrow (ERC-8183): a client hires a provider; an evaluator completes or rejects.

:class:`Jobs` drives the suite's ``JobEscrow``: it names parties by local identity or
address, checks what it can before sending (a budget the client cannot pay, a deliverable
that is not an asset id, an unknown job), approves the escrow for exactly the budget, and
reads a job back as a :class:`JobView`.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from eth_utils.crypto import keccak

from neuroledger.chain import Chain, Receipt, contract_call
from neuroledger.errors import MarketError, PaymentError
from neuroledger.identity import Keystore
from neuroledger.market._credits import Credits, format_amount

if TYPE_CHECKING:
    from neuroledger.market._accounts import AgentAccounts

__all__ = ["STATUSES", "JobView", "Jobs"]

STATUSES = ("open", "funded", "submitted", "completed", "rejected", "expired")
_ZERO = "0x" + "00" * 20
_CREATED = "JobCreated(uint256,address,address,address,uint256,address)"
_ASSET_ID = re.compile(r"^0x[0-9a-fA-F]{64}$")


@dataclass(frozen=True)
class JobView:
    """One job as the chain holds it."""

    job_id: int
    status: str
    client: str
    provider: str | None
    evaluator: str
    budget: int
    expired_at: int
    deliverable: str | None
    dispute_window: int
    release_at: int
    disputed: bool
    description: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class Jobs:
    """The suite's ERC-8183 job escrow, paid in its token (credits by default).

    With ``accounts``, a client that has an agent account acts through it: the account is
    the job's client, and creating, pricing and funding a job are calls its policy must
    allow (``createJob``, ``setBudget``, ``fund`` of the escrow; the token's ``approve``
    with the escrow as an allowed recipient). A refused call raises
    :class:`~neuroledger.errors.GuardrailError` and moves nothing.
    """

    def __init__(
        self, chain: Chain, keystore: Keystore, accounts: AgentAccounts | None = None
    ) -> None:
        self.chain = chain
        self.keystore = keystore
        self.escrow = chain.contract("JobEscrow")
        self.credits = Credits(chain, keystore, token=self.escrow.functions.paymentToken().call())
        self.accounts = accounts

    def _account(self, who: str) -> str | None:
        """The agent account ``who`` acts through, if it has one."""
        if self.accounts is None or who.startswith("0x"):
            return None
        return self.accounts.find(who)

    def _address(self, who: str) -> str:
        account = self._account(who)
        if account is not None:
            return account
        return self.credits.address_of(who)  # an address, or a local identity's wallet

    # -- the client --------------------------------------------------------------------
    def create(self, *, by: str, evaluator: str, expires_in: int, description: str,
               provider: str | None = None, budget: int | None = None,
               dispute_window: int = 0) -> JobView:  # fmt: skip
        """Create a job as client ``by``; with ``budget``, also set its price."""
        if expires_in <= 0:
            raise MarketError("a job must expire in the future: give --expires-in of 1 s or more")
        if len(description.encode()) > 1024:
            raise MarketError("the description is over 1,024 bytes; point to a document instead")
        now = int(self.chain.w3.eth.get_block("latest")["timestamp"])
        args = [self._address(provider) if provider else _ZERO, self._address(evaluator),
                now + expires_in, description, _ZERO]  # fmt: skip
        job_id = _created_id(self._send(by, "createJob", args, "create job"))
        if dispute_window:
            self._send(by, "setDisputeWindow", [job_id, dispute_window], "set dispute window")
        if budget is not None:
            self.set_budget(job_id, budget, by=by)
        return self.status(job_id)

    def set_budget(self, job_id: int, amount: int, *, by: str) -> Receipt:
        """Propose or agree the price (client or provider)."""
        return self._send(by, "setBudget", [job_id, amount, b""], f"budget of job {job_id}")

    def fund(self, job_id: int, *, by: str, expected: int | None = None) -> Receipt:
        """Pay the agreed budget into escrow: approve exactly it, then ``fund``; refused if
        the budget is not ``expected`` (by default: the budget read now)."""
        job = self.status(job_id)
        budget = job.budget if expected is None else expected
        held = self.credits.balance(self._address(by))
        if held < budget:
            decimals = self.credits.decimals
            raise PaymentError(f"{by} holds {format_amount(held, decimals)}, less than the budget "
                               f"{format_amount(budget, decimals)}; fund it first")  # fmt: skip
        token = self.credits.contract
        self._send(by, "approve", [self.escrow.address, budget], "approve escrow", contract=token)
        return self._send(by, "fund", [job_id, budget, b""], f"fund job {job_id}")

    def dispute(self, job_id: int, *, by: str, reason: bytes = b"") -> Receipt:
        """Send a completed job back to its evaluator, within its dispute window (client)."""
        return self._send(by, "dispute", [job_id, _reason(reason)], f"dispute job {job_id}")

    # -- the provider and the evaluator --------------------------------------------------
    def submit(self, job_id: int, deliverable: str, *, by: str) -> Receipt:
        """Deliver: ``deliverable`` is the result's asset id (0x and 64 hex digits)."""
        if not _ASSET_ID.match(deliverable):
            raise MarketError(f"{deliverable!r} is not an asset id; register the result with "
                              "`neuroledger asset register` and give its id")  # fmt: skip
        args = [job_id, bytes.fromhex(deliverable[2:]), b""]
        return self._send(by, "submit", args, f"submit job {job_id}")

    def complete(self, job_id: int, *, by: str, reason: bytes = b"") -> Receipt:
        """Accept the delivery (evaluator): the provider is paid, or the dispute window starts."""
        return self._send(by, "complete", [job_id, _reason(reason), b""], f"complete job {job_id}")

    def reject(self, job_id: int, *, by: str, reason: bytes = b"") -> Receipt:
        """Reject (client while open, evaluator after): the client is refunded."""
        return self._send(by, "reject", [job_id, _reason(reason), b""], f"reject job {job_id}")

    # -- anyone ------------------------------------------------------------------------
    def release(self, job_id: int, *, by: str) -> Receipt:
        """Pay the provider once a completed job's dispute window has passed."""
        return self._send(by, "release", [job_id], f"release job {job_id}")

    def refund(self, job_id: int, *, by: str) -> Receipt:
        """Return an expired job's escrow to its client (anyone may)."""
        return self._send(by, "claimRefund", [job_id], f"refund job {job_id}")

    def status(self, job_id: int) -> JobView:
        """A job as the chain holds it."""
        job = self.escrow.functions.getJob(job_id).call()
        client, provider, evaluator, _hook, budget, expired, status, deliverable = job[:8]
        if int(client, 16) == 0:
            raise MarketError(f"no job {job_id} in the escrow at {self.escrow.address}")
        window, release_at, disputed, description = job[8:]
        return JobView(job_id=job_id, status=STATUSES[status], client=client,
                       provider=None if int(provider, 16) == 0 else provider,
                       evaluator=evaluator, budget=int(budget), expired_at=int(expired),
                       deliverable="0x" + bytes(deliverable).hex() if any(deliverable) else None,
                       dispute_window=int(window), release_at=int(release_at),
                       disputed=bool(disputed), description=description)  # fmt: skip

    def _send(
        self, by: str, fn: str, args: list[Any], label: str, *, contract: Any = None
    ) -> Receipt:
        call = contract_call(contract or self.escrow, fn, args, label=label)
        if self.accounts is not None and self._account(by) is not None:
            return self.accounts.execute(by, call.to, call.data, label=label)
        return self.chain.sender(self.keystore.owner_account(by)).send(call)


def _reason(reason: bytes) -> bytes:
    """A reason as 32 bytes: as given if 32 long, else its Keccak-256 (empty: zero)."""
    if not reason:
        return b"\0" * 32
    return reason if len(reason) == 32 else keccak(reason)


def _created_id(receipt: Receipt) -> int:
    found = receipt.first_indexed(_CREATED)
    if found is None:
        raise MarketError(f"createJob was mined in {receipt.tx_hash} but logged no job")
    return found
