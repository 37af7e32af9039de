"""k-of-n validation of AI results: the suite's ValidationRegistry (ERC-8004 ABI, staked).

:class:`Validation` stakes, asks for validations (of an agent's work, or of a delivered job
by the terms its client fixed), commits, reveals, finalizes and settles, and reads requests
back as :class:`RequestView`. The checks validators run are in
:mod:`neuroledger.market._checks`; the loop a validator runs is
:class:`~neuroledger.market.Validator`. A commitment's salt, response and evidence are
saved (fsynced, mode 0600) before the commitment is sent, so a validator that restarts
between commit and reveal still reveals.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from eth_abi.abi import encode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from neuroledger._fs import atomic_write
from neuroledger.chain import Chain, Receipt, contract_call
from neuroledger.errors import MarketError
from neuroledger.identity import Keystore
from neuroledger.market._card import data_uri, read_uri
from neuroledger.market._checks import CHECKS, REQUEST_TYPE, canonical, check_hash
from neuroledger.market._credits import Credits

__all__ = ["OUTCOMES", "STATUSES", "RequestView", "StakeView", "Validation", "VoteView"]

STATUSES = {1: "pending", 2: "accepted", 3: "rejected", 4: "inconclusive"}
OUTCOMES = {0: None, 1: "paid", 2: "slashed", 3: "spared"}
#: The most bytes of a request URI (the contract's bound).
MAX_URI = 1024
_PAGE = 1000


# -- views ------------------------------------------------------------------------------
@dataclass(frozen=True)
class VoteView:
    """One validator's part in a request."""

    validator: str
    committed: bool
    revealed: bool
    response: int | None
    weight: int
    commitment: str | None
    outcome: str | None


@dataclass(frozen=True)
class RequestView:
    """A validation request as the chain holds it."""

    request_hash: str
    requester: str
    agent_id: int
    job_id: int | None
    fee: int
    k: int
    n: int
    threshold: int
    status: str
    result: int | None
    committed: int
    revealed: int
    single: bool
    settled: bool
    waived: bool
    commit_deadline: int
    reveal_deadline: int
    updated_at: int
    tag: str
    votes: list[VoteView]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class StakeView:
    """A validator's stake."""

    validator: str
    active: int
    unbonding: int
    unbonding_at: int
    open_requests: int
    in_pool: bool

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class Validation:
    """Stake, requests, votes and verdicts in the suite's validation registry.

    ``state_dir`` keeps a validator's salts (one file per request, mode 0600): without it
    a commitment cannot be revealed after a restart.
    """

    def __init__(self, chain: Chain, keystore: Keystore, state_dir: Path | None = None) -> None:
        self.chain = chain
        self.keystore = keystore
        self.contract = chain.contract("ValidationRegistry")
        self.credits = Credits(chain, keystore, token=self.contract.functions.stakeToken().call())
        self.state_dir = state_dir

    def address_of(self, who: str) -> str:
        return self.credits.address_of(who)

    def now(self) -> int:
        return int(self.chain.w3.eth.get_block("latest")["timestamp"])

    def _send(self, by: str, fn: str, args: list[Any], label: str) -> Receipt:
        account = self.keystore.owner_account(by)
        return self.chain.sender(account).send(contract_call(self.contract, fn, args, label=label))

    def _approve(self, by: str, amount: int) -> None:
        if amount:
            token = self.credits.contract
            account = self.keystore.owner_account(by)
            call = contract_call(
                token, "approve", [self.contract.address, amount], label="approve validation"
            )
            self.chain.sender(account).send(call)

    def _afford(self, by: str, amount: int, what: str) -> None:
        held = self.credits.balance(by)
        if held < amount:
            from neuroledger.market._credits import format_amount

            d = self.credits.decimals
            raise MarketError(f"{by} holds {format_amount(held, d)}, less than the {what} "
                              f"{format_amount(amount, d)}; get credits first")  # fmt: skip

    # -- stake ---------------------------------------------------------------------------
    def stake(self, amount: int, *, by: str) -> Receipt:
        """Add stake as validator ``by`` (joins the pool at the minimum stake)."""
        if amount <= 0:
            raise MarketError("stake a positive amount")
        self._afford(by, amount, "stake")
        self._approve(by, amount)
        return self._send(by, "stake", [amount], "stake")

    def unstake(self, amount: int, *, by: str) -> Receipt:
        """Start withdrawing ``amount`` of active stake (it waits the withdrawal delay)."""
        active = int(self.contract.functions.stakeOf(self.address_of(by)).call())
        if not 0 < amount <= active:
            raise MarketError(f"{by} has {active} active stake; unstake between 1 and that")
        return self._send(by, "requestUnstake", [amount], "unstake")

    def withdraw(self, *, by: str) -> Receipt:
        """Withdraw what finished unbonding (every request taken must be settled)."""
        view = self.stake_of(by)
        if view.unbonding == 0:
            raise MarketError(f"{by} has nothing unbonding; `validator unstake` first")
        if view.open_requests:
            raise MarketError(f"{by} still owes {view.open_requests} unsettled request(s); "
                              "settle them first (`validator run` does)")  # fmt: skip
        if self.now() < view.unbonding_at:
            raise MarketError(f"{by}'s stake unbonds at {view.unbonding_at} "
                              f"({view.unbonding_at - self.now()} s from now)")  # fmt: skip
        return self._send(by, "withdraw", [], "withdraw stake")

    def stake_of(self, who: str) -> StakeView:
        f, address = self.contract.functions, self.address_of(who)
        active = int(f.stakeOf(address).call())
        return StakeView(validator=address, active=active, unbonding=int(f.unbonding(address).call()),
                         unbonding_at=int(f.unbondingAt(address).call()),
                         open_requests=int(f.openRequests(address).call()),
                         in_pool=active >= int(f.minStake().call()))  # fmt: skip

    # -- requests ------------------------------------------------------------------------
    def _uri(self, document: dict[str, Any]) -> tuple[str, bytes]:
        raw = canonical(document)
        uri = data_uri(raw)
        if len(uri.encode()) > MAX_URI:
            raise MarketError(f"the request document takes {len(uri)} bytes as a data: URI, over "
                              f"{MAX_URI}; use shorter locations")  # fmt: skip
        return uri, keccak(raw)

    def request(self, agent_id: int, document: dict[str, Any], *, by: str, k: int, n: int = 0,
                validators: list[str] | None = None, threshold: int = 50, commit_period: int = 300,
                reveal_period: int = 300, fee: int = 0, tag: str = "") -> RequestView:  # fmt: skip
        """Ask validators (listed, or ``n`` drawn from the pool) to run ``document``'s check on
        agent ``agent_id``'s work, as its owner or operator ``by``."""
        listed = [self.address_of(v) for v in validators or []]
        _terms(n or len(listed), k, threshold)
        uri, request_hash = self._uri(document)
        self._afford(by, fee, "fee")
        self._approve(by, fee)
        self._send(by, "requestValidation", [agent_id, uri, request_hash, listed, n, k, threshold,
                                             commit_period, reveal_period, fee, tag],
                   "request validation")  # fmt: skip
        return self.show("0x" + request_hash.hex())

    def set_job_terms(self, job_id: int, check: dict[str, Any], *, by: str, n: int, k: int,
                      threshold: int) -> Receipt:  # fmt: skip
        """Fix how job ``job_id`` will be judged (its client, while it is Open)."""
        _terms(n, k, threshold)
        if check.get("kind") not in CHECKS:
            raise MarketError(
                f"unknown check {check.get('kind')!r}; use one of {', '.join(CHECKS)}"
            )
        return self._send(by, "setJobTerms", [job_id, n, k, threshold, check_hash(check)],
                          f"validation terms of job {job_id}")  # fmt: skip

    def job_terms(self, job_id: int) -> tuple[int, int, int, bytes] | None:
        """A job's (n, k, threshold, check hash), or None if its client set none."""
        f = self.contract.functions
        word = int(f.jobTerms(job_id).call())
        if word == 0:
            return None
        return word & 255, (word >> 8) & 255, (word >> 16) & 255, bytes(f.jobCheck(job_id).call())

    def request_job(self, job_id: int, document: dict[str, Any], *, by: str, commit_period: int = 300,
                    reveal_period: int = 300, fee: int = 0) -> RequestView:  # fmt: skip
        """Ask the pool to judge delivered job ``job_id`` by its client's terms (its provider)."""
        if self.job_terms(job_id) is None:
            raise MarketError(f"job {job_id}'s client fixed no validation terms; it cannot be "
                              "validated (it is refunded at its expiry)")  # fmt: skip
        uri, request_hash = self._uri({**document, "job": job_id})
        self._afford(by, fee, "fee")
        self._approve(by, fee)
        self._send(by, "requestJobValidation", [job_id, uri, request_hash, commit_period, reveal_period, fee],
                   f"request validation of job {job_id}")  # fmt: skip
        return self.show("0x" + request_hash.hex())

    def document(self, request_hash: str) -> dict[str, Any]:
        """The request's document, read from its ``ValidationRequest`` event and checked
        against the request hash."""
        self.show(request_hash)  # an unknown request gets its clear error
        topic = "0x" + keccak(text="ValidationRequest(address,uint256,string,bytes32)").hex()
        start = int(self.chain.deployment().contracts["ValidationRegistry"].get("block", 0))
        logs = self.chain.w3.eth.get_logs({"address": self.contract.address, "fromBlock": start,
                                           "topics": [topic, None, None, request_hash]})  # fmt: skip
        if not logs:
            raise MarketError(f"request {request_hash} logged no ValidationRequest event")
        event = self.contract.events.ValidationRequest().process_log(logs[0])
        raw = read_uri(str(event["args"]["requestURI"]))
        if "0x" + keccak(raw).hex() != request_hash.lower():
            raise MarketError(f"the document of request {request_hash} does not hash to it")
        document = json.loads(raw)
        if not isinstance(document, dict) or document.get("type") != REQUEST_TYPE:
            raise MarketError(f"request {request_hash} is not a NeuroLedger validation request")
        return document

    # -- votes ---------------------------------------------------------------------------
    def _salt_path(self, validator: str, request_hash: str) -> Path:
        if self.state_dir is None:
            raise MarketError("a validator needs a state directory for its salts")
        return self.state_dir / "validator" / validator.lower() / f"{request_hash.lower()}.json"

    def commit(self, request_hash: str, response: int, *, by: str,
               evidence: dict[str, Any] | None = None) -> Receipt:  # fmt: skip
        """Commit to ``response`` (0-100). The salt, response and evidence are saved (fsynced)
        before the commitment is sent, so a restart can still reveal."""
        if not 0 <= response <= 100:
            raise MarketError(f"a response is 0 to 100, not {response}")
        validator = self.address_of(by)
        vote = self.vote(request_hash, validator)
        if vote.committed:
            raise MarketError(f"{by} already committed on request {request_hash}")
        path = self._salt_path(validator, request_hash)
        saved = _read_json(path)
        if saved is None:
            saved = {
                "response": response,
                "salt": "0x" + secrets.token_hex(32),
                "evidence": evidence or {},
            }
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            atomic_write(path, canonical(saved), mode=0o600)
        salt = bytes.fromhex(saved["salt"][2:])
        rh = bytes.fromhex(request_hash[2:])
        digest = keccak(
            encode(
                ["bytes32", "uint8", "bytes32", "address"], [rh, saved["response"], salt, validator]
            )
        )
        return self._send(by, "commit", [rh, digest], "commit validation")

    def reveal(self, request_hash: str, *, by: str) -> Receipt:
        """Reveal the saved response (once reveals open, before the reveal deadline)."""
        validator = self.address_of(by)
        saved = _read_json(self._salt_path(validator, request_hash))
        if saved is None or not self.vote(request_hash, validator).committed:
            raise MarketError(
                f"{by} has no commitment on request {request_hash} to reveal; commit first"
            )
        evidence = canonical(saved.get("evidence") or {})
        uri = data_uri(evidence)
        if len(uri) > MAX_URI:
            uri = ""
        args = [bytes.fromhex(request_hash[2:]), saved["response"], bytes.fromhex(saved["salt"][2:]),
                uri, keccak(evidence)]  # fmt: skip
        return self._send(by, "reveal", args, "reveal validation")

    def finalize(self, request_hash: str, *, by: str) -> Receipt:
        """Compute the verdict (anyone, after the reveal deadline or every reveal)."""
        return self._send(by, "finalize", [bytes.fromhex(request_hash[2:])], "finalize validation")

    def settle(self, request_hash: str, *, by: str) -> Receipt:
        """Pay the fee and apply the slashes (anyone, after the challenge window)."""
        return self._send(by, "settle", [bytes.fromhex(request_hash[2:])], "settle validation")

    # -- reads ---------------------------------------------------------------------------
    def vote(self, request_hash: str, validator: str) -> VoteView:
        v = self.contract.functions.getVote(bytes.fromhex(request_hash[2:]), validator).call()
        _assigned, committed, revealed, response, weight, commitment, outcome = v
        return VoteView(validator=to_checksum_address(validator), committed=bool(committed),
                        revealed=bool(revealed), response=int(response) if revealed else None,
                        weight=int(weight), commitment="0x" + bytes(commitment).hex() if committed else None,
                        outcome=OUTCOMES.get(int(outcome)))  # fmt: skip

    def show(self, request_hash: str) -> RequestView:
        """A request with every validator's vote."""
        if not (request_hash.startswith("0x") and len(request_hash) == 66):
            raise MarketError(f"{request_hash!r} is not a request hash (0x and 64 hex digits)")
        try:
            r = self.contract.functions.getRequest(bytes.fromhex(request_hash[2:])).call()
        except Exception as e:  # the contract reverts on an unknown request
            if "no such request" in str(e):
                raise MarketError(f"no validation request {request_hash}") from None
            raise
        (requester, agent_id, job_id, fee, k, n, threshold, status, result, committed, revealed,
         single, settled, waived, commit_deadline, reveal_deadline, updated, tag, validators) = r  # fmt: skip
        final = status != 1
        return RequestView(
            request_hash=request_hash.lower(), requester=requester, agent_id=int(agent_id),
            job_id=int(job_id) or None, fee=int(fee), k=int(k), n=int(n), threshold=int(threshold),
            status=STATUSES.get(int(status), str(status)), result=int(result) if final or single else None,
            committed=int(committed), revealed=int(revealed), single=bool(single),
            settled=bool(settled), waived=bool(waived), commit_deadline=int(commit_deadline),
            reveal_deadline=int(reveal_deadline), updated_at=int(updated), tag=tag,
            votes=[self.vote(request_hash, v) for v in validators],
        )  # fmt: skip

    def assigned(self, validator: str, *, offset: int = 0) -> list[str]:
        """The request hashes validator ``validator`` was asked, oldest first, from ``offset``."""
        address = self.address_of(validator)
        out: list[str] = []
        while True:
            page = self.contract.functions.requestsPage(0, address, offset + len(out), _PAGE).call()
            out.extend("0x" + bytes(h).hex() for h in page)
            if len(page) < _PAGE:
                return out


def _terms(n: int, k: int, threshold: int) -> None:
    if not 1 <= n <= 16:
        raise MarketError(f"n = {n}: a request takes 1 to 16 validators")
    if not 1 <= k <= n:
        raise MarketError(f"k = {k}: the quorum must be 1 to n = {n}")
    if not 0 <= threshold <= 100:
        raise MarketError(f"threshold {threshold}: give 0 to 100")


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except ValueError:
        raise MarketError(
            f"{path} is damaged; the commitment it saved cannot be revealed"
        ) from None
    return data if isinstance(data, dict) else None
