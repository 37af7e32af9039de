"""``neuroledger market feedback …``: reputation from settled deals (ERC-8004 registry)."""

from __future__ import annotations

from typing import Annotated

import typer

from neuroledger.cli._context import context_of, emit
from neuroledger.cli._options import JsonOpt
from neuroledger.errors import MarketError
from neuroledger.market import Feedback, Reputation

app = typer.Typer(help="Feedback backed by settled deals: give, list, summary, record, revoke.")

FromOpt = Annotated[str, typer.Option("--from", help="Local identity (the client).")]


def _rep(ctx: typer.Context) -> Reputation:
    c = context_of(ctx)
    return Reputation(c.chain(), c.keystore())


def _line(f: Feedback) -> str:
    tags = ", ".join(t for t in (f.tag1, f.tag2) if t)
    return (f"agent {f.agent_id} #{f.index} from {f.client}: {f.rating}"
            + (f" [{tags}]" if tags else "") + f" (deal {f.weight})"
            + (" REVOKED" if f.revoked else ""))  # fmt: skip


@app.command("give")
def give(
    ctx: typer.Context,
    agent_id: Annotated[int, typer.Argument(help="The agent rated.")],
    rating: Annotated[str, typer.Argument(help="The rating, e.g. 87 or 4.5.")],
    by: FromOpt,
    tag1: Annotated[str, typer.Option("--tag1", help="e.g. starred, uptime.")] = "",
    tag2: Annotated[str, typer.Option("--tag2")] = "",
    endpoint: Annotated[str, typer.Option("--endpoint", help="The endpoint rated.")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Rate an agent, spending one settled deal with it (a payment or a delivered job)."""
    feedback = _rep(ctx).give(agent_id, rating, by=by, tag1=tag1, tag2=tag2, endpoint=endpoint)
    emit(feedback.to_json(), as_json=as_json, human=_line(feedback))


@app.command("record")
def record(
    ctx: typer.Context,
    by: FromOpt,
    job: Annotated[int | None, typer.Option("--job", help="A delivered, settled job.")] = None,
    payer: Annotated[str | None, typer.Option("--payer", help="Payer of an x402 payment.")] = None,
    nonce: Annotated[str | None, typer.Option("--nonce", help="Its EIP-3009 nonce (0x…).")] = None,
) -> None:
    """Record a settled deal as one feedback right of its client (anyone may)."""
    rep = _rep(ctx)
    if job is not None:
        receipt = rep.record_job(job, by=by)
    elif payer and nonce and nonce.startswith("0x") and len(nonce) == 66:
        receipt = rep.record_payment(payer, bytes.fromhex(nonce[2:]), by=by)
    else:
        raise MarketError("give --job ID, or --payer P --nonce 0x… (32 bytes) of a settled payment")
    emit({"transaction": receipt.tx_hash}, as_json=False, human=f"recorded in {receipt.tx_hash}")


@app.command("revoke")
def revoke(ctx: typer.Context, agent_id: int, index: int, by: FromOpt) -> None:
    """Revoke one of your feedbacks (its deal stays spent)."""
    receipt = _rep(ctx).revoke(agent_id, index, by=by)
    emit(
        {}, as_json=False, human=f"feedback {index} on agent {agent_id} revoked ({receipt.tx_hash})"
    )


@app.command("list")
def list_(
    ctx: typer.Context,
    agent_id: int,
    revoked: Annotated[bool, typer.Option("--revoked", help="Include revoked feedback.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Every feedback on an agent, with the value of the deal behind each."""
    items = _rep(ctx).feedback(agent_id, include_revoked=revoked)
    emit([f.to_json() for f in items], as_json=as_json,
         human="\n".join(_line(f) for f in items) or f"no feedback on agent {agent_id}")  # fmt: skip


@app.command("summary")
def summary(
    ctx: typer.Context,
    agent_id: int,
    tag1: Annotated[str, typer.Option("--tag1")] = "",
    tag2: Annotated[str, typer.Option("--tag2")] = "",
    client: Annotated[
        list[str] | None, typer.Option("--client", help="Count only these; repeat.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """The deal-weighted average rating of an agent, from settled deals only."""
    s = _rep(ctx).summary(agent_id, clients=client, tag1=tag1, tag2=tag2)
    emit(s, as_json=as_json, human=f"agent {agent_id}: {s['rating']} from {s['count']} feedback(s) "
         f"by {s['clients']} client(s), weighted by {s['dealValue']} in deals")  # fmt: skip
