"""The checking `audit` commands: prove, verify-bundle, verify, witness."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from neuroledger.audit import AuditLogs, NoteVerifier, check_anchors, decode_event, verify_log
from neuroledger.cli._context import console, context_of, emit
from neuroledger.cli._options import JsonOpt
from neuroledger.errors import AuditError

__all__ = ["logs_of", "prove", "verify", "verify_bundle_cmd", "witness"]


def logs_of(ctx: typer.Context) -> AuditLogs:
    c = context_of(ctx)
    return AuditLogs(c.settings.home, c.keystore())


def prove(
    ctx: typer.Context,
    name: str,
    index: int,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write the bundle here (.tlog-proof).")
    ] = None,
) -> None:
    """Write an offline proof bundle (C2SP tlog-proof) for entry INDEX, with its anchor."""
    from neuroledger.audit import Anchors, make_bundle

    logs = logs_of(ctx)
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


def verify_bundle_cmd(ctx: typer.Context, bundle: Path, as_json: JsonOpt = False) -> None:
    """Verify a proof bundle with nothing but a chain RPC URL (--rpc-url)."""
    from neuroledger.audit import verify_bundle

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
        logs = logs_of(ctx)
        info = logs.info(name)
        directory, vkey = info.directory, info.vkey
        witnesses += logs.witness_verifiers()
    if directory is None or vkey is None:
        raise AuditError("give a log name, or both --dir and --vkey")
    verifier = NoteVerifier.from_vkey(vkey)
    report = verify_log(directory, verifier, witnesses)
    anchors_checked = 0
    if not no_chain and report.problems == []:
        anchors_checked, problems = check_anchors(directory, c.chain().w3)
        report.problems.extend(problems)
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


def witness(
    ctx: typer.Context,
    name: str,
    as_: Annotated[
        str, typer.Option("--as", help="Witness name (its cosigning key is created on first use).")
    ],
    as_json: JsonOpt = False,
) -> None:
    """Check the log's new checkpoint is consistent with the last one seen, then cosign it."""
    w = logs_of(ctx).witness(name, as_)
    emit(
        w.__dict__,
        as_json=as_json,
        human=f"{w.witness} cosigned {w.origin} at size {w.new_size} (consistent with {w.old_size})",
    )
