"""``neuroledger grant …``: grant, revoke and list access to private assets; approve algorithms."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated

import typer

from neuroledger.cli._commands import help_of
from neuroledger.cli._context import context_of, emit
from neuroledger.cli._options import JsonOpt
from neuroledger.cli._privacy import (
    OwnerOpt,
    PurposeOpt,
    data_of,
)

if TYPE_CHECKING:
    pass

app = typer.Typer(help=help_of("grant"))


@app.command("add")
def grant_add(
    ctx: typer.Context,
    asset: str,
    grantee: Annotated[str, typer.Argument(help="Identity name, did:ethr or address.")],
    owner: OwnerOpt,
    purpose: PurposeOpt,
    mode: Annotated[str, typer.Option("--mode", help="download, compute or both.")] = "compute",
    expires: Annotated[
        str, typer.Option("--expires", help="How long it holds: 30m, 12h, 7d, 2w.")
    ] = "30d",
    replace: Annotated[
        bool,
        typer.Option("--replace", help="Replace a grant that holds for the same purpose."),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Grant an identity access to an asset for a purpose until an expiry.

    Grants for different purposes coexist; one for a purpose that already holds needs
    --replace.
    """
    from neuroledger.privacy import parse_duration, utc

    receipt = data_of(ctx).grant(asset, grantee, modes=mode, purpose=purpose, replace=replace,
                               expires_in=parse_duration(expires), owner=owner)  # fmt: skip
    old = receipt.replaced
    emit(receipt.to_json(), as_json=as_json,
         human=f"granted {'+'.join(receipt.modes)} of {receipt.asset[:12]} to {grantee} for "
         f"{purpose} until {utc(receipt.expiry)}"
         + (" (key wrapped)" if receipt.wrapped else "")
         + (f"; replaced its {'+'.join(old.modes)} grant until {utc(old.expiry)}" if old else ""))  # fmt: skip


@app.command("revoke")
def grant_revoke(
    ctx: typer.Context,
    asset: str,
    grantee: str,
    owner: OwnerOpt,
    purpose: Annotated[
        str | None,
        typer.Option("--purpose", help="The grant's purpose (needed when several hold)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Revoke a grant; the gateway honours it within its cache bound."""
    tx = data_of(ctx).revoke(asset, grantee, owner=owner, purpose=purpose)
    emit({"tx": tx}, as_json=as_json, human=f"revoked the grant of {grantee} on {asset[:12]}"
         + (f" for {purpose}" if purpose else ""))  # fmt: skip


@app.command("list")
def grant_list(
    ctx: typer.Context,
    asset: Annotated[str | None, typer.Argument()] = None,
    as_json: JsonOpt = False,
) -> None:
    """Grants that hold now (unexpired, unrevoked), for one asset or all."""
    c = context_of(ctx)
    views = data_of(ctx).list_grants(asset)
    rows = [v.to_json() for v in views]
    lines = [
        f"{v.asset[:12]}  {c.name_of(v.grantee)}  {'+'.join(v.modes)}  {v.purpose}  until "
        f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime(v.expiry))}"
        for v in views
    ]
    emit(rows, as_json=as_json, human="\n".join(lines) or "no grants hold")


@app.command("approve")
def approve(
    ctx: typer.Context,
    dataset: str,
    algorithm: Annotated[
        str, typer.Argument(help="The code asset (id or prefix) that may run on it.")
    ],
    owner: OwnerOpt,
    withdraw: Annotated[bool, typer.Option("--withdraw", help="Stop approving it.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Approve an algorithm (a registered code asset) to run on a dataset."""
    tx = data_of(ctx).approve(dataset, algorithm, owner=owner, approved=not withdraw)
    verb = "withdrew the approval of" if withdraw else "approved"
    emit(
        {"tx": tx, "approved": not withdraw},
        as_json=as_json,
        human=f"{verb} {algorithm[:12]} on {dataset[:12]}",
    )
