"""The explorer's pages: server-rendered HTML (Jinja2, autoescaped), readable without
JavaScript. Each page reads the index only; links go to other pages of the explorer."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape

from neuroledger.explorer._energy import energy_view
from neuroledger.explorer._entities import KINDS
from neuroledger.explorer._index import ExplorerIndex
from neuroledger.explorer._views import extras, governance

__all__ = ["add_pages"]

_HERE = Path(__file__).parent
_KEY = set("0123456789abcdefx")


def _when(t: int) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _iso(t: int) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).isoformat()


def _span(seconds: int) -> str:
    days, rest = divmod(int(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return (f"{days} d " if days else "") + f"{hours:02d}:{minutes:02d}:{secs:02d}"


def add_pages(app: FastAPI, index: ExplorerIndex) -> None:
    """Mount the pages and their stylesheet on ``app``."""
    env = Environment(loader=FileSystemLoader(_HERE / "templates"),
                      autoescape=select_autoescape(["html"]))  # fmt: skip
    env.globals.update(when=_when, iso=_iso, span=_span)
    app.mount("/static", StaticFiles(directory=_HERE / "static"), name="static")

    def page(name: str, status: int = 200, **values: Any) -> HTMLResponse:
        html = env.get_template(name).render(kinds=KINDS, final_block=index.final_block, **values)
        return HTMLResponse(html, status_code=status)

    def events(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{**e, "when": _when(e["time"])} for e in items]

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def home() -> HTMLResponse:
        counts = dict(
            index.db.execute("SELECT kind, COUNT(*) FROM entities GROUP BY kind").fetchall()
        )
        latest = index.db.execute("SELECT block, log_index FROM events ORDER BY block DESC, log_index DESC "
                                  "LIMIT 1 OFFSET 20").fetchone()  # fmt: skip
        recent = index.events(after=(latest[0], latest[1]) if latest else None, limit=20)
        return page("home.html", counts=[(k, counts.get(k, 0)) for k in KINDS],
                    events=events(list(reversed(recent))))  # fmt: skip

    @app.get("/search", response_class=HTMLResponse, include_in_schema=False)
    def search(q: str = "") -> HTMLResponse:
        q = q[:200]
        return page("search.html", q=q, items=index.search(q) if q.strip() else [])

    @app.get("/governance", response_class=HTMLResponse, include_in_schema=False)
    def governance_page() -> HTMLResponse:
        return page("governance.html", **governance(index))

    @app.get("/energy", response_class=HTMLResponse, include_in_schema=False)
    def energy_page() -> HTMLResponse:
        return page("energy.html", **energy_view(index))

    @app.get("/tx/{tx}", response_class=HTMLResponse, include_in_schema=False)
    def transaction(tx: str) -> HTMLResponse:
        rows = index.db.execute("SELECT block, log_index FROM events WHERE tx = ? ORDER BY log_index",
                                (tx.lower()[:66],)).fetchall()  # fmt: skip
        if not rows:
            return page("missing.html", 404, message="No indexed event in that transaction.")
        found = index.events(after=(rows[0][0], rows[0][1] - 1), limit=len(rows))
        return page("tx.html", tx=tx.lower(), events=found)

    @app.get("/{kind}", response_class=HTMLResponse, include_in_schema=False)
    def listing(kind: str, cursor: str | None = None) -> HTMLResponse:
        if kind not in KINDS or (cursor is not None and not set(cursor.lower()) <= _KEY):
            return page("missing.html", 404, message=f"No page {kind!r}.")
        found = index.entities(kind, after=cursor, limit=101)
        nxt = found[99]["key"] if len(found) > 100 else None
        return page("list.html", kind=kind, items=found[:100], next=nxt)

    @app.get("/{kind}/{key}", response_class=HTMLResponse, include_in_schema=False)
    def detail(kind: str, key: str) -> HTMLResponse:
        item = index.entity(kind, key) if kind in KINDS and len(key) <= 80 else None
        if item is None and kind == "identity" and index.owned(key, limit=1):
            # every address is an ERC-1056 identity, changed on chain or not
            item = {"kind": "identity", "key": key.lower(), "owner": None, "status": None,
                    "title": "an identity with no DID registry change", "data": {}, "events": []}  # fmt: skip
        if item is None:
            return page("missing.html", 404, message=f"No {kind} {key[:80]} in the index.")
        owned = index.owned(item["key"]) if kind == "identity" else []
        shown = {**item, "events": events(item["events"])}
        return page("detail.html", item=shown, owned=owned, **extras(index, shown))
