"""``neuroledger gov …``: the guardian's pause and the timelock's queue."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer

from neuroledger.cli._commands import help_of
from neuroledger.cli._context import context_of, emit
from neuroledger.cli._options import JsonOpt
from neuroledger.governance import Governance, GovernanceStatus, Operation

app = typer.Typer(help=help_of("gov"))

FromOpt = Annotated[str, typer.Option("--from", help="Local identity that sends the call.")]


def _gov(ctx: typer.Context) -> Governance:
    c = context_of(ctx)
    return Governance(c.chain(), c.keystore())


def _when(ts: int, now: int) -> str:
    at = dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    left = ts - now
    return f"{at} (in {left} s)" if left > 0 else at


def _op_line(op: Operation, now: int) -> str:
    ready = f"ready at {_when(op.ready_at, now)}" if op.state == "waiting" else op.state
    return f"  {op.id[:18]}…  {op.contract}.{op.call}  [{ready}]"


def _status_text(s: GovernanceStatus) -> str:
    lines = [
        f"chain {s.chain_id}; timelock {s.timelock} (minimum delay {s.minimum_delay} s); "
        f"governor {s.governor or 'none: parameters are frozen'}"
    ]
    for c in s.contracts:
        state = "PAUSED (exits still work)" if c.paused else "running"
        params = "".join(f", {k} {v}" for k, v in c.parameters.items())
        pending = f", pending owner {c.pending_owner}" if c.pending_owner else ""
        lines.append(f"{c.name} at {c.address}: {state}; guardian {c.guardian or 'none'}; "
                     f"owner {c.owner}{pending}{params}")  # fmt: skip
    lines.append(f"{len(s.operations)} timelock operation(s)")
    lines += [_op_line(op, s.chain_time) for op in s.operations]
    return "\n".join(lines)


@app.command("status")
def status(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Pause state, guardian and owner of each governed contract, and the timelock queue."""
    s = _gov(ctx).status()
    emit(s.to_json(), as_json=as_json, human=_status_text(s))


@app.command("pause")
def pause(ctx: typer.Context, contract: str, from_: FromOpt, as_json: JsonOpt = False) -> None:
    """Pause CONTRACT (FederatedTask or AccessGrants): new work stops; exits never do."""
    r = _gov(ctx).pause(contract, by=from_)
    emit({"contract": contract, "paused": True, "tx": r.tx_hash}, as_json=as_json,
         human=f"paused {contract} (tx {r.tx_hash}); claims, refunds, revocations "
         "and consent withdrawals still work")  # fmt: skip


@app.command("unpause")
def unpause(ctx: typer.Context, contract: str, from_: FromOpt, as_json: JsonOpt = False) -> None:
    """Lift the pause of CONTRACT."""
    r = _gov(ctx).unpause(contract, by=from_)
    emit({"contract": contract, "paused": False, "tx": r.tx_hash}, as_json=as_json,
         human=f"unpaused {contract} (tx {r.tx_hash})")  # fmt: skip


@app.command("propose")
def propose(
    ctx: typer.Context,
    contract: str,
    function: str,
    args: Annotated[list[str] | None, typer.Argument(help="The call's arguments.")] = None,
    from_: FromOpt = "",
    delay: Annotated[
        int | None, typer.Option("--delay", help="Seconds to wait (default: the minimum).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Schedule CONTRACT.FUNCTION(ARGS) on the timelock, e.g. `FederatedTask setMaxDuration
    2592000` or `AccessGrants setGuardian NAME`; it runs after the delay via `gov execute`."""
    if not from_:
        raise typer.BadParameter("give --from NAME, a proposer of the timelock")
    op = _gov(ctx).propose(contract, function, args or [], by=from_, delay=delay)
    emit({**op.__dict__}, as_json=as_json,
         human=f"proposed {op.contract}.{op.call} as {op.id}\n  ready at unix time "
         f"{op.ready_at}; run `neuroledger gov execute {op.id} --from NAME` then")  # fmt: skip


@app.command("execute")
def execute(ctx: typer.Context, op_id: str, from_: FromOpt, as_json: JsonOpt = False) -> None:
    """Run a ready timelock operation."""
    r = _gov(ctx).execute(op_id, by=from_)
    emit({"id": op_id, "executed": True, "tx": r.tx_hash}, as_json=as_json,
         human=f"executed {op_id} (tx {r.tx_hash})")  # fmt: skip


@app.command("cancel")
def cancel(ctx: typer.Context, op_id: str, from_: FromOpt, as_json: JsonOpt = False) -> None:
    """Cancel a waiting or ready timelock operation."""
    r = _gov(ctx).cancel(op_id, by=from_)
    emit({"id": op_id, "cancelled": True, "tx": r.tx_hash}, as_json=as_json,
         human=f"cancelled {op_id} (tx {r.tx_hash})")  # fmt: skip
