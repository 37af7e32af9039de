"""Jobs in escrow on a real anvil: a labeling job paid on completion, a changed budget
refused, an expired job refunded by a third party, and a dispute sent back to the evaluator."""

from __future__ import annotations

import time

import pytest

from neuroledger.chain import Chain
from neuroledger.errors import MarketError, PaymentError, TransactionRevertedError
from neuroledger.identity import Identities, Keystore
from neuroledger.market import Jobs
from tests.waiting import soon

pytestmark = pytest.mark.anvil

ASSET = "0x" + "42" * 32
BUDGET = 20 * 10**6


@pytest.fixture
def jobs(chain: Chain, keystore: Keystore, identities: Identities) -> Jobs:
    for name in ("lab", "labeler", "reviewer", "stranger"):
        identities.create(name, "agent", publish=False)
    jobs = Jobs(chain, keystore)
    jobs.credits.faucet("lab", 1_000 * 10**6, by="lab")
    return jobs


def test_a_job_is_paid_on_completion(jobs: Jobs) -> None:
    job = jobs.create(by="lab", provider="labeler", evaluator="reviewer", expires_in=3600,
                      description="label 1,000 chest X-rays", budget=BUDGET)  # fmt: skip
    assert (job.status, job.budget, job.provider) == (
        "open",
        BUDGET,
        jobs.credits.address_of("labeler"),
    )
    jobs.fund(job.job_id, by="lab")
    assert jobs.status(job.job_id).status == "funded"
    assert jobs.credits.balance(jobs.escrow.address) == BUDGET
    jobs.submit(job.job_id, ASSET, by="labeler")
    jobs.complete(job.job_id, by="reviewer", reason=b"all labels checked")
    done = jobs.status(job.job_id)
    assert (done.status, done.deliverable) == ("completed", ASSET)
    assert (
        jobs.credits.balance("labeler") == BUDGET and jobs.credits.balance(jobs.escrow.address) == 0
    )


def test_a_changed_budget_is_not_funded(jobs: Jobs) -> None:
    job = jobs.create(by="lab", provider="labeler", evaluator="reviewer", expires_in=3600,
                      description="x", budget=BUDGET)  # fmt: skip
    jobs.set_budget(job.job_id, 10 * BUDGET, by="labeler")  # raised after the client agreed
    with pytest.raises(TransactionRevertedError, match="JobEscrow: budget changed"):
        jobs.fund(job.job_id, by="lab", expected=BUDGET)
    assert (
        jobs.status(job.job_id).status == "open" and jobs.credits.balance(jobs.escrow.address) == 0
    )


def test_an_expired_job_is_refunded_by_anyone(jobs: Jobs) -> None:
    job = jobs.create(by="lab", provider="labeler", evaluator="reviewer", expires_in=20,
                      description="x", budget=BUDGET)  # fmt: skip
    jobs.fund(job.job_id, by="lab")
    with pytest.raises(TransactionRevertedError, match="JobEscrow: job has not expired"):
        jobs.refund(job.job_id, by="stranger")
    assert soon(
        lambda: time.time() > job.expired_at + 1, timeout=60
    )  # wall time: the next block is later
    before = jobs.credits.balance("lab")
    jobs.refund(job.job_id, by="stranger")  # a third party, who gains nothing from it
    assert jobs.status(job.job_id).status == "expired"
    assert jobs.credits.balance("lab") == before + BUDGET


def test_a_dispute_goes_back_to_the_evaluator(jobs: Jobs) -> None:
    job = jobs.create(by="lab", provider="labeler", evaluator="reviewer", expires_in=3600,
                      description="x", budget=BUDGET, dispute_window=600)  # fmt: skip
    jobs.fund(job.job_id, by="lab")
    jobs.submit(job.job_id, ASSET, by="labeler")
    jobs.complete(job.job_id, by="reviewer")
    held = jobs.status(job.job_id)
    assert (
        held.status == "completed" and held.release_at > 0 and jobs.credits.balance("labeler") == 0
    )
    jobs.dispute(job.job_id, by="lab", reason=b"labels 10-20 are wrong")
    assert jobs.status(job.job_id).status == "submitted"
    jobs.reject(job.job_id, by="reviewer", reason=b"the client is right")
    assert jobs.status(job.job_id).status == "rejected" and jobs.credits.balance("labeler") == 0


def test_bad_input_gets_one_line(jobs: Jobs) -> None:
    with pytest.raises(MarketError, match="no job 99"):
        jobs.status(99)
    job = jobs.create(by="lab", provider="labeler", evaluator="reviewer", expires_in=3600,
                      description="x", budget=10**15)  # fmt: skip
    with pytest.raises(PaymentError, match="less than the budget"):
        jobs.fund(job.job_id, by="lab")
    with pytest.raises(MarketError, match="is not an asset id"):
        jobs.submit(job.job_id, "model.bin", by="labeler")
    with pytest.raises(MarketError, match="expire in the future"):
        jobs.create(by="lab", evaluator="reviewer", expires_in=0, description="x")
