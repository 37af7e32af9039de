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

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from web3 import Web3
from web3.contract import Contract

from neuroledger._fs import is_disk_full
from neuroledger.chain._energy import GAS_SENT
from neuroledger.chain._nonces import FeePolicy, NonceManager
from neuroledger.chain._reverts import reason_of, revert_error
from neuroledger.errors import (
    ChainError,
    DiskFullError,
    InsufficientFundsError,
    RPCUnreachableError,
    TransactionTimeoutError,
)

__all__ = [
    "Call",
    "ContractClient",
    "Receipt",
    "TransactionSender",
    "contract_call",
]

_BATCH_CHUNK = 100
#: Node messages that mean a nonce was already used by another transaction.
_NONCE_TAKEN = ("nonce too low", "already known", "replacement transaction underpriced",
                "nonce has already been used")  # fmt: skip
log = logging.getLogger(__name__)


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

    def first_indexed(self, event: str) -> int | None:
        """The first indexed argument (as a number) of the first ``event`` this transaction
        logged, e.g. ``"Registered(uint256,string,address)"``; None if it logged none."""
        topic = keccak(text=event)
        for log in self.logs:
            topics = [bytes.fromhex(t.removeprefix("0x")) if isinstance(t, str) else bytes(t)
                      for t in log["topics"]]  # fmt: skip
            if len(topics) > 1 and topics[0] == topic:
                return int.from_bytes(topics[1], "big")
        return None


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
        on_confirmed: Callable[[list[str]], None] | None = None,
        top_up: Callable[[str, int], None] | None = None,
        kick: Callable[[], None] | None = None,
        stall_after: float = 2.0,
    ) -> None:
        self.w3 = w3
        self.account = account
        self.chain_id = chain_id
        self.nonces = nonces
        self.fees = fees or FeePolicy()
        self.receipt_timeout = receipt_timeout
        self.on_confirmed = on_confirmed
        self.top_up = top_up
        self.kick = kick  # make the node mine what it holds (the embedded node only)
        self.stall_after = stall_after
        self.stalls = 0  # how many times transactions had to be sent again
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
        gas_limits = self._estimate(calls)
        max_fee, tip = self.fees.quote(self.w3)
        self._check_funds(calls, gas_limits, max_fee)
        raw, hashes = self._broadcast(calls, gas_limits, max_fee, tip)
        receipts = self._collect(calls, hashes, raw, progress)
        if self.on_confirmed is not None:
            try:
                self.on_confirmed([r.tx_hash for r in receipts])
            except (OSError, DiskFullError) as exc:
                if not (isinstance(exc, DiskFullError) or is_disk_full(exc)):
                    raise
                mined = ", ".join(r.tx_hash for r in receipts[:3])
                raise DiskFullError(
                    f"{len(receipts)} transaction(s) were mined ({mined}{'…' if len(receipts) > 3 else ''}) "
                    "and may have been applied, but the node's state could not be saved: no "
                    "space left on the device; free some space (the running node keeps them, "
                    "and its next save or `neuroledger node stop` writes them) and check before "
                    "sending again"
                ) from exc
        failed = [(c, g, r) for c, g, r in zip(calls, gas_limits, receipts, strict=True)
                  if r.status != 1]  # fmt: skip
        if failed:
            call, gas_limit, receipt = failed[0]
            raise revert_error(
                self._replayreason_of(call, gas_limit, receipt),
                label=call.label,
                tx_hash=receipt.tx_hash,
            )
        GAS_SENT.extend(r.gas_used for r in receipts)
        return receipts

    def _sign(self, call: Call, gas: int, nonce: int, max_fee: int, tip: int) -> Any:
        tx: dict[str, Any] = {
            "type": 2,
            "chainId": self.chain_id,
            "nonce": nonce,
            "to": Web3.to_checksum_address(call.to) if call.to else None,
            "data": call.data,
            "value": call.value,
            "gas": gas,
            "maxFeePerGas": max_fee,
            "maxPriorityFeePerGas": tip,
        }
        if tx["to"] is None:
            del tx["to"]
        return self.account.sign_transaction(tx)

    def _broadcast(self, calls: Sequence[Call], gas_limits: list[int], max_fee: int, tip: int
                   ) -> tuple[list[str], list[str]]:  # fmt: skip
        """Sign and send ``calls`` with consecutive nonces; return their raw forms and hashes.

        A refusal for the nonce ("nonce too low", "already known" for another
        transaction: a sender outside this home's lock used it) means the refused
        transaction and those after it were not taken: they are signed again with
        fresh nonces, at most three times. A transaction the node accepted is never
        signed twice.
        """
        for _attempt in range(3):
            with self.nonces.claim(self.address, len(calls)) as first:
                signed = [self._sign(c, g, first + k, max_fee, tip)
                          for k, (c, g) in enumerate(zip(calls, gas_limits, strict=True))]  # fmt: skip
                forms = ["0x" + t.raw_transaction.hex() for t in signed]
                replies = self._batch([("eth_sendRawTransaction", [f]) for f in forms])
            hashes: list[str | None] = []
            refused: list[tuple[int, str]] = []
            for i, (tx, reply) in enumerate(zip(signed, replies, strict=True)):
                message = str(reply.get("error", {}).get("message", "")) if "error" in reply else ""
                if not message:
                    hashes.append(str(reply["result"]))
                elif "already known" in message.lower():  # this very transaction: it is in
                    hashes.append("0x" + bytes(tx.hash).hex())
                else:
                    hashes.append(None)
                    refused.append((i, message))
            if not refused:
                return forms, [h for h in hashes if h is not None]
            self.nonces.resync(self.address)
            nonce_taken = all(any(m in msg.lower() for m in _NONCE_TAKEN) for _, msg in refused)
            if nonce_taken and len(refused) == len(calls):
                continue  # nothing was taken: sign the whole batch again with fresh nonces
            index, message = refused[0]
            sent = len(calls) - len(refused)
            also = f"; {sent} other transaction(s) of the batch were sent and may be applied"
            raise ChainError(
                f"the node refused {calls[index].label}: {message}{also if sent else ''}"
            )
        raise ChainError(
            f"another program keeps using the nonces of {self.address}; stop it, or send "
            "through NeuroLedger only, and retry"
        )

    def _estimate(self, calls: Sequence[Call]) -> list[int]:
        need = [i for i, c in enumerate(calls) if c.gas is None]
        limits = [c.gas or 0 for c in calls]
        requests = []
        for i in need:
            requests.append(("eth_estimateGas", [self._call_params(calls[i])]))
        for i, reply in zip(need, self._batch(requests), strict=True):
            if "error" in reply:
                error = reply["error"]
                reason = reason_of(error.get("data"), error.get("message", ""))
                if reason is None and "insufficient funds" in error.get("message", ""):
                    raise InsufficientFundsError(
                        f"account {self.address} cannot pay for {calls[i].label}; fund it and retry"
                    )
                raise revert_error(reason, label=calls[i].label)
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
        self,
        calls: Sequence[Call],
        hashes: list[str],
        raw: list[str],
        progress: Callable[[int], None] | None,
    ) -> list[Receipt]:
        """Wait for every receipt. When none arrives for ``stall_after`` seconds, the missing
        transactions are sent again, the same signed bytes in nonce order (a node that
        dropped or did not promote them takes them again; one that holds them says
        "already known"), and the embedded node is asked to mine."""
        receipts: dict[str, Receipt] = {}
        forms = dict(zip(hashes, raw, strict=True))
        deadline = time.monotonic() + self.receipt_timeout
        last_progress = time.monotonic()
        delay = 0.002
        while True:
            waiting = [h for h in hashes if h not in receipts]
            replies = self._batch([("eth_getTransactionReceipt", [h]) for h in waiting])
            for tx_hash, reply in zip(waiting, replies, strict=True):
                raw_receipt = reply.get("result")
                if raw_receipt:
                    receipts[tx_hash] = _receipt(tx_hash, raw_receipt)
                    last_progress = time.monotonic()
            if progress is not None:
                progress(len(receipts))
            if len(receipts) == len(hashes):
                return [receipts[h] for h in hashes]
            now = time.monotonic()
            if now > deadline:
                missing = len(hashes) - len(receipts)
                first = next(h for h in hashes if h not in receipts)
                label = calls[hashes.index(first)].label
                raise TransactionTimeoutError(
                    f"{missing} transaction(s) (first: {label}, {first}) have no receipt "
                    f"after {self.receipt_timeout:.0f} s; check that the node mines "
                    "(`neuroledger node status`) and that the fee is high enough"
                )
            if now - last_progress > self.stall_after:
                self._rebroadcast([forms[h] for h in hashes if h not in receipts])
                last_progress = now
                delay = 0.002
                continue
            time.sleep(delay)
            delay = min(delay * 2, 0.5)

    def _rebroadcast(self, forms: list[str]) -> None:
        """Send already-signed transactions again (nonce order), then kick the node."""
        self.stalls += 1
        log.warning("%d transaction(s) of %s accepted but not mined; sending them again",
                    len(forms), self.address)  # fmt: skip
        self._batch([("eth_sendRawTransaction", [f]) for f in forms])  # "already known" is fine
        if self.kick is not None:
            self.kick()

    def _call_params(self, call: Call) -> dict[str, Any]:
        """JSON-RPC parameters of ``call`` for eth_estimateGas and eth_call."""
        tx: dict[str, Any] = {"from": self.address, "data": "0x" + call.data.hex()}
        if call.to:
            tx["to"] = call.to
        if call.value:
            tx["value"] = hex(call.value)
        return tx

    def _replayreason_of(self, call: Call, gas_limit: int, receipt: Receipt) -> str | None:
        """Why a mined call reverted: replayed on the state before its block, then (for a
        check that depends on the block, such as a deadline against its time) as of its
        block; else out of gas if it used its whole limit."""
        if receipt.gas_used >= gas_limit:
            return "out of gas"
        tx = self._call_params(call)
        for block in (max(receipt.block_number - 1, 0), receipt.block_number):
            try:
                self.w3.eth.call(tx, block_identifier=block)  # type: ignore[arg-type]
            except Exception as exc:  # web3 raises ContractLogicError with the data
                data = getattr(exc, "data", None)
                reason = reason_of(data if isinstance(data, str) else None, str(exc))
                if reason is not None:
                    return reason
        return None


def _receipt(tx_hash: str, raw: dict[str, Any]) -> Receipt:
    return Receipt(
        tx_hash=tx_hash,
        block_number=int(raw["blockNumber"], 16),
        gas_used=int(raw["gasUsed"], 16),
        status=int(raw["status"], 16),
        logs=raw["logs"],
        contract_address=(
            Web3.to_checksum_address(raw["contractAddress"]) if raw.get("contractAddress") else None
        ),
    )
