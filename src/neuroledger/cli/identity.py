"""``neuroledger identity …``: create, list, show, rotate, delegate, resolve, passphrase."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from neuroledger.cli._commands import help_of
from neuroledger.cli._context import console, context_of, emit
from neuroledger.cli._options import JsonOpt
from neuroledger.errors import KeystoreError
from neuroledger.identity import DELEGATE_TYPES, KINDS, format_did

app = typer.Typer(help=help_of("identity"))


@app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Local name, e.g. hospital-a.")],
    kind: Annotated[str, typer.Option("--kind", "-k", help=f"One of: {', '.join(KINDS)}.")] = "org",
    as_json: JsonOpt = False,
) -> None:
    """Create an identity, fund it (embedded chain) and publish its X25519 key."""
    ids = context_of(ctx).identities(new_passphrase=True)
    record = ids.create(name, kind)
    did = format_did(ids.chain.chain_id, record.identity)
    pending = ids.publish_blocker(name)
    emit(
        {**record.to_json(), "did": did, "published": pending is None, "next_step": pending},
        as_json=as_json,
        human=f"created {record.kind} [bold]{name}[/bold]  {did}"
        + (f"\nits key is not published yet: {pending}" if pending else ""),
    )


@app.command("publish")
def publish(ctx: typer.Context, name: str, as_json: JsonOpt = False) -> None:
    """(Re)publish the X25519 key-agreement key of an identity."""
    tx = context_of(ctx).identities().publish_key(name)
    emit({"name": name, "tx": tx}, as_json=as_json, human=f"published key of {name} in {tx}")


@app.command("list")
def list_(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List the identities of this home."""
    c = context_of(ctx)
    records = c.keystore().list()
    if as_json:
        emit([r.to_json() for r in records], as_json=True)
        return
    if not records:
        console.print("no identities yet; create one with `neuroledger identity create NAME`")
        return
    table = Table("name", "kind", "identity", "owner")
    for r in records:
        table.add_row(r.name, r.kind, r.identity, "self" if r.owner == r.identity else r.owner)
    console.print(table)


@app.command("show")
def show(
    ctx: typer.Context,
    name: str,
    address: Annotated[
        bool, typer.Option("--address", help="Print only the identity's address (for scripts).")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Show an identity: its DID, kind, owner and on-chain owner."""
    if address:
        typer.echo(context_of(ctx).keystore().get(name).identity)
        return
    ids = context_of(ctx).identities()
    record = ids.keystore.get(name)
    on_chain = ids.registry.identity_owner(record.identity)
    data = {**record.to_json(), "did": ids.did(name), "owner_on_chain": on_chain}
    human = "\n".join(
        [
            f"[bold]{name}[/bold] ({record.kind})",
            f"  did            {data['did']}",
            f"  owner (local)  {record.owner}",
            f"  owner (chain)  {on_chain}",
            f"  X25519 key     {record.x25519_public}",
        ]
    )
    emit(data, as_json=as_json, human=human)


@app.command("rotate")
def rotate(ctx: typer.Context, name: str, as_json: JsonOpt = False) -> None:
    """Move control of an identity to a fresh owner key (the DID does not change)."""
    rot = context_of(ctx).identities().rotate(name)
    emit(
        rot.__dict__,
        as_json=as_json,
        human=f"rotated {name}: owner {rot.old_owner} -> {rot.new_owner} ({rot.tx_hash})",
    )


@app.command("delegate")
def delegate(
    ctx: typer.Context,
    name: str,
    to: Annotated[str, typer.Option("--to", help="Delegate: identity name, 0x address or DID.")],
    delegate_type: Annotated[
        str, typer.Option("--type", help=f"One of: {', '.join(DELEGATE_TYPES)}.")
    ] = "veriKey",
    validity: Annotated[int, typer.Option("--validity", min=1, help="Seconds.")] = 86400,
    revoke: Annotated[bool, typer.Option("--revoke", help="Revoke instead of add.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Add (or revoke) a delegate of an identity."""
    ids = context_of(ctx).identities()
    if revoke:
        tx = ids.revoke_delegate(name, to, delegate_type)
        verb = "revoked"
    else:
        tx = ids.add_delegate(name, to, delegate_type, validity)
        verb = "added"
    emit(
        {"name": name, "delegate": to, "type": delegate_type, "action": verb, "tx": tx},
        as_json=as_json,
        human=f"{verb} {delegate_type} delegate {to} of {name} ({tx})",
    )


@app.command("resolve")
def resolve(
    ctx: typer.Context,
    did: Annotated[str, typer.Argument(help="A did:ethr DID or a local identity name.")],
    as_json: JsonOpt = False,
) -> None:
    """Resolve a did:ethr DID into its W3C DID document."""
    result = context_of(ctx).identities().resolve(did)
    emit(result.to_json(), as_json=True)
    del as_json  # a DID document is JSON either way


@app.command("passphrase")
def passphrase(
    ctx: typer.Context,
    new_file: Annotated[
        str | None,
        typer.Option(
            "--new-passphrase-file",
            help="File holding the new passphrase (otherwise you are prompted twice).",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Change the home's passphrase for every key at once (identities, log and witness keys)."""
    from pathlib import Path

    c = context_of(ctx)
    if new_file:
        try:
            new = Path(new_file).read_text().rstrip("\r\n")
        except OSError as exc:
            raise KeystoreError(f"cannot read {new_file} ({exc}); fix the path") from None
    else:
        new = typer.prompt("New keystore passphrase", hide_input=True, confirmation_prompt=True)
    extra = [p for p in c.settings.home.rglob("ed25519-*.json")
             if c.settings.keystore_dir not in p.parents]  # fmt: skip
    count = c.keystore().change_passphrase(new, extra=extra)
    emit({"keys": count}, as_json=as_json,
         human=f"re-encrypted {count} key(s) under the new passphrase; update "
               "NEUROLEDGER_PASSPHRASE_FILE if you use it")  # fmt: skip
