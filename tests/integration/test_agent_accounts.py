"""An agent account on a real anvil: the agent hires and pays through it, inside its owner's
policy; a job above the cap is refused on chain, moves nothing, and stays open."""

from __future__ import annotations

import pytest

from neuroledger.chain import Chain
from neuroledger.config import Settings
from neuroledger.errors import GuardrailError
from neuroledger.identity import Identities, Keystore
from neuroledger.market import AgentAccounts, Jobs
from tests.conftest import BLOCK_TIME

pytestmark = pytest.mark.anvil

CREDIT = 10**6


def test_an_agent_hires_through_its_account_within_its_caps(chain: Chain, keystore: Keystore,
                                                             identities: Identities, settings: Settings) -> None:  # fmt: skip
    for name, kind in (("hospital-a", "org"), ("triage", "agent"), ("labeler", "agent")):
        identities.create(name, kind, publish=False)
    accounts = AgentAccounts(chain, keystore, settings.home)
    jobs = Jobs(chain, keystore, accounts)
    account = accounts.deploy("triage", owner="hospital-a")
    token, escrow = jobs.credits.contract.address, jobs.escrow.address
    accounts.set_allowance("triage", token, per_transaction=5 * CREDIT, per_period=12 * CREDIT, period=86400,
                           by="hospital-a")  # fmt: skip
    for target, signature in ((escrow, "createJob(address,address,uint256,string,address)"),
                              (escrow, "setBudget(uint256,uint256,bytes)"), (escrow, "fund(uint256,uint256,bytes)"),
                              (token, "approve(address,uint256)")):  # fmt: skip
        accounts.allow_call("triage", target, signature, by="hospital-a")
    accounts.allow_recipient("triage", escrow, by="hospital-a")
    jobs.credits.faucet("hospital-a", 100 * CREDIT, by="hospital-a")
    jobs.credits.send(account, 50 * CREDIT, by="hospital-a")

    small = jobs.create(by="triage", provider="labeler", evaluator="hospital-a", expires_in=3600,
                        description="label 100 scans", budget=4 * CREDIT)  # fmt: skip
    assert small.client == account  # the account, not the agent's key, is the client
    jobs.fund(small.job_id, by="triage")
    assert jobs.status(small.job_id).status == "funded"
    assert jobs.credits.balance(account) == 46 * CREDIT

    big = jobs.create(by="triage", provider="labeler", evaluator="hospital-a", expires_in=3600,
                      description="label 1,000 scans", budget=8 * CREDIT)  # fmt: skip
    with pytest.raises(
        GuardrailError,
        match="triage's account refused approve escrow: above the per-transaction cap",
    ):
        jobs.fund(big.job_id, by="triage")
    assert jobs.status(big.job_id).status == "open" and jobs.credits.balance(account) == 46 * CREDIT
    accounts.freeze("triage", by="hospital-a")
    with pytest.raises(GuardrailError, match="the account is frozen"):
        jobs.create(by="triage", provider="labeler", evaluator="hospital-a", expires_in=3600,
                    description="x", budget=CREDIT)  # fmt: skip
    accounts.withdraw(
        "triage", token, 46 * CREDIT, by="hospital-a"
    )  # the owner's exit, frozen or not
    assert jobs.credits.balance("hospital-a") == 96 * CREDIT


@pytest.mark.skipif(
    BLOCK_TIME > 0,
    reason="the job test above runs the account with the block time; "
    "this one adds an HTTP server, not a timing",
)
def test_x402_calls_are_paid_through_the_account_and_stop_at_its_cap(chain: Chain, keystore: Keystore,
                                                                      identities: Identities, settings: Settings,
                                                                      tmp_path) -> None:  # fmt: skip
    from neuroledger.market import AgentService, Credits, Facilitator, pay
    from neuroledger.privacy.gateway import BackgroundServer

    for name, kind in (
        ("hospital-a", "org"),
        ("triage", "agent"),
        ("lab", "org"),
        ("operator", "org"),
    ):
        identities.create(name, kind, publish=False)
    credits = Credits(chain, keystore)
    accounts = AgentAccounts(chain, keystore, settings.home)
    account = accounts.deploy("triage", owner="hospital-a")
    accounts.set_allowance("triage", credits.address, per_transaction=CREDIT, per_period=CREDIT, period=86400,
                           by="hospital-a")  # fmt: skip
    accounts.allow_call("triage", credits.address, "transfer(address,uint256)", by="hospital-a")
    accounts.allow_recipient("triage", credits.address_of("triage"), by="hospital-a")  # its own key
    credits.faucet("hospital-a", 10 * CREDIT, by="hospital-a")
    credits.send(account, 10 * CREDIT, by="hospital-a")
    chain.fund(keystore.owner_account("operator").address)
    service = AgentService(Facilitator(credits, "operator"), pay_to="lab", calls_path=tmp_path / "calls.sqlite",
                           card=b'{"name":"lab"}')  # fmt: skip

    @service.paid("/label", price=400_000)
    def label(body: object) -> object:
        return {"label": "benign"}

    with BackgroundServer(service.app()) as server:

        def call() -> object:
            return pay(credits, server.url + "/label", payer="triage", body={}, max_price=CREDIT,
                       accounts=accounts)  # fmt: skip

        for _ in range(2):
            paid = call()
            assert paid.status == 200 and paid.body == {"label": "benign"}  # type: ignore[attr-defined]
        # 0.8 of the day's 1 credit is spent: the third call's 0.4 is refused before signing.
        with pytest.raises(GuardrailError, match="above the spent-limit of the period"):
            call()
    assert credits.balance("lab") == 800_000 and credits.balance("triage") == 0
    assert credits.balance(account) == 10 * CREDIT - 800_000
