"""``neuroledger data …``: encrypt, decrypt and fetch private data (age, DID-published keys)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from neuroledger._fs import atomic_write
from neuroledger.cli._commands import help_of
from neuroledger.cli._context import byte_progress, console, context_of, emit
from neuroledger.cli._options import JsonOpt
from neuroledger.cli._privacy import (
    GatewayOpt,
    IdentityOpt,
    PurposeOpt,
    data_of,
    gateway_client,
)
from neuroledger.errors import PrivacyError
from neuroledger.privacy import age

app = typer.Typer(help=help_of("data"))


@app.command("encrypt")
def encrypt(
    ctx: typer.Context,
    path: Path,
    owner: Annotated[
        str | None,
        typer.Option("--owner", help="Keep it in NAME's vault and register it as NAME's dataset."),
    ] = None,
    to: Annotated[
        list[str] | None,
        typer.Option("--to", help="Recipient: identity name, did:ethr or age1… key (repeatable)."),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("-o", "--out", help="Where to write the .age file (with --to).")
    ] = None,
    license: Annotated[
        str, typer.Option("--license", help="SPDX license of the dataset (with --owner).")
    ] = "",
    no_subjects: Annotated[
        bool,
        typer.Option(
            "--no-subjects",
            help="The file has no per-subject rows (aggregates, weights): jobs get it whole. "
            "Without it, jobs run only on a CSV whose `subject` column names every row's subject.",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Encrypt a file: into the owner's vault as a registered dataset, or to recipients' published keys."""
    if (owner is None) == (not to):
        raise PrivacyError(
            "give either --owner NAME (vault + register) or --to WHO -o FILE (a .age file)"
        )
    if not path.is_file():
        raise PrivacyError(f"{path} is not a file; give the data file to encrypt")
    data = data_of(ctx)
    size = path.stat().st_size
    if owner is not None:
        passes = (f"hashing {path.name}", f"encrypting {path.name}")
        with byte_progress(passes, size, not as_json) as progress:
            registration = data.protect(path, owner=owner, license=license,
                                        per_subject=not no_subjects, progress=progress)  # fmt: skip
        emit(
            {"asset": registration.asset_id, "owner": registration.owner, "tx": registration.tx_hash,
             "vault": str(data.vault.entry(registration.asset_id).payload.parent)},
            as_json=as_json,
            human=f"encrypted {path.name} into the vault of {owner} and registered dataset "
            f"{registration.asset_id}",
        )  # fmt: skip
        return
    if out is None:
        raise PrivacyError("--to needs -o FILE: where to write the encrypted file")
    keys = [age.parse_recipient(w) if w.startswith("age1") else data.recipient(w) for w in to or []]
    with byte_progress(f"encrypting {path.name}", size, not as_json) as progress:
        size = age.encrypt_file(path, out, keys, progress=progress)
    emit({"out": str(out), "bytes": size, "recipients": [age.recipient_string(k) for k in keys]},
         as_json=as_json, human=f"encrypted {size} bytes to {len(keys)} recipient(s): {out}")  # fmt: skip


@app.command("decrypt")
def decrypt(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(help="An .age file, or an asset id with --asset.")],
    identity: IdentityOpt,
    out: Annotated[Path, typer.Option("-o", "--out", help="Where to write the plaintext.")],
    asset: Annotated[
        bool, typer.Option("--asset", help="SOURCE is an asset in this home's vault.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Decrypt an .age file (or a vault asset) with an identity's X25519 key."""
    c = context_of(ctx)
    if asset:
        size = data_of(ctx).decrypt(source, identity=identity, out=out)
    else:
        if not Path(source).is_file():
            raise PrivacyError(f"{source} is not a file; give the .age file (or --asset ID)")
        private = c.keystore().x25519_private(identity)
        total = Path(source).stat().st_size
        with byte_progress(f"decrypting {Path(source).name}", total, not as_json) as progress:
            size = age.decrypt_file(source, out, private, progress=progress)
    emit(
        {"out": str(out), "bytes": size},
        as_json=as_json,
        human=f"decrypted {size} bytes into {out}",
    )


@app.command("fetch")
def fetch(
    ctx: typer.Context,
    asset: str,
    gateway: GatewayOpt,
    identity: IdentityOpt,
    purpose: PurposeOpt,
    out: Annotated[Path, typer.Option("-o", "--out", help="Where to write the data.")],
    encrypted: Annotated[
        bool, typer.Option("--encrypted", help="Keep the .age file; do not decrypt.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Download an asset you hold a download grant for, through the owner's gateway."""
    c = context_of(ctx)
    data = data_of(ctx)
    client = gateway_client(ctx, data, gateway, identity)
    private = None if encrypted else c.keystore().x25519_private(identity)
    asset_id = data.provenance.resolve(asset)
    size = client.download(asset_id, purpose, out, private=private)
    emit({"asset": asset_id, "out": str(out), "bytes": size, "decrypted": not encrypted},
         as_json=as_json, human=f"fetched {size} bytes of {asset_id[:12]} into {out}")  # fmt: skip


@app.command("key")
def key(
    ctx: typer.Context,
    identity: str,
    out: Annotated[Path, typer.Option("-o", "--out", help="Identity file to write (mode 0600).")],
) -> None:
    """Write an identity's X25519 key as an age identity file, for `age -d -i FILE`."""
    c = context_of(ctx)
    private = c.keystore().x25519_private(identity)
    text = (
        f"# age identity of NeuroLedger identity {identity}\n"
        f"# public key: {age.recipient_string(age.x25519_public(private))}\n"
        f"{age.identity_string(private)}\n"
    )
    atomic_write(out, text.encode(), mode=0o600)
    console.print(
        f"wrote the age identity of {identity} to {out} (keep it secret)", highlight=False
    )


@app.command("list")
def list_vault(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Encrypted assets in this home's vault, with who holds a key wrap."""
    c = context_of(ctx)
    from neuroledger.privacy import Vault

    entries: list[dict[str, Any]] = [
        {"asset": e.asset_id, "name": e.name, "bytes": e.size, "wraps": list(e.wraps)}
        for e in Vault(c.home() / "vault").entries()
    ]
    lines = [
        f"{e['asset'][:12]}  {e['name']}  {e['bytes']} bytes  wraps: {len(e['wraps'])}"
        for e in entries
    ]
    emit(entries, as_json=as_json, human="\n".join(lines) or "the vault is empty")
