"""``neuroledger job …``: compute-to-data jobs submitted from this home."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from neuroledger._fs import atomic_write
from neuroledger.cli._commands import help_of
from neuroledger.cli._context import context_of, emit
from neuroledger.cli._options import JsonOpt
from neuroledger.cli._privacy import (
    GatewayOpt,
    IdentityOpt,
    PurposeOpt,
    data_of,
    gateway_client,
)
from neuroledger.errors import PrivacyError, SandboxError
from neuroledger.privacy import SubmittedJobs

if TYPE_CHECKING:
    from neuroledger.privacy import GatewayClient

app = typer.Typer(help=help_of("job"))


def _submitted(ctx: typer.Context) -> SubmittedJobs:
    return SubmittedJobs(context_of(ctx).home())


@app.command("submit")
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
    data = data_of(ctx)
    dataset_id = data.provenance.resolve(dataset)
    client = gateway_client(ctx, data, gateway, identity)
    job = client.submit_job(dataset_id, purpose, algorithm.read_bytes())
    _submitted(ctx).add(job["id"], gateway=gateway, dataset=dataset_id, purpose=purpose,
                        identity=identity)  # fmt: skip
    if wait:
        job = client.wait(job["id"], dataset_id, purpose)
    human = f"job {job['id']}: {job['status']} {job.get('reason') or ''}".rstrip()
    if job.get("excluded"):
        human += f"; records excluded by withdrawn consent: {job['excluded']}"
    emit(job, as_json=as_json, human=human)
    if wait and job["status"] != "succeeded":  # scripts see a failed job by the exit code
        raise typer.Exit(SandboxError.exit_code)


def _job_client(ctx: typer.Context, job_id: str) -> tuple[GatewayClient, dict[str, str]]:

    record = _submitted(ctx).get(job_id)
    return gateway_client(ctx, data_of(ctx), record["gateway"], record["identity"]), record


@app.command("status")
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


@app.command("result")
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
