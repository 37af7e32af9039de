"""``neuroledger market validate …``: ask staked validators to check an agent's work."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any

import typer

from neuroledger.cli._context import emit
from neuroledger.cli._options import JsonOpt
from neuroledger.cli.validator import validation_of
from neuroledger.errors import MarketError
from neuroledger.market import (
    RequestView,
    Validation,
    format_amount,
    model_accuracy_check,
    parse_amount,
    request_document,
)

app = typer.Typer(help="k-of-n validation (ERC-8004): request, terms, job, show, finalize, settle.")

FromOpt = Annotated[str, typer.Option("--from", help="Local identity that sends the call.")]
HeldoutOpt = Annotated[
    Path | None,
    typer.Option("--heldout", help="A held-out .npz (x, y): check the model's accuracy on it."),
]
CommitOpt = Annotated[int, typer.Option("--commit-period", help="Seconds to commit.")]
RevealOpt = Annotated[int, typer.Option("--reveal-period", help="Seconds to reveal after.")]
FeeOpt = Annotated[str, typer.Option("--fee", help="Credits shared by the honest validators.")]


def _check(heldout: Path | None) -> dict[str, Any]:
    return model_accuracy_check(heldout) if heldout is not None else {"kind": "asset-integrity"}


def _line(v: Validation, r: RequestView) -> str:
    def at(t: int) -> str:
        return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%H:%M:%S")

    head = (f"request {r.request_hash}: {r.status.upper()}"
            + (f" (median {r.result}, threshold {r.threshold})" if r.result is not None else "")
            + f"; agent {r.agent_id}" + (f", job {r.job_id}" if r.job_id else "")
            + f"; {r.k} of {r.n}; fee {format_amount(r.fee, v.credits.decimals)}"
            + f"; commit by {at(r.commit_deadline)}, reveal by {at(r.reveal_deadline)}"
            + ("; settled" if r.settled else ""))  # fmt: skip
    rows = [f"  {x.validator}  weight {format_amount(x.weight, v.credits.decimals)}  "
            + ("revealed " + str(x.response) if x.revealed else "committed" if x.committed else "silent")
            + (f"  {x.outcome}" if x.outcome else "") for x in r.votes]  # fmt: skip
    return "\n".join([head, *rows])


@app.command("request")
def request(
    ctx: typer.Context,
    agent_id: Annotated[int, typer.Argument(help="The agent whose work is checked.")],
    from_: FromOpt,
    asset: Annotated[str, typer.Option("--asset", help="The asset id of the work checked.")],
    location: Annotated[str, typer.Option("--location", help="Where validators read it.")],
    k: Annotated[int, typer.Option("--k", help="Reveals needed for a verdict.")],
    n: Annotated[int, typer.Option("--n", help="Validators drawn from the pool.")] = 0,
    validator: Annotated[
        list[str] | None, typer.Option("--validator", help="A validator (repeat); else --n drawn.")
    ] = None,
    heldout: HeldoutOpt = None,
    threshold: Annotated[int, typer.Option("--threshold", help="Least median that passes.")] = 50,
    fee: FeeOpt = "0",
    commit_period: CommitOpt = 300,
    reveal_period: RevealOpt = 300,
    tag: Annotated[str, typer.Option("--tag", help="A label, e.g. accuracy.")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Ask validators to check an agent's work (its owner or operator)."""
    if not validator and not n:
        raise MarketError("name validators with --validator, or draw them with --n")
    v = validation_of(ctx)
    document = request_document(_check(heldout), asset=asset, location=location)
    r = v.request(agent_id, document, by=from_, k=k, n=n, validators=list(validator or []),
                  threshold=threshold, commit_period=commit_period, reveal_period=reveal_period,
                  fee=parse_amount(fee, v.credits.decimals), tag=tag)  # fmt: skip
    emit(r.to_json(), as_json=as_json, human=_line(v, r))


@app.command("terms")
def terms(
    ctx: typer.Context,
    job_id: int,
    from_: FromOpt,
    n: Annotated[int, typer.Option("--n", help="Validators drawn from the pool.")] = 5,
    k: Annotated[int, typer.Option("--k", help="Reveals needed for a verdict.")] = 3,
    threshold: Annotated[int, typer.Option("--threshold", help="Least median that passes.")] = 50,
    heldout: HeldoutOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Fix how a job will be judged (its client, while it is open); the job's evaluator must
    be the validation registry."""
    v = validation_of(ctx)
    check = _check(heldout)
    receipt = v.set_job_terms(job_id, check, by=from_, n=n, k=k, threshold=threshold)
    data = {"job": job_id, "n": n, "k": k, "threshold": threshold, "check": check,
            "transaction": receipt.tx_hash}  # fmt: skip
    emit(data, as_json=as_json, human=f"job {job_id} will be judged by {k} of {n} validators "
         f"drawn from the pool, passing at {threshold} ({check['kind']}); {receipt.tx_hash}")  # fmt: skip


@app.command("job")
def job(
    ctx: typer.Context,
    job_id: int,
    from_: FromOpt,
    location: Annotated[str, typer.Option("--location", help="Where validators read the result.")],
    heldout: HeldoutOpt = None,
    fee: FeeOpt = "0",
    commit_period: CommitOpt = 300,
    reveal_period: RevealOpt = 300,
    as_json: JsonOpt = False,
) -> None:
    """Ask the pool to judge your delivered job by its client's terms (its provider)."""
    from neuroledger.market import Jobs

    v = validation_of(ctx)
    deliverable = Jobs(v.chain, v.keystore).status(job_id).deliverable
    if deliverable is None:
        raise MarketError(f"job {job_id} has no deliverable yet; `market job submit` first")
    document = request_document(_check(heldout), asset=deliverable, location=location)
    r = v.request_job(job_id, document, by=from_, commit_period=commit_period,
                      reveal_period=reveal_period, fee=parse_amount(fee, v.credits.decimals))  # fmt: skip
    emit(r.to_json(), as_json=as_json, human=_line(v, r))


@app.command("show")
def show(ctx: typer.Context, request_hash: str, as_json: JsonOpt = False) -> None:
    """A request: its terms, state, verdict and every validator's vote."""
    v = validation_of(ctx)
    r = v.show(request_hash)
    emit(r.to_json(), as_json=as_json, human=_line(v, r))


@app.command("finalize")
def finalize(
    ctx: typer.Context, request_hash: str, from_: FromOpt, as_json: JsonOpt = False
) -> None:
    """Compute the verdict (anyone, after the reveal deadline); a job is completed or rejected."""
    v = validation_of(ctx)
    v.finalize(request_hash, by=from_)
    r = v.show(request_hash)
    emit(r.to_json(), as_json=as_json, human=_line(v, r))


@app.command("settle")
def settle(ctx: typer.Context, request_hash: str, from_: FromOpt, as_json: JsonOpt = False) -> None:
    """Pay the fee and slash the absent and the outliers (anyone, after the challenge window)."""
    v = validation_of(ctx)
    v.settle(request_hash, by=from_)
    r = v.show(request_hash)
    emit(r.to_json(), as_json=as_json, human=_line(v, r))
