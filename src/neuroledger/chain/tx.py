"""The transaction layer: local signing, nonces, fees, receipts, pipelined batches.

Every write NeuroLedger makes goes through :class:`TransactionSender`. It signs
locally with an account opened from the encrypted keystore, takes nonces from
a :class:`NonceManager` that is safe for concurrent senders in one process,
prices EIP-1559 fees with a floor, and decodes reverts into
:class:`~neuroledger.errors.TransactionRevertedError` subclasses.

:meth:`TransactionSender.send_batch` pipelines: it estimates gas for the whole
batch in one JSON-RPC batch request, signs every transaction ahead, sends them
all, then collects the receipts. Only after the receipts are in and the
``on_confirmed`` hook has run (the embedded node persists its state there) is
the batch reported as confirmed.

>>> call = Call(to="0x0000000000000000000000000000000000000001", data=b"", label="ping")
>>> call.label
'ping'
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address
from web3 import Web3
from web3.contract import Contract

from neuroledger.errors import (
    ChainError,
    InsufficientFundsError,
    RPCUnreachableError,
    TransactionRevertedError,
    TransactionTimeoutError,
)

__all__ = [
    "Call",
    "ContractClient",
    "FeePolicy",
    "NonceManager",
    "NotAuthorizedError",
    "Receipt",
    "SignatureRejectedError",
    "TransactionSender",
    "contract_call",
    "decode_revert",
]

_ERROR_SELECTOR = bytes.fromhex("08c379a0")  # Error(string)
_PANIC_SELECTOR = bytes.fromhex("4e487b71")  # Panic(uint256)
_BATCH_CHUNK = 100


class NotAuthorizedError(TransactionRevertedError):
    """Raised when a contract rejects the caller: it is not the owner it must be."""


class SignatureRejectedError(TransactionRevertedError):
    """Raised when a contract rejects a signed message (wrong signer, reused nonce, bad form)."""


# Revert reasons (by prefix) that map to a more specific exception type.
_REASON_TYPES: list[tuple[str, type[TransactionRevertedError]]] = [
    ("did: caller is not", NotAuthorizedError),
    ("did: signature", SignatureRejectedError),
    ("registry: caller is not", NotAuthorizedError),
]


def decode_revert(data: str | bytes | None) -> str | None:
    """Decode revert data (``Error(string)`` or ``Panic(uint256)``) into a reason."""
    if data is None:
        return None
    raw = bytes.fromhex(data.removeprefix("0x")) if isinstance(data, str) else bytes(data)
    if raw.startswith(_ERROR_SELECTOR):
        try:
            return str(abi_decode(["string"], raw[4:])[0])
        except Exception:
            return None
    if raw.startswith(_PANIC_SELECTOR):
        try:
            return f"panic 0x{abi_decode(['uint256'], raw[4:])[0]:02x}"
        except Exception:
            return None
    return None


def _revert_error(
    reason: str | None, *, label: str, tx_hash: str | None = None
) -> TransactionRevertedError:
    cls: type[TransactionRevertedError] = TransactionRevertedError
    for prefix, kind in _REASON_TYPES:
        if reason and reason.startswith(prefix):
            cls = kind
    text = reason or "no reason given"
    return cls(f"{label} was rejected by the contract: {text}", reason=reason, tx_hash=tx_hash)


@dataclass(frozen=True)
class Call:
    """One transaction to send: target, calldata, value, optional gas limit."""

    to: str
    data: bytes
    value: int = 0
    gas: int | None = None
    label: str = "transaction"


def contract_call(
    contract: Contract, fn: str, args: list[Any], *, label: str, value: int = 0
) -> Call:
    """A :class:`Call` of ``contract.fn(*args)``."""
    data = contract.encode_abi(fn, args=args)
    return Call(to=to_checksum_address(contract.address),
                data=bytes.fromhex(data.removeprefix("0x")), value=value, label=label)  # fmt: skip


class ContractClient:
    """Base of the clients of deployed contracts: builds their :class:`Call` objects."""

    def __init__(self, contract: Contract) -> None:
        self.contract = contract
        self.address = to_checksum_address(contract.address)

    def _call(self, fn: str, args: list[Any], label: str) -> Call:
        return contract_call(self.contract, fn, args, label=label)


@dataclass(frozen=True)
class Receipt:
    """The outcome of a confirmed transaction."""

    tx_hash: str
    block_number: int
    gas_used: int
    status: int
    logs: list[Any]
    contract_address: str | None = None


@dataclass(frozen=True, kw_only=True)
class FeePolicy:
    """EIP-1559 pricing: tip and max fee, each with a floor."""

    min_priority_fee: int = 1_000_000_000
    min_max_fee: int = 1_000_000_000
    base_fee_multiplier: int = 2

    def quote(self, w3: Web3) -> tuple[int, int]:
        """Return ``(max_fee_per_gas, max_priority_fee_per_gas)`` for the next block."""
        block = w3.eth.get_block("latest")
        base = int(block.get("baseFeePerGas", 0) or 0)
        try:
            tip = int(w3.eth.max_priority_fee)
        except Exception:
            tip = 0
        tip = max(tip, self.min_priority_fee)
        return max(base * self.base_fee_multiplier + tip, self.min_max_fee), tip


class NonceManager:
    """Hands out nonces per address; safe for concurrent senders in one process.

    The first nonce of an address comes from the node's pending count; later
    ones from a counter. :meth:`resync` re-reads the node after a failed send.
    """

    def __init__(self, w3: Web3) -> None:
        self._w3 = w3
        self._lock = threading.Lock()
        self._next: dict[str, int] = {}

    def reserve(self, address: str, count: int = 1) -> int:
        """Reserve ``count`` consecutive nonces for ``address``; return the first."""
        with self._lock:
            if address not in self._next:
                self._next[address] = self._w3.eth.get_transaction_count(
                    Web3.to_checksum_address(address), "pending"
                )
            first = self._next[address]
            self._next[address] = first + count
            return first

    def resync(self, address: str) -> None:
        """Forget the counter of ``address``; the next reserve asks the node."""
        with self._lock:
            self._next.pop(address, None)


class TransactionSender:
    """Signs, sends and confirms transactions from one local account."""

    def __init__(
        self,
        w3: Web3,
        account: LocalAccount,
        *,
        chain_id: int,
        nonces: NonceManager,
        fees: FeePolicy | None = None,
        receipt_timeout: float = 120.0,
        on_confirmed: Callable[[], None] | None = None,
        top_up: Callable[[str, int], None] | None = None,
    ) -> None:
        self.w3 = w3
        self.account = account
        self.chain_id = chain_id
        self.nonces = nonces
        self.fees = fees or FeePolicy()
        self.receipt_timeout = receipt_timeout
        self.on_confirmed = on_confirmed
        self.top_up = top_up
        self.gas_margin = 1.2

    @property
    def address(self) -> str:
        """The sending account's checksum address."""
        return str(self.account.address)

    # -- RPC helpers ---------------------------------------------------------------
    def _batch(self, requests: list[tuple[str, Any]]) -> list[dict[str, Any]]:
        replies: list[dict[str, Any]] = []
        for start in range(0, len(requests), _BATCH_CHUNK):
            chunk = requests[start : start + _BATCH_CHUNK]
            try:
                got = self.w3.provider.make_batch_request(chunk)  # type: ignore[attr-defined]
            except (ConnectionError, OSError) as exc:
                raise RPCUnreachableError(
                    f"the chain node stopped answering ({exc}); check `neuroledger node status`"
                ) from exc
            if not isinstance(got, list):
                message = got.get("error", {}).get("message", got)
                raise ChainError(f"the node rejected a batch request: {message}")
            replies.extend(sorted(got, key=lambda r: int(r["id"])))
        return replies

    # -- sending -------------------------------------------------------------------
    def send(self, call: Call) -> Receipt:
        """Send one transaction and return its receipt once confirmed."""
        return self.send_batch([call])[0]

    def send_batch(
        self, calls: Sequence[Call], *, progress: Callable[[int], None] | None = None
    ) -> list[Receipt]:
        """Send ``calls`` pipelined; return their receipts, in order, once all are confirmed.

        Raises :class:`TransactionRevertedError` (before anything is sent) when a
        call would revert, and :class:`InsufficientFundsError` when the account
        cannot pay for the batch.
        """
        if not calls:
            return []
        sender = self.address
        gas_limits = self._estimate(calls)
        max_fee, tip = self.fees.quote(self.w3)
        self._check_funds(calls, gas_limits, max_fee)
        first = self.nonces.reserve(sender, len(calls))
        signed = []
        for offset, (call, gas) in enumerate(zip(calls, gas_limits, strict=True)):
            tx: dict[str, Any] = {
                "type": 2,
                "chainId": self.chain_id,
                "nonce": first + offset,
                "to": Web3.to_checksum_address(call.to) if call.to else None,
                "data": call.data,
                "value": call.value,
                "gas": gas,
                "maxFeePerGas": max_fee,
                "maxPriorityFeePerGas": tip,
            }
            if tx["to"] is None:
                del tx["to"]
            signed.append(self.account.sign_transaction(tx))
        replies = self._batch(
            [("eth_sendRawTransaction", ["0x" + s.raw_transaction.hex()]) for s in signed]
        )
        hashes = []
        for call, reply in zip(calls, replies, strict=True):
            if "error" in reply:
                self.nonces.resync(sender)
                message = reply["error"].get("message", "")
                raise ChainError(f"the node refused {call.label}: {message}")
            hashes.append(str(reply["result"]))
        receipts = self._collect(calls, hashes, progress)
        if self.on_confirmed is not None:
            self.on_confirmed()
        failed = [(c, r) for c, r in zip(calls, receipts, strict=True) if r.status != 1]
        if failed:
            call, receipt = failed[0]
            raise _revert_error(
                self._replay_reason(call, receipt), label=call.label, tx_hash=receipt.tx_hash
            )
        return receipts

    def _estimate(self, calls: Sequence[Call]) -> list[int]:
        need = [i for i, c in enumerate(calls) if c.gas is None]
        limits = [c.gas or 0 for c in calls]
        requests = []
        for i in need:
            requests.append(("eth_estimateGas", [self._call_params(calls[i])]))
        for i, reply in zip(need, self._batch(requests), strict=True):
            if "error" in reply:
                error = reply["error"]
                reason = _reason(error.get("data"), error.get("message", ""))
                if reason is None and "insufficient funds" in error.get("message", ""):
                    raise InsufficientFundsError(
                        f"account {self.address} cannot pay for {calls[i].label}; fund it and retry"
                    )
                raise _revert_error(reason, label=calls[i].label)
            limits[i] = int(int(reply["result"], 16) * self.gas_margin)
        return limits

    def _check_funds(self, calls: Sequence[Call], gas_limits: list[int], max_fee: int) -> None:
        need = sum(g * max_fee + c.value for c, g in zip(calls, gas_limits, strict=True))
        have = int(self.w3.eth.get_balance(Web3.to_checksum_address(self.address)))
        if have >= need:
            return
        if self.top_up is not None:
            self.top_up(self.address, need - have)
            return
        raise InsufficientFundsError(
            f"account {self.address} holds {Web3.from_wei(have, 'ether')} ETH but needs "
            f"{Web3.from_wei(need, 'ether')} ETH for {len(calls)} transaction(s) "
            f"(at {Web3.from_wei(max_fee, 'gwei')} gwei per gas); send it at least "
            f"{Web3.from_wei(need - have, 'ether')} ETH and retry"
        )

    def _collect(
        self, calls: Sequence[Call], hashes: list[str], progress: Callable[[int], None] | None
    ) -> list[Receipt]:
        receipts: dict[str, Receipt] = {}
        deadline = time.monotonic() + self.receipt_timeout
        delay = 0.002
        while True:
            waiting = [h for h in hashes if h not in receipts]
            replies = self._batch([("eth_getTransactionReceipt", [h]) for h in waiting])
            for tx_hash, reply in zip(waiting, replies, strict=True):
                raw = reply.get("result")
                if raw:
                    receipts[tx_hash] = Receipt(
                        tx_hash=tx_hash,
                        block_number=int(raw["blockNumber"], 16),
                        gas_used=int(raw["gasUsed"], 16),
                        status=int(raw["status"], 16),
                        logs=raw["logs"],
                        contract_address=(
                            Web3.to_checksum_address(raw["contractAddress"])
                            if raw.get("contractAddress")
                            else None
                        ),
                    )
            if progress is not None:
                progress(len(receipts))
            if len(receipts) == len(hashes):
                return [receipts[h] for h in hashes]
            if time.monotonic() > deadline:
                missing = len(hashes) - len(receipts)
                label = calls[hashes.index(waiting[0])].label
                raise TransactionTimeoutError(
                    f"{missing} transaction(s) (first: {label}, {waiting[0]}) have no receipt "
                    f"after {self.receipt_timeout:.0f} s; check that the node mines "
                    "(`neuroledger node status`) and that the fee is high enough"
                )
            time.sleep(delay)
            delay = min(delay * 2, 0.5)

    def _call_params(self, call: Call) -> dict[str, Any]:
        """JSON-RPC parameters of ``call`` for eth_estimateGas and eth_call."""
        tx: dict[str, Any] = {"from": self.address, "data": "0x" + call.data.hex()}
        if call.to:
            tx["to"] = call.to
        if call.value:
            tx["value"] = hex(call.value)
        return tx

    def _replay_reason(self, call: Call, receipt: Receipt) -> str | None:
        tx = self._call_params(call)
        try:
            self.w3.eth.call(tx, block_identifier=max(receipt.block_number - 1, 0))  # type: ignore[arg-type]
        except Exception as exc:  # web3 raises ContractLogicError with the data
            data = getattr(exc, "data", None)
            return _reason(data if isinstance(data, str) else None, str(exc))
        return "out of gas" if receipt.gas_used >= (call.gas or 0) else None


def _reason(data: str | None, message: str) -> str | None:
    """The revert reason from revert data, else from the node's error message."""
    decoded = decode_revert(data)
    if decoded is not None:
        return decoded
    marker = "execution reverted: "
    if marker in message:
        return message.split(marker, 1)[1].strip().strip("'\"") or None
    return None
