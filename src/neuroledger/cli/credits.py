"""``neuroledger credits …``: the market's payment token."""

from __future__ import annotations

from typing import Annotated

import typer

from neuroledger.cli._commands import help_of
from neuroledger.cli._context import context_of, emit
from neuroledger.cli._options import JsonOpt
from neuroledger.market import Credits, format_amount, parse_amount

app = typer.Typer(help=help_of("credits"))

TokenOpt = Annotated[
    str | None,
    typer.Option("--token", help="An EIP-3009 token address (default: the suite's Credits)."),
]


def _credits(ctx: typer.Context, token: str | None) -> Credits:
    c = context_of(ctx)
    return Credits(c.chain(), c.keystore(), token=token)


@app.command("faucet")
def faucet(
    ctx: typer.Context,
    to: Annotated[str, typer.Argument(help="Local identity (or address) to fund.")],
    amount: Annotated[str, typer.Option("--amount", help="Credits to mint.")] = "1000",
    from_: Annotated[
        str | None,
        typer.Option("--from", help="Local identity that sends the call (default: TO)."),
    ] = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Mint credits to an identity from the embedded chain's faucet."""
    credits = _credits(ctx, token)
    atomic = parse_amount(amount, credits.decimals)
    receipt = credits.faucet(to, atomic, by=from_ or to)
    balance = credits.balance(to)
    emit(
        {"to": credits.address_of(to), "amount": str(atomic), "balance": str(balance),
         "tx": receipt.tx_hash, "block": receipt.block_number},
        as_json=as_json,
        human=f"{to} received {amount} credits; it holds {format_amount(balance, credits.decimals)} "
        f"(tx {receipt.tx_hash})",
    )  # fmt: skip


@app.command("balance")
def balance(
    ctx: typer.Context,
    who: Annotated[str, typer.Argument(help="Local identity or address.")],
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Credits held by an identity (its wallet: the current owner key)."""
    credits = _credits(ctx, token)
    atomic = credits.balance(who)
    text = format_amount(atomic, credits.decimals)
    emit(
        {"who": credits.address_of(who), "balance": str(atomic), "credits": text,
         "token": credits.address},
        as_json=as_json,
        human=f"{who}: {text} credits",
    )  # fmt: skip


@app.command("send")
def send(
    ctx: typer.Context,
    to: Annotated[str, typer.Argument(help="Local identity or address that receives.")],
    amount: Annotated[str, typer.Argument(help="Credits to send, e.g. 12.5.")],
    from_: Annotated[str, typer.Option("--from", help="Local identity that pays.")],
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Send credits from one of your identities."""
    credits = _credits(ctx, token)
    atomic = parse_amount(amount, credits.decimals)
    receipt = credits.send(to, atomic, by=from_)
    emit(
        {"from": credits.address_of(from_), "to": credits.address_of(to), "amount": str(atomic),
         "tx": receipt.tx_hash, "block": receipt.block_number},
        as_json=as_json,
        human=f"sent {amount} credits from {from_} to {to} (tx {receipt.tx_hash})",
    )  # fmt: skip
