"""Reputation from settled deals on a real anvil: feedback backed by x402 payments and by a
delivered escrow job, a Sybil key refused, the agent's owner refused, summaries weighted."""

from __future__ import annotations

import pytest

from neuroledger.chain import Chain
from neuroledger.errors import MarketError
from neuroledger.identity import Identities, Keystore
from neuroledger.market import Agents, Credits, Facilitator, Jobs, Reputation, parse_rating

pytestmark = pytest.mark.anvil


@pytest.fixture
def world(chain: Chain, keystore: Keystore, identities: Identities) -> tuple[Reputation, int]:
    for name in ("triage", "lab", "clinic", "sybil", "operator", "reviewer"):
        identities.create(name, "agent", publish=False)
    agent = Agents(chain, keystore).register("triage", description="triage", x402=True)
    credits = Credits(chain, keystore)
    for client in ("lab", "clinic"):
        credits.faucet(client, 100 * 10**6, by=client)
    chain.fund(keystore.owner_account("operator").address)
    return Reputation(chain, keystore), agent.agent_id


def _pay(rep: Reputation, client: str, amount: int) -> bytes:
    facilitator = Facilitator(rep.credits, "operator")
    auth = rep.credits.authorize("triage", amount, by=client)
    (result,) = facilitator.settle([auth])
    assert result.success
    return auth.nonce


def test_feedback_backed_by_payments_and_jobs(world: tuple[Reputation, int], keystore: Keystore,
                                              chain: Chain) -> None:  # fmt: skip
    rep, agent = world
    _pay(rep, "lab", 3_000_000)
    _pay(rep, "lab", 1_000_000)
    _pay(rep, "clinic", 2_000_000)
    # Feedback records the client's own settled payment first, one per feedback.
    first = rep.give(agent, "4.5", by="lab", tag1="starred")
    assert (first.value, first.decimals, first.weight, first.rating) == (45, 1, 3_000_000, "4.5")
    assert rep.unrecorded_payments(agent, "lab") != []
    rep.give(agent, "3.5", by="lab", tag1="starred")
    with pytest.raises(MarketError, match="no settled deal with agent"):
        rep.give(agent, "5", by="lab")  # both payments spent
    rep.give(agent, "2.0", by="clinic", tag1="starred")
    summary = rep.summary(agent, tag1="starred")
    # (4.5 * 3 + 3.5 * 1 + 2.0 * 2) / 6 = 3.5
    assert (
        summary["count"] == 3 and summary["rating"] == "3.5" and summary["dealValue"] == "6000000"
    )
    # A delivered job is a deal too.
    jobs = Jobs(chain, keystore)
    job = jobs.create(by="lab", provider="triage", evaluator="reviewer", expires_in=3600,
                      description="triage 50 scans", budget=5_000_000)  # fmt: skip
    jobs.fund(job.job_id, by="lab")
    jobs.submit(job.job_id, "0x" + "42" * 32, by="triage")
    jobs.complete(job.job_id, by="reviewer")
    rep.record_job(job.job_id, by="reviewer")  # anyone may record it
    assert rep.pending(agent, "lab") == 1
    rep.give(agent, "5", by="lab", tag1="starred")
    assert rep.summary(agent, clients=["lab"])["count"] == 3
    listed = rep.feedback(agent)
    assert [(f.client, f.index) for f in listed] == [
        (rep.credits.address_of("lab"), 1), (rep.credits.address_of("lab"), 2),
        (rep.credits.address_of("lab"), 3), (rep.credits.address_of("clinic"), 1)]  # fmt: skip
    rep.revoke(agent, 1, by="lab")
    assert len(rep.feedback(agent)) == 3 and len(rep.feedback(agent, include_revoked=True)) == 4


def test_sybil_and_self_feedback_are_refused(world: tuple[Reputation, int], identities: Identities,
                                             keystore: Keystore) -> None:  # fmt: skip
    from tests import security_figures

    rep, agent = world
    with pytest.raises(MarketError, match="sybil has no settled deal with agent"):
        rep.give(agent, "5", by="sybil")
    with pytest.raises(MarketError, match="triage owns or operates agent"):
        rep.give(agent, "5", by="triage")
    # Straight to the contract, past the client's checks: fresh keys, and the agent's owner.
    through = 0
    for k in range(8):
        name = f"sybil-{k}"
        identities.create(name, "agent", publish=False)
        for who in (name, "triage"):
            call = rep.contract.functions.giveFeedback(
                agent, 100, 0, "starred", "", "", "", b"\0" * 32
            )
            try:
                call.call({"from": keystore.owner_account(who).address})
                through += 1
            except Exception:
                pass
    security_figures.record("reputation", "Sybil and self-feedback", tried=16, through=through,
                            what="fresh keys with no settled deal, and the agent's own owner, "
                            "call giveFeedback directly on the registry",
                            test="tests/integration/test_reputation.py")  # fmt: skip
    assert through == 0
    assert rep.feedback(agent) == [] and rep.summary(agent)["count"] == 0


@pytest.mark.parametrize(("text", "value"), [("87", (87, 0)), ("4.5", (45, 1)), ("-3.2", (-32, 1)),
                                            ("99.77", (9977, 2))])  # fmt: skip
def test_ratings_parse_to_erc_8004_values(text: str, value: tuple[int, int]) -> None:
    assert parse_rating(text) == value
