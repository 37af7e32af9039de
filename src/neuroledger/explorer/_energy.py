"""The energy and cost bill on the explorer: gas per capability of every transaction to
the suite, kept for final blocks only (so a reorg above them changes nothing kept), from
the same receipts and conversion as ``neuroledger report energy``."""

from __future__ import annotations

from typing import Any

from neuroledger.chain import WH_PER_GAS_POS, WH_PER_GAS_POW, Chain, energy_report
from neuroledger.explorer._index import ExplorerIndex

__all__ = ["ENERGY_SCHEMA", "energy_view", "follow"]

ENERGY_SCHEMA = """
CREATE TABLE IF NOT EXISTS energy (
    capability TEXT PRIMARY KEY, transactions INTEGER NOT NULL, gas INTEGER NOT NULL
);
"""


def follow(index: ExplorerIndex, chain: Chain, **sync: Any) -> int:
    """Sync ``index`` with ``chain``, then add the gas of the blocks that became final;
    return how many events were stored."""
    stored = index.sync(chain.w3, confirmations=chain.confirmations, **sync)
    with index.db:
        index.db.executescript(ENERGY_SCHEMA)
    done = int(index.meta("energy_block") or index.start_block - 1)
    final = index.final_block
    if final > done:
        report = energy_report(chain, from_block=done + 1, to_block=final)
        with index.db:
            for use in report.capabilities:
                index.db.execute(
                    "INSERT INTO energy VALUES (?, ?, ?) ON CONFLICT (capability) DO UPDATE SET "
                    "transactions = transactions + excluded.transactions, gas = gas + excluded.gas",
                    (use.capability, use.transactions, use.gas),
                )
            index.set_meta("energy_block", str(final))
    return stored


def energy_view(index: ExplorerIndex) -> dict[str, Any]:
    """Gas and estimated energy per capability, largest first, with bars to draw."""
    try:
        rows = index.db.execute(
            "SELECT capability, transactions, gas FROM energy ORDER BY gas DESC"
        ).fetchall()
    except Exception:  # no energy table yet: nothing followed with a chain
        rows = []
    top = max((g for _, _, g in rows), default=1) or 1
    items = [{"capability": c, "transactions": n, "gas": g, "wh_pos": g * WH_PER_GAS_POS,
              "wh_pow": g * WH_PER_GAS_POW, "bar": round(360 * g / top, 1)}
             for c, n, g in rows]  # fmt: skip
    total = sum(i["gas"] for i in items)
    return {"items": items, "gas": total, "wh_pos": total * WH_PER_GAS_POS,
            "wh_pow": total * WH_PER_GAS_POW, "through_block": index.meta("energy_block"),
            "wh_per_gas_pos": WH_PER_GAS_POS, "wh_per_gas_pow": WH_PER_GAS_POW}  # fmt: skip
