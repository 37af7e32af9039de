"""Every check of a gateway request, in order, and the audit record of each decision.

:class:`Authorizer` takes plain values (the client's address, the declared length, the
body's chunks), so it runs and is tested without HTTP; the FastAPI app only adapts requests
to it.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool

from neuroledger._json import loads_bounded
from neuroledger.errors import AccessDeniedError, NeuroLedgerError, RequestRefusedError
from neuroledger.identity import format_did
from neuroledger.privacy._audit import AuditSink, access_event
from neuroledger.privacy._checker import AccessChecker
from neuroledger.privacy._grants import MODES
from neuroledger.privacy._limits import DenialBudget, GatewayConfig, NonceStore, RateLimiter
from neuroledger.privacy._requests import AccessRequest, recover_signer
from neuroledger.privacy._service import PrivateData

__all__ = ["Authorizer"]


class Authorizer:
    """The checks and the audit trail of one gateway."""

    def __init__(
        self, data: PrivateData, config: GatewayConfig, *, owner_address: str, audit: AuditSink,
        state_dir: Path,
    ) -> None:  # fmt: skip
        self.data, self.config, self.audit = data, config, audit
        self.checker = AccessChecker(data, config, owner=owner_address)
        self.nonces = NonceStore(state_dir / "nonces.sqlite")
        self.by_client = RateLimiter(config.client_rate, config.client_burst)
        self.by_identity = RateLimiter(config.rate, config.burst)
        self.denials = DenialBudget(config.denials_logged, config.denial_window)
        self.separator = data.domain.separator
        self.chain_id = data.chain.chain_id

    def close(self) -> None:
        """Stop the checker's poller and close the nonce store."""
        self.checker.close()
        self.nonces.close()

    def summarize(self, summary: dict[str, Any] | None) -> None:
        """Log a summary of the denials counted in a window that is over."""
        if summary is not None:
            self.audit.submit(access_event(
                "access.denied-summary", start=summary["window_start"], risk=True, details=summary
            ))  # fmt: skip

    def record(self, decision: str, reason: str, request: AccessRequest | None, digest: str | None,
               client: str, status: int = 403) -> asyncio.Future[Any]:  # fmt: skip
        """Log a decision (denials beyond the window's budget are only counted)."""
        if decision == "denied":
            individual, summary = self.denials.admit(status, client)
            self.summarize(summary)
            if not individual:
                done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
                done.set_result(None)
                return done
        else:
            self.summarize(self.denials.due())
        event = access_event(
            f"access.{decision}",
            start=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            input_digest=digest,
            asset=request.asset if request else None,
            operator=format_did(self.chain_id, request.identity) if request else None,
            risk=decision == "denied",
            details={
                "action": request.action if request else None,
                "purpose": request.purpose if request else None,
                "nonce": request.nonce if request else None,
                "reason": reason,
                "client": client,
            },
        )
        return asyncio.wrap_future(self.audit.submit(event))

    async def authorize(
        self, client: str, declared: str | None, chunks: AsyncIterator[bytes],
        actions: tuple[str, ...], body: Callable[[dict[str, Any]], bytes],
    ) -> tuple[AccessRequest, dict[str, Any]]:  # fmt: skip
        """Every check of one request from ``client`` (its declared ``Content-Length`` and
        its body's ``chunks``); on refusal the decision is logged and
        :class:`RequestRefusedError` raised."""
        request: AccessRequest | None = None
        digest: str | None = None
        try:
            wait = self.by_client.take(client)
            if wait:
                raise RequestRefusedError(
                    429, f"too many requests from {client}; retry in {wait:.2f} s"
                )
            if declared is not None and (
                not declared.isdigit() or int(declared) > self.config.max_body
            ):
                raise RequestRefusedError(
                    413, f"the request body is over {self.config.max_body} bytes"
                )
            raw = bytearray()
            async for piece in chunks:
                raw += piece
                if len(raw) > self.config.max_body:
                    raise RequestRefusedError(
                        413, f"the request body is over {self.config.max_body} bytes"
                    )
            try:
                payload = loads_bounded(raw, max_bytes=self.config.max_body, max_depth=8)
            except ValueError as exc:
                raise RequestRefusedError(
                    400, f"the body is not JSON within limits ({exc}); send {{request, signature}}"
                ) from None
            if not isinstance(payload, dict) or not isinstance(payload.get("signature"), str):
                raise RequestRefusedError(
                    400, "the body must be a JSON object with request and signature"
                )
            try:
                request = AccessRequest.from_json(payload.get("request"))
            except AccessDeniedError as exc:
                raise RequestRefusedError(400, str(exc)) from None
            digest = request.digest(self.separator).hex()
            if request.action not in actions:
                raise RequestRefusedError(400, f"action {request.action} is not served here")
            now = time.time()
            if request.expiry <= now:
                raise RequestRefusedError(401, "the signed request has expired; sign a new one")
            if request.expiry > now + self.config.max_window:
                raise RequestRefusedError(
                    400, f"the request's expiry is more than {self.config.max_window} s ahead"
                )
            if hashlib.sha256(body(payload)).hexdigest() != request.body:
                raise RequestRefusedError(
                    400, "the request's body digest does not match what it carries"
                )
            try:
                signer = recover_signer(request, payload["signature"], self.separator)
            except AccessDeniedError as exc:
                raise RequestRefusedError(401, str(exc)) from None
            wait = self.by_identity.take(request.identity.lower())
            if wait:
                raise RequestRefusedError(
                    429, f"too many requests for this identity; retry in {wait:.2f} s"
                )
            mode = MODES[request.mode]
            args = (request.asset, request.identity, mode, request.purpose, signer)
            verdict = self.checker.cached(*args)
            if verdict is None:
                try:
                    verdict = await run_in_threadpool(self.checker.read, *args)
                except (NeuroLedgerError, OSError) as exc:  # fail closed, and say why
                    raise RequestRefusedError(
                        503, f"cannot check the grant on chain now ({exc}); retry"
                    ) from None
            controls, granted = verdict
            if not controls:
                raise RequestRefusedError(
                    401,
                    "the signature is not by the identity's owner or a delegate "
                    "(or is for another chain or gateway)",
                )
            if not self.nonces.use(request.nonce, request.expiry, request.identity):
                raise RequestRefusedError(
                    409, "this request was already used (replay); sign a new one"
                )
            if not granted:
                raise RequestRefusedError(
                    403,
                    f"no grant covers {request.mode} of this asset for purpose "
                    f"{request.purpose!r} (none, expired, revoked or another purpose)",
                )
        except RequestRefusedError as denied:
            await self.record("denied", denied.reason, request, digest, client, denied.status)
            raise
        await self.record("allowed", request.action, request, digest, client)
        return request, payload
