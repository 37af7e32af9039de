"""``neuroledger explorer …``: the index of every contract's events, and its read-only API."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Annotated

import typer

from neuroledger.cli._commands import help_of
from neuroledger.cli._context import console, context_of, emit
from neuroledger.cli._options import JsonOpt
from neuroledger.config import Settings
from neuroledger.environment import shared_dir

if TYPE_CHECKING:
    from neuroledger.store import BlobStore

app = typer.Typer(help=help_of("explorer"))

INDEX_FILE = "explorer.sqlite"


def _stores(settings: Settings) -> list[BlobStore]:
    """The home's content store and the one its federated tasks share (round documents)."""
    from neuroledger.store import FileStore

    folders = (settings.store_dir, shared_dir(settings, None) / "store")
    return [FileStore(folder) for folder in folders if folder.is_dir()]  # none is created


@app.command("index")
def index(
    ctx: typer.Context,
    rebuild: Annotated[
        bool, typer.Option("--rebuild", help="Forget the index and read it all again.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Bring the explorer's index up to the chain head (resumes where it stopped)."""
    from neuroledger.explorer import follow, open_index

    c = context_of(ctx)
    chain = c.chain()
    idx = open_index(chain, c.settings.home / INDEX_FILE, _stores(c.settings))
    if rebuild:
        idx.rebuild()
    stored = follow(idx, chain)  # the events, then the gas of newly final blocks
    report = {"stored": stored, "events": idx.count(), "final_block": idx.final_block,
              "file": str(idx.path)}  # fmt: skip
    emit(report, as_json=as_json, human=f"{stored} new events; {report['events']} indexed up to "
         f"final block {idx.final_block} in {idx.path}")  # fmt: skip


@app.command("serve")
def serve(
    ctx: typer.Context,
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on (loopback by default).")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="Port (0: any free one).")
    ] = 8700,
    interval: Annotated[
        float, typer.Option("--interval", min=0.5, help="Seconds between index syncs.")
    ] = 2.0,
) -> None:
    """Serve the read-only explorer API, following the chain as it grows."""
    from neuroledger.explorer import create_api, follow, open_index
    from neuroledger.privacy.gateway import listen
    from neuroledger.privacy.gateway import serve as run_server

    listener = listen(host, port)  # a port in use is one line and nothing else
    c = context_of(ctx)
    chain = c.chain()
    path = c.settings.home / INDEX_FILE
    stores = _stores(c.settings)  # round documents, for the charts
    follower = open_index(chain, path, stores)
    follow(follower, chain)
    stop = threading.Event()

    def keep_up() -> None:
        while not stop.wait(interval):
            try:
                follow(follower, chain)
            except Exception as exc:  # keep serving what is indexed; say why it lags
                console.print(f"explorer index: sync failed ({exc}); retrying", highlight=False)

    threading.Thread(target=keep_up, name="explorer-sync", daemon=True).start()
    bound = listener.getsockname()[1]
    console.print(f"explorer on http://{host}:{bound}/ (API: /api/v1/openapi.json; "
                  f"{follower.count()} events indexed)", highlight=False)  # fmt: skip
    try:
        run_server(create_api(open_index(chain, path, stores)), listener, host=host, port=bound)
    finally:
        stop.set()
