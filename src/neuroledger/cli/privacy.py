"""``neuroledger data|grant|consent|job|gateway …``: private data under owner-granted access."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, BinaryIO, cast

import typer

from neuroledger._fs import ReportingReader, atomic_write, atomic_writer
from neuroledger.cli._commands import help_of
from neuroledger.cli._context import byte_progress, console, context_of, emit
from neuroledger.cli._options import JsonOpt
from neuroledger.errors import PrivacyError, SandboxError
from neuroledger.privacy import age

if TYPE_CHECKING:  # imported where used: `data key` and `data list` need no chain
    from neuroledger.privacy.client import GatewayClient
    from neuroledger.privacy.service import PrivateData

data_app = typer.Typer(help=help_of("data"))
grant_app = typer.Typer(help=help_of("grant"))
consent_app = typer.Typer(help=help_of("consent"))
job_app = typer.Typer(help=help_of("job"))
gateway_app = typer.Typer(help=help_of("gateway"))

GatewayOpt = Annotated[
    str, typer.Option("--gateway", help="Gateway URL, e.g. http://127.0.0.1:8700.")
]
IdentityOpt = Annotated[str, typer.Option("--identity", help="Local identity making the request.")]
PurposeOpt = Annotated[str, typer.Option("--purpose", help="Purpose of the use, e.g. research.")]
OwnerOpt = Annotated[str, typer.Option("--owner", help="Local identity that owns the asset.")]


def _data(ctx: typer.Context) -> PrivateData:
    from neuroledger.privacy.service import PrivateData

    c = context_of(ctx)
    return PrivateData(c.chain(), c.keystore(), c.provenance(), c.settings.home)


def _client(ctx: typer.Context, data: PrivateData, url: str, identity: str) -> GatewayClient:
    from neuroledger.privacy.client import GatewayClient

    c = context_of(ctx)
    return GatewayClient(
        url, identity=data.identity(identity), account=c.keystore().owner_account(identity),
        domain=data.domain,
    )  # fmt: skip


# -- data ----------------------------------------------------------------------------------------
@data_app.command("encrypt")
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
    data = _data(ctx)
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
    with byte_progress(f"encrypting {path.name}", size, not as_json) as progress, \
            open(path, "rb") as raw, atomic_writer(out) as dst:  # fmt: skip
        src = cast(BinaryIO, ReportingReader(raw, progress)) if progress else raw
        size = age.encrypt_stream(src, dst, keys)
    emit({"out": str(out), "bytes": size, "recipients": [age.recipient_string(k) for k in keys]},
         as_json=as_json, human=f"encrypted {size} bytes to {len(keys)} recipient(s): {out}")  # fmt: skip


@data_app.command("decrypt")
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
        size = _data(ctx).decrypt(source, identity=identity, out=out)
    else:
        if not Path(source).is_file():
            raise PrivacyError(f"{source} is not a file; give the .age file (or --asset ID)")
        private = c.keystore().x25519_private(identity)
        total = Path(source).stat().st_size
        with byte_progress(f"decrypting {Path(source).name}", total, not as_json) as progress, \
                open(source, "rb") as raw, atomic_writer(out) as dst:  # fmt: skip
            src = cast(BinaryIO, ReportingReader(raw, progress)) if progress else raw
            size = age.decrypt_stream(src, dst, private)
    emit(
        {"out": str(out), "bytes": size},
        as_json=as_json,
        human=f"decrypted {size} bytes into {out}",
    )


@data_app.command("fetch")
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
    data = _data(ctx)
    client = _client(ctx, data, gateway, identity)
    private = None if encrypted else c.keystore().x25519_private(identity)
    asset_id = data.provenance.resolve(asset)
    size = client.download(asset_id, purpose, out, private=private)
    emit({"asset": asset_id, "out": str(out), "bytes": size, "decrypted": not encrypted},
         as_json=as_json, human=f"fetched {size} bytes of {asset_id[:12]} into {out}")  # fmt: skip


@data_app.command("key")
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


@data_app.command("list")
def list_vault(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Encrypted assets in this home's vault, with who holds a key wrap."""
    c = context_of(ctx)
    from neuroledger.privacy.vault import Vault

    entries: list[dict[str, Any]] = [
        {"asset": e.asset_id, "name": e.name, "bytes": e.size, "wraps": list(e.wraps)}
        for e in Vault(c.home() / "vault").entries()
    ]
    lines = [
        f"{e['asset'][:12]}  {e['name']}  {e['bytes']} bytes  wraps: {len(e['wraps'])}"
        for e in entries
    ]
    emit(entries, as_json=as_json, human="\n".join(lines) or "the vault is empty")


# -- grants --------------------------------------------------------------------------------------
@grant_app.command("add")
def grant_add(
    ctx: typer.Context,
    asset: str,
    grantee: Annotated[str, typer.Argument(help="Identity name, did:ethr or address.")],
    owner: OwnerOpt,
    purpose: PurposeOpt,
    mode: Annotated[str, typer.Option("--mode", help="download, compute or both.")] = "compute",
    expires: Annotated[
        str, typer.Option("--expires", help="How long it holds: 30m, 12h, 7d, 2w.")
    ] = "30d",
    replace: Annotated[
        bool,
        typer.Option("--replace", help="Replace a grant that holds for the same purpose."),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Grant an identity access to an asset for a purpose until an expiry.

    Grants for different purposes coexist; one for a purpose that already holds needs
    --replace.
    """
    from neuroledger.privacy.grants import utc
    from neuroledger.privacy.service import parse_duration

    receipt = _data(ctx).grant(asset, grantee, modes=mode, purpose=purpose, replace=replace,
                               expires_in=parse_duration(expires), owner=owner)  # fmt: skip
    old = receipt.replaced
    emit(receipt.to_json(), as_json=as_json,
         human=f"granted {'+'.join(receipt.modes)} of {receipt.asset[:12]} to {grantee} for "
         f"{purpose} until {utc(receipt.expiry)}"
         + (" (key wrapped)" if receipt.wrapped else "")
         + (f"; replaced its {'+'.join(old.modes)} grant until {utc(old.expiry)}" if old else ""))  # fmt: skip


@grant_app.command("revoke")
def grant_revoke(
    ctx: typer.Context,
    asset: str,
    grantee: str,
    owner: OwnerOpt,
    purpose: Annotated[
        str | None,
        typer.Option("--purpose", help="The grant's purpose (needed when several hold)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Revoke a grant; the gateway honours it within its cache bound."""
    tx = _data(ctx).revoke(asset, grantee, owner=owner, purpose=purpose)
    emit({"tx": tx}, as_json=as_json, human=f"revoked the grant of {grantee} on {asset[:12]}"
         + (f" for {purpose}" if purpose else ""))  # fmt: skip


@grant_app.command("list")
def grant_list(
    ctx: typer.Context,
    asset: Annotated[str | None, typer.Argument()] = None,
    as_json: JsonOpt = False,
) -> None:
    """Grants that hold now (unexpired, unrevoked), for one asset or all."""
    c = context_of(ctx)
    views = _data(ctx).list_grants(asset)
    rows = [v.to_json() for v in views]
    lines = [
        f"{v.asset[:12]}  {c.name_of(v.grantee)}  {'+'.join(v.modes)}  {v.purpose}  until "
        f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime(v.expiry))}"
        for v in views
    ]
    emit(rows, as_json=as_json, human="\n".join(lines) or "no grants hold")


@grant_app.command("approve")
def grant_approve(
    ctx: typer.Context,
    dataset: str,
    algorithm: Annotated[
        str, typer.Argument(help="The code asset (id or prefix) that may run on it.")
    ],
    owner: OwnerOpt,
    withdraw: Annotated[bool, typer.Option("--withdraw", help="Stop approving it.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Approve an algorithm (a registered code asset) to run on a dataset."""
    tx = _data(ctx).approve(dataset, algorithm, owner=owner, approved=not withdraw)
    verb = "withdrew the approval of" if withdraw else "approved"
    emit(
        {"tx": tx, "approved": not withdraw},
        as_json=as_json,
        human=f"{verb} {algorithm[:12]} on {dataset[:12]}",
    )


# -- consent -------------------------------------------------------------------------------------
def _consent(ctx: typer.Context, purpose: str, subject: str, given: bool, as_json: bool) -> None:
    tx = _data(ctx).consent(subject, purpose, given=given)
    emit({"subject": subject, "purpose": purpose, "given": given, "tx": tx}, as_json=as_json,
         human=f"{subject} {'gave' if given else 'withdrew'} consent to {purpose}")  # fmt: skip


@consent_app.command("give")
def consent_give(
    ctx: typer.Context,
    purpose: str,
    subject: Annotated[str, typer.Option("--subject", help="The data subject's identity.")],
    as_json: JsonOpt = False,
) -> None:
    """Give (again) consent to the use of your records for a purpose."""
    _consent(ctx, purpose, subject, True, as_json)


@consent_app.command("withdraw")
def consent_withdraw(
    ctx: typer.Context,
    purpose: str,
    subject: Annotated[str, typer.Option("--subject", help="The data subject's identity.")],
    as_json: JsonOpt = False,
) -> None:
    """Withdraw consent: later jobs for that purpose exclude your records."""
    _consent(ctx, purpose, subject, False, as_json)


# -- jobs ----------------------------------------------------------------------------------------
def _jobs_file(ctx: typer.Context) -> Path:
    c = context_of(ctx)
    return c.settings.home / "jobs-submitted.json"


def _job_record(ctx: typer.Context, job_id: str) -> dict[str, str]:
    """What this home knows of job ``job_id`` (``last``: the last job submitted from it)."""
    path = _jobs_file(ctx)
    known = json.loads(path.read_text()) if path.exists() else {}
    if job_id == "last" and known:
        job_id = list(known)[-1]
        return {**known[job_id], "id": job_id}
    if job_id not in known:
        raise PrivacyError(
            f"no job {job_id} was submitted from this home; `neuroledger job submit` starts one"
        )
    return {**known[job_id], "id": job_id}


@job_app.command("submit")
def job_submit(
    ctx: typer.Context,
    dataset: str,
    algorithm: Annotated[
        Path, typer.Argument(help="The approved algorithm: a Python file declaring OUTPUTS.")
    ],
    gateway: GatewayOpt,
    identity: IdentityOpt,
    purpose: PurposeOpt,
    wait: Annotated[bool, typer.Option("--wait", help="Wait until the job is finished.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Submit a job: the owner runs your approved algorithm on its data; you get only the outputs."""
    if not algorithm.is_file():
        raise PrivacyError(f"{algorithm} is not a file; give the algorithm's Python file")
    data = _data(ctx)
    dataset_id = data.provenance.resolve(dataset)
    client = _client(ctx, data, gateway, identity)
    job = client.submit_job(dataset_id, purpose, algorithm.read_bytes())
    path = _jobs_file(ctx)
    known = json.loads(path.read_text()) if path.exists() else {}
    known[job["id"]] = {
        "gateway": gateway,
        "dataset": dataset_id,
        "purpose": purpose,
        "identity": identity,
    }
    atomic_write(path, json.dumps(known, indent=1).encode())
    if wait:
        job = client.wait(job["id"], dataset_id, purpose)
    human = f"job {job['id']}: {job['status']} {job.get('reason') or ''}".rstrip()
    if job.get("excluded"):
        human += f"; records excluded by withdrawn consent: {job['excluded']}"
    emit(job, as_json=as_json, human=human)
    if wait and job["status"] != "succeeded":  # scripts see a failed job by the exit code
        raise typer.Exit(SandboxError.exit_code)


def _job_client(ctx: typer.Context, job_id: str) -> tuple[GatewayClient, dict[str, str]]:

    record = _job_record(ctx, job_id)
    return _client(ctx, _data(ctx), record["gateway"], record["identity"]), record


@job_app.command("status")
def job_status(
    ctx: typer.Context,
    job_id: Annotated[str, typer.Argument(help="The job's id, or `last`.")],
    as_json: JsonOpt = False,
) -> None:
    """A submitted job's state, its outputs and the records excluded by consent."""
    client, record = _job_client(ctx, job_id)
    job_id = record["id"]
    job = client.job(job_id, record["dataset"], record["purpose"])
    human = f"job {job_id}: {job['status']}"
    if job.get("reason") and job["status"] != "succeeded":
        human += f" ({job['reason']})"
    if job.get("outputs"):
        human += "\n  outputs: " + ", ".join(job["outputs"])
    if job.get("excluded"):
        human += f"\n  records excluded by withdrawn consent: {job['excluded']}"
    emit(job, as_json=as_json, human=human)


@job_app.command("result")
def job_result(
    ctx: typer.Context,
    job_id: Annotated[str, typer.Argument(help="The job's id, or `last`.")],
    out: Annotated[Path, typer.Option("-o", "--out", help="Directory for the outputs.")],
    as_json: JsonOpt = False,
) -> None:
    """Fetch a finished job's released outputs (sent encrypted to your key, decrypted here)."""
    c = context_of(ctx)
    client, record = _job_client(ctx, job_id)
    job_id = record["id"]
    job = client.job(job_id, record["dataset"], record["purpose"])
    if job["status"] != "succeeded":
        raise PrivacyError(
            f"job {job_id} is {job['status']} ({job.get('reason')}); it has no outputs"
        )
    private = c.keystore().x25519_private(record["identity"])
    written: dict[str, Any] = {}
    for name in job["outputs"]:
        content = client.output(job_id, record["dataset"], record["purpose"], name, private)
        atomic_write(out / name, content, mode=0o644)
        written[name] = str(out / name)
    emit(written, as_json=as_json, human="\n".join(f"wrote {p}" for p in written.values()))


# -- gateway -------------------------------------------------------------------------------------
def _listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port``, or one line saying what to change.

    IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted sockets only when the
    listener says TCP; without it Nagle and delayed ACKs add ~40 ms to a request.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
    except OSError as exc:
        listener.close()
        raise PrivacyError(
            f"cannot listen on {host}:{port} ({exc.strerror or exc}); another program holds "
            "that port: choose another with --port"
        ) from None
    listener.listen(1024)
    return listener


@gateway_app.command("serve")
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
    import uvicorn

    from neuroledger.audit.sdk import AuditLog
    from neuroledger.audit.service import AuditLogs
    from neuroledger.privacy._server import bounded_config
    from neuroledger.privacy.gateway import GatewayConfig, create_app
    from neuroledger.privacy.jobs import Jobs
    from neuroledger.privacy.sandbox import JobLimits, check_isolation

    # The port first: a port in use is one line and nothing created (no banner, no log).
    listener = _listen(host, port)
    c = context_of(ctx)
    data = _data(ctx)
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
    app = create_app(data, owner=owner, audit=audit, jobs=queue, config=config,
                     state_dir=c.settings.home / "gateway")  # fmt: skip
    console.print(
        f"gateway for {data.did(owner)} on http://{host}:{port} (audit log {log})", highlight=False
    )
    stop = threading.Event()

    def checkpoints() -> None:  # auditors see decisions within `checkpoint_every` seconds
        while not stop.wait(checkpoint_every):
            if audit.log.size > audit.log.state.checkpoint_size:
                audit.checkpoint()

    signer = threading.Thread(target=checkpoints, name="checkpoints", daemon=True)
    signer.start()
    try:
        # As uvicorn.run: the server shuts down gracefully on SIGINT/SIGTERM and then
        # re-raises the signal, which is the normal way out here, not an interruption.
        with contextlib.suppress(KeyboardInterrupt):
            uvicorn.Server(bounded_config(app, host=host, port=port)).run(sockets=[listener])
    finally:
        stop.set()
        signer.join()
        app.state.close()
        if queue is not None:
            queue.close()
        audit.checkpoint()
        audit.close()
