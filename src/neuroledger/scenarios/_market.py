"""The market part of the demo: agents find each other, pay per call, rate only what they paid.

The triage agent registers in the ERC-8004 registry, its card naming its DID, the federated
model it serves and its audit log, and serves that model per call behind x402. The research
lab's agent finds it by service and trust model, pays for three diagnoses (each settled on
chain before it is answered, each logged in the triage agent's audit log), and rates it: two
feedbacks, each backed by one of its payments. A fresh Sybil key's feedback is refused. A
labeling job goes through escrow to completion; another expires and a third party refunds
the lab.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount

from neuroledger.audit import AuditEvent, AuditLog, AuditLogs, decode_event
from neuroledger.chain import Chain
from neuroledger.errors import GuardrailError, MarketError, TransactionRevertedError
from neuroledger.federated import load_dataset
from neuroledger.identity import Identities, Keystore
from neuroledger.market import (
    AgentAccounts,
    Agents,
    AgentService,
    Credits,
    Facilitator,
    Jobs,
    Reputation,
    Service,
    model_handler,
    pay,
)
from neuroledger.privacy.gateway import BackgroundServer
from neuroledger.scenarios._sales import fund_credits

__all__ = ["run_market"]

AGENT, LAB, OWNER = "triage-agent", "research-lab", "hospital-a"
PRICE = 50_000  # 0.05 credits per diagnosis
CALLS = 3
EXPIRING = 8  # seconds until the second job expires, plus five transactions' time


def run_market(chain: Chain, keystore: Keystore, home: Path, model_dir: Path, model_asset: str,
               step: Callable[[str], None], *, minter: LocalAccount | None = None,
               ) -> tuple[dict[str, Any], list[dict[str, Any]]]:  # fmt: skip
    """Run the market scenario; return its summary and its checks. The lab's credits come
    from the faucet, or on a chain without one from ``minter`` (the suite's deployer)."""
    checks: list[dict[str, Any]] = []
    model_asset = model_asset if model_asset.startswith("0x") else "0x" + model_asset
    ids = Identities(chain, keystore)
    for name in ("labeler", "reviewer", "sybil", "keeper"):
        ids.create(name, "agent", publish=False)
    credits = Credits(chain, keystore)
    fund_credits(chain, keystore, LAB, 100 * 10**6, minter)
    jobs = Jobs(chain, keystore)

    step("the lab escrows a job that will expire unfinished (its refund comes at the end)")
    # Its expiry leaves room for the three transactions that fund it, however slow the
    # chain confirms (measured on one transaction here), and no more: the demo waits it out.
    started = time.monotonic()
    credits.send(LAB, 1, by=LAB)
    latency = time.monotonic() - started
    expiring = jobs.create(by=LAB, provider="labeler", evaluator="reviewer",
                           expires_in=EXPIRING + int(5 * latency),
                           description="segment 200 scans", budget=4 * 10**6)  # fmt: skip
    jobs.fund(expiring.job_id, by=LAB)

    logs = AuditLogs(home, keystore)
    audit = AuditLog(logs.open(AGENT, with_key=True))
    before = audit.log.size
    handler, config = model_handler(model_dir)
    service = AgentService(Facilitator(credits, AGENT), pay_to=AGENT,
                           calls_path=home / "market" / "paid-calls.sqlite",
                           on_paid=lambda call: _log(audit, config["digest"], call))  # fmt: skip
    service.paid("/predict", price=PRICE, description="one breast-cancer triage",
                 check=handler.check)(handler)  # fmt: skip
    agents = Agents(chain, keystore)
    summary: dict[str, Any] = {}
    with BackgroundServer(service.app()) as server:
        step(f"triage-agent registers (ERC-8004) and serves its model per call at {server.url}")
        view = agents.register(AGENT, description="Breast-cancer triage from the consortium's "
                               "federated model, paid per call", x402=True,
                               services=[Service("x402", server.url + "/predict", "2"),
                                         Service("model", model_asset),
                                         Service("audit-log", f"neuroledger.local/{AGENT}")])  # fmt: skip
        agent = view.agent_id
        step("the research lab finds an agent that takes x402 and supports reputation")
        found = agents.find(service="x402", trust="reputation")
        assert found and found[0].card is not None
        endpoint = found[0].card.service("x402")
        checks.append({"check": "market: the lab finds triage-agent by service and trust, its "
                       "card verified (DID, model asset, audit log)",
                       "ok": found[0].agent_id == agent and view.verified
                       and found[0].card.service("model") is not None})  # fmt: skip
        x, _ = load_dataset("breast-cancer")
        answers = []
        step(f"the lab pays for {CALLS} diagnoses over x402 (settled before each is served)")
        for row in x[:CALLS]:
            paid = pay(credits, endpoint.endpoint if endpoint else server.url + "/predict",
                       payer=LAB, body={"features": [row.round(6).tolist()]}, max_price=PRICE)  # fmt: skip
            answers.append(paid)
    audit.checkpoint()
    logged = [decode_event(audit.log.entry(i)) for i in range(before, audit.log.size)]
    audit.close()
    paid_calls = [e for e in logged if e.get("event_type") == "paid-call"]
    checks.append({"check": f"market: {CALLS} paid diagnoses answered, each settled on chain and "
                   f"in triage-agent's audit log",
                   "ok": all(a.status == 200 and a.settlement.get("success") for a in answers)
                   and len(paid_calls) == CALLS
                   and credits.balance(AGENT) >= CALLS * PRICE})  # fmt: skip

    step("the lab rates triage-agent twice, each feedback backed by one of its payments")
    rep = Reputation(chain, keystore)
    for rating in ("4.5", "4.0"):
        rep.give(agent, rating, by=LAB, tag1="starred", endpoint=server.url + "/predict")
    step("a fresh Sybil key tries to rate triage-agent")
    try:
        rep.give(agent, "0", by="sybil", tag1="starred")
        refused = False
    except MarketError:
        refused = True
    rated = rep.summary(agent, tag1="starred")
    checks.append({"check": f"market: feedback only from settled deals: the lab's 2 count "
                   f"(rating {rated['rating']}), the Sybil's is refused",
                   "ok": refused and rated["count"] == 2 and rated["rating"] == "4.2"})  # fmt: skip

    step("a labeling job goes through escrow: created, funded, delivered, completed")
    job = jobs.create(by=LAB, provider="labeler", evaluator="reviewer", expires_in=3600,
                      description="label 1,000 scans", budget=10 * 10**6)  # fmt: skip
    jobs.fund(job.job_id, by=LAB)
    jobs.submit(job.job_id, model_asset, by="labeler")
    jobs.complete(job.job_id, by="reviewer")
    checks.append({"check": "market: the labeling job completed and the labeler was paid 10 "
                   "credits from escrow",
                   "ok": jobs.status(job.job_id).status == "completed"
                   and credits.balance("labeler") == 10 * 10**6})  # fmt: skip

    step("the expiring job passes its deadline; a third party (keeper) refunds the lab")
    lab_before = credits.balance(LAB)
    time.sleep(max(0.0, expiring.expired_at + 1 - time.time()))
    for _ in range(60):  # a chain's clock may lag the wall clock by a block or two
        try:
            jobs.refund(expiring.job_id, by="keeper")
            break
        except TransactionRevertedError as exc:
            if "has not expired" not in str(exc):
                raise
            time.sleep(1.0)
    checks.append({"check": "market: the expired job was refunded to the lab by a third party",
                   "ok": jobs.status(expiring.job_id).status == "expired"
                   and credits.balance(LAB) == lab_before + 4 * 10**6})  # fmt: skip
    summary["guardrails"] = _guardrails(chain, keystore, home, credits, logs, checks, step)
    summary.update({
        "agent_id": agent, "endpoint": server.url + "/predict", "price": str(PRICE),
        "paid_calls": [{"tx": a.settlement.get("transaction"), "answer": a.body} for a in answers],
        "reputation": rated, "jobs": {"completed": job.job_id, "refunded": expiring.job_id},
    })  # fmt: skip
    return summary, checks


def _guardrails(chain: Chain, keystore: Keystore, home: Path, credits: Credits, logs: AuditLogs,
                checks: list[dict[str, Any]], step: Callable[[str], None]) -> dict[str, Any]:  # fmt: skip
    """triage-agent spends its earnings through an account hospital-a owns: within its cap it
    pays; above it, to an unlisted recipient, and after hospital-a's kill switch it cannot,
    and each refusal is on chain and in its audit log."""
    audit = AuditLog(logs.open(AGENT, with_key=True))
    before = audit.log.size

    def record(refusal: dict[str, Any]) -> None:
        audit.record(
            AuditEvent(
                system=AGENT, event_type="guardrail-refusal", risk_flag=True, details=refusal
            )
        )

    accounts = AgentAccounts(chain, keystore, home, on_refused=record)
    step(f"hospital-a gives {AGENT} an account: at most 0.06 credits a payment, 0.1 a day, "
         "to the labeler only")  # fmt: skip
    account = accounts.deploy(AGENT, owner=OWNER)
    accounts.set_allowance(AGENT, credits.address, per_transaction=60_000, per_period=100_000, period=86400,
                           by=OWNER)  # fmt: skip
    accounts.allow_call(AGENT, credits.address, "transfer(address,uint256)", by=OWNER)
    accounts.allow_recipient(AGENT, "labeler", by=OWNER)
    credits.send(account, CALLS * PRICE, by=AGENT)  # its earnings from the paid calls
    step(f"{AGENT} pays the labeler 0.05, then tries 0.05 more (over its day), and 0.01 to an "
         "unlisted key")  # fmt: skip
    accounts.pay(AGENT, credits.address, "labeler", 50_000)
    refusals = []
    for to, amount in (("labeler", 60_000), ("sybil", 10_000)):
        try:
            accounts.pay(AGENT, credits.address, to, amount)
        except GuardrailError as e:
            refusals.append(str(e))
    step(f"hospital-a flips the kill switch; {AGENT}'s next payment fails")
    accounts.freeze(AGENT, by=OWNER)
    try:
        accounts.pay(AGENT, credits.address, "labeler", 1)
    except GuardrailError as e:
        refusals.append(str(e))
    audit.checkpoint()
    logged = [decode_event(audit.log.entry(i)) for i in range(before, audit.log.size)]
    audit.close()
    logged_reasons = [
        e["details"]["reason"] for e in logged if e.get("event_type") == "guardrail-refusal"
    ]
    expected = [
        "above the spent-limit of the period",
        "the recipient is not allowed",
        "the account is frozen",
    ]
    checks.append({"check": f"market: {AGENT}'s account paid within its cap and refused a payment over "
                   "its daily cap, one to an unlisted key and one after hospital-a's kill switch; each "
                   "refusal on chain and in its audit log",
                   "ok": len(refusals) == 3 and logged_reasons == expected
                   and credits.balance(account) == CALLS * PRICE - 50_000})  # fmt: skip
    return {"account": account, "refusals": refusals}


def _log(audit: AuditLog, digest: str, call: dict[str, Any]) -> None:
    audit.record(AuditEvent(
        system=AGENT, event_type="paid-call", model_digest=digest,
        input_digest=str(call["input_digest"]), output_digest=str(call["output_digest"]),
        details={k: call[k] for k in ("route", "payer", "amount", "transaction", "status")},
    ))  # fmt: skip
