"""The access gateway: serves key wraps, ciphertext and compute jobs to granted identities only.

Every request is a signed :class:`~neuroledger.privacy.requests.AccessRequest`
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

import asyncio
import base64
import hashlib
import io
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_abi.abi import decode as abi_decode
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool
from web3 import Web3

from neuroledger._json import loads_bounded
from neuroledger.errors import (
    AccessDeniedError,
    ChainError,
    NeuroLedgerError,
    PrivacyError,
    SandboxError,
)
from neuroledger.identity import format_did
from neuroledger.privacy import age
from neuroledger.privacy._audit import AuditSink, access_event
from neuroledger.privacy._limits import DenialBudget, NonceStore, RateLimiter
from neuroledger.privacy._server import bounded_config
from neuroledger.privacy.grants import MODES, purpose_bytes
from neuroledger.privacy.jobs import Jobs
from neuroledger.privacy.requests import AccessRequest, recover_signer
from neuroledger.privacy.service import PrivateData

__all__ = [
    "AccessChecker",
    "BackgroundServer",
    "GatewayConfig",
    "NonceStore",
    "RateLimiter",
    "create_app",
]

_VERIKEY = b"veriKey".ljust(32, b"\0")
#: ERC-1056 keys delegates by keccak256(delegateType).
_VERIKEY_SLOT = Web3.keccak(_VERIKEY)


@dataclass(frozen=True)
class GatewayConfig:
    """Limits and cache bounds of one gateway."""

    cache_blocks: int = 5
    cache_seconds: float = 5.0  # and never older than this, whatever the chain does
    stale_after: float = 3.0  # no successful chain read for this long: unhealthy, no cache
    poll_interval: float = 0.25
    rate: float = 200.0  # requests per second per identity
    burst: int = 400
    client_rate: float = 2000.0  # requests per second per client address, before parsing
    client_burst: int = 4000
    max_body: int = 512 * 1024
    max_window: int = 600  # the longest a signed request may stay valid, seconds
    denials_logged: int = 120  # denials logged one by one per window; the rest are counted
    denial_window: float = 60.0


class Denied(Exception):
    """A refused request: its HTTP status and a one-line reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class _Entry:
    """A cached check: its value, the block it was read at, until when it holds, and the
    monotonic time of the read."""

    value: bool
    block: int
    block_hash: bytes
    until: int
    read_at: float


class AccessChecker:
    """Grant and controller checks against the chain, cached for a bounded number of blocks."""

    def __init__(self, data: PrivateData, config: GatewayConfig, *, owner: str = "") -> None:
        self.data = data
        self.config = config
        self.owner = owner.lower()  # the gateway serves only assets this identity owns on chain
        self.w3 = data.chain.w3
        latest = self.w3.eth.get_block("latest")
        self.head = int(latest["number"])
        self.head_hash = bytes(latest["hash"])
        self.head_time = int(latest["timestamp"])
        self._head_seen = time.monotonic()
        self._grants: dict[tuple[str, str, int, str], _Entry] = {}
        self._controllers: dict[tuple[str, str], _Entry] = {}
        self._lock = threading.Lock()
        self._did = data.chain.contract("DIDRegistry")
        self._watched = [
            data.grants.address,
            data.provenance.registry.address,
            self.w3.to_checksum_address(self._did.address),
        ]
        self._last_ok = time.monotonic()
        self._stop = threading.Event()
        self._poller = threading.Thread(target=self._poll, name="gateway-poller", daemon=True)
        self._poller.start()

    def close(self) -> None:
        """Stop the poller."""
        self._stop.set()
        self._poller.join(timeout=5)

    def _fresh(self, entry: _Entry) -> bool:
        return (
            self.head - entry.block < self.config.cache_blocks
            and time.monotonic() - entry.read_at < self.config.cache_seconds
            and self._unexpired(entry.until)
        )

    @property
    def stale(self) -> bool:
        """True when the chain has not been read successfully for ``stale_after`` seconds."""
        return time.monotonic() - self._last_ok > self.config.stale_after

    def _drop_cache(self) -> None:
        with self._lock:
            self._grants.clear()
            self._controllers.clear()

    def now(self) -> float:
        """The later of this machine's clock and the chain's, run forward from the last block
        seen: a chain that mines only on transactions keeps its block time while idle."""
        chain_now = self.head_time + (time.monotonic() - self._head_seen)
        return max(time.time(), chain_now)

    def _unexpired(self, expiry: int) -> bool:
        return self.now() < expiry

    def _poll(self) -> None:
        while not self._stop.wait(self.config.poll_interval):
            try:
                self.poll_once()
            except Exception:  # the chain cannot be read: fail closed until it can
                self._drop_cache()

    def poll_once(self) -> None:
        """Follow the chain from the last head seen: drop what its new events touch, and
        everything when the last head seen is no longer on the chain."""
        latest = self.w3.eth.get_block("latest")
        head, head_hash = int(latest["number"]), bytes(latest["hash"])
        # The block last seen must still be on the chain: a node restarted from an older
        # state, or a reorganisation (same height, other blocks), forgets it all, since
        # entries read from dropped blocks may hold grants that are gone.
        if head == self.head:
            replaced = head_hash != self.head_hash
        else:
            seen = self.w3.eth.get_block(self.head) if head > self.head else None
            replaced = seen is None or bytes(seen["hash"]) != self.head_hash
        if replaced:
            self._drop_cache()
            if head <= self.head:
                self.head, self.head_hash = head, head_hash
                self.head_time, self._head_seen = int(latest["timestamp"]), time.monotonic()
        self._last_ok = time.monotonic()
        if head <= self.head:
            return
        logs = self.w3.eth.get_logs(
            {"address": self._watched, "fromBlock": self.head + 1, "toBlock": head}
        )
        self.head_time, self._head_seen = int(latest["timestamp"]), time.monotonic()
        touched = set()
        for log in logs:
            for topic in log["topics"][1:3]:
                raw = bytes(topic)
                touched.add(raw[-20:].hex() if raw[:12] == bytes(12) else raw.hex())
        # A read may run ahead of the poller (at a block above the last head seen). If a
        # reorganisation replaced that block, its logs show nothing: only its hash tells.
        canonical = self._hashes_above(self.head, head, head_hash)

        def on_chain(entry: _Entry) -> bool:
            if entry.block <= self.head or entry.block > head:
                return True  # below: the head check covers it; above: checked next time
            return canonical.get(entry.block) == entry.block_hash  # unknown height: re-read

        with self._lock:
            self._grants = {k: v for k, v in self._grants.items()
                            if k[0] not in touched and k[1][2:].lower() not in touched
                            and on_chain(v)}  # fmt: skip
            self._controllers = {k: v for k, v in self._controllers.items()
                                 if k[0][2:].lower() not in touched and on_chain(v)}  # fmt: skip
            self.head, self.head_hash = head, head_hash

    def _hashes_above(self, seen: int, head: int, head_hash: bytes) -> dict[int, bytes]:
        """The chain's block hash at each height in (seen, head] that an entry was read at."""
        with self._lock:
            entries = [*self._grants.values(), *self._controllers.values()]
        hashes = {head: head_hash}
        for number in {e.block for e in entries if seen < e.block < head}:
            hashes[number] = bytes(self.w3.eth.get_block(number)["hash"])
        return hashes

    def read(self, asset: str, identity: str, mode: int, purpose: str, signer: str
             ) -> tuple[bool, bool]:  # fmt: skip
        """(signer controls identity, a grant covers the use), read from the chain and cached.

        The four reads (identity owner, delegate, ``hasAccess``, ``grantOf``) go in
        one JSON-RPC batch: one round trip instead of four.
        """
        to = self.w3.to_checksum_address
        grants = self.data.grants
        asset_b = bytes.fromhex(asset)
        reads = [
            (self._did, "identityOwner", [to(identity)], ["address"]),
            (self._did, "delegates", [to(identity), _VERIKEY_SLOT, to(signer)], ["uint256"]),
            (grants.contract, "hasAccess", [asset_b, to(identity), mode, purpose_bytes(purpose)], ["bool"]),
            (grants.contract, "grantOf", [asset_b, to(identity), purpose_bytes(purpose)], ["uint8", "uint64", "address"]),
            (self.data.provenance.registry.contract, "assetOf", [asset_b], ["address", "uint8", "uint8"]),
        ]  # fmt: skip
        # Read at one named block, so that the entry can be checked against the chain later.
        at = self.w3.eth.get_block("latest")
        block, block_hash = int(at["number"]), bytes(at["hash"])
        where = {"blockHash": "0x" + block_hash.hex()}
        batch = [
            ("eth_call", [{"to": c.address, "data": c.encode_abi(fn, args=args)}, where])
            for c, fn, args, _ in reads
        ]
        replies = self.w3.provider.make_batch_request(batch)  # type: ignore[attr-defined]
        if not isinstance(replies, list) or any("error" in r for r in replies):
            raise ChainError(f"the chain refused the access check: {replies}")
        values = [
            abi_decode(types, bytes.fromhex(str(reply["result"]).removeprefix("0x")))
            for (_, _, _, types), reply in zip(reads, sorted(replies, key=lambda r: int(r["id"])), strict=True)
        ]  # fmt: skip
        # Both clocks: the chain's (in hasAccess, and head_time) and this machine's, because
        # a chain that mines only on transactions keeps an old block time while idle.
        owner = str(values[0][0])
        delegate_until = int(values[1][0])
        is_owner = owner.lower() == signer.lower() and int(owner, 16) != 0
        controls_until = 2**63 if is_owner else delegate_until
        controls = self._unexpired(controls_until)
        expiry = int(values[3][1])
        # Someone else's asset (a squatted digest, say) is never served here, whatever grant
        # its on-chain owner wrote.
        ours = not self.owner or str(values[4][0]).lower() == self.owner
        granted = bool(values[2][0]) and self._unexpired(expiry) and ours
        now = time.monotonic()
        self._last_ok = now
        key = (asset, identity.lower(), mode, purpose)
        with self._lock:
            self._controllers[(identity.lower(), signer.lower())] = _Entry(
                controls, block, block_hash, controls_until, now
            )
            self._grants[key] = _Entry(granted, block, block_hash, expiry, now)
        return controls, granted

    def cached(
        self, asset: str, identity: str, mode: int, purpose: str, signer: str
    ) -> tuple[bool, bool] | None:
        """The cached (controls, granted) for a request, or None when the chain must be read."""
        with self._lock:
            control = self._controllers.get((identity.lower(), signer.lower()))
            grant = self._grants.get((asset, identity.lower(), mode, purpose))
        if control is None or grant is None or self.stale:
            return None
        if not (self._fresh(control) and self._fresh(grant)):
            return None
        return control.value, grant.value


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
    checker = AccessChecker(data, config, owner=owner_address)
    nonces = NonceStore(state_dir / "nonces.sqlite")
    by_client = RateLimiter(config.client_rate, config.client_burst)
    by_identity = RateLimiter(config.rate, config.burst)
    separator = data.domain.separator
    chain_id = data.chain.chain_id
    app = FastAPI(
        title="NeuroLedger access gateway",
        version="1",
        description="Serves key wraps, ciphertext and compute jobs to identities that hold a grant.",
    )

    denials = DenialBudget(config.denials_logged, config.denial_window)

    def summarize(summary: dict[str, Any] | None) -> None:
        if summary is not None:
            audit.submit(access_event(
                "access.denied-summary", start=summary["window_start"], risk=True, details=summary
            ))  # fmt: skip

    def record(decision: str, reason: str, request: AccessRequest | None, digest: str | None,
               client: str, status: int = 403) -> asyncio.Future[Any]:  # fmt: skip
        if decision == "denied":
            individual, summary = denials.admit(status, client)
            summarize(summary)
            if not individual:
                done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
                done.set_result(None)
                return done
        else:
            summarize(denials.due())
        event = access_event(
            f"access.{decision}",
            start=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            input_digest=digest,
            asset=request.asset if request else None,
            operator=format_did(chain_id, request.identity) if request else None,
            risk=decision == "denied",
            details={
                "action": request.action if request else None,
                "purpose": request.purpose if request else None,
                "nonce": request.nonce if request else None,
                "reason": reason,
                "client": client,
            },
        )
        return asyncio.wrap_future(audit.submit(event))

    async def authorize(http: Request, actions: tuple[str, ...], body: Callable[[dict[str, Any]], bytes]
                        ) -> tuple[AccessRequest, dict[str, Any]]:  # fmt: skip
        """Every check; on refusal the decision is logged and :class:`Denied` raised."""
        client = http.client.host if http.client else "unknown"
        request: AccessRequest | None = None
        digest: str | None = None
        try:
            wait = by_client.take(client)
            if wait:
                raise Denied(429, f"too many requests from {client}; retry in {wait:.2f} s")
            declared = http.headers.get("content-length")
            if declared is not None and (not declared.isdigit() or int(declared) > config.max_body):
                raise Denied(413, f"the request body is over {config.max_body} bytes")
            raw = bytearray()
            async for piece in http.stream():
                raw += piece
                if len(raw) > config.max_body:
                    raise Denied(413, f"the request body is over {config.max_body} bytes")
            try:
                payload = loads_bounded(raw, max_bytes=config.max_body, max_depth=8)
            except ValueError as exc:
                raise Denied(400, f"the body is not JSON within limits ({exc}); "
                                  "send {request, signature}") from None  # fmt: skip
            if not isinstance(payload, dict) or not isinstance(payload.get("signature"), str):
                raise Denied(400, "the body must be a JSON object with request and signature")
            try:
                request = AccessRequest.from_json(payload.get("request"))
            except AccessDeniedError as exc:
                raise Denied(400, str(exc)) from None
            digest = request.digest(separator).hex()
            if request.action not in actions:
                raise Denied(400, f"action {request.action} is not served here")
            now = time.time()
            if request.expiry <= now:
                raise Denied(401, "the signed request has expired; sign a new one")
            if request.expiry > now + config.max_window:
                raise Denied(400, f"the request's expiry is more than {config.max_window} s ahead")
            if hashlib.sha256(body(payload)).hexdigest() != request.body:
                raise Denied(400, "the request's body digest does not match what it carries")
            try:
                signer = recover_signer(request, payload["signature"], separator)
            except AccessDeniedError as exc:
                raise Denied(401, str(exc)) from None
            wait = by_identity.take(request.identity.lower())
            if wait:
                raise Denied(429, f"too many requests for this identity; retry in {wait:.2f} s")
            mode = MODES[request.mode]
            args = (request.asset, request.identity, mode, request.purpose, signer)
            verdict = checker.cached(*args)
            if verdict is None:
                try:
                    verdict = await run_in_threadpool(checker.read, *args)
                except (NeuroLedgerError, OSError) as exc:  # fail closed, and say why
                    raise Denied(
                        503, f"cannot check the grant on chain now ({exc}); retry"
                    ) from None
            controls, granted = verdict
            if not controls:
                raise Denied(401, "the signature is not by the identity's owner or a delegate "
                                  "(or is for another chain or gateway)")  # fmt: skip
            if not nonces.use(request.nonce, request.expiry, request.identity):
                raise Denied(409, "this request was already used (replay); sign a new one")
            if not granted:
                raise Denied(403, f"no grant covers {request.mode} of this asset for purpose "
                                  f"{request.purpose!r} (none, expired, revoked or another purpose)")  # fmt: skip
        except Denied as denied:
            await record("denied", denied.reason, request, digest, client, denied.status)
            raise
        await record("allowed", request.action, request, digest, client)
        return request, payload

    def no_body(_: dict[str, Any]) -> bytes:
        return b""

    @app.exception_handler(Denied)
    async def _denied(_: Request, exc: Denied) -> JSONResponse:
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
        summarize(denials.due())  # a flood that stopped still gets its summary logged
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
            raise Denied(400, "algorithm must be base64 of the Python file") from None

    @app.post("/v1/jobs")
    async def submit(http: Request) -> JSONResponse:
        """Submit a job: the approved algorithm runs on the dataset at the owner's side."""
        if jobs is None:
            raise Denied(404, "this gateway runs no compute jobs (start it with --jobs)")
        request, payload = await authorize(http, ("job-submit",), algorithm_bytes)
        client = http.client.host if http.client else "unknown"
        try:
            job = await run_in_threadpool(
                jobs.submit, request.asset, requester=request.identity, purpose=request.purpose,
                code=algorithm_bytes(payload),
            )  # fmt: skip
        except NeuroLedgerError as exc:  # not approved, no outputs declared: logged as refused
            await record("denied", str(exc), request, request.digest(separator).hex(), client)
            raise
        return JSONResponse(job.to_json(), status_code=202)

    def job_of(job_id: str, request: AccessRequest) -> Any:
        assert jobs is not None
        job = jobs.get(job_id)
        if job.requester.lower() != request.identity.lower() or job.dataset != request.asset:
            raise Denied(403, "this job belongs to another identity or dataset")
        return job

    @app.post("/v1/jobs/{job_id}")
    async def status(job_id: str, http: Request) -> JSONResponse:
        """A job's state (its submitter only)."""
        if jobs is None:
            raise Denied(404, "this gateway runs no compute jobs")
        request, _ = await authorize(http, ("job-status",), lambda _: job_id.encode())
        return JSONResponse(job_of(job_id, request).to_json())

    @app.post("/v1/jobs/{job_id}/outputs/{name}")
    async def result(job_id: str, name: str, http: Request) -> Response:
        """A released output, encrypted to the requester's published X25519 key."""
        if jobs is None:
            raise Denied(404, "this gateway runs no compute jobs")
        request, _ = await authorize(http, ("job-result",), lambda _: f"{job_id}/{name}".encode())
        job_of(job_id, request)
        path = jobs.output(job_id, name)
        key = await run_in_threadpool(data.recipient, request.identity)
        out = io.BytesIO()
        with open(path, "rb") as src:
            age.encrypt_stream(src, out, [key])
        return Response(out.getvalue(), media_type="application/octet-stream")

    def close() -> None:
        checker.close()
        nonces.close()

    app.state.checker = checker
    app.state.close = close
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
