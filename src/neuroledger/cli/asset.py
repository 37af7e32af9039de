"""``neuroledger asset …``: register, show, trace, verify, attest, revoke."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from neuroledger.cli._commands import help_of
from neuroledger.cli._context import byte_progress, console, context_of, emit
from neuroledger.cli._options import JsonOpt
from neuroledger.errors import MetadataError
from neuroledger.identity.did import format_did
from neuroledger.provenance import (
    KINDS,
    Provenance,
    Verification,
    to_dot,
    to_openlineage,
    to_prov_json,
    to_tree,
)
from neuroledger.provenance.documents import load_metadata_file

app = typer.Typer(help=help_of("asset"))

AsOpt = Annotated[str, typer.Option("--as", help="Identity (local name) that owns or acts.")]
SignerOpt = Annotated[
    str | None,
    typer.Option("--signer", help="Identity whose key signs, as a veriKey delegate of --as."),
]
IgnoreOpt = Annotated[
    list[str] | None, typer.Option("--ignore", help="Path to leave out, relative to PATH.")
]
SymlinkOpt = Annotated[
    bool, typer.Option("--allow-symlinks", help="Hash the files symbolic links point to.")
]

_FORMATS = ("tree", "json", "prov", "openlineage", "dot")


def _hash_progress(
    path: Path, enabled: bool
) -> contextlib.AbstractContextManager[Callable[[int], None] | None]:
    """A byte progress bar on stderr while a path is hashed (terminals only)."""
    total = (
        sum(p.stat().st_size for p in [path, *path.rglob("*")] if p.is_file())
        if enabled and path.exists()
        else 0
    )
    return byte_progress(f"hashing {path.name}", total, enabled)


def _owner_label(prov: Provenance) -> Callable[[str], str]:
    names = {r.identity.lower(): r.name for r in prov.keystore.list()}
    return lambda address: names.get(address.lower(), address[:10] + "…")


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
        with _hash_progress(path, not as_json) as progress:
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


def _parse_time(text: str, option: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise MetadataError(
            f"{option} {text!r} is not an ISO 8601 time such as 2026-11-24T09:00:00Z"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


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
        model, owner=as_, inputs=input_, started=_parse_time(started, "--started"),
        finished=_parse_time(finished, "--finished"), parameters=params, license=license,
    )  # fmt: skip
    emit(
        {"run": run_reg.asset_id, "model": model_reg.asset_id, "owner": model_reg.owner},
        as_json=as_json,
        human=f"training run [bold]{run_reg.asset_id}[/bold]\nmodel        [bold]{model_reg.asset_id}[/bold]",
    )


@app.command("show")
def show(ctx: typer.Context, asset: str, as_json: JsonOpt = False) -> None:
    """Show an asset: kind, owner, status, parents, metadata, attestations."""
    prov = context_of(ctx).provenance()
    view = prov.show(asset)
    data = view.to_json(prov.chain.chain_id)
    if as_json:
        emit(data, as_json=True)
        return
    label = _owner_label(prov)
    r = view.record
    lines = [
        f"[bold]{r.id}[/bold]",
        f"  kind      {r.kind}",
        f"  status    {r.status}",
        f"  owner     {label(r.owner)}  {data['owner']}",
        f"  license   {r.license or '-'}",
        f"  block     {r.block}  tx {r.tx}",
    ]
    if view.metadata and "name" in view.metadata:
        lines.append(f"  name      {view.metadata['name']}")
    lines += [f"  parent    {p}" for p in r.parents]
    lines += [f"  {c.type:<9} block {c.block}: {c.reason or c.owner}" for c in view.changes]
    lines += [
        f"  attested  by {label(a.attester)}: statement {a.statement_digest[:16]}… (block {a.block})"
        for a in view.attestations
    ]
    console.print("\n".join(lines), highlight=False)


@app.command("list")
def list_(
    ctx: typer.Context,
    kind: Annotated[str | None, typer.Option("--kind", "-k")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List registered assets, oldest first."""
    prov = context_of(ctx).provenance()
    prov.sync()
    records = prov.index.all(kind=kind)
    if as_json:
        emit([{"id": r.id, "kind": r.kind, "status": r.status, "owner": r.owner, "block": r.block}
              for r in records], as_json=True)  # fmt: skip
        return
    if not records:
        console.print(
            "no assets yet; register one with `neuroledger asset register PATH --kind K --as NAME`"
        )
        return
    label = _owner_label(prov)
    table = Table("id", "kind", "status", "owner", "parents", "block")
    for r in records:
        table.add_row(
            r.id[:16], r.kind, r.status, label(r.owner), str(len(r.parents)), str(r.block)
        )
    console.print(table)


@app.command("lineage")
def lineage(
    ctx: typer.Context,
    asset: str,
    fmt: Annotated[
        str, typer.Option("--format", "-f", help=f"One of: {', '.join(_FORMATS)}.")
    ] = "tree",
    descendants: Annotated[
        bool, typer.Option("--descendants", help="Show what derives from it.")
    ] = False,
    path_to: Annotated[
        str | None, typer.Option("--path-to", help="Print every derivation path to this ancestor.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (as --format json).")] = False,
) -> None:
    """Trace an asset back to its data and code (or forward with --descendants)."""
    if as_json:  # every read command takes --json
        fmt = "json"
    if fmt not in _FORMATS:
        raise typer.BadParameter(f"--format must be one of {', '.join(_FORMATS)}")
    prov = context_of(ctx).provenance()
    if path_to is not None:
        start, goal = prov.resolve(asset), prov.resolve(path_to)
        paths = prov.index.paths(start, goal)
        if fmt == "json":
            emit({"from": start, "to": goal, "paths": paths}, as_json=True)
        elif not paths:
            console.print(f"{goal[:12]} is not an ancestor of {start[:12]}")
        else:
            for path in paths:
                console.print(" -> ".join(p[:12] for p in path), highlight=False)
        return
    lin = prov.lineage(asset, direction="descendants" if descendants else "ancestors")
    chain_id = prov.chain.chain_id
    if fmt == "tree":
        console.print(to_tree(lin, owner_name=_owner_label(prov)))
    elif fmt == "json":
        emit({
            "root": lin.root, "direction": lin.direction,
            "nodes": {i: {"kind": r.kind, "status": r.status, "owner": format_did(chain_id, r.owner),
                          "name": lin.names.get(i), "depth": lin.depth[i]} for i, r in lin.nodes.items()},
            "edges": [{"child": c, "parent": p} for c, p in lin.edges],
        }, as_json=True)  # fmt: skip
    elif fmt == "prov":
        emit(to_prov_json(lin, chain_id=chain_id), as_json=True)
    elif fmt == "openlineage":
        for event in to_openlineage(lin, chain_id=chain_id):
            typer.echo(json.dumps(event, sort_keys=True))
    else:
        typer.echo(to_dot(lin), nl=False)


@app.command("verify")
def verify(
    ctx: typer.Context,
    path: Path,
    expected: Annotated[
        str | None, typer.Option("--id", help="The asset the content must be.")
    ] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Re-hash every file.")] = False,
    ignore: IgnoreOpt = None,
    allow_symlinks: SymlinkOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Check content against the registry. Exit 0 only for an active match;
    10 unknown, 11 modified, 12 revoked, 13 deprecated."""
    prov = context_of(ctx).provenance()
    with _hash_progress(path, not as_json) as progress:
        result = prov.verify(
            path, expected=expected, use_cache=not no_cache, ignore=ignore or [],
            allow_symlinks=allow_symlinks, progress=progress,
        )  # fmt: skip
    if as_json:
        emit(_verification_json(result, prov), as_json=True)
    else:
        _print_verification(result, prov)
    if result.exit_code:
        raise typer.Exit(result.exit_code)


def _verification_json(result: Verification, prov: Provenance) -> dict[str, Any]:
    chain_id = prov.chain.chain_id
    return {
        "status": result.status,
        "path": result.path,
        "digest": result.digest,
        "expected": result.expected,
        "diff": None if result.diff is None else {
            "changed": list(result.diff.changed), "added": list(result.diff.added),
            "removed": list(result.diff.removed),
        },
        "asset": None if result.asset is None else result.asset.to_json(chain_id),
        "lineage": None if result.lineage is None else sorted(result.lineage.depth, key=result.lineage.depth.__getitem__),
    }  # fmt: skip


def _print_verification(result: Verification, prov: Provenance) -> None:
    color = {"ok": "green", "modified": "red", "revoked": "red", "unknown": "yellow"}.get(
        result.status, "yellow"
    )
    console.print(f"[{color}]{result.summary()}[/{color}]", highlight=False, soft_wrap=True)
    if result.asset is None:
        return
    label = _owner_label(prov)
    r = result.asset.record
    console.print(
        f"  owner   {label(r.owner)}  status {r.status}  registered in block {r.block}",
        highlight=False,
    )
    for a in result.asset.attestations:
        console.print(
            f"  attested by {label(a.attester)} (statement {a.statement_digest[:16]}…)",
            highlight=False,
        )
    if result.lineage is not None and len(result.lineage.nodes) > 1:
        console.print(to_tree(result.lineage, owner_name=label))


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


@app.command("manifest")
def manifest(
    ctx: typer.Context,
    path: Path,
    ignore: IgnoreOpt = None,
    allow_symlinks: SymlinkOpt = False,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Re-hash every file.")] = False,
) -> None:
    """Print the model-signing v1.0 manifest statement of a file or directory (no chain needed)."""
    from neuroledger.provenance import HashCache, build_manifest

    cache = None if no_cache else HashCache(context_of(ctx).settings.hash_cache_path)
    with _hash_progress(path, True) as progress:
        m = build_manifest(
            path, ignore=ignore or [], allow_symlinks=allow_symlinks, cache=cache, progress=progress
        )
    emit({"digest": m.digest, **m.to_statement()}, as_json=True)


@app.command("index")
def index(
    ctx: typer.Context,
    rebuild: Annotated[
        bool, typer.Option("--rebuild", help="Forget the index and re-read the chain.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Bring the local lineage index up to date (or rebuild it)."""
    prov = context_of(ctx).provenance()
    if rebuild:
        prov.index.rebuild()
    applied = prov.sync()
    stats = {**prov.index.stats(), "new_events": applied}
    emit(
        stats,
        as_json=as_json,
        human=f"index at block {stats['synced_block']}: {stats['assets']} assets ({applied} new events)",
    )
