"""``neuroledger market agent policy|freeze|unfreeze|pay``: an agent's account and its guardrails."""

from __future__ import annotations

import re
from typing import Annotated

import typer

from neuroledger.cli._context import context_of, emit
from neuroledger.cli._options import JsonOpt
from neuroledger.errors import MarketError
from neuroledger.market import AccountPolicy, AgentAccounts, Credits, format_amount, parse_amount

policy_app = typer.Typer(help="An agent account's policy, enforced on chain: set, show.")

FromOpt = Annotated[str, typer.Option("--from", help="Local identity that sends the call.")]


def _accounts(ctx: typer.Context) -> tuple[AgentAccounts, Credits]:
    c = context_of(ctx)
    chain, keystore = c.chain(), c.keystore()
    return AgentAccounts(chain, keystore, c.home()), Credits(chain, keystore)


def _target(credits: Credits, accounts: AgentAccounts, name: str) -> str:
    if name in ("credits", "token"):
        return credits.contract.address
    if name in accounts.chain.deployment().contracts:
        return accounts.chain.contract(name).address
    return accounts.address_of(name)


def _human(p: AccountPolicy, decimals: int) -> str:
    lines = [f"account {p.account} of agent key {p.agent}: " + ("FROZEN" if p.frozen else "active")
             + f"; owner {p.owner}; guardian {p.guardian or '-'}; expires {p.expiry}"]  # fmt: skip
    for pol in p.policies:
        d = pol["data"]
        if pol["type"] == "spent-limit":
            lines.append(f"  spent-limit on {d['token']}: {format_amount(int(d['perTransaction']), decimals)} a "
                         f"call, {format_amount(int(d['allowance']), decimals)} per {d['period']} s "
                         f"({format_amount(int(d['spent']), decimals)} spent)")  # fmt: skip
        else:
            lines.append(f"  {pol['type']}: " + ", ".join(f"{k} {v}" for k, v in d.items()))
    lines += [f"  may call {c['target']} {c['selector']}" for c in p.allowed_calls]
    lines += [f"  may pay {r}" for r in p.allowed_recipients]
    return "\n".join(lines)


@policy_app.command("set")
def policy_set(
    ctx: typer.Context,
    agent: Annotated[
        str, typer.Argument(help="The agent (local identity) whose key drives the account.")
    ],
    from_: FromOpt,
    create: Annotated[
        bool, typer.Option("--create", help="Deploy the account first, owned by --from.")
    ] = False,
    guardian: Annotated[
        str | None, typer.Option("--guardian", help="Who may also freeze it.")
    ] = None,
    per_tx: Annotated[
        str | None, typer.Option("--per-tx", help="Most credits one call may spend.")
    ] = None,
    per_period: Annotated[
        str | None, typer.Option("--per-period", help="Most credits per period.")
    ] = None,
    period: Annotated[
        int, typer.Option("--period", help="The period in seconds (0: a total).")
    ] = 86400,
    allow_call: Annotated[
        list[str] | None,
        typer.Option(
            "--allow-call", help="CONTRACT:SIGNATURE, e.g. JobEscrow:fund(uint256,uint256,bytes)."
        ),
    ] = None,
    allow_recipient: Annotated[
        list[str] | None, typer.Option("--allow-recipient", help="A payee or spender (repeat).")
    ] = None,
    rate: Annotated[str | None, typer.Option("--rate", help="COUNT/SECONDS, e.g. 10/3600.")] = None,
    calls: Annotated[int | None, typer.Option("--calls", help="Most calls in all.")] = None,
    gas: Annotated[int, typer.Option("--gas", help="Most gas one call forwards.")] = 0,
    expires_in: Annotated[
        int | None, typer.Option("--expires-in", help="Seconds until it expires.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create an agent's account (--create, owned by --from) and set its policy (its owner).
    A cap on credits also allows the credits' transfer function."""
    accounts, credits = _accounts(ctx)
    if create:
        accounts.deploy(agent, owner=from_, guardian=guardian, expires_in=expires_in or 30 * 86400)
    elif accounts.find(agent) is None:
        raise MarketError(
            f"agent {agent} has no account here; add --create to deploy one owned by {from_}"
        )
    d = credits.decimals
    if per_tx is not None or per_period is not None:
        cap = parse_amount(per_period or per_tx or "0", d)
        one = parse_amount(per_tx, d) if per_tx is not None else cap
        accounts.set_allowance(agent, credits.contract.address, per_transaction=one, per_period=cap,
                               period=period, by=from_)  # fmt: skip
        accounts.allow_call(agent, credits.contract.address, "transfer(address,uint256)", by=from_)
    for item in allow_call or []:
        target, sep, signature = item.partition(":")
        if not sep or not signature:
            raise MarketError(
                f"--allow-call {item!r}: write CONTRACT:SIGNATURE, e.g. JobEscrow:fund(uint256,uint256,bytes)"
            )
        accounts.allow_call(agent, _target(credits, accounts, target), signature, by=from_)
    for name in allow_recipient or []:
        accounts.allow_recipient(agent, _target(credits, accounts, name), by=from_)
    if rate is not None or calls is not None or gas or (expires_in is not None and not create):
        count = interval = 0
        if rate is not None:
            match = re.fullmatch(r"(\d+)/(\d+)", rate)
            if not match or int(match.group(2)) == 0:
                raise MarketError(f"--rate {rate!r}: write COUNT/SECONDS, e.g. 10/3600")
            count, interval = int(match.group(1)), int(match.group(2))
        accounts.set_limits(
            agent, by=from_, rate=(count, interval), calls=calls, gas=gas, expires_in=expires_in
        )
    p = accounts.policy(agent, [credits.contract.address])
    emit(p.to_json(), as_json=as_json, human=_human(p, d))


@policy_app.command("show")
def policy_show(ctx: typer.Context, agent: str, as_json: JsonOpt = False) -> None:
    """An agent account's policy in ERC-7715's terms (permissions and policies)."""
    accounts, credits = _accounts(ctx)
    p = accounts.policy(agent, [credits.contract.address])
    emit(p.to_json(), as_json=as_json, human=_human(p, credits.decimals))


def _switch(ctx: typer.Context, agent: str, by: str, *, frozen: bool) -> None:
    accounts, _ = _accounts(ctx)
    receipt = (accounts.freeze if frozen else accounts.unfreeze)(agent, by=by)
    state = "frozen" if frozen else "active"
    emit({"transaction": receipt.tx_hash, "frozen": frozen}, as_json=False,
         human=f"{agent}'s account is {state} ({receipt.tx_hash})")  # fmt: skip


def freeze(ctx: typer.Context, agent: str, from_: FromOpt) -> None:
    """Stop every call of the agent's account at once (its owner or guardian)."""
    _switch(ctx, agent, from_, frozen=True)


def unfreeze(ctx: typer.Context, agent: str, from_: FromOpt) -> None:
    """Let the agent's account call again (its owner)."""
    _switch(ctx, agent, from_, frozen=False)


def pay(
    ctx: typer.Context,
    agent: str,
    to: str,
    amount: str,
    log: Annotated[
        bool,
        typer.Option("--log", help="Record a refusal in the agent's audit log (named after it)."),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Pay credits from the agent's account, within its policy (signed by the agent's key)."""
    accounts, credits = _accounts(ctx)
    audit = None
    if log:
        from neuroledger.audit import AuditEvent, AuditLog, AuditLogs

        c = context_of(ctx)
        audit = AuditLog(AuditLogs(c.home(), c.keystore()).open(agent, with_key=True))

        def record(refusal: dict[str, object]) -> None:
            assert audit is not None
            audit.record(AuditEvent(system=agent, event_type="guardrail-refusal", risk_flag=True,
                                    details=refusal))  # fmt: skip
            audit.checkpoint()

        accounts.on_refused = record
    try:
        receipt = accounts.pay(
            agent, credits.contract.address, to, parse_amount(amount, credits.decimals)
        )
    finally:
        if audit is not None:
            audit.close()
    emit({"transaction": receipt.tx_hash, "amount": amount, "to": to}, as_json=as_json,
         human=f"{agent}'s account paid {amount} credits to {to} ({receipt.tx_hash})")  # fmt: skip
