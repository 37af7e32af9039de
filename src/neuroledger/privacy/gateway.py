"""The access gateway: serves key wraps, ciphertext and compute jobs to granted identities only.

Every request is a signed :class:`~neuroledger.privacy._requests.AccessRequest`
in a JSON body ``{"request": {...}, "signature": "0x…"}``. The gateway, in
this order: bounds the body size, rate-limits the client, parses the request,
checks the expiry window and the body digest, recovers the signer, rate-limits
the identity, refuses a nonce it has seen (kept on disk until the request
expires), checks that the signer controls the identity (DID owner or
``veriKey`` delegate) and that a grant covers the asset, mode and purpose on
chain, and appends the decision to the owner's audit log, allowed or denied,
before it answers. A wrong chain or contract in the typed-data domain yields
another signer and is refused like any forged signature.

Chain reads are cached for at most ``cache_blocks`` blocks. A poller follows
the chain head and drops cached entries that grant, revoke, transfer or
DID-registry events touch, so revocation is honoured within one poll interval
and, whatever happens, within ``cache_blocks`` blocks. ``cache_blocks=0``
reads the chain on every request.

Compute-only grants never see plaintext or keys: their requests can only
submit jobs, read their status, and fetch released outputs, which are
encrypted to the requester's published X25519 key.
"""

from __future__ import annotations

import base64
import io
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from neuroledger.errors import (
    AccessDeniedError,
    NeuroLedgerError,
    PrivacyError,
    RequestRefusedError,
    SandboxError,
)
from neuroledger.identity import format_did
from neuroledger.privacy import age
from neuroledger.privacy._audit import AuditSink
from neuroledger.privacy._authorize import Authorizer
from neuroledger.privacy._jobs import Jobs
from neuroledger.privacy._limits import GatewayConfig
from neuroledger.privacy._requests import AccessRequest
from neuroledger.privacy._server import bounded_config, listen, serve
from neuroledger.privacy._service import PrivateData

__all__ = ["BackgroundServer", "GatewayConfig", "create_app", "listen", "serve"]


def _error(status: int, reason: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": reason}, status_code=status, headers=headers)


def create_app(
    data: PrivateData,
    *,
    owner: str,
    audit: AuditSink,
    jobs: Jobs | None = None,
    config: GatewayConfig | None = None,
    state_dir: Path,
) -> FastAPI:
    """The gateway's ASGI app for assets owned by identity ``owner`` (a local name)."""
    config = config or GatewayConfig()
    owner_address = data.identity(owner)
    gate = Authorizer(data, config, owner_address=owner_address, audit=audit, state_dir=state_dir)
    checker, separator, chain_id = gate.checker, gate.separator, gate.chain_id
    app = FastAPI(
        title="NeuroLedger access gateway",
        version="1",
        description="Serves key wraps, ciphertext and compute jobs to identities that hold a grant.",
    )

    async def authorize(http: Request, actions: tuple[str, ...],
                        body: Callable[[dict[str, Any]], bytes]
                        ) -> tuple[AccessRequest, dict[str, Any]]:  # fmt: skip
        client = http.client.host if http.client else "unknown"
        declared = http.headers.get("content-length")
        return await gate.authorize(client, declared, http.stream(), actions, body)

    def no_body(_: dict[str, Any]) -> bytes:
        return b""

    @app.exception_handler(RequestRefusedError)
    async def _denied(_: Request, exc: RequestRefusedError) -> JSONResponse:
        headers = {"Retry-After": "1"} if exc.status == 429 else None
        return _error(exc.status, exc.reason, headers)

    @app.exception_handler(NeuroLedgerError)
    async def _failed(_: Request, exc: NeuroLedgerError) -> JSONResponse:
        if isinstance(exc, AccessDeniedError):
            return _error(403, str(exc))
        if isinstance(exc, SandboxError):
            return _error(400, str(exc))
        return _error(404 if isinstance(exc, PrivacyError) else 502, str(exc))

    @app.get("/v1/health")
    async def health() -> JSONResponse:
        """The gateway's chain, grants contract, owner and the block it has seen; 503 while
        the chain cannot be read (every request is then refused, nothing served from cache)."""
        gate.summarize(gate.denials.due())  # a flood that stopped still gets its summary logged
        body = {
            "status": "stale" if checker.stale else "ok",
            "chain_id": chain_id,
            "contract": data.grants.address,
            "owner": format_did(chain_id, owner_address),
            "block": checker.head,
            "cache_blocks": config.cache_blocks,
            "cache_seconds": config.cache_seconds,
        }
        return JSONResponse(body, status_code=503 if checker.stale else 200)

    @app.post("/v1/access")
    async def access(http: Request) -> Response:
        """``keywrap``: the age header for the requester; ``download``: the whole age file."""
        request, _ = await authorize(http, ("keywrap", "download"), no_body)
        if request.action == "keywrap":
            header = data.vault.wrap(request.asset, request.identity)
            return Response(header, media_type="application/octet-stream")
        pieces: Iterator[bytes] = data.vault.age_file(request.asset, request.identity)
        return StreamingResponse(pieces, media_type="application/octet-stream")

    def algorithm_bytes(payload: dict[str, Any]) -> bytes:
        try:
            return base64.b64decode(str(payload.get("algorithm", "")), validate=True)
        except ValueError:
            raise RequestRefusedError(400, "algorithm must be base64 of the Python file") from None

    @app.post("/v1/jobs")
    async def submit(http: Request) -> JSONResponse:
        """Submit a job: the approved algorithm runs on the dataset at the owner's side."""
        if jobs is None:
            raise RequestRefusedError(
                404, "this gateway runs no compute jobs (start it with --jobs)"
            )
        request, payload = await authorize(http, ("job-submit",), algorithm_bytes)
        client = http.client.host if http.client else "unknown"
        try:
            job = await run_in_threadpool(
                jobs.submit, request.asset, requester=request.identity, purpose=request.purpose,
                code=algorithm_bytes(payload),
            )  # fmt: skip
        except NeuroLedgerError as exc:  # not approved, no outputs declared: logged as refused
            await gate.record("denied", str(exc), request, request.digest(separator).hex(), client)
            raise
        return JSONResponse(job.to_json(), status_code=202)

    def job_of(job_id: str, request: AccessRequest) -> Any:
        assert jobs is not None
        job = jobs.get(job_id)
        if job.requester.lower() != request.identity.lower() or job.dataset != request.asset:
            raise RequestRefusedError(403, "this job belongs to another identity or dataset")
        return job

    @app.post("/v1/jobs/{job_id}")
    async def status(job_id: str, http: Request) -> JSONResponse:
        """A job's state (its submitter only)."""
        if jobs is None:
            raise RequestRefusedError(404, "this gateway runs no compute jobs")
        request, _ = await authorize(http, ("job-status",), lambda _: job_id.encode())
        return JSONResponse(job_of(job_id, request).to_json())

    @app.post("/v1/jobs/{job_id}/outputs/{name}")
    async def result(job_id: str, name: str, http: Request) -> Response:
        """A released output, encrypted to the requester's published X25519 key."""
        if jobs is None:
            raise RequestRefusedError(404, "this gateway runs no compute jobs")
        request, _ = await authorize(http, ("job-result",), lambda _: f"{job_id}/{name}".encode())
        job_of(job_id, request)
        path = jobs.output(job_id, name)
        key = await run_in_threadpool(data.recipient, request.identity)
        out = io.BytesIO()
        with open(path, "rb") as src:
            age.encrypt_stream(src, out, [key])
        return Response(out.getvalue(), media_type="application/octet-stream")

    app.state.checker = checker
    app.state.close = gate.close
    return app


class BackgroundServer:
    """A uvicorn server for ``app`` in a background thread, on a free loopback port by default.

    Used as ``with BackgroundServer(app) as server: ...`` (``server.url`` is where it listens).
    """

    def __init__(self, app: FastAPI, *, host: str = "127.0.0.1", port: int = 0,
                 request_seconds: float = 15.0) -> None:  # fmt: skip
        import socket

        import uvicorn

        if port == 0:
            with socket.socket() as probe:
                probe.bind((host, 0))
                port = probe.getsockname()[1]
        self.url = f"http://{host}:{port}"
        self.app = app
        self._server = uvicorn.Server(
            bounded_config(app, host=host, port=port, request_seconds=request_seconds)
        )
        self._thread = threading.Thread(target=self._server.run, name="gateway", daemon=True)

    def __enter__(self) -> BackgroundServer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise PrivacyError(f"the gateway did not start on {self.url}; is the port free?")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self.app.state.close()
