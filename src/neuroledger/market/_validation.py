"""k-of-n validation of AI results: the suite's ValidationRegistry (ERC-8004 ABI, staked).

:class:`Validation` stakes, asks for validations, commits, reveals, finalizes and settles.
A request is a small JSON document (:func:`request_document`) put on chain as a ``data:``
URI, so every validator reads the same bytes and checks them against the request hash.
It names a *check* that validators run themselves:

- ``asset-integrity``: the content at ``subject.location`` is the registered asset
  ``subject.asset`` (its manifest digest, with the asset's owner, gives the asset id);
- ``model-accuracy``: the same, then the model's accuracy on a held-out set whose SHA-256
  the check names, as a response of 0-100 (``100 * correct // rows``, exact).

For a job, the check is the one its client fixed with :meth:`Validation.set_job_terms`
(its keccak256 is on chain), and the subject must be the job's deliverable: a provider
cannot pick an easier check, and a client cannot point the validators at nothing.
Anything the request gets wrong (unreadable, a digest that differs, content that is not
the asset) is a failed check: response 0.

:class:`Validator` is the loop a validator runs (``neuroledger validator run``): it
watches the requests assigned to it, runs each check, commits, reveals once reveals open,
and finalizes and settles what is due. Its salts are written (fsynced) before a
commitment is sent, so a validator that crashes between commit and reveal still reveals.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from eth_abi.abi import encode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from neuroledger._fs import atomic_write
from neuroledger.chain import Chain, Receipt, contract_call
from neuroledger.errors import MarketError
from neuroledger.identity import Keystore
from neuroledger.market._card import data_uri, read_uri
from neuroledger.market._credits import Credits

__all__ = [
    "CHECKS",
    "CheckResult",
    "RequestView",
    "Validation",
    "Validator",
    "VoteView",
    "canonical",
    "check_hash",
    "model_accuracy_check",
    "request_document",
    "run_check",
]

#: The checks validators know how to run.
CHECKS = ("asset-integrity", "model-accuracy")
REQUEST_TYPE = "neuroledger/validation-request/v1"
STATUSES = {1: "pending", 2: "accepted", 3: "rejected", 4: "inconclusive"}
OUTCOMES = {0: None, 1: "paid", 2: "slashed", 3: "spared"}
#: The most bytes of a request URI (the contract's bound).
MAX_URI = 1024
#: The largest held-out set a validator downloads or reads.
MAX_HELDOUT_BYTES = 256 << 20
_PAGE = 1000


def canonical(value: Any) -> bytes:
    """The canonical JSON of ``value``: sorted keys, no spaces, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def check_hash(check: dict[str, Any]) -> bytes:
    """The keccak256 of a check's canonical JSON (what a job's terms fix on chain)."""
    return keccak(canonical(check))


def model_accuracy_check(heldout: str | Path) -> dict[str, Any]:
    """A ``model-accuracy`` check on the held-out ``.npz`` file at ``heldout`` (a path or an
    https URL the validators can read), pinned by its SHA-256."""
    path = Path(heldout)
    if str(heldout).startswith(("https://", "http://")):
        raw = _read_location(str(heldout))
    elif path.is_file():
        raw = path.read_bytes()
    else:
        raise MarketError(f"held-out set {heldout} not found; give an .npz file with x and y arrays "
                          "(e.g. validation.npz from `neuroledger fl`)")  # fmt: skip
    _load_heldout(raw)  # refuse a file the validators could not use
    location = str(heldout) if str(heldout).startswith("http") else str(path.resolve())
    return {"kind": "model-accuracy", "heldout": location,
            "heldoutDigest": "sha256:" + hashlib.sha256(raw).hexdigest()}  # fmt: skip


def request_document(check: dict[str, Any], *, asset: str, location: str | Path,
                     job: int | None = None) -> dict[str, Any]:  # fmt: skip
    """A validation request: the check, the asset to check and where its content is."""
    if check.get("kind") not in CHECKS:
        raise MarketError(f"unknown check {check.get('kind')!r}; use one of {', '.join(CHECKS)}")
    if not (isinstance(asset, str) and asset.startswith("0x") and len(asset) == 66):
        raise MarketError(f"{asset!r} is not an asset id (0x and 64 hex digits)")
    where = str(location) if str(location).startswith("http") else str(Path(location).resolve())
    return {"type": REQUEST_TYPE, "check": check, "subject": {"asset": asset.lower(), "location": where},
            "job": job, "nonce": secrets.token_hex(8)}  # fmt: skip


# -- running a check ------------------------------------------------------------------
@dataclass
class CheckResult:
    """What a validator found: its response (0-100) and the evidence behind it."""

    response: int
    evidence: dict[str, Any] = field(default_factory=dict)


def _read_location(location: str) -> bytes:
    if location.startswith(("https://", "http://")):
        import httpx

        try:
            with httpx.stream("GET", location, timeout=30.0, follow_redirects=False) as r:
                r.raise_for_status()
                chunks, size = [], 0
                for chunk in r.iter_bytes():
                    size += len(chunk)
                    if size > MAX_HELDOUT_BYTES:
                        raise MarketError(f"{location} serves more than {MAX_HELDOUT_BYTES} bytes")
                    chunks.append(chunk)
        except httpx.HTTPError as e:
            raise MarketError(f"cannot fetch {location}: {e}") from None
        return b"".join(chunks)
    path = Path(location)
    if not path.is_file() or path.stat().st_size > MAX_HELDOUT_BYTES:
        raise MarketError(f"{location} is not a readable file of at most {MAX_HELDOUT_BYTES} bytes")
    return path.read_bytes()


def _load_heldout(raw: bytes) -> tuple[np.ndarray, np.ndarray]:
    import io

    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as data:
            x, y = np.asarray(data["x"], dtype=np.float64), np.asarray(data["y"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise MarketError(
            f"the held-out set is not an .npz file with arrays x and y: {e}"
        ) from None
    if x.ndim != 2 or y.ndim != 1 or len(x) != len(y) or len(y) == 0:
        raise MarketError(f"the held-out set has x of shape {x.shape} and y of shape {y.shape}; "
                          "x must be rows by features and y one label per row")  # fmt: skip
    if not np.all(np.isfinite(x)) or not np.issubdtype(y.dtype, np.integer):
        raise MarketError("the held-out set must hold finite features and integer labels")
    return x, y


def _verify_subject(chain: Chain, asset: str, location: str) -> tuple[bool, str]:
    """Whether the content at ``location`` is the registered, unrevoked ``asset``."""
    from neuroledger.provenance._manifest import build_manifest
    from neuroledger.provenance._registry import asset_id_for

    owner, _kind, status = (
        chain.contract("AssetRegistry").functions.assetOf(bytes.fromhex(asset[2:])).call()
    )
    if status == 0:
        return False, f"asset {asset} is not registered"
    if status == 3:
        return False, f"asset {asset} is revoked"
    if location.startswith("http"):
        return False, "the subject must be a path the validator can read"
    try:
        digest = build_manifest(Path(location)).digest
    except (OSError, ValueError) as e:
        return False, f"cannot read {location}: {e}"
    if "0x" + asset_id_for(owner, digest) != asset.lower():
        return False, f"the content at {location} is not asset {asset} (digest {digest[:16]}…)"
    return True, digest


def run_check(chain: Chain, document: dict[str, Any], *, agreed_check: bytes | None = None,
              deliverable: str | None = None) -> CheckResult:  # fmt: skip
    """Run the check a request names. ``agreed_check`` (a job's terms) and ``deliverable``
    (the job's) bind a job's request to what its client and provider agreed."""
    check, subject = document.get("check"), document.get("subject")
    if not isinstance(check, dict) or not isinstance(subject, dict):
        return CheckResult(0, {"error": "the request names no check or subject"})
    if agreed_check is not None and check_hash(check) != agreed_check:
        return CheckResult(0, {"error": "the check is not the one the job's client fixed"})
    asset, location = subject.get("asset"), subject.get("location")
    if not isinstance(asset, str) or not isinstance(location, str) or len(asset) != 66:
        return CheckResult(0, {"error": "the subject needs an asset id and a location"})
    if deliverable is not None and asset.lower() != deliverable.lower():
        return CheckResult(0, {"error": f"the subject is not the job's deliverable {deliverable}"})
    try:
        ok, detail = _verify_subject(chain, asset.lower(), location)
    except (ValueError, TypeError) as e:
        return CheckResult(0, {"error": f"bad asset id: {e}"})
    if not ok:
        return CheckResult(0, {"error": detail})
    if check.get("kind") == "asset-integrity":
        return CheckResult(100, {"digest": detail})
    if check.get("kind") != "model-accuracy":
        return CheckResult(0, {"error": f"unknown check {check.get('kind')!r}"})
    from neuroledger.market._model import load_softmax

    try:
        raw = _read_location(str(check.get("heldout", "")))
        if "sha256:" + hashlib.sha256(raw).hexdigest() != check.get("heldoutDigest"):
            return CheckResult(0, {"error": "the held-out set differs from its digest"})
        x, y = _load_heldout(raw)
        weights, bias, config = load_softmax(Path(location))
    except MarketError as e:
        return CheckResult(0, {"error": str(e)})
    if x.shape[1] != weights.shape[0]:
        return CheckResult(0, {"error": f"the model takes {weights.shape[0]} features, the "
                                        f"held-out set has {x.shape[1]}"})  # fmt: skip
    predicted = np.argmax(x @ weights + bias, axis=1)
    correct = int(np.sum(predicted == y))
    return CheckResult(
        100 * correct // len(y),  # integers: every honest validator gets the same number
        {"accuracy": round(correct / len(y), 6), "rows": len(y), "model": config["digest"],
         "digest": detail},
    )  # fmt: skip


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


# -- the validator loop ----------------------------------------------------------------
@dataclass(frozen=True)
class Action:
    """One thing the validator loop did."""

    request_hash: str
    action: str  # committed, revealed, finalized, settled, failed
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


Check = Callable[[Chain, dict[str, Any], RequestView], CheckResult]


class Validator:
    """The loop of validator ``name``: check, commit, reveal, finalize and settle.

    ``check`` runs a request's check (by default :func:`run_check` with the job's agreed
    terms); tests give a dishonest one to play a lying validator.
    """

    def __init__(self, validation: Validation, name: str, *, check: Check | None = None) -> None:
        self.v = validation
        self.name = name
        self.address = validation.address_of(name)
        self.check = check or self._run_check
        self._cursor = 0  # requests before it are settled or not ours to act on
        self._done: set[str] = set()

    def _run_check(
        self, chain: Chain, document: dict[str, Any], request: RequestView
    ) -> CheckResult:
        agreed = deliverable = None
        if request.job_id is not None:
            from neuroledger.market._jobs import Jobs

            terms = self.v.job_terms(request.job_id)
            agreed = terms[3] if terms else b"\0" * 32
            deliverable = Jobs(chain, self.v.keystore).status(request.job_id).deliverable or ""
        return run_check(chain, document, agreed_check=agreed, deliverable=deliverable)

    def step(self) -> list[Action]:
        """One pass over the requests assigned to this validator."""
        actions: list[Action] = []
        hashes = self.v.assigned(self.address, offset=self._cursor)
        now = self.v.now()
        window = int(self.v.contract.functions.challengeWindow().call())
        for h in hashes:
            if h in self._done:
                continue
            try:
                action = self._act(h, now, window)
            except Exception as e:  # one bad request must not stop the loop
                first = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
                action = Action(h, "failed", first)
            if action is not None:
                actions.append(action)
        # Requests settled (or not ours) at the head are never read again.
        while hashes and hashes[0] in self._done:
            self._done.discard(hashes.pop(0))
            self._cursor += 1
        return actions

    def _act(self, h: str, now: int, window: int) -> Action | None:
        r = self.v.show(h)
        mine = next((vote for vote in r.votes if vote.validator == self.address), None)
        if r.single or mine is None:
            self._done.add(h)
            return None
        if r.status == "pending":
            all_committed = r.committed == r.n
            if not mine.committed and now < r.commit_deadline:
                try:
                    document = self.v.document(h)
                    result = self.check(self.v.chain, document, r)
                except MarketError as e:
                    result = CheckResult(0, {"error": str(e)})
                self.v.commit(h, result.response, by=self.name, evidence=result.evidence)
                return Action(h, "committed", f"response {result.response}")
            reveals_open = all_committed or now >= r.commit_deadline
            if mine.committed and not mine.revealed and reveals_open and now < r.reveal_deadline:
                self.v.reveal(h, by=self.name)
                return Action(h, "revealed")
            if now >= r.reveal_deadline or r.revealed == r.n:
                self.v.finalize(h, by=self.name)
                return Action(h, "finalized", self.v.show(h).status)
            return None
        if r.settled:
            self._done.add(h)
            return None
        if now >= r.updated_at + window:
            self.v.settle(h, by=self.name)
            self._done.add(h)
            return Action(h, "settled", self.v.vote(h, self.address).outcome or "")
        return None

    def run(self, *, interval: float = 2.0, duration: float | None = None,
            on_action: Callable[[Action], None] | None = None,
            stop: Callable[[], bool] | None = None) -> list[Action]:  # fmt: skip
        """Pass over the assigned requests every ``interval`` seconds, for ``duration``
        seconds (None: until ``stop`` says so)."""
        if interval <= 0:
            raise MarketError("the interval must be positive")
        deadline = None if duration is None else time.monotonic() + duration
        done: list[Action] = []
        while True:
            for action in self.step():
                done.append(action)
                if on_action is not None:
                    on_action(action)
            if (stop is not None and stop()) or (
                deadline is not None and time.monotonic() >= deadline
            ):
                return done
            time.sleep(
                interval
                if deadline is None
                else max(0.0, min(interval, deadline - time.monotonic()))
            )
