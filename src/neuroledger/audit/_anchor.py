"""Anchoring checkpoints on chain, and deciding when: every N entries or T seconds, fee-aware.

A log's id on chain is the SHA-256 of its verifier key string. An anchor is
the ``AuditAnchor.anchor(logId, treeSize, rootHash)`` transaction, kept in the
namespace of the account that sends it (nobody can squat a log id); its receipt
is kept in the log directory (``.anchors.json``) so proof bundles can name it.

:class:`AnchorPolicy` decides when to anchor. It must anchor once ``every``
entries are waiting or ``interval`` seconds have passed since the first one
that is not anchored yet, but it may wait for a cheaper block as long as the
oldest unanchored entry stays within ``max_latency``: it anchors early only
when the current base fee is at or below a low percentile of the recent ones
(``eth_feeHistory``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.types import RPCEndpoint

from neuroledger._fs import atomic_write
from neuroledger.audit._log import TileLog
from neuroledger.audit._note import NoteVerifier
from neuroledger.audit._verify import Problem
from neuroledger.chain import Call, Chain
from neuroledger.errors import AuditError

__all__ = [
    "ANCHORS_FILE",
    "AnchorPolicy",
    "AnchorRecord",
    "AnchorService",
    "Anchors",
    "check_anchors",
    "fee_history",
    "log_id",
    "read_anchor",
]

ANCHORS_FILE = ".anchors.json"
_ANCHORED_TOPIC = "0x" + Web3.keccak(
    text="Anchored(bytes32,address,uint64,bytes32,uint64)"
).hex().removeprefix("0x")


def log_id(verifier: NoteVerifier) -> bytes:
    """The on-chain id of a log: SHA-256 of its verifier key string."""
    return hashlib.sha256(verifier.vkey.encode()).digest()


@dataclass(frozen=True)
class AnchorRecord:
    """One anchor transaction."""

    chain_id: int
    contract: str
    log_id: str
    size: int
    root: str  # hex
    tx: str
    block: int

    def to_json(self) -> dict[str, Any]:
        """As stored."""
        return asdict(self)


class Anchors:
    """The anchors of one log: sending them, remembering them, checking them."""

    def __init__(self, log: TileLog, chain: Chain | None = None) -> None:
        self.log = log
        self.chain = chain
        self.path = log.root / ANCHORS_FILE

    def records(self) -> list[AnchorRecord]:
        """Every anchor sent for this log, oldest first."""
        try:
            return [AnchorRecord(**r) for r in json.loads(self.path.read_text())]
        except FileNotFoundError:
            return []

    def anchor(self, account: LocalAccount) -> AnchorRecord:
        """Anchor the log's latest signed checkpoint; return the record."""
        if self.log.signer is None:
            raise AuditError("open the log with its key to anchor it")
        if self.chain is None:
            raise AuditError("anchoring needs a chain connection")
        chain = self.chain
        contract = chain.contract("AuditAnchor")
        checkpoint = self.log.signed_checkpoint()
        if checkpoint.size == 0:
            raise AuditError("the log is empty; append entries and sign a checkpoint first")
        lid = log_id(self.log.signer.verifier)
        latest = contract.functions.latest(account.address, lid).call()  # this account's anchors
        if int(latest) >= checkpoint.size:
            raise AuditError(
                f"size {checkpoint.size} is already anchored (chain has {latest}); "
                "append and checkpoint before anchoring again"
            )
        data = contract.encode_abi("anchor", args=[lid, checkpoint.size, checkpoint.root])
        call = Call(
            to=str(contract.address),
            data=bytes.fromhex(data.removeprefix("0x")),
            label=f"anchor({self.log.origin}, {checkpoint.size})",
        )
        receipt = chain.sender(account).send(call)
        record = AnchorRecord(
            chain_id=chain.chain_id, contract=str(contract.address), log_id=lid.hex(),
            size=checkpoint.size, root=checkpoint.root.hex(), tx=receipt.tx_hash,
            block=receipt.block_number,
        )  # fmt: skip
        records = [*self.records(), record]
        atomic_write(
            self.path, json.dumps([r.to_json() for r in records], indent=1).encode(), mode=0o644
        )
        return record

    def latest_for(self, size: int) -> AnchorRecord | None:
        """The first anchor covering ``size`` entries."""
        for record in self.records():
            if record.size >= size:
                return record
        return None


def read_anchor(w3: Web3, record: AnchorRecord) -> tuple[int, bytes, str]:
    """Read an anchor back from the chain: (size, root, owner) of its Anchored event."""
    receipt = w3.eth.get_transaction_receipt(record.tx)  # type: ignore[arg-type]
    for entry in receipt["logs"]:
        topics = [t.hex() if not isinstance(t, str) else t for t in entry["topics"]]
        topics = ["0x" + t.removeprefix("0x") for t in topics]
        if (
            str(entry["address"]).lower() == record.contract.lower()
            and topics
            and topics[0].lower() == _ANCHORED_TOPIC.lower()
            and topics[1].removeprefix("0x").lower() == record.log_id.lower()
        ):
            data = bytes(entry["data"])
            size = int.from_bytes(data[0:32], "big")
            root = data[32:64]
            owner = "0x" + topics[2][-40:]
            return size, root, Web3.to_checksum_address(owner)
    raise AuditError(f"transaction {record.tx} holds no anchor of log {record.log_id[:16]}…")


def check_anchors(directory: Path, w3: Web3) -> tuple[int, list[Problem]]:
    """Read each anchor the log at ``directory`` records back from the chain and compare it
    with the log: ``(anchors checked, problems)``; a problem is an anchored root the log
    does not have."""
    anchors_file = directory / ANCHORS_FILE
    if not anchors_file.exists():
        return 0, []
    tree = TileLog.open(directory)
    problems: list[Problem] = []
    records = [AnchorRecord(**raw) for raw in json.loads(anchors_file.read_text())]
    for record in records:
        size, root, _ = read_anchor(w3, record)
        if size > tree.size or tree.root_hash(size) != root:
            problems.append(Problem(f"anchor {record.tx}",
                                    f"the chain anchors size {size} with a root this log does not have"))  # fmt: skip
    return len(records), problems


@dataclass(frozen=True)
class AnchorPolicy:
    """When to anchor: every ``every`` entries or ``interval`` s; cheap blocks, within ``max_latency``.

    Without fee awareness it anchors as soon as it is due. With it, once due it
    waits for a block whose base fee is at or below the ``cheap_percentile`` of
    the recent ones, but never past ``max_latency`` (it anchors in the last
    block that keeps the bound).
    """

    every: int = 10_000
    interval: float = 60.0
    max_latency: float = 300.0
    cheap_percentile: float = 25.0
    fee_aware: bool = True
    block_time: float = 12.0

    def should_anchor(
        self, *, pending: int, waited: float, base_fee: int, recent_fees: Sequence[int]
    ) -> bool:
        """Decide now: ``pending`` entries unanchored for ``waited`` s, current and recent base fees."""
        if pending <= 0:
            return False
        if waited + self.block_time > self.max_latency:
            return True  # the next block would break the latency bound
        due = pending >= self.every or waited >= self.interval
        if not due or not self.fee_aware or not recent_fees:
            return due
        ranked = sorted(recent_fees)
        threshold = ranked[min(len(ranked) - 1, int(len(ranked) * self.cheap_percentile / 100))]
        return base_fee <= threshold


class AnchorService:
    """Anchors a log by its policy: call :meth:`tick` regularly (a loop, a timer, the SDK)."""

    def __init__(self, anchors: Anchors, account: LocalAccount, policy: AnchorPolicy) -> None:
        self.anchors = anchors
        self.account = account
        self.policy = policy
        self._first_pending_at: float | None = None

    def tick(self, now: float) -> AnchorRecord | None:
        """Anchor if the policy says so now; return the new anchor, if any."""
        log = self.anchors.log
        records = self.anchors.records()
        anchored = records[-1].size if records else 0
        pending = log.size - anchored
        if pending <= 0:
            self._first_pending_at = None
            return None
        if self._first_pending_at is None:
            self._first_pending_at = now
        assert self.anchors.chain is not None
        base_fee, recent = fee_history(self.anchors.chain.w3)
        waited = now - self._first_pending_at
        if not self.policy.should_anchor(
            pending=pending, waited=waited, base_fee=base_fee, recent_fees=recent
        ):
            return None
        log.checkpoint()
        record = self.anchors.anchor(self.account)
        self._first_pending_at = None
        return record


def fee_history(w3: Web3, blocks: int = 20) -> tuple[int, list[int]]:
    """(next block's base fee, base fees of the last ``blocks`` blocks) from eth_feeHistory."""
    reply = w3.provider.make_request(RPCEndpoint("eth_feeHistory"), [hex(blocks), "latest", []])
    fees = [int(x, 16) if isinstance(x, str) else int(x) for x in reply["result"]["baseFeePerGas"]]
    return fees[-1], fees[:-1]
