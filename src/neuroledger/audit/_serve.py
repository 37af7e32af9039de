"""Serve a log directory read-only over HTTP, as the tlog-tiles spec describes."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

__all__ = ["TileHandler", "make_server", "serve_tiles"]


class TileHandler(SimpleHTTPRequestHandler):
    """GET and HEAD of ``/checkpoint`` and ``/tile/…`` only; no listings, no hidden files."""

    def send_head(self) -> Any:
        path = self.path.split("?", 1)[0]
        parts = [p for p in path.split("/") if p]
        allowed = parts == ["checkpoint"] or (len(parts) >= 3 and parts[0] == "tile")
        if not allowed or any(p.startswith(".") or p == ".." for p in parts):
            self.send_error(404, "not a log resource")
            return None
        return super().send_head()

    def end_headers(self) -> None:
        if self.path.startswith("/checkpoint"):
            self.send_header("Cache-Control", "no-cache, max-age=2")
        else:
            self.send_header("Cache-Control", "public, max-age=31536000, immutable")
        super().end_headers()

    def guess_type(self, path: Any) -> str:
        return (
            "text/plain; charset=utf-8"
            if str(path).endswith("checkpoint")
            else "application/octet-stream"
        )

    def list_directory(self, path: Any) -> Any:
        self.send_error(404, "not a log resource")
        return None

    def log_message(self, format: str, *args: Any) -> None:  # quiet by default
        pass


def make_server(directory: Path, *, port: int = 0) -> ThreadingHTTPServer:
    """A server of ``directory`` on 127.0.0.1 (``port`` 0: any free port)."""
    handler = partial(TileHandler, directory=str(directory))
    return ThreadingHTTPServer(("127.0.0.1", port), handler)


def serve_tiles(directory: Path, *, port: int = 0, announce: Callable[[str], None] = print) -> None:
    """Serve until interrupted."""
    server = make_server(directory, port=port)
    announce(f"http://127.0.0.1:{server.server_address[1]}/")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
