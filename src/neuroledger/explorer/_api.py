"""The explorer's REST API (read-only, versioned under ``/api/v1``), over its index.

Every endpoint is a GET; any other method gets 405 from the router. Lists are cursor-paged
(``cursor`` is the last item's ``block:log_index``; ``next`` in the answer gives the next
one), filtered by query parameters validated before any query runs (a bad one is a 422 with
the parameter named), and exported as CSV with ``format=csv``. Answers carry a strict
Content-Security-Policy and no secret is ever read: the index holds only public chain data.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Path, Query, Request, Response
from fastapi.responses import JSONResponse

from neuroledger.explorer._energy import energy_view
from neuroledger.explorer._entities import KINDS
from neuroledger.explorer._index import ExplorerIndex
from neuroledger.explorer._views import governance

__all__ = ["SECURITY_HEADERS", "create_api"]

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self' http: https:; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}

_NAME = r"^[A-Za-z][A-Za-z0-9_]{0,63}$"
Limit = Annotated[int, Query(ge=1, le=1000, description="Items per page (1-1,000).")]
Cursor = Annotated[
    str | None,
    Query(pattern=r"^\d{1,12}:\d{1,6}$", description="`block:log_index` of the last item seen."),
]
Format = Annotated[str, Query(pattern="^(json|csv)$", description="`json` (default) or `csv`.")]

kind_pattern = "^(" + "|".join(KINDS) + ")$"
Kind = Annotated[str, Path(pattern=kind_pattern, description=f"One of {', '.join(KINDS)}.")]
Key = Annotated[str, Path(pattern=r"^(0x[0-9a-fA-F]{1,64}|\d{1,78})$")]
Time = Annotated[int | None, Query(ge=0, le=2**40, description="Unix seconds.")]


def _cursor(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    block, index = text.split(":")
    return int(block), int(index)


def _page(items: list[dict[str, Any]], limit: int, fmt: str) -> Response:
    more = len(items) > limit
    items = items[:limit]
    nxt = f"{items[-1]['block']}:{items[-1]['log_index']}" if more and items else None
    if fmt == "csv":
        out = io.StringIO()
        keys = ["block", "log_index", "time", "tx", "contract", "name", "address", "args"]
        writer = csv.DictWriter(out, fieldnames=keys, extrasaction="ignore")
        writer.writeheader()
        for item in items:
            writer.writerow({**item, "args": json.dumps(item["args"], sort_keys=True)})
        headers = {"Link": f'<?cursor={nxt}>; rel="next"'} if nxt else {}
        return Response(out.getvalue(), media_type="text/csv; charset=utf-8", headers=headers)
    return JSONResponse({"items": items, "next": nxt})


def create_api(index: ExplorerIndex) -> FastAPI:
    """The API app over ``index`` (which a caller keeps in sync)."""
    app = FastAPI(title="NeuroLedger explorer API", version="1", docs_url=None, redoc_url=None,
                  openapi_url="/api/v1/openapi.json")  # fmt: skip
    app.state.close = index.close  # what a server calls when it stops

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        return response

    @app.get("/api/v1/stats")
    def stats() -> dict[str, Any]:
        """Events indexed, per contract and event, and the index's final block."""
        rows = index.db.execute(
            "SELECT contract, name, COUNT(*) FROM events GROUP BY contract, name ORDER BY 1, 2"
        ).fetchall()
        return {"final_block": index.final_block, "events": index.count(),
                "by_kind": [{"contract": c, "name": n, "count": k} for c, n, k in rows]}  # fmt: skip

    @app.get("/api/v1/events")
    def events(
        contract: Annotated[str | None, Query(pattern=_NAME)] = None,
        name: Annotated[str | None, Query(pattern=_NAME)] = None,
        cursor: Cursor = None,
        limit: Limit = 100,
        format: Format = "json",
    ) -> Response:
        """Events oldest first, of one contract and event name if given."""
        found = index.events(contract=contract, name=name, after=_cursor(cursor), limit=limit + 1)
        return _page(found, limit, format)

    @app.get("/api/v1/tx/{tx}")
    def transaction(tx: Annotated[str, Path(pattern=r"^0x[0-9a-fA-F]{64}$")]) -> dict[str, Any]:
        """Every indexed event a transaction logged."""
        rows = index.db.execute(
            "SELECT block, log_index FROM events WHERE tx = ? ORDER BY log_index", (tx.lower(),)
        ).fetchall()
        if not rows:
            raise HTTPException(404, f"no indexed event in transaction {tx}")
        first = (rows[0][0], rows[0][1] - 1)
        return {"tx": tx.lower(), "events": index.events(after=first, limit=len(rows))}

    @app.get("/api/v1/entities/{kind}")
    def entities(
        kind: Kind,
        owner: Annotated[str | None, Query(pattern=r"^0x[0-9a-fA-F]{40}$")] = None,
        status: Annotated[str | None, Query(pattern=r"^[a-z ()0-9]{1,32}$")] = None,
        since: Time = None,
        until: Time = None,
        tag: Annotated[
            str | None,
            Query(min_length=1, max_length=32, description="A feedback or validation tag."),
        ] = None,
        cursor: Annotated[str | None, Query(pattern=r"^(0x[0-9a-fA-F]{1,64}|\d{1,78})$")] = None,
        limit: Limit = 100,
        format: Format = "json",
    ) -> Response:
        """Identities, assets, logs, tasks, agents, jobs, validations, listings, sales or
        governance operations, oldest first; ``cursor`` is the last key seen."""
        found = index.entities(kind, owner=owner, status=status, since=since, until=until,
                               tag=tag, after=cursor, limit=limit + 1)  # fmt: skip
        more = len(found) > limit
        found = found[:limit]
        nxt = found[-1]["key"] if more and found else None
        if format == "csv":
            out = io.StringIO()
            keys = [
                "kind",
                "key",
                "owner",
                "title",
                "status",
                "first_block",
                "last_block",
                "time",
                "data",
            ]
            writer = csv.DictWriter(out, fieldnames=keys)
            writer.writeheader()
            for item in found:
                writer.writerow({**item, "data": json.dumps(item["data"], sort_keys=True)})
            return Response(out.getvalue(), media_type="text/csv; charset=utf-8")
        return JSONResponse({"items": found, "next": nxt})

    @app.get("/api/v1/entities/{kind}/{key}")
    def entity(kind: Kind, key: Key) -> dict[str, Any]:
        """One entity and every event about it."""
        found = index.entity(kind, key)
        if found is None:
            raise HTTPException(404, f"no {kind} {key} in the index")
        return found

    @app.get("/api/v1/search")
    def search(q: Annotated[str, Query(min_length=1, max_length=200)],
               limit: Annotated[int, Query(ge=1, le=200)] = 50) -> dict[str, Any]:  # fmt: skip
        """Entities whose names, owners, URIs or metadata match the words of ``q``."""
        return {"items": index.search(q, limit=limit)}

    @app.get("/api/v1/governance")
    def governance_state() -> dict[str, Any]:
        """Each governed contract's pause state and guardian, and the timelock's queue
        (scheduled, ready, executed, cancelled) with the seconds each call still waits."""
        return governance(index)

    @app.get("/api/v1/energy")
    def energy() -> dict[str, Any]:
        """Gas per capability of every transaction to the suite in final blocks, with the
        estimated energy (Wh) on proof of stake and, for comparison, proof of work."""
        return energy_view(index)

    from neuroledger.explorer._pages import add_pages

    add_pages(app, index)  # after the API: /api/... is matched first
    return app
