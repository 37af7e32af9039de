"""AgentService: serve a model (or any JSON function) per call, paid with x402.

Each paid route answers an unpaid request with ``402`` and a ``PAYMENT-REQUIRED`` header
(v2; the body carries the same object). A request with ``PAYMENT-SIGNATURE`` (v2) or
``X-PAYMENT`` (v1) is served only after its payment is settled on chain; the answer carries
``PAYMENT-RESPONSE`` (or ``X-PAYMENT-RESPONSE``). What x402 users ask for, kept here:

- settle before serving: the handler runs only once the settlement is confirmed;
- a payment is bound to its route's price and payee (the signature covers both) and to its
  resource: the same authorization presented on another route is refused;
- idempotent retries: the same payment header on the same route gets the answer it paid
  for again, without a second charge, until the authorization expires (a crash after the
  settlement and before the answer is recovered from the settler's receipt on chain).

The headers it reads and writes, both versions:

>>> HEADERS["payment"], HEADERS["payment_v1"], HEADERS["response"]
('PAYMENT-SIGNATURE', 'X-PAYMENT', 'PAYMENT-RESPONSE')
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from neuroledger._json import loads_bounded
from neuroledger.errors import NeuroLedgerError
from neuroledger.market._credits import Authorization
from neuroledger.market._facilitator import Facilitator
from neuroledger.market._paid_calls import PaidCalls
from neuroledger.market._x402 import (
    HEADERS,
    Payment,
    Requirements,
    X402Error,
    encode_header,
    parse_payment,
    payment_required,
)

__all__ = ["AgentService", "Handler"]

#: A paid route's function: the request's JSON in, the answer's JSON out.
Handler = Callable[[Any], Any]
#: The largest request body a paid route reads.
MAX_BODY = 1 << 20


class AgentService:
    """Paid JSON routes, the facilitator's API under ``/facilitator``, and the agent's card."""

    def __init__(self, facilitator: Facilitator, *, pay_to: str, calls_path: Path,
                 card: bytes | None = None,
                 on_paid: Callable[[dict[str, Any]], None] | None = None) -> None:  # fmt: skip
        """A service whose paid routes are paid to ``pay_to`` (an identity or an address).
        ``on_paid`` sees each paid call once it is served (e.g. to append it to an audit
        log); ``card`` (the registration file's bytes, whose hash the registry pins) is served
        as is at ``/.well-known/agent-registration.json``, where ERC-8004 looks for it."""
        self.facilitator = facilitator
        self.pay_to = facilitator.credits.address_of(pay_to)
        self.calls = PaidCalls(calls_path)
        self.card = card
        self.on_paid = on_paid
        self.routes: dict[str, tuple[int, str, Handler]] = {}
        self.checks: dict[str, Callable[[Any], None]] = {}

    def paid(self, path: str, *, price: int, description: str = "",
             check: Callable[[Any], None] | None = None) -> Callable[[Handler], Handler]:  # fmt: skip
        """Register ``fn`` as ``POST path`` at ``price`` atomic units per call. ``check``
        (raising ValueError) refuses a bad request with 422 before anything is charged."""
        if not path.startswith("/") or price <= 0:
            raise ValueError("a paid route needs a path starting with / and a price above 0")

        def register(fn: Handler) -> Handler:
            self.routes[path] = (price, description, fn)
            if check is not None:
                self.checks[path] = check
            return fn

        return register

    # -- the app ------------------------------------------------------------------------
    def app(self) -> FastAPI:
        """The FastAPI application: paid routes, ``/facilitator/*``, the card, ``/health``."""
        app = FastAPI(title="NeuroLedger agent service", docs_url=None, redoc_url=None)
        for path in self.routes:
            app.add_api_route(path, self._endpoint(path), methods=["POST"])
        app.add_api_route("/facilitator/verify", self._facilitate("verify"), methods=["POST"])
        app.add_api_route("/facilitator/settle", self._facilitate("settle"), methods=["POST"])
        app.add_api_route("/facilitator/supported", self._supported, methods=["GET"])
        app.add_api_route("/health", self._health, methods=["GET"])
        if self.card is not None:
            app.add_api_route("/.well-known/agent-registration.json", self._card, methods=["GET"])
        app.state.close = self.calls.close
        return app

    async def _health(self) -> dict[str, Any]:
        return {"ok": True, "paidRoutes": sorted(self.routes), "payTo": self.pay_to}

    async def _card(self) -> Response:
        return Response(self.card, media_type="application/json")

    async def _supported(self) -> dict[str, Any]:
        return self.facilitator.supported()

    def _facilitate(self, op: str) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> JSONResponse:
            body = await _read_json(request)
            if isinstance(body, JSONResponse):
                return body
            fn = self.facilitator.verify_body if op == "verify" else self.facilitator.settle_body
            return JSONResponse(await run_in_threadpool(fn, body))

        return endpoint

    def requirements(self, path: str, url: str) -> Requirements:
        price, description, _ = self.routes[path]
        return self.facilitator.requirements(amount=price, pay_to=self.pay_to, resource=url,
                                             description=description)  # fmt: skip

    def _endpoint(self, path: str) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            req = self.requirements(path, str(request.url))
            v2 = request.headers.get(HEADERS["payment"])
            v1 = request.headers.get(HEADERS["payment_v1"])
            body = await _read_json(request)
            if isinstance(body, JSONResponse):
                return body
            if path in self.checks:
                try:
                    self.checks[path](body)
                except ValueError as exc:  # nothing charged for a request that cannot be served
                    return JSONResponse({"error": str(exc)}, status_code=422)
            if v2 is None and v1 is None:
                return _payment_required(req, "payment_required",
                                         "this route is paid; see PAYMENT-REQUIRED")  # fmt: skip
            try:
                header, version = (v2, 2) if v2 is not None else (str(v1), 1)
                payment = parse_payment(header, version=version, network=self.facilitator.network)
                self._bind(payment, req, path)
                return await self._serve(payment, req, path, body)
            except X402Error as exc:
                return _payment_required(req, exc.code, str(exc))

        return endpoint

    def _bind(self, payment: Payment, req: Requirements, path: str) -> None:
        if payment.accepted is not None and not req.matches(payment.accepted):
            raise X402Error("invalid_payment_requirements",
                            "the payment accepted another price, token or payee than this route's")  # fmt: skip
        if payment.resource is not None and urlsplit(payment.resource).path != path:
            raise X402Error("invalid_payment_requirements",
                            f"the payment is for {urlsplit(payment.resource).path[:200]}, not {path}")  # fmt: skip

    async def _serve(self, payment: Payment, req: Requirements, path: str, body: Any) -> Response:
        auth = payment.authorization
        known = await run_in_threadpool(self.calls.get, auth.payer, auth.nonce)
        if known is not None:
            if known.resource != path:
                raise X402Error("nonce_already_used",
                                f"this payment paid for {known.resource}; sign a new one for {path}")  # fmt: skip
            if known.body is not None:  # a retry: the same answer, no second charge
                await run_in_threadpool(self.calls.replayed, auth.payer, auth.nonce)
                return self._answer(payment, req, known.tx, known.status or 200, known.body)
            tx = known.tx
        else:
            try:
                self.facilitator.check(auth, req)  # the chain's part is read per batch
                result = await asyncio.wrap_future(self.facilitator.submit(auth))
                code, message, tx = result.code, result.message, result.transaction
            except X402Error as exc:
                code, message, tx = exc.code, str(exc), ""
            if not tx:
                tx = await run_in_threadpool(self._recover, auth, req, code)
                if not tx:
                    raise X402Error(code, message)
            await run_in_threadpool(self.calls.record, auth.payer, auth.nonce, resource=path,
                                    amount=auth.value, tx=tx, valid_before=auth.valid_before)  # fmt: skip
        _, _, handler = self.routes[path]
        try:
            answer = await run_in_threadpool(handler, body)
            status, raw = 200, json.dumps(answer, separators=(",", ":")).encode()
        except (NeuroLedgerError, ValueError) as exc:
            status, raw = 422, json.dumps({"error": str(exc)}).encode()
        await run_in_threadpool(self.calls.served, auth.payer, auth.nonce, status, raw)
        if self.on_paid is not None:
            event = {"route": path, "payer": auth.payer, "amount": str(auth.value),
                     "nonce": "0x" + auth.nonce.hex(), "transaction": tx, "status": status,
                     "input_digest": "sha256:" + hashlib.sha256(json.dumps(body).encode()).hexdigest(),
                     "output_digest": "sha256:" + hashlib.sha256(raw).hexdigest()}  # fmt: skip
            await run_in_threadpool(self.on_paid, event)
        return self._answer(payment, req, tx, status, raw)

    def _recover(self, auth: Authorization, req: Requirements, code: str) -> str:
        """A payment the token refused as used may be one this server settled and then lost
        (a crash before its row was written): the settler's receipt says so."""
        if code != "nonce_already_used" or self.facilitator.receipt(auth) != (
            req.pay_to,
            req.amount,
        ):
            return ""
        return self.facilitator.settled_tx(auth) or "recovered"

    def _answer(
        self, payment: Payment, req: Requirements, tx: str, status: int, raw: bytes
    ) -> Response:
        settled = {"success": True, "transaction": tx, "network": req.network,
                   "payer": payment.authorization.payer, "amount": str(req.amount)}  # fmt: skip
        name = HEADERS["response"] if payment.version == 2 else HEADERS["response_v1"]
        headers = {name: encode_header(settled), "Access-Control-Expose-Headers": name}
        return Response(raw, status_code=status, media_type="application/json", headers=headers)


def _payment_required(req: Requirements, code: str, message: str) -> JSONResponse:
    required = payment_required(req, code)
    return JSONResponse({**required, "message": message}, status_code=402,
                        headers={HEADERS["required"]: encode_header(required),
                                 "Cache-Control": "no-store"})  # fmt: skip


async def _read_json(request: Request) -> Any:
    """The request's JSON body, bounded; a JSONResponse (400/413) if it is not acceptable."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY):
        return JSONResponse({"error": f"the body must be JSON of at most {MAX_BODY} bytes"}, 413)
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY:
            return JSONResponse(
                {"error": f"the body must be JSON of at most {MAX_BODY} bytes"}, 413
            )
    if not raw:
        return None
    try:
        return loads_bounded(raw, max_bytes=MAX_BODY)
    except ValueError as exc:
        return JSONResponse({"error": f"the body is not acceptable JSON: {exc}"}, 400)
