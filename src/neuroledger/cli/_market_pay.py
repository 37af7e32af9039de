"""``neuroledger market serve|pay``: a model behind x402, and a client that pays per call."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from neuroledger._json import loads_bounded
from neuroledger.cli._context import console, context_of, emit
from neuroledger.cli._options import JsonOpt
from neuroledger.errors import MarketError


def serve(
    ctx: typer.Context,
    agent: Annotated[str, typer.Argument(help="Local identity that is paid (the agent).")],
    model: Annotated[Path, typer.Option("--model", help="Model directory (from `fl`).")],
    price: Annotated[str, typer.Option("--price", help="Credits per call, e.g. 0.25.")],
    operator: Annotated[
        str | None,
        typer.Option("--operator", help="Identity that pays gas to settle (default: the agent)."),
    ] = None,
    log: Annotated[str, typer.Option("--log", help="Audit log of paid calls.")] = "paid-calls",
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8402,
) -> None:
    """Serve a model per call behind x402 (POST /predict), with the facilitator's API."""
    from neuroledger.audit import AuditEvent, AuditLog, AuditLogs
    from neuroledger.market import (
        Agents,
        AgentService,
        Credits,
        Facilitator,
        model_handler,
        parse_amount,
    )
    from neuroledger.privacy.gateway import listen
    from neuroledger.privacy.gateway import serve as run

    handler, config = model_handler(model)
    listener = listen(host, port)
    c = context_of(ctx)
    credits = Credits(c.chain(), c.keystore())
    amount = parse_amount(price, credits.decimals)
    if amount <= 0:
        raise MarketError("--price must be above 0; a free model needs no x402")
    logs = AuditLogs(c.settings.home, c.keystore())
    if log not in logs.names():
        logs.create(log)
    audit = AuditLog(logs.open(log, with_key=True))

    def logged(call: dict[str, object]) -> None:
        audit.record(AuditEvent(
            system=agent, event_type="paid-call", model_digest=config["digest"],
            input_digest=str(call["input_digest"]), output_digest=str(call["output_digest"]),
            details={k: call[k] for k in ("route", "payer", "amount", "transaction", "status")},
        ))  # fmt: skip

    registered = Agents(credits.chain, credits.keystore).by_wallet(credits.address_of(agent))
    card = registered.card.encode() if registered and registered.card else None
    service = AgentService(Facilitator(credits, operator or agent), pay_to=agent,
                           calls_path=c.settings.home / "market" / f"paid-calls-{port}.sqlite",
                           on_paid=logged, card=card)  # fmt: skip
    service.paid("/predict", price=amount, description=f"{agent}: one prediction",
                 check=handler.check)(handler)  # fmt: skip
    console.print(f"{agent} serves {model} on http://{host}:{port}/predict at {price} credits "
                  f"per call (x402; facilitator at /facilitator; audit log {log})",
                  highlight=False)  # fmt: skip
    try:
        with audit.checkpoints_every(10.0):
            run(service.app(), listener, host=host, port=port)
    finally:
        audit.close()


def pay(
    ctx: typer.Context,
    url: Annotated[str, typer.Argument(help="The paid URL (POST).")],
    payer: Annotated[str, typer.Option("--from", help="Local identity that pays.")],
    body: Annotated[str, typer.Option("--body", help="JSON body, or @FILE.")] = "{}",
    max_price: Annotated[
        str, typer.Option("--max-price", help="Pay up to this many credits without asking.")
    ] = "0",
    as_json: JsonOpt = False,
) -> None:
    """Call a paid URL: show its price, ask before paying above --max-price, pay, answer."""
    from neuroledger.market import AgentAccounts, Credits, format_amount, parse_amount
    from neuroledger.market import pay as pay_url

    raw = Path(body[1:]).read_bytes() if body.startswith("@") else body.encode()
    try:
        payload = loads_bounded(raw, max_bytes=1 << 20)
    except ValueError as exc:
        raise MarketError(f"--body is not JSON ({exc}); give a JSON object or @FILE") from None
    c = context_of(ctx)
    credits = Credits(c.chain(), c.keystore())
    limit = parse_amount(max_price, credits.decimals)

    def confirm(req: object, decimals: int) -> bool:
        amount = format_amount(req.amount, decimals)  # type: ignore[attr-defined]
        if not sys.stdin.isatty():
            return False
        return typer.confirm(f"{url} costs {amount} credits, paid to {req.pay_to}. Pay?")  # type: ignore[attr-defined]

    accounts = AgentAccounts(credits.chain, credits.keystore, c.home())
    paid = pay_url(credits, url, payer=payer, body=payload, max_price=limit, confirm=confirm,
                   accounts=accounts)  # fmt: skip
    result = {"status": paid.status, "paid": format_amount(paid.price, credits.decimals),
              "transaction": paid.settlement.get("transaction"), "answer": paid.body}  # fmt: skip
    human = (f"HTTP {paid.status}; paid {result['paid']} credits"
             + (f" in {result['transaction']}" if result["transaction"] else "")
             + "\n" + json.dumps(paid.body, indent=1)[:4000])  # fmt: skip
    emit(result, as_json=as_json, human=human)
    if paid.status >= 400:
        raise typer.Exit(1)
