"""``neuroledger audit …``: tamper-evident logs for AI agents, anchored on chain."""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from neuroledger.audit.entries import AI_ACT_FIELDS, decode_event, encode_event
from neuroledger.audit.log import TileLog
from neuroledger.audit.note import NoteVerifier, open_checkpoint
from neuroledger.audit.service import AuditLogs
from neuroledger.audit.tiles import MAX_ENTRY_SIZE
from neuroledger.audit.verify import Problem, verify_log
from neuroledger.cli._commands import help_of
from neuroledger.cli._context import console, context_of, emit
from neuroledger.cli._options import JsonOpt
from neuroledger.errors import AuditError

app = typer.Typer(help=help_of("audit"))


#: Largest JSON line `audit append` accepts.
MAX_LINE_BYTES = MAX_ENTRY_SIZE


def _logs(ctx: typer.Context) -> AuditLogs:
    c = context_of(ctx)
    return AuditLogs(c.settings.home, c.keystore())


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
    info = _logs(ctx).create(name, origin=origin)
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
    log = _logs(ctx).open(name, with_key=True)
    first = log.append(events)
    emit(
        {"first_index": first, "count": len(events), "size": log.size},
        as_json=as_json,
        human=f"appended {len(events)} events at {first}..{log.size - 1}; log size {log.size}",
    )


@app.command("checkpoint")
def checkpoint(ctx: typer.Context, name: str) -> None:
    """Sign and publish a checkpoint of the log."""
    log = _logs(ctx).open(name, with_key=True)
    typer.echo(log.checkpoint(), nl=False)


@app.command("anchor")
def anchor(
    ctx: typer.Context,
    name: str,
    as_: Annotated[str, typer.Option("--as", help="Identity whose key pays for the anchor.")],
    as_json: JsonOpt = False,
) -> None:
    """Anchor the log's latest checkpoint on chain."""
    from neuroledger.audit.anchor import Anchors

    c = context_of(ctx)
    log = _logs(ctx).open(name, with_key=True)
    record = Anchors(log, c.chain()).anchor(c.keystore().owner_account(as_))
    emit(
        record.to_json(),
        as_json=as_json,
        human=f"anchored size {record.size} of {log.origin} in {record.tx} (block {record.block})",
    )


@app.command("prove")
def prove(
    ctx: typer.Context,
    name: str,
    index: int,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write the bundle here (.tlog-proof).")
    ] = None,
) -> None:
    """Write an offline proof bundle (C2SP tlog-proof) for entry INDEX, with its anchor."""
    from neuroledger.audit.anchor import Anchors
    from neuroledger.audit.bundle import make_bundle

    logs = _logs(ctx)
    log = logs.open(name, with_key=True)
    if not 0 <= index < log.size:
        raise AuditError(
            f"log {name} has no entry {index}: it holds {log.size} entries"
            + (f" (indexes 0 to {log.size - 1})" if log.size else "")
        )
    record = Anchors(log).latest_for(index + 1)
    if record is None:
        raise AuditError(
            f"no anchor covers entry {index} yet; run `neuroledger audit checkpoint {name}` and "
            f"`neuroledger audit anchor {name} --as IDENTITY` (an identity of this home that pays)"
        )
    bundle = make_bundle(log, index, record, log.checkpoint_text(record.size))
    if out is None:
        typer.echo(bundle, nl=False)
    else:
        out.write_text(bundle)
        console.print(f"wrote {out}")


@app.command("verify-bundle")
def verify_bundle_cmd(ctx: typer.Context, bundle: Path, as_json: JsonOpt = False) -> None:
    """Verify a proof bundle with nothing but a chain RPC URL (--rpc-url)."""
    from neuroledger.audit.bundle import verify_bundle

    c = context_of(ctx)
    try:
        text = bundle.read_text()
    except (FileNotFoundError, UnicodeDecodeError) as exc:
        raise AuditError(f"cannot read bundle {bundle}: {exc}") from None
    result = verify_bundle(text, c.chain().w3)
    event = decode_event(result.entry)
    emit(
        {"ok": True, "index": result.index, "origin": result.origin, "size": result.size,
         "chain_id": result.chain_id, "anchor_tx": result.tx, "anchor_block": result.block,
         "anchored_by": result.anchored_by, "event": event},
        as_json=as_json,
        human=f"[green]OK[/green]: entry {result.index} of {result.origin} is in the tree of size {result.size}, "
        f"anchored in block {result.block} ({result.tx}) by {result.anchored_by}\n{json.dumps(event, indent=1)}",
    )  # fmt: skip


@app.command("verify")
def verify(
    ctx: typer.Context,
    name: Annotated[
        str | None, typer.Argument(help="A log of this home (or use --dir and --vkey).")
    ] = None,
    directory: Annotated[Path | None, typer.Option("--dir", help="A tlog-tiles directory.")] = None,
    vkey: Annotated[str | None, typer.Option("--vkey", help="The log's verifier key.")] = None,
    witness: Annotated[
        list[str] | None,
        typer.Option(
            "--witness",
            help="A witness's verifier key whose cosignature must verify (repeatable); a "
            "named log also uses this home's witnesses.",
        ),
    ] = None,
    no_chain: Annotated[
        bool, typer.Option("--no-chain", help="Skip comparing checkpoints with on-chain anchors.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Verify a whole log: tiles, bundles, checkpoint signatures, consistency, and anchors."""
    c = context_of(ctx)
    witnesses = [NoteVerifier.from_vkey(w) for w in witness or []]
    if name is not None:
        logs = _logs(ctx)
        info = logs.info(name)
        directory, vkey = info.directory, info.vkey
        witnesses += logs.witness_verifiers()
    if directory is None or vkey is None:
        raise AuditError("give a log name, or both --dir and --vkey")
    verifier = NoteVerifier.from_vkey(vkey)
    report = verify_log(directory, verifier, witnesses)
    anchors_checked = 0
    anchors_file = directory / ".anchors.json"
    if not no_chain and anchors_file.exists() and report.problems == []:
        from neuroledger.audit.anchor import AnchorRecord, read_anchor

        tree = TileLog.open(directory)
        for raw in json.loads(anchors_file.read_text()):
            record = AnchorRecord(**raw)
            size, root, _ = read_anchor(c.chain().w3, record)
            anchors_checked += 1
            if size > tree.size or tree.root_hash(size) != root:
                report.problems.append(
                    Problem(
                        f"anchor {record.tx}",
                        f"the chain anchors size {size} with a root this log does not have",
                    )
                )
    data = {"ok": report.ok, "origin": report.origin, "size": report.size, "tiles": report.tiles,
            "bundles": report.bundles, "checkpoints": report.checkpoints, "anchors": anchors_checked,
            "cosigned_by": report.cosigned_by,
            "problems": [{"place": p.place, "message": p.message} for p in report.problems]}  # fmt: skip
    if as_json:
        emit(data, as_json=True)
    elif report.ok:
        console.print(
            f"[green]OK[/green]: {report.origin} size {report.size}: {report.tiles} tiles, {report.bundles} "
            f"entry bundles, {report.checkpoints} checkpoints and {anchors_checked} on-chain anchors verified"
            + (f"; cosigned by {', '.join(report.cosigned_by)}" if report.cosigned_by else "")
        )
    else:
        console.print(f"[red]FAILED[/red]: {report.origin}: {len(report.problems)} problem(s)")
        for p in report.problems:
            console.print(f"  {p.place}: {p.message}", highlight=False)
    if not report.ok:
        raise typer.Exit(AuditError.exit_code)


@app.command("witness")
def witness(
    ctx: typer.Context,
    name: str,
    as_: Annotated[
        str, typer.Option("--as", help="Witness name (its cosigning key is created on first use).")
    ],
    as_json: JsonOpt = False,
) -> None:
    """Check the log's new checkpoint is consistent with the last one seen, then cosign it."""
    w = _logs(ctx).witness(name, as_)
    emit(
        w.__dict__,
        as_json=as_json,
        human=f"{w.witness} cosigned {w.origin} at size {w.new_size} (consistent with {w.old_size})",
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
    info = _logs(ctx).info(name)
    log = _logs(ctx).open(name)
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
    from neuroledger.audit.serve import serve_forever

    info = _logs(ctx).info(name)
    serve_forever(
        info.directory,
        port=port,
        announce=lambda url: console.print(f"serving {info.origin} at {url} (Ctrl-C stops)"),
    )
