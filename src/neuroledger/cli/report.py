"""``neuroledger report …``: reports read from the chain."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer

from neuroledger.cli._commands import help_of
from neuroledger.cli._context import context_of, emit
from neuroledger.cli._options import JsonOpt
from neuroledger.errors import ConfigError

app = typer.Typer(help=help_of("report"))


@app.command("energy")
def energy(
    ctx: typer.Context,
    days: Annotated[float | None, typer.Option("--days", help="The last N days only.")] = None,
    from_block: Annotated[int | None, typer.Option("--from-block", help="First block.")] = None,
    to_block: Annotated[int | None, typer.Option("--to-block", help="Last block.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Gas and estimated energy per capability over a period, from the chain's receipts,
    with what batching saved (conversion and its source in docs/energy.md)."""
    from neuroledger.chain import energy_report
    from neuroledger.market import AgentAccounts

    if days is not None and days <= 0:
        raise ConfigError("--days must be positive, e.g. --days 7")
    c = context_of(ctx)
    chain = c.chain()
    since = None
    if days is not None:
        since = int(chain.w3.eth.get_block("latest")["timestamp"] - days * 86400)
    accounts = AgentAccounts(chain, c.keystore(), c.home())
    extra = {address: "market" for address in accounts.all().values()}
    report = energy_report(
        chain, from_block=from_block, to_block=to_block, since=since, extra=extra
    )

    def when(t: int) -> str:
        return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")

    lines = [f"chain {report.chain_id}, blocks {report.from_block}-{report.to_block} "
             f"({when(report.from_time)} to {when(report.to_time)})",
             f"{'capability':<14} {'txs':>6} {'gas':>14} {'proof of stake':>16} {'proof of work':>15}"]  # fmt: skip
    for row in report.capabilities:
        lines.append(f"{row.capability:<14} {row.transactions:>6} {row.gas:>14,} {row.wh_pos:>13.3g} Wh  "
                     f"{row.wh_pow / 1000:>11.3g} kWh")  # fmt: skip
    total = report.to_json()
    lines.append(f"{'total':<14} {sum(r.transactions for r in report.capabilities):>6} {report.gas:>14,} "
                 f"{total['wh_pos']:>13.3g} Wh  {total['wh_pow'] / 1000:>11.3g} kWh")  # fmt: skip
    for b in report.batching:
        lines.append(f"batching saved {b.saved_gas:,} gas ({b.saved_wh_pos:.3g} Wh): {b.items} {b.what}, "
                     f"in {b.transactions} transaction(s)")  # fmt: skip
    lines.append("conversion: " + report.conversion["source"])
    emit(total, as_json=as_json, human="\n".join(lines))
