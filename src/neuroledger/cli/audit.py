"""``neuroledger audit …``: tamper-evident logs for AI agents, anchored on chain."""

from __future__ import annotations

import csv
import io
import json
import sys
from typing import Annotated, Any

import typer

from neuroledger.audit import (
    AI_ACT_FIELDS,
    MAX_ENTRY_SIZE,
    NoteVerifier,
    decode_event,
    encode_event,
    open_checkpoint,
    serve_tiles,
)
from neuroledger.cli._audit_checks import logs_of, prove, verify, verify_bundle_cmd, witness
from neuroledger.cli._commands import help_of
from neuroledger.cli._context import console, context_of, emit
from neuroledger.cli._options import JsonOpt
from neuroledger.errors import AuditError

app = typer.Typer(help=help_of("audit"))


#: Largest JSON line `audit append` accepts.
MAX_LINE_BYTES = MAX_ENTRY_SIZE


@app.command("create")
def create(
    ctx: typer.Context,
    name: str,
    origin: Annotated[
        str | None, typer.Option("--origin", help="Log origin (default neuroledger.local/NAME).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a log with its own Ed25519 key (encrypted in the home)."""
    info = logs_of(ctx).create(name, origin=origin)
    emit(
        {
            "name": info.name,
            "origin": info.origin,
            "vkey": info.vkey,
            "directory": str(info.directory),
        },
        as_json=as_json,
        human=f"created log {info.name}\n  origin  {info.origin}\n  vkey    {info.vkey}\n  tiles   {info.directory}",
    )


@app.command("append")
def append(ctx: typer.Context, name: str, as_json: JsonOpt = False) -> None:
    """Append JSON objects read from stdin, one per line; all or nothing."""
    events: list[bytes] = []
    for number, line in enumerate(sys.stdin.buffer, start=1):
        if not line.strip():
            continue
        if len(line) > MAX_LINE_BYTES:
            raise AuditError(
                f"line {number} is {len(line)} bytes, over the {MAX_LINE_BYTES}-byte entry limit; nothing was appended"
            )
        try:
            data = json.loads(line)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise AuditError(
                f"line {number} is not JSON ({exc.args[0]}); nothing was appended"
            ) from None
        if not isinstance(data, dict):
            raise AuditError(f"line {number} is not a JSON object; nothing was appended")
        events.append(encode_event(data))
    if not events:
        raise AuditError("no events on stdin: pipe JSON objects, one per line")
    log = logs_of(ctx).open(name, with_key=True)
    first = log.append(events)
    emit(
        {"first_index": first, "count": len(events), "size": log.size},
        as_json=as_json,
        human=f"appended {len(events)} events at {first}..{log.size - 1}; log size {log.size}",
    )


@app.command("checkpoint")
def checkpoint(ctx: typer.Context, name: str) -> None:
    """Sign and publish a checkpoint of the log."""
    log = logs_of(ctx).open(name, with_key=True)
    typer.echo(log.checkpoint(), nl=False)


@app.command("anchor")
def anchor(
    ctx: typer.Context,
    name: str,
    as_: Annotated[str, typer.Option("--as", help="Identity whose key pays for the anchor.")],
    as_json: JsonOpt = False,
) -> None:
    """Anchor the log's latest checkpoint on chain."""
    from neuroledger.audit import Anchors

    c = context_of(ctx)
    log = logs_of(ctx).open(name, with_key=True)
    record = Anchors(log, c.chain()).anchor(c.keystore().owner_account(as_))
    emit(
        record.to_json(),
        as_json=as_json,
        human=f"anchored size {record.size} of {log.origin} in {record.tx} (block {record.block})",
    )


@app.command("export")
def export(
    ctx: typer.Context,
    name: str,
    ai_act: Annotated[
        bool,
        typer.Option("--ai-act", help="One record per event with the EU AI Act Art. 12 fields."),
    ] = True,
    fmt: Annotated[str, typer.Option("--format", "-f", help="json or csv.")] = "json",
) -> None:
    """Export the log's events as an auditor-readable record (JSON or CSV)."""
    if fmt not in ("json", "csv"):
        raise typer.BadParameter("--format must be json or csv")
    info = logs_of(ctx).info(name)
    log = logs_of(ctx).open(name)
    checkpoint = open_checkpoint(
        (info.directory / "checkpoint").read_text(), NoteVerifier.from_vkey(info.vkey)
    )
    rows: list[dict[str, Any]] = []
    for index in range(checkpoint.size):
        event = decode_event(log.entry(index))
        row: dict[str, Any] = {"index": index, **{f: event.get(f) for f in AI_ACT_FIELDS}}
        extra = {k: v for k, v in event.items() if k not in AI_ACT_FIELDS and k != "details"}
        details = {**event.get("details", {}), **extra}
        row["details"] = json.dumps(details, sort_keys=True) if fmt == "csv" else details
        rows.append(row)
    if fmt == "json":
        emit({"origin": info.origin, "checkpoint_size": checkpoint.size, "root": checkpoint.root.hex(),
              "events": rows}, as_json=True)  # fmt: skip
        return
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["index", *AI_ACT_FIELDS, "details"])
    writer.writeheader()
    writer.writerows(rows)
    typer.echo(buffer.getvalue(), nl=False)


@app.command("serve")
def serve(
    ctx: typer.Context,
    name: str,
    port: Annotated[int, typer.Option("--port", help="Loopback port (0: any free port).")] = 0,
) -> None:
    """Serve the log's tiles and checkpoint read-only over HTTP on loopback."""
    info = logs_of(ctx).info(name)
    serve_tiles(
        info.directory,
        port=port,
        announce=lambda url: console.print(f"serving {info.origin} at {url} (Ctrl-C stops)"),
    )


app.command("prove")(prove)
app.command("verify-bundle")(verify_bundle_cmd)
app.command("verify")(verify)
app.command("witness")(witness)
