"""The energy and cost bill: gas per capability from the chain's receipts, and its energy.

:func:`energy_report` finds every transaction that touched the suite's contracts in a range
of blocks (each contract logs an event for every change, so one ``eth_getLogs`` per chunk
finds them), reads each receipt once, and sums gas per capability (identity, provenance,
audit, federated, private data, market, governance). Energy is estimated from gas with
the conversion below, next to what the same gas would have cost on proof of work.

The conversion, from the Crypto Carbon Ratings Institute's report on the Merge (September
2022): Ethereum used about 23 million MWh a year under proof of work and about 2,600 MWh a
year under proof of stake. Spread over the gas mainnet burns in a year (15 million gas a
block, its target, 7,200 blocks a day: 3.94e13 gas), that is about 0.066 mWh per gas on
proof of stake and 0.58 Wh per gas on proof of work. A proof-of-authority network (one
machine, like the embedded chain) uses less still; the proof-of-stake figure is an upper
bound for it. These are estimates of a network's share per unit of work, not meter
readings.

Batching is counted too: an anchor covers every audit entry since the last one (one
transaction instead of one per entry), and a settlement batch settles many x402 payments
in one transaction (each saves at least the 21,000 gas every transaction costs).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

if TYPE_CHECKING:
    from neuroledger.chain._client import Chain

__all__ = [
    "CAPABILITIES",
    "GAS_SENT",
    "WH_PER_GAS_POS",
    "WH_PER_GAS_POW",
    "EnergyReport",
    "energy_report",
]

#: The gas of every transaction this process sent and saw confirmed (``--energy`` prints
#: their sum when a command ends).
GAS_SENT: list[int] = []

#: Which capability each suite contract serves.
CAPABILITIES = {
    "DIDRegistry": "identity",
    "AssetRegistry": "provenance",
    "AuditAnchor": "audit",
    "FederatedTask": "federated",
    "AccessGrants": "private data",
    "Credits": "market",
    "AgentRegistry": "market",
    "JobEscrow": "market",
    "PaymentSettler": "market",
    "ReputationRegistry": "market",
    "ValidationRegistry": "market",
    "Marketplace": "market",
    "Timelock": "governance",
}

#: Ethereum's yearly electricity, CCRI (September 2022), in Wh.
POS_WH_PER_YEAR = 2_600e6
POW_WH_PER_YEAR = 23_000_000e6
#: Mainnet's yearly gas at its target of 15 million gas a block, 7,200 blocks a day.
GAS_PER_YEAR = 15_000_000 * 7_200 * 365
WH_PER_GAS_POS = POS_WH_PER_YEAR / GAS_PER_YEAR
WH_PER_GAS_POW = POW_WH_PER_YEAR / GAS_PER_YEAR
#: The gas every transaction pays before it does anything.
INTRINSIC_GAS = 21_000
_CHUNK = 50_000
_ANCHORED = "0x" + keccak(text="Anchored(bytes32,address,uint64,bytes32,uint64)").hex()
_SETTLED = "0x" + keccak(text="PaymentSettled(address,address,address,uint256,bytes32)").hex()


@dataclass(frozen=True)
class CapabilityUse:
    """What one capability cost in the range."""

    capability: str
    transactions: int
    gas: int
    wh_pos: float
    wh_pow: float


@dataclass(frozen=True)
class Batching:
    """What one kind of batching saved in the range."""

    what: str
    items: int
    transactions: int
    gas: int
    saved_gas: int
    saved_wh_pos: float


@dataclass(frozen=True)
class EnergyReport:
    """The bill of a range of blocks."""

    chain_id: int
    from_block: int
    to_block: int
    from_time: int
    to_time: int
    capabilities: list[CapabilityUse]
    batching: list[Batching]
    conversion: dict[str, Any] = field(default_factory=dict)

    @property
    def gas(self) -> int:
        return sum(c.gas for c in self.capabilities)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "gas": self.gas, "wh_pos": self.gas * WH_PER_GAS_POS,
                "wh_pow": self.gas * WH_PER_GAS_POW}  # fmt: skip


def _topic0(log: Any) -> str:
    t = log["topics"][0]
    return (t if isinstance(t, str) else "0x" + bytes(t).hex()).lower()


def first_block_at(chain: Chain, timestamp: int, low: int, high: int) -> int:
    """The first block in [low, high] at or after ``timestamp`` (high + 1 if none)."""
    while low <= high:
        mid = (low + high) // 2
        if int(chain.w3.eth.get_block(mid)["timestamp"]) < timestamp:
            low = mid + 1
        else:
            high = mid - 1
    return low


def energy_report(chain: Chain, *, from_block: int | None = None, to_block: int | None = None,
                  since: int | None = None, extra: dict[str, str] | None = None,
                  progress: Callable[[int, int], None] | None = None) -> EnergyReport:  # fmt: skip
    """Gas and energy per capability of the transactions to the suite in a range of blocks
    (``since``: a unix time, instead of ``from_block``). ``extra`` maps more contract
    addresses (e.g. agent accounts) to capabilities."""
    record = chain.deployment()
    names = {entry["address"].lower(): name for name, entry in record.contracts.items()}
    owner_of = {a: CAPABILITIES.get(n, n) for a, n in names.items()}
    owner_of.update({a.lower(): c for a, c in (extra or {}).items()})
    latest = int(chain.w3.eth.block_number)
    start = min((int(e.get("block", 0)) for e in record.contracts.values()), default=0)
    low = max(start, from_block or 0)
    high = latest if to_block is None else min(to_block, latest)
    if since is not None:
        low = max(low, first_block_at(chain, since, low, high))
    addresses = [to_checksum_address(a) for a in owner_of]
    logs: list[Any] = []
    for begin in range(low, high + 1, _CHUNK):
        end = min(begin + _CHUNK - 1, high)
        logs.extend(
            chain.w3.eth.get_logs({"address": addresses, "fromBlock": begin, "toBlock": end})
        )
    by_tx: dict[str, list[Any]] = {}
    for entry in record.contracts.values():  # the suite's deployment, which may log nothing
        if entry.get("tx") and low <= int(entry.get("block", -1)) <= high:
            by_tx[str(entry["tx"])] = []
    for log in logs:
        tx = log["transactionHash"]
        by_tx.setdefault(tx if isinstance(tx, str) else "0x" + bytes(tx).hex(), []).append(log)
    used: dict[str, list[int]] = {}
    batches: dict[str, list[int]] = {"anchor": [0, 0, 0, 0], "settle": [0, 0, 0, 0]}
    for i, (tx, tx_logs) in enumerate(by_tx.items()):
        receipt = chain.w3.eth.get_transaction_receipt(tx)  # type: ignore[arg-type]
        gas = int(receipt["gasUsed"])
        target = str(receipt.get("to") or "").lower()
        if not target:  # a contract's creation (the suite's own deployment included)
            capability = "deployment"
        else:
            first = str(tx_logs[0]["address"]).lower() if tx_logs else ""
            capability = owner_of.get(target) or owner_of.get(first, "other")
        row = used.setdefault(capability, [0, 0])
        row[0] += 1
        row[1] += gas
        anchored = [entry for entry in tx_logs if _topic0(entry) == _ANCHORED]
        if anchored:
            entries = sum(_anchored_entries(entry) for entry in anchored)
            b = batches["anchor"]
            b[0] += entries
            b[1] += 1
            b[2] += gas
            b[3] += max(0, entries - len(anchored)) * gas // len(anchored)
        settled = sum(1 for entry in tx_logs if _topic0(entry) == _SETTLED)
        if settled:
            b = batches["settle"]
            b[0] += settled
            b[1] += 1
            b[2] += gas
            b[3] += (settled - 1) * INTRINSIC_GAS
        if progress is not None:
            progress(i + 1, len(by_tx))
    rows = [CapabilityUse(capability=c, transactions=n, gas=g, wh_pos=g * WH_PER_GAS_POS, wh_pow=g * WH_PER_GAS_POW)
            for c, (n, g) in sorted(used.items(), key=lambda kv: -kv[1][1])]  # fmt: skip
    labels = {"anchor": "audit entries anchored by checkpoint (one transaction per anchor, not per entry)",
              "settle": "x402 payments settled in batches (each saves at least a transaction's 21,000 gas)"}  # fmt: skip
    batching = [Batching(what=labels[k], items=v[0], transactions=v[1], gas=v[2], saved_gas=v[3],
                         saved_wh_pos=v[3] * WH_PER_GAS_POS) for k, v in batches.items() if v[1]]  # fmt: skip
    times = (
        [int(chain.w3.eth.get_block(b)["timestamp"]) for b in (low, high)]
        if low <= high
        else [0, 0]
    )
    return EnergyReport(
        chain_id=chain.chain_id, from_block=low, to_block=high, from_time=times[0], to_time=times[1],
        capabilities=rows, batching=batching,
        conversion={"wh_per_gas_pos": WH_PER_GAS_POS, "wh_per_gas_pow": WH_PER_GAS_POW,
                    "source": "CCRI, The Merge: Implications on the Electricity Consumption and Carbon "
                              "Footprint of the Ethereum Network (September 2022): about 2,600 MWh a year "
                              "under proof of stake, 23 million MWh under proof of work; spread over "
                              f"{GAS_PER_YEAR:.3g} gas a year (15 million gas a block, 7,200 blocks a day)"},
    )  # fmt: skip


def _anchored_entries(log: Any) -> int:
    """Entries an ``Anchored`` event covers: its new tree size minus the size before."""
    data = log["data"]
    raw = bytes.fromhex(data[2:]) if isinstance(data, str) else bytes(data)
    tree_size = int.from_bytes(raw[0:32], "big")
    previous = int.from_bytes(raw[64:96], "big")
    return max(0, tree_size - previous)
