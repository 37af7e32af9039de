"""``neuroledger node …``: the embedded anvil node of the home."""

from __future__ import annotations

from typing import Annotated

import typer

from neuroledger.chain import EmbeddedNode
from neuroledger.cli._commands import help_of
from neuroledger.cli._context import context_of, emit
from neuroledger.cli._options import JsonOpt
from neuroledger.config import EMBEDDED_CHAIN_ID
from neuroledger.errors import ConfigError

app = typer.Typer(help=help_of("node"))


def _node(ctx: typer.Context) -> EmbeddedNode:
    c = context_of(ctx)
    if not c.settings.embedded:
        raise ConfigError(
            "an RPC URL is configured, so there is no embedded node to manage; "
            "unset --rpc-url / NEUROLEDGER_RPC_URL"
        )
    c.home()
    return EmbeddedNode(
        chain_dir=c.settings.chain_dir,
        anvil_path=c.settings.anvil_path,
        chain_id=EMBEDDED_CHAIN_ID,
        port=c.settings.node_port,
    )


@app.command("start")
def start(
    ctx: typer.Context,
    reset_state: Annotated[
        bool,
        typer.Option(
            "--reset-state",
            help="Move an existing (e.g. corrupted) state file aside and start empty.",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Start the node in the background (or report the one already running)."""
    c = context_of(ctx)
    status = _node(ctx).start(reset_state=reset_state)
    human = (
        f"node running at {status.url} (pid {status.pid}, chain {status.chain_id}, "
        f"block {status.block_number})"
    )
    wanted = c.settings.node_port
    if wanted is not None and status.port != wanted:
        human += (
            f"; it was already running on port {status.port}, so --port {wanted} was not "
            "applied: run `neuroledger node stop` first to move it"
        )
    emit({**status.to_json(), "requested_port": wanted}, as_json=as_json, human=human)


@app.command("stop")
def stop(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Save the chain state and stop the node."""
    stopped = _node(ctx).stop()
    emit(
        {"stopped": stopped},
        as_json=as_json,
        human="node stopped; state saved" if stopped else "node was not running",
    )


@app.command("status")
def status(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Show whether the node runs, where, and what the saved state holds."""
    st = _node(ctx).status()
    if st.state_problem:
        saved = f"the saved state FAILS its check: {st.state_problem}"
    elif st.state_file:
        saved = f"snapshot up to block {st.state_block}"
        if st.journal_bytes:
            saved += f", then {st.journal_bytes:,} bytes of journal"
    else:
        saved = "no saved state"
    if st.running:
        human = (
            f"running at {st.url} (pid {st.pid}, chain {st.chain_id}, block {st.block_number}); "
            f"{saved}"
        )
    else:
        human = f"not running; {saved}"
    emit(st.to_json(), as_json=as_json, human=human)
