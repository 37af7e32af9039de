"""``neuroledger validator …``: stake as a validator and run the validation loop."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from neuroledger.cli._commands import help_of
from neuroledger.cli._context import context_of, emit
from neuroledger.cli._options import JsonOpt
from neuroledger.market import Validation, Validator, format_amount, parse_amount

app = typer.Typer(help=help_of("validator"))

AsOpt = Annotated[str, typer.Option("--as", help="Local identity acting as the validator.")]


def validation_of(ctx: typer.Context) -> Validation:
    c = context_of(ctx)
    return Validation(c.chain(), c.keystore(), state_dir=c.home())


def _status(v: Validation, name: str, as_json: bool, done: str = "") -> None:
    s = v.stake_of(name)
    d = v.credits.decimals
    human = (f"{done}\n" if done else "") + (
        f"validator {name} ({s.validator}): active {format_amount(s.active, d)}, unbonding "
        f"{format_amount(s.unbonding, d)}" + (f" until {s.unbonding_at}" if s.unbonding else "")
        + f"; open requests {s.open_requests}; " + ("in the pool" if s.in_pool else "not in the pool")
    )  # fmt: skip
    emit(s.to_json(), as_json=as_json, human=human)


@app.command("stake")
def stake(ctx: typer.Context, amount: str, as_: AsOpt, as_json: JsonOpt = False) -> None:
    """Add stake (in credits); at the minimum stake the validator joins the pool."""
    v = validation_of(ctx)
    receipt = v.stake(parse_amount(amount, v.credits.decimals), by=as_)
    _status(v, as_, as_json, f"staked {amount} in {receipt.tx_hash}")


@app.command("unstake")
def unstake(ctx: typer.Context, amount: str, as_: AsOpt, as_json: JsonOpt = False) -> None:
    """Start withdrawing stake: it leaves the pool now and unbonds after the delay."""
    v = validation_of(ctx)
    receipt = v.unstake(parse_amount(amount, v.credits.decimals), by=as_)
    _status(v, as_, as_json, f"unstaking {amount} in {receipt.tx_hash}")


@app.command("withdraw")
def withdraw(ctx: typer.Context, as_: AsOpt, as_json: JsonOpt = False) -> None:
    """Withdraw unbonded stake (after the delay, once every request taken is settled)."""
    v = validation_of(ctx)
    receipt = v.withdraw(by=as_)
    _status(v, as_, as_json, f"withdrawn in {receipt.tx_hash}")


@app.command("status")
def status(ctx: typer.Context, name: str, as_json: JsonOpt = False) -> None:
    """A validator's stake, what is unbonding and how many requests it still owes."""
    _status(validation_of(ctx), name, as_json)


@app.command("run")
def run(
    ctx: typer.Context,
    as_: AsOpt,
    once: Annotated[bool, typer.Option("--once", help="One pass, then exit.")] = False,
    duration: Annotated[
        float | None, typer.Option("--for", help="Run this many seconds, then exit.")
    ] = None,
    interval: Annotated[float, typer.Option("--interval", help="Seconds between passes.")] = 2.0,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON line per action.")] = False,
) -> None:
    """Watch the requests assigned to this validator: run each check, commit, reveal once
    reveals open, and finalize and settle what is due. Stops on Ctrl-C."""
    loop = Validator(validation_of(ctx), as_)

    def show(action: object) -> None:
        data = action.to_json()  # type: ignore[attr-defined]
        if as_json:
            typer.echo(json.dumps(data, sort_keys=True))
        else:
            typer.echo(f"{data['action']:<10} {data['request_hash']}  {data['detail']}".rstrip())

    if once:
        for action in loop.step():
            show(action)
        return
    try:
        loop.run(interval=interval, duration=duration, on_action=show)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
