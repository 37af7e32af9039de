"""``neuroledger consent …``: data subjects give or withdraw consent to a purpose."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from neuroledger.cli._commands import help_of
from neuroledger.cli._context import emit
from neuroledger.cli._options import JsonOpt
from neuroledger.cli._privacy import (
    data_of,
)

if TYPE_CHECKING:
    pass

app = typer.Typer(help=help_of("consent"))


def _consent(ctx: typer.Context, purpose: str, subject: str, given: bool, as_json: bool) -> None:
    tx = data_of(ctx).consent(subject, purpose, given=given)
    emit({"subject": subject, "purpose": purpose, "given": given, "tx": tx}, as_json=as_json,
         human=f"{subject} {'gave' if given else 'withdrew'} consent to {purpose}")  # fmt: skip


@app.command("give")
def consent_give(
    ctx: typer.Context,
    purpose: str,
    subject: Annotated[str, typer.Option("--subject", help="The data subject's identity.")],
    as_json: JsonOpt = False,
) -> None:
    """Give (again) consent to the use of your records for a purpose."""
    _consent(ctx, purpose, subject, True, as_json)


@app.command("withdraw")
def consent_withdraw(
    ctx: typer.Context,
    purpose: str,
    subject: Annotated[str, typer.Option("--subject", help="The data subject's identity.")],
    as_json: JsonOpt = False,
) -> None:
    """Withdraw consent: later jobs for that purpose exclude your records."""
    _consent(ctx, purpose, subject, False, as_json)
