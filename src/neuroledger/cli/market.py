"""``neuroledger market …``: agents in the ERC-8004 registry."""

from __future__ import annotations

import re
from typing import Annotated

import typer

from neuroledger.cli._commands import help_of
from neuroledger.cli._context import context_of, emit
from neuroledger.cli._market_accounts import freeze, policy_app, unfreeze
from neuroledger.cli._market_accounts import pay as account_pay
from neuroledger.cli._market_feedback import app as feedback_app
from neuroledger.cli._market_jobs import app as job_app
from neuroledger.cli._market_listings import register as register_listings
from neuroledger.cli._market_pay import pay, serve
from neuroledger.cli._market_validate import app as validate_app
from neuroledger.cli._options import JsonOpt
from neuroledger.errors import MarketError
from neuroledger.market import Agents, AgentView, Service

app = typer.Typer(help=help_of("market"))
agent_app = typer.Typer(help="Agents: register, show, list, find (ERC-8004 registry).")
app.add_typer(agent_app, name="agent")
agent_app.add_typer(policy_app, name="policy")
agent_app.command("freeze")(freeze)
agent_app.command("unfreeze")(unfreeze)
agent_app.command("pay")(account_pay)
app.add_typer(job_app, name="job")
app.add_typer(feedback_app, name="feedback")
app.add_typer(validate_app, name="validate")
app.command("serve")(serve)
app.command("pay")(pay)
register_listings(app)


def _agents(ctx: typer.Context) -> Agents:
    c = context_of(ctx)
    return Agents(c.chain(), c.keystore())


def _service(text: str) -> Service:
    """``NAME=ENDPOINT`` or ``NAME=ENDPOINT@VERSION``."""
    name, sep, rest = text.partition("=")
    if not sep or not name or not rest:
        raise MarketError(
            f"--service {text!r}: write NAME=ENDPOINT or NAME=ENDPOINT@VERSION, e.g. A2A=https://a.example/card.json@0.3.0"
        )
    head, at, tail = rest.rpartition("@")
    if at and head and re.fullmatch(r"v?\d[\w.\-]*", tail):  # a version, not mail@host
        return Service(name, head, tail)
    return Service(name, rest)


def _line(v: AgentView) -> str:
    card = v.card
    state = "verified" if v.verified else "NOT VERIFIED: " + "; ".join(v.problems)
    services = ", ".join(s.name for s in card.services) if card else "-"
    name = card.name if card else "?"
    return f"agent {v.agent_id}  {name}  [{services}]  owner {v.owner}  {state}"


@agent_app.command("register")
def register(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Local identity that becomes the agent.")],
    description: Annotated[str, typer.Option("--description", help="What the agent does.")],
    service: Annotated[
        list[str] | None,
        typer.Option("--service", help="NAME=ENDPOINT or NAME=ENDPOINT@VERSION; repeat."),
    ] = None,
    x402: Annotated[bool, typer.Option("--x402", help="The agent takes x402 payments.")] = False,
    trust: Annotated[
        list[str] | None, typer.Option("--trust", help="Supported trust model; repeat.")
    ] = None,
    uri: Annotated[
        str | None,
        typer.Option(
            "--uri", help="https URL the card will be served at (default: on chain, data: URI)."
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Register an identity as an agent, with an ERC-8004 card that names its DID."""
    services = [_service(s) for s in service or []]
    view = _agents(ctx).register(name, description=description, services=services, x402=x402,
                                 trust=tuple(trust or ["reputation"]), uri=uri)  # fmt: skip
    emit(view.to_json(), as_json=as_json, human=_line(view) + f"\nregistry {view.registry}")


@agent_app.command("show")
def show(ctx: typer.Context, agent_id: int, as_json: JsonOpt = False) -> None:
    """An agent with its card, checked against the chain."""
    view = _agents(ctx).show(agent_id)
    emit(view.to_json(), as_json=as_json, human=_line(view))


@agent_app.command("list")
def list_agents(
    ctx: typer.Context,
    offset: Annotated[int, typer.Option("--offset", min=0)] = 0,
    limit: Annotated[int, typer.Option("--limit", min=1, max=100)] = 20,
    as_json: JsonOpt = False,
) -> None:
    """Agents in registration order, a page at a time."""
    agents = _agents(ctx)
    views = [agents.show(i) for i in agents.page(offset, limit)]
    emit([v.to_json() for v in views], as_json=as_json,
         human="\n".join(_line(v) for v in views) or "no agents")  # fmt: skip


@agent_app.command("find")
def find(
    ctx: typer.Context,
    service: Annotated[str | None, typer.Option("--service", help="e.g. A2A, MCP, web.")] = None,
    trust: Annotated[str | None, typer.Option("--trust", help="e.g. reputation.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=100)] = 20,
    as_json: JsonOpt = False,
) -> None:
    """Verified, active agents that offer a service and support a trust model."""
    views = _agents(ctx).find(service=service, trust=trust, limit=limit)
    emit([v.to_json() for v in views], as_json=as_json,
         human="\n".join(_line(v) for v in views) or "no agent matches")  # fmt: skip
