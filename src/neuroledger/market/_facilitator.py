"""The x402 facilitator: checks ``exact`` payments and settles them, many per transaction.

:class:`Facilitator` checks an EIP-3009 authorization against the requirements it pays
(token, payee, exact amount, validity window, the payer's signature under the token's own
EIP-712 domain) and settles authorizations through the suite's ``PaymentSettler``:
:meth:`Facilitator.submit` queues one and returns a future; a worker thread sends whatever
is queued as one transaction as soon as the previous one is confirmed, so a busy server pays
one transaction per batch and an idle one waits for no timer; up to two batches are in
flight at once. :meth:`verify_body`,
:meth:`settle_body` and :meth:`supported` are the facilitator's HTTP API in the spec's shapes.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import decode, encode
from eth_account import Account
from eth_utils.crypto import keccak
from web3.contract import Contract

from neuroledger.chain import Call
from neuroledger.errors import NeuroLedgerError, PaymentError
from neuroledger.market._credits import Authorization, Credits
from neuroledger.market._x402 import Payment, Requirements, X402Error, parse_payment_object

__all__ = ["Facilitator", "Settlement", "authorization_signer", "domain_separator"]

#: The most payments one settlement transaction carries (the contract's MAX_BATCH).
MAX_BATCH = 100
#: The most settlement transactions waiting for their blocks at once.
MAX_IN_FLIGHT = 2
#: Seconds an authorization must stay valid after it is checked, for its transaction to land.
_MARGIN = 6
_SETTLED = keccak(text="PaymentSettled(address,address,address,uint256,bytes32)")
_TOKEN, _PAYMENTS = (
    "address",
    "(address,address,uint256,uint256,uint256,bytes32,uint8,bytes32,bytes32)[]",
)
_SETTLE = keccak(text=f"settle({_TOKEN},{_PAYMENTS})")[:4]
_SETTLEABLE = keccak(text=f"settleable({_TOKEN},{_PAYMENTS})")[:4]
_AUTH_TYPEHASH = keccak(text="TransferWithAuthorization(address from,address to,uint256 value,"
                             "uint256 validAfter,uint256 validBefore,bytes32 nonce)")  # fmt: skip


def authorization_signer(separator: bytes, auth: Authorization) -> str:
    """The lower-case address that signed ``auth`` under the domain whose separator is
    ``separator`` ('' if the signature is malformed).

    The EIP-712 digest is built from 32-byte words (every field of the message is static),
    as eth-account's ``encode_typed_data`` builds it, at a tenth of its cost: this runs once
    per paid request (a test checks both agree)."""
    words = b"".join([
        _AUTH_TYPEHASH, bytes(12) + bytes.fromhex(auth.payer[2:]),
        bytes(12) + bytes.fromhex(auth.to[2:]), auth.value.to_bytes(32, "big"),
        auth.valid_after.to_bytes(32, "big"), auth.valid_before.to_bytes(32, "big"), auth.nonce,
    ])  # fmt: skip
    digest = keccak(b"\x19\x01" + separator + keccak(words))
    try:
        return str(Account._recover_hash(digest, signature=auth.signature)).lower()
    except Exception:
        return ""


def domain_separator(domain: dict[str, Any]) -> bytes:
    """The EIP-712 domain separator of a token's (name, version, chainId, verifyingContract)."""
    typehash = keccak(text="EIP712Domain(string name,string version,uint256 chainId,"
                           "address verifyingContract)")  # fmt: skip
    return keccak(typehash + keccak(text=domain["name"]) + keccak(text=domain["version"])
                  + domain["chainId"].to_bytes(32, "big")
                  + bytes(12) + bytes.fromhex(domain["verifyingContract"][2:]))  # fmt: skip


_FAILED = keccak(text="PaymentFailed(address,address,bytes32)")


@dataclass(frozen=True)
class Settlement:
    """The outcome of settling one authorization."""

    success: bool
    payer: str
    transaction: str = ""
    code: str = ""  # the x402 error code when not successful
    message: str = ""


def _topic(value: Any) -> bytes:
    return bytes.fromhex(value.removeprefix("0x")) if isinstance(value, str) else bytes(value)


class Facilitator:
    """Checks and settles x402 ``exact`` payments in one token, from identity ``operator``."""

    def __init__(self, credits: Credits, operator: str) -> None:
        self.credits = credits
        self.chain = credits.chain
        self.operator = credits.keystore.owner_account(operator)
        self.settler: Contract = self.chain.contract("PaymentSettler")
        self.network = f"eip155:{self.chain.chain_id}"
        self._domain = credits.domain()
        self._separator = domain_separator(self._domain)
        self._queue: queue.Queue[tuple[Authorization, Future[Settlement]]] = queue.Queue()
        self._pending: dict[tuple[str, bytes], Future[Settlement]] = {}
        self._lock = threading.Lock()
        self._workers = 0  # settlement threads alive
        self._idle = 0  # of which waiting for work
        # The sizes of the latest batches sent, for reports (bounded: a server runs for months).
        self.batches: deque[int] = deque(maxlen=1000)

    # -- requirements and checks ---------------------------------------------------------
    def requirements(self, *, amount: int, pay_to: str, resource: str, description: str = "",
                     mime_type: str = "application/json") -> Requirements:  # fmt: skip
        """The requirements of a resource priced ``amount`` atomic units, paid to ``pay_to``."""
        return Requirements(network=self.network, asset=self.credits.address, amount=amount,
                            pay_to=self.credits.address_of(pay_to), name=self._domain["name"],
                            version=self._domain["version"], resource=resource,
                            description=description, mime_type=mime_type)  # fmt: skip

    def check(self, auth: Authorization, req: Requirements, *, on_chain: bool = False) -> None:
        """Raise :class:`X402Error` unless ``auth`` pays exactly ``req``, now, with a valid
        signature (and, ``on_chain``, an unused nonce and enough balance)."""
        if req.network != self.network or req.asset.lower() != self.credits.address.lower():
            raise X402Error("invalid_payment_requirements",
                            f"this facilitator settles {self.credits.address} on {self.network}, "
                            f"not {req.asset[:42]} on {req.network[:40]}")  # fmt: skip
        if auth.to.lower() != req.pay_to.lower():
            raise X402Error("invalid_exact_evm_payload_recipient_mismatch",
                            f"the authorization pays {auth.to}, not {req.pay_to}")  # fmt: skip
        if auth.value != req.amount:
            raise X402Error("invalid_exact_evm_payload_authorization_value",
                            f"the authorization pays {auth.value}, the price is {req.amount}")  # fmt: skip
        now = int(time.time())
        if auth.valid_after >= now + 1:
            raise X402Error("invalid_exact_evm_payload_authorization_valid_after",
                            "the authorization is not valid yet; sign it with an earlier validAfter")  # fmt: skip
        if auth.valid_before <= now + _MARGIN:
            raise X402Error("invalid_exact_evm_payload_authorization_valid_before",
                            "the authorization has expired (or expires within seconds); sign a new one")  # fmt: skip
        if auth.valid_before > now + 24 * 3600:
            raise X402Error("invalid_exact_evm_payload_authorization_valid_before",
                            "the authorization is valid for more than a day; sign a shorter one")  # fmt: skip
        if self.signer_of(auth) != auth.payer.lower():
            raise X402Error("invalid_exact_evm_payload_signature",
                            "the signature is not the payer's over this authorization and token")  # fmt: skip
        if on_chain and not self._settleable([auth])[0]:
            refused = self._refused(auth)
            raise X402Error(refused.code, refused.message)

    def signer_of(self, auth: Authorization) -> str:
        """The lower-case address that signed ``auth`` under the token's domain ('' if none)."""
        return authorization_signer(self._separator, auth)

    def receipt(self, auth: Authorization) -> tuple[str, int]:
        """The payee and value of ``auth`` if the settler settled it (``("0x0…", 0)`` if not)."""
        payee, value = self.settler.functions.receipt(
            self.credits.address, auth.payer, auth.nonce
        ).call()
        return str(payee), int(value)

    # -- settlement ----------------------------------------------------------------------
    def submit(self, auth: Authorization) -> Future[Settlement]:
        """Queue ``auth`` for settlement; the same payment queued twice shares one future."""
        key = (auth.payer.lower(), auth.nonce)
        with self._lock:
            if key in self._pending:
                return self._pending[key]
            future: Future[Settlement] = Future()
            self._pending[key] = future
            self._queue.put((auth, future))
            if self._idle == 0 and self._workers < MAX_IN_FLIGHT:
                self._workers += 1
                self._idle += 1
                threading.Thread(target=self._run, name="x402-settler", daemon=True).start()
        return future

    def settle(self, auths: list[Authorization]) -> list[Settlement]:
        """Settle ``auths`` (at most :data:`MAX_BATCH`) in one transaction, now."""
        if not auths:
            return []
        if len(auths) > MAX_BATCH:
            raise PaymentError(f"at most {MAX_BATCH} payments settle in one transaction")
        # One read for the batch: no gas on a used nonce or an empty payer (a fresh key
        # can sign a valid authorization for free).
        flags = self._settleable(auths)
        going = [a for a, ok in zip(auths, flags, strict=True) if ok]
        settled: set[tuple[str, bytes]] = set()
        tx = ""
        if going:
            # calldata by eth-abi directly: web3's encoder costs ~2 ms per payment in Python
            data = _SETTLE + encode([_TOKEN, _PAYMENTS],
                                    [self.credits.address, [a.args() for a in going]])  # fmt: skip
            call = Call(to=self.settler.address, data=data,
                        label=f"settle {len(going)} x402 payments")  # fmt: skip
            receipt = self.chain.sender(self.operator).send(call)
            self.batches.append(len(going))
            tx = receipt.tx_hash
            for log in receipt.logs:
                topics = [_topic(t) for t in log["topics"]]
                if topics and topics[0] == _SETTLED:
                    settled.add(("0x" + topics[2][12:].hex(), _topic(log["data"])[32:64]))
        return [
            Settlement(True, a.payer, tx) if (a.payer.lower(), a.nonce) in settled
            else self._refused(a)
            for a in auths
        ]  # fmt: skip

    def _settleable(self, auths: list[Authorization]) -> list[bool]:
        """Per authorization: its nonce is unused and its payer holds its value (one read)."""
        payments = encode([_TOKEN, _PAYMENTS], [self.credits.address, [a.args() for a in auths]])
        raw = self.chain.w3.eth.call({"to": self.settler.address, "data": _SETTLEABLE + payments})
        (flags,) = decode(["bool[]"], bytes(raw))
        return [bool(f) for f in flags]

    def _refused(self, auth: Authorization) -> Settlement:
        """Why the token refused ``auth``, read back from the chain."""
        if self.credits.used(auth.payer, auth.nonce):
            code, message = "nonce_already_used", "this authorization was already used or cancelled"
        elif self.credits.balance(auth.payer) < auth.value:
            code, message = "insufficient_funds", f"{auth.payer} holds less than the price"
        else:
            code, message = "invalid_transaction_state", "the token refused the authorization"
        return Settlement(False, auth.payer, code=code, message=message)

    def _run(self) -> None:
        """One settlement thread: it sends whatever is queued as one transaction. Up to
        :data:`MAX_IN_FLIGHT` run at once, so batches are sent while earlier ones wait
        for their blocks (on a real network most of a settlement is that wait)."""
        while True:
            try:
                first = self._queue.get(timeout=5.0)
            except queue.Empty:
                with self._lock:
                    if self._queue.empty():
                        self._workers -= 1
                        self._idle -= 1
                        return
                continue
            with self._lock:
                self._idle -= 1
            batch = [first]
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                results = self.settle([auth for auth, _ in batch])
            except NeuroLedgerError as exc:
                results = [Settlement(False, a.payer, code="unexpected_settle_error",
                                      message=str(exc)) for a, _ in batch]  # fmt: skip
            except Exception as exc:
                results = [Settlement(False, a.payer, code="unexpected_settle_error",
                                      message=f"{type(exc).__name__}: {exc}") for a, _ in batch]  # fmt: skip
            with self._lock:
                self._idle += 1
                for (auth, future), result in zip(batch, results, strict=True):
                    self._pending.pop((auth.payer.lower(), auth.nonce), None)
                    future.set_result(result)

    # -- the facilitator's HTTP API ------------------------------------------------------
    def _request(self, body: Any) -> tuple[Payment, Requirements]:
        if not isinstance(body, dict):
            raise X402Error("invalid_payload", "the body must be a JSON object")
        version = body.get("x402Version")
        if version not in (1, 2):
            raise X402Error("invalid_x402_version", "x402Version must be 1 or 2")
        req = Requirements.from_json(body.get("paymentRequirements"))
        payment = parse_payment_object(body.get("paymentPayload"), version=version,
                                       network=self.network)  # fmt: skip
        if version == 2 and payment.accepted is not None and not req.matches(payment.accepted):
            raise X402Error("invalid_payment_requirements",
                            "the payment accepted other requirements than these")  # fmt: skip
        return payment, req

    def verify_body(self, body: Any) -> dict[str, Any]:
        """``POST /verify``: ``{isValid, invalidReason?, invalidMessage?, payer?}``."""
        payer = None
        try:
            payment, req = self._request(body)
            payer = payment.authorization.payer
            self.check(payment.authorization, req, on_chain=True)
        except X402Error as exc:
            return {"isValid": False, "invalidReason": exc.code, "invalidMessage": str(exc),
                    "payer": payer}  # fmt: skip
        return {"isValid": True, "payer": payer}

    def settle_body(self, body: Any) -> dict[str, Any]:
        """``POST /settle``: ``{success, errorReason?, payer, transaction, network, amount}``.
        Settling a payment this facilitator already settled returns that settlement again."""
        payer = ""
        try:
            payment, req = self._request(body)
            auth = payment.authorization
            payer = auth.payer
            self.check(auth, req)  # the chain's part is read once per settlement batch
            result = self.submit(auth).result(timeout=300)
            if not result.success and result.code == "nonce_already_used" \
                    and self.receipt(auth) == (req.pay_to, req.amount):  # fmt: skip
                return self._settled(auth, req, self.settled_tx(auth))  # settled here before
        except X402Error as exc:
            return {"success": False, "errorReason": exc.code, "errorMessage": str(exc),
                    "payer": payer, "transaction": "", "network": self.network}  # fmt: skip
        if not result.success:
            return {"success": False, "errorReason": result.code, "errorMessage": result.message,
                    "payer": payer, "transaction": "", "network": self.network}  # fmt: skip
        return self._settled(auth, req, result.transaction)

    def _settled(self, auth: Authorization, req: Requirements, tx: str) -> dict[str, Any]:
        return {"success": True, "payer": auth.payer, "transaction": tx,
                "network": self.network, "amount": str(req.amount)}  # fmt: skip

    def settled_tx(self, auth: Authorization) -> str:
        """The transaction in which the settler settled ``auth`` (from its event)."""
        event = self.settler.events.PaymentSettled()
        logs = event.get_logs(
            from_block=0,
            argument_filters={"token": self.credits.address, "payer": auth.payer},
        )
        for log in logs:
            if bytes(log["args"]["nonce"]) == auth.nonce:
                return "0x" + bytes(log["transactionHash"]).hex().removeprefix("0x")
        return ""

    def supported(self) -> dict[str, Any]:
        """``GET /supported``: the kinds this facilitator settles, and its signer."""
        kinds = [{"x402Version": v, "scheme": "exact", "network": self.network} for v in (2, 1)]
        return {"kinds": kinds, "extensions": [],
                "signers": {"eip155:*": [str(self.operator.address)]}}  # fmt: skip
