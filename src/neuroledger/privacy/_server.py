"""uvicorn, bounded: header size, request time, and concurrency for servers that face strangers.

uvicorn's defaults trust the client: with the httptools parser a request's header
block may grow without limit, and a client that sends its headers (or body) a
byte at a time holds its connection for as long as it likes. :func:`bounded_config`
uses the h11 parser with a 16 KiB header limit, a per-request deadline from the
first byte to the last byte of the body, and a cap on concurrent connections
(uvicorn answers 503 beyond it).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from neuroledger.errors import PrivacyError

__all__ = ["MAX_HEADER_BYTES", "REQUEST_SECONDS", "bounded_config", "listen", "serve"]

MAX_HEADER_BYTES = 16 * 1024
REQUEST_SECONDS = 15.0
MAX_CONNECTIONS = 256


class BoundedH11Protocol(H11Protocol):
    """h11 with a deadline for each request: its headers and body must arrive in time."""

    request_seconds = REQUEST_SECONDS

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._deadline: asyncio.TimerHandle | None = None
        super().connection_made(transport)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        receiving = self.conn.their_state in (h11.IDLE, h11.SEND_BODY)
        if receiving and self._deadline is None and not self.transport.is_closing():
            self._deadline = self.loop.call_later(self.request_seconds, self._too_slow)
        elif not receiving and self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if self.conn.their_state in (h11.IDLE, h11.SEND_BODY) and not self.transport.is_closing():
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        super().connection_lost(exc)


def bounded_config(app: Any, *, host: str, port: int, request_seconds: float = REQUEST_SECONDS,
                   **extra: Any) -> uvicorn.Config:  # fmt: skip
    """A uvicorn config for ``app`` with bounded headers, request time and connections."""
    protocol = type("BoundedH11", (BoundedH11Protocol,), {"request_seconds": request_seconds})
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=protocol,
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
        limit_concurrency=MAX_CONNECTIONS,
        timeout_keep_alive=5,
        backlog=512,
        log_level="warning",
        access_log=False,
        ws="none",
        **extra,
    )


def listen(host: str, port: int) -> socket.socket:
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


def serve(app: Any, listener: socket.socket, *, host: str, port: int) -> None:
    """Serve ``app`` on ``listener`` until SIGINT or SIGTERM; then close the app's state.

    As ``uvicorn.run``: the server shuts down gracefully on the signal and then re-raises
    it, which is the normal way out here, not an interruption.
    """
    try:
        with contextlib.suppress(KeyboardInterrupt):
            uvicorn.Server(bounded_config(app, host=host, port=port)).run(sockets=[listener])
    finally:
        app.state.close()
