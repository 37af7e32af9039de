"""``neuroledger market job …``: jobs in escrow (ERC-8183)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer

from neuroledger.cli._context import context_of, emit
from neuroledger.cli._options import JsonOpt
from neuroledger.market import Jobs, JobView, format_amount, parse_amount

app = typer.Typer(help="Jobs in escrow (ERC-8183): create, fund, submit, complete, reject, refund.")

FromOpt = Annotated[str, typer.Option("--from", help="Local identity that sends the call.")]
ReasonOpt = Annotated[str, typer.Option("--reason", help="Why (hashed into the event).")]


def _jobs(ctx: typer.Context) -> Jobs:
    c = context_of(ctx)
    from neuroledger.market import AgentAccounts

    chain, keystore = c.chain(), c.keystore()
    return Jobs(chain, keystore, AgentAccounts(chain, keystore, c.home()))


def _show(jobs: Jobs, job_id: int, as_json: bool, done: str = "") -> None:
    job = jobs.status(job_id)
    emit(job.to_json(), as_json=as_json, human=(done + "\n" if done else "") + _line(jobs, job))


def _line(jobs: Jobs, job: JobView) -> str:
    until = dt.datetime.fromtimestamp(job.expired_at, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    price = format_amount(job.budget, jobs.credits.decimals)
    held = f", payout held until {job.release_at}" if job.release_at else ""
    return (f"job {job.job_id}: {job.status.upper()}{held}; budget {price}; client {job.client}; "
            f"provider {job.provider or '(not set)'}; evaluator {job.evaluator}; expires {until}"
            + (f"; deliverable {job.deliverable}" if job.deliverable else ""))  # fmt: skip


@app.command("create")
def create(
    ctx: typer.Context,
    from_: FromOpt,
    evaluator: Annotated[
        str, typer.Option("--evaluator", help="Identity or address that accepts.")
    ],
    description: Annotated[str, typer.Option("--description", help="The job's brief.")],
    provider: Annotated[str | None, typer.Option("--provider", help="Identity or address.")] = None,
    budget: Annotated[str | None, typer.Option("--budget", help="Price in credits.")] = None,
    expires_in: Annotated[
        int, typer.Option("--expires-in", help="Seconds until anyone may refund.")
    ] = 86400,
    dispute_window: Annotated[
        int, typer.Option("--dispute-window", help="Seconds a completion waits.")
    ] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Create a job as its client (and set its price with --budget)."""
    jobs = _jobs(ctx)
    atomic = parse_amount(budget, jobs.credits.decimals) if budget is not None else None
    job = jobs.create(by=from_, evaluator=evaluator, provider=provider, expires_in=expires_in,
                      description=description, budget=atomic, dispute_window=dispute_window)  # fmt: skip
    emit(job.to_json(), as_json=as_json, human=_line(jobs, job))


@app.command("fund")
def fund(ctx: typer.Context, job_id: int, from_: FromOpt, as_json: JsonOpt = False) -> None:
    """Pay the agreed budget into escrow (the client)."""
    jobs = _jobs(ctx)
    jobs.fund(job_id, by=from_)
    _show(jobs, job_id, as_json)


@app.command("submit")
def submit(
    ctx: typer.Context,
    job_id: int,
    deliverable: Annotated[str, typer.Argument(help="The result's asset id (0x + 64 hex).")],
    from_: FromOpt,
    as_json: JsonOpt = False,
) -> None:
    """Deliver the result (the provider)."""
    jobs = _jobs(ctx)
    jobs.submit(job_id, deliverable, by=from_)
    _show(jobs, job_id, as_json)


@app.command("complete")
def complete(ctx: typer.Context, job_id: int, from_: FromOpt, reason: ReasonOpt = "",
             as_json: JsonOpt = False) -> None:  # fmt: skip
    """Accept the delivery (the evaluator): the provider is paid."""
    jobs = _jobs(ctx)
    jobs.complete(job_id, by=from_, reason=reason.encode())
    _show(jobs, job_id, as_json)


@app.command("reject")
def reject(ctx: typer.Context, job_id: int, from_: FromOpt, reason: ReasonOpt = "",
           as_json: JsonOpt = False) -> None:  # fmt: skip
    """Reject (the client while open, the evaluator after): the client is refunded."""
    jobs = _jobs(ctx)
    jobs.reject(job_id, by=from_, reason=reason.encode())
    _show(jobs, job_id, as_json)


@app.command("refund")
def refund(ctx: typer.Context, job_id: int, from_: FromOpt, as_json: JsonOpt = False) -> None:
    """Return an expired job's escrow to its client (anyone)."""
    jobs = _jobs(ctx)
    jobs.refund(job_id, by=from_)
    _show(jobs, job_id, as_json)


@app.command("status")
def status(ctx: typer.Context, job_id: int, as_json: JsonOpt = False) -> None:
    """A job as the chain holds it."""
    _show(_jobs(ctx), job_id, as_json)
