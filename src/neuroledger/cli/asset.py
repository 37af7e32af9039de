"""``neuroledger asset …``: register, show, trace, verify, attest, revoke."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from neuroledger.cli._asset_reads import (
    index,
    lineage,
    list_,
    manifest,
    show,
    verify,
)
from neuroledger.cli._asset_support import (
    AsOpt,
    IgnoreOpt,
    SignerOpt,
    SymlinkOpt,
    hash_progress,
    parse_time,
)
from neuroledger.cli._commands import help_of
from neuroledger.cli._context import context_of, emit
from neuroledger.cli._options import JsonOpt
from neuroledger.errors import MetadataError
from neuroledger.provenance import KINDS, load_metadata_file

app = typer.Typer(help=help_of("asset"))


@app.command("register")
def register(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="File or directory (or JSON file with --document).")],
    kind: Annotated[str, typer.Option("--kind", "-k", help=f"One of: {', '.join(KINDS)}.")],
    as_: AsOpt,
    parent: Annotated[
        list[str] | None, typer.Option("--parent", "-p", help="Parent asset id.")
    ] = None,
    license: Annotated[str, typer.Option("--license", help="SPDX id or URL.")] = "",
    meta: Annotated[Path | None, typer.Option("--meta", help="JSON metadata file.")] = None,
    document: Annotated[
        bool,
        typer.Option(
            "--document", help="PATH is a JSON document; the asset is its canonical form."
        ),
    ] = False,
    ignore: IgnoreOpt = None,
    allow_symlinks: SymlinkOpt = False,
    signer: SignerOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Register a file, a model directory or a JSON document as an asset."""
    prov = context_of(ctx).provenance()
    if document:
        reg = prov.register_document(
            load_metadata_file(path), kind=kind, owner=as_, parents=parent or [],
            license=license, signer=signer,
        )  # fmt: skip
    else:
        metadata = load_metadata_file(meta) if meta else None
        with hash_progress(path, not as_json) as progress:
            reg = prov.register(
                path, kind=kind, owner=as_, parents=parent or [], license=license,
                metadata=metadata, ignore=ignore or [], allow_symlinks=allow_symlinks,
                signer=signer, progress=progress,
            )  # fmt: skip
    data = {
        "id": reg.asset_id, "kind": reg.kind, "owner": reg.owner, "tx": reg.tx_hash,
        "metadata_digest": reg.metadata_digest,
        "files": len(reg.manifest.files) if reg.manifest else None,
    }  # fmt: skip
    emit(
        data,
        as_json=as_json,
        human=f"registered {reg.kind} [bold]{reg.asset_id}[/bold] owned by {reg.owner}",
    )


@app.command("run")
def run(
    ctx: typer.Context,
    model: Annotated[Path, typer.Argument(help="The trained model: file or directory.")],
    as_: AsOpt,
    input_: Annotated[list[str], typer.Option("--input", "-i", help="Dataset or code asset id.")],
    started: Annotated[str, typer.Option("--started", help="ISO 8601 start time.")],
    finished: Annotated[str, typer.Option("--finished", help="ISO 8601 end time.")],
    param: Annotated[
        list[str] | None, typer.Option("--param", help="key=value training parameter.")
    ] = None,
    license: Annotated[str, typer.Option("--license")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Register a training run (SLSA v1 provenance) and the model it produced."""
    params: dict[str, Any] = {}
    for item in param or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise MetadataError(f"--param {item!r} must look like key=value")
        params[key] = value
    prov = context_of(ctx).provenance()
    run_reg, model_reg = prov.register_training_run(
        model, owner=as_, inputs=input_, started=parse_time(started, "--started"),
        finished=parse_time(finished, "--finished"), parameters=params, license=license,
    )  # fmt: skip
    emit(
        {"run": run_reg.asset_id, "model": model_reg.asset_id, "owner": model_reg.owner},
        as_json=as_json,
        human=f"training run [bold]{run_reg.asset_id}[/bold]\nmodel        [bold]{model_reg.asset_id}[/bold]",
    )


@app.command("attest")
def attest(
    ctx: typer.Context,
    asset: str,
    as_: AsOpt,
    statement: Annotated[
        Path | None, typer.Option("--statement", help="JSON statement file.")
    ] = None,
    claim: Annotated[
        list[str] | None, typer.Option("--claim", help="key=value, e.g. accuracy=0.94.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Attest a statement about an asset (an evaluation result, a review)."""
    doc: dict[str, Any] = load_metadata_file(statement) if statement else {}
    for item in claim or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise MetadataError(f"--claim {item!r} must look like key=value")
        doc[key] = value
    if not doc:
        raise MetadataError(
            "nothing to attest: give --statement FILE or at least one --claim key=value"
        )
    prov = context_of(ctx).provenance()
    digest, tx = prov.attest(asset, attester=as_, statement=doc)
    emit(
        {"statement_digest": digest, "tx": tx},
        as_json=as_json,
        human=f"attested statement {digest} in {tx}",
    )


def _status_change(verb: str) -> Callable[..., None]:
    def command(
        ctx: typer.Context,
        asset: str,
        as_: AsOpt,
        reason: Annotated[str, typer.Option("--reason", help="Why, for readers of the record.")],
        as_json: JsonOpt = False,
    ) -> None:
        prov = context_of(ctx).provenance()
        change = prov.revoke if verb == "revoke" else prov.deprecate
        tx = change(asset, actor=as_, reason=reason)
        emit(
            {"asset": asset, "status": verb + "d", "tx": tx},
            as_json=as_json,
            human=f"{verb}d {asset} in {tx}",
        )

    command.__doc__ = {
        "revoke": "Revoke an asset for good (it must no longer be used or derived from).",
        "deprecate": "Deprecate an asset (superseded, still valid).",
    }[verb]
    return command


app.command("revoke")(_status_change("revoke"))
app.command("deprecate")(_status_change("deprecate"))


@app.command("transfer")
def transfer(
    ctx: typer.Context,
    asset: str,
    as_: AsOpt,
    to: Annotated[str, typer.Option("--to", help="New owner: identity name or DID.")],
    as_json: JsonOpt = False,
) -> None:
    """Pass an asset to another identity."""
    tx = context_of(ctx).provenance().transfer(asset, actor=as_, to=to)
    emit(
        {"asset": asset, "to": to, "tx": tx},
        as_json=as_json,
        human=f"transferred {asset} to {to} in {tx}",
    )


app.command("show")(show)
app.command("list")(list_)
app.command("lineage")(lineage)
app.command("verify")(verify)
app.command("manifest")(manifest)
app.command("index")(index)
