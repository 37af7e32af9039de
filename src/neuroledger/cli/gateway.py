"""``neuroledger gateway serve``: the owner's audited access gateway."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from neuroledger.cli._commands import help_of
from neuroledger.cli._context import console, context_of
from neuroledger.cli._privacy import (
    OwnerOpt,
    data_of,
)

if TYPE_CHECKING:
    pass

app = typer.Typer(help=help_of("gateway"))


@app.command("serve")
def gateway_serve(
    ctx: typer.Context,
    owner: OwnerOpt,
    log: Annotated[
        str,
        typer.Option(
            "--log", help="The owner's audit log for every decision (created if missing)."
        ),
    ] = "access",
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8700,
    cache_blocks: Annotated[
        int,
        typer.Option(
            "--cache-blocks",
            min=0,
            help="Reuse a chain check for at most N blocks (0: read every time).",
        ),
    ] = 5,
    rate: Annotated[
        float, typer.Option("--rate", min=0.1, help="Requests per second per identity.")
    ] = 200.0,
    burst: Annotated[
        int, typer.Option("--burst", min=1, help="Requests an identity may send at once.")
    ] = 400,
    client_rate: Annotated[
        float,
        typer.Option("--client-rate", min=0.1, help="Requests per second per client address."),
    ] = 2000.0,
    jobs: Annotated[
        bool, typer.Option("--jobs/--no-jobs", help="Run compute-to-data jobs.")
    ] = True,
    memory_mb: Annotated[int, typer.Option("--job-memory-mb", min=64)] = 1024,
    cpu_seconds: Annotated[int, typer.Option("--job-cpu-seconds", min=1)] = 60,
    wall_seconds: Annotated[float, typer.Option("--job-wall-seconds", min=1)] = 120.0,
    checkpoint_every: Annotated[
        float,
        typer.Option(
            "--checkpoint-every",
            min=0.1,
            help="Sign an audit checkpoint this often (seconds) when the log grew.",
        ),
    ] = 10.0,
) -> None:
    """Serve key wraps, ciphertext and jobs to granted identities; log every decision."""

    from neuroledger.audit import AuditLog, AuditLogs
    from neuroledger.privacy import JobLimits, Jobs, check_isolation
    from neuroledger.privacy.gateway import GatewayConfig, create_app, listen, serve

    # The port first: a port in use is one line and nothing created (no banner, no log).
    listener = listen(host, port)
    c = context_of(ctx)
    data = data_of(ctx)
    data.keystore.x25519_private(owner)  # opens the keystore now, not at the first job
    logs = AuditLogs(c.settings.home, c.keystore())
    if log not in logs.names():
        logs.create(log)
    audit = AuditLog(logs.open(log, with_key=True))
    queue = None
    if jobs:
        check_isolation()
        queue = Jobs(data, owner=owner, root=c.settings.home / "jobs",
                     limits=JobLimits(memory_mb=memory_mb, cpu_seconds=cpu_seconds, wall_seconds=wall_seconds),
                     audit=audit)  # fmt: skip
    config = GatewayConfig(
        cache_blocks=cache_blocks, rate=rate, burst=burst,
        client_rate=client_rate, client_burst=max(int(client_rate * 2), 1),
    )  # fmt: skip
    web = create_app(data, owner=owner, audit=audit, jobs=queue, config=config,
                     state_dir=c.settings.home / "gateway")  # fmt: skip
    console.print(
        f"gateway for {data.did(owner)} on http://{host}:{port} (audit log {log})", highlight=False
    )
    try:  # decisions reach auditors within `checkpoint_every`; the last checkpoint, signed
        # after the jobs stop, holds everything
        with audit.checkpoints_every(checkpoint_every):
            try:
                serve(web, listener, host=host, port=port)
            finally:
                if queue is not None:
                    queue.close()
    finally:
        audit.close()
