"""The reading `asset` commands: show, list, lineage, verify, manifest, index."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from neuroledger.cli._asset_support import (
    FORMATS,
    IgnoreOpt,
    SymlinkOpt,
    hash_progress,
    owner_label,
)
from neuroledger.cli._context import console, context_of, emit
from neuroledger.cli._options import JsonOpt
from neuroledger.provenance import (
    Provenance,
    Verification,
    to_dot,
    to_openlineage,
    to_prov_json,
    to_tree,
)

__all__ = ["_print_verification", "index", "lineage", "list_", "manifest", "show", "verify"]


def show(ctx: typer.Context, asset: str, as_json: JsonOpt = False) -> None:
    """Show an asset: kind, owner, status, parents, metadata, attestations."""
    prov = context_of(ctx).provenance()
    view = prov.show(asset)
    data = view.to_json(prov.chain.chain_id)
    if as_json:
        emit(data, as_json=True)
        return
    label = owner_label(prov)
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
    label = owner_label(prov)
    table = Table("id", "kind", "status", "owner", "parents", "block")
    for r in records:
        table.add_row(
            r.id[:16], r.kind, r.status, label(r.owner), str(len(r.parents)), str(r.block)
        )
    console.print(table)


def lineage(
    ctx: typer.Context,
    asset: str,
    fmt: Annotated[
        str, typer.Option("--format", "-f", help=f"One of: {', '.join(FORMATS)}.")
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
    if fmt not in FORMATS:
        raise typer.BadParameter(f"--format must be one of {', '.join(FORMATS)}")
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
        console.print(to_tree(lin, owner_name=owner_label(prov)))
    elif fmt == "json":
        emit(lin.to_json(chain_id), as_json=True)
    elif fmt == "prov":
        emit(to_prov_json(lin, chain_id=chain_id), as_json=True)
    elif fmt == "openlineage":
        for event in to_openlineage(lin, chain_id=chain_id):
            typer.echo(json.dumps(event, sort_keys=True))
    else:
        typer.echo(to_dot(lin), nl=False)


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
    with hash_progress(path, not as_json) as progress:
        result = prov.verify(
            path, expected=expected, use_cache=not no_cache, ignore=ignore or [],
            allow_symlinks=allow_symlinks, progress=progress,
        )  # fmt: skip
    if as_json:
        emit(result.to_json(prov.chain.chain_id), as_json=True)
    else:
        _print_verification(result, prov)
    if result.exit_code:
        raise typer.Exit(result.exit_code)


def _print_verification(result: Verification, prov: Provenance) -> None:
    color = {"ok": "green", "modified": "red", "revoked": "red", "unknown": "yellow"}.get(
        result.status, "yellow"
    )
    console.print(f"[{color}]{result.summary()}[/{color}]", highlight=False, soft_wrap=True)
    if result.asset is None:
        return
    label = owner_label(prov)
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
    with hash_progress(path, True) as progress:
        m = build_manifest(
            path, ignore=ignore or [], allow_symlinks=allow_symlinks, cache=cache, progress=progress
        )
    emit({"digest": m.digest, **m.to_statement()}, as_json=True)


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
