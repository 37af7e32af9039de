"""k-of-n validation on a real anvil: five staked validators judge a delivered model by the
accuracy its client asked for. One lies and one is offline; the verdict is still right, the
job is paid or refunded by it alone, and after the challenge window the liar and the absent
one are slashed and the others paid. A model with one changed byte is rejected."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from neuroledger.chain import Chain
from neuroledger.config import Settings
from neuroledger.errors import MarketError, TransactionRevertedError
from neuroledger.identity import Identities, Keystore
from neuroledger.market import (
    Agents,
    CheckResult,
    Jobs,
    Validation,
    Validator,
    model_accuracy_check,
    request_document,
)
from neuroledger.provenance import Provenance
from tests.conftest import BLOCK_TIME

pytestmark = pytest.mark.anvil

CREDIT = 10**6
VALIDATORS = ("val-1", "val-2", "val-3", "val-liar", "val-offline")


def train_model(root: Path) -> tuple[Path, Path]:
    """A softmax-regression model of breast-cancer data and its held-out set (validation.npz)."""
    from sklearn.linear_model import LogisticRegression

    from neuroledger.federated._data import load_dataset

    x, y = load_dataset("breast-cancer")
    order = np.random.default_rng(0).permutation(len(y))
    held, train = order[:140], order[140:]
    fit = LogisticRegression(max_iter=500).fit(x[train], y[train])
    weights = np.zeros((x.shape[1], 2))
    weights[:, 1] = fit.coef_[0]
    bias = np.array([0.0, fit.intercept_[0]])
    model = root / "model"
    model.mkdir(parents=True)
    (model / "config.json").write_text(
        json.dumps({"type": "softmax-regression", "features": 30, "classes": 2})
    )
    (model / "weights.f64").write_bytes(
        np.concatenate([weights.ravel(), bias]).astype("<f8").tobytes()
    )
    np.savez(root / "heldout.npz", x=x[held], y=y[held])
    return model, root / "heldout.npz"


@pytest.fixture
def market(chain: Chain, keystore: Keystore, identities: Identities, prov: Provenance,
           settings: Settings) -> dict:  # fmt: skip
    for name in ("lab", "triage", *VALIDATORS):
        identities.create(name, "agent", publish=False)
    v = Validation(chain, keystore, state_dir=settings.home)
    for name in VALIDATORS:
        v.credits.faucet(name, 200 * CREDIT, by=name)
        v.stake(100 * CREDIT, by=name)
    v.credits.faucet("lab", 500 * CREDIT, by="lab")
    v.credits.faucet("triage", 50 * CREDIT, by="triage")
    agent = Agents(chain, keystore).register("triage", description="diagnoses from tabular data")
    return {"v": v, "jobs": Jobs(chain, keystore), "prov": prov, "agent": agent}


def liar(*_: object) -> CheckResult:
    return CheckResult(0, {"claim": "the model is useless"})


def test_five_validators_one_lying_one_offline_reach_the_right_verdict(market: dict, chain: Chain,
                                                                       tmp_path: Path) -> None:  # fmt: skip
    v: Validation = market["v"]
    jobs: Jobs = market["jobs"]
    model, heldout = train_model(tmp_path)
    asset = "0x" + market["prov"].register(
        model, kind="model", owner="triage"
    ).asset_id.removeprefix("0x")
    check = model_accuracy_check(heldout)

    def delivered_job() -> int:
        job = jobs.create(by="lab", provider="triage", evaluator=v.contract.address, expires_in=3600,
                          description="a breast-cancer classifier of at least 90% accuracy",
                          budget=20 * CREDIT)  # fmt: skip
        v.set_job_terms(job.job_id, check, by="lab", n=5, k=3, threshold=90)
        jobs.fund(job.job_id, by="lab")
        jobs.submit(job.job_id, asset, by="triage")
        return job.job_id

    good, tampered = delivered_job(), delivered_job()
    # The provider asks; the client cannot (it could point the validators at nothing).
    document = request_document(check, asset=asset, location=model)
    with pytest.raises(TransactionRevertedError, match="caller is not the job's provider"):
        v.request_job(good, document, by="lab")
    first = v.request_job(
        good, document, by="triage", commit_period=60, reveal_period=60, fee=5 * CREDIT
    )
    # The second delivery's files change by one byte after registration.
    copy = tmp_path / "copy"
    copy.mkdir()
    for f in model.iterdir():
        (copy / f.name).write_bytes(f.read_bytes())
    raw = bytearray((copy / "weights.f64").read_bytes())
    raw[17] ^= 1
    (copy / "weights.f64").write_bytes(bytes(raw))
    second = v.request_job(tampered, request_document(check, asset=asset, location=copy), by="triage",
                           commit_period=60, reveal_period=60, fee=5 * CREDIT)  # fmt: skip
    assert sorted(first.votes[i].validator for i in range(5)) == sorted(
        v.address_of(n) for n in VALIDATORS
    )

    loops = [Validator(v, n) for n in VALIDATORS[:3]] + [Validator(v, "val-liar", check=liar)]

    def everyone_steps() -> list[str]:
        return [f"{a.action}:{a.detail}" for loop in loops for a in loop.step()]

    committed = everyone_steps()
    assert sum(a.startswith("committed") for a in committed) == 8, committed
    with pytest.raises(TransactionRevertedError, match="reveals are not open yet"):
        v.reveal(first.request_hash, by="val-1")  # the offline one has not committed
    chain.wait_block_time(61)  # the commit deadline passes
    assert sum(a.startswith("revealed") for a in everyone_steps()) == 8
    chain.wait_block_time(61)  # the reveal deadline passes
    everyone_steps()  # someone finalizes each
    a, b = v.show(first.request_hash), v.show(second.request_hash)
    accuracy = a.votes[[x.validator for x in a.votes].index(v.address_of("val-1"))].response
    assert accuracy is not None and 90 <= accuracy < 100
    assert (a.status, a.result, a.revealed) == ("accepted", accuracy, 4)
    assert (b.status, b.result) == ("rejected", 0)  # one changed byte: every honest check fails
    assert jobs.status(good).status == "completed" and jobs.status(tampered).status == "rejected"
    assert jobs.credits.balance("triage") == 50 * CREDIT - 10 * CREDIT + 20 * CREDIT
    # After the challenge window, the stake moves: on the good job the liar and the absent
    # one are slashed; on the tampered one the liar happened to say what the honest said.
    with pytest.raises(TransactionRevertedError, match="challenge window is still open"):
        v.settle(first.request_hash, by="lab")
    chain.wait_block_time(int(v.contract.functions.challengeWindow().call()) + 1)
    everyone_steps()
    a = v.show(first.request_hash)
    outcome = {x.validator: x.outcome for x in a.votes}
    assert [outcome[v.address_of(n)] for n in VALIDATORS] == [
        "paid",
        "paid",
        "paid",
        "slashed",
        "slashed",
    ]
    assert v.stake_of("val-offline").active == 80 * CREDIT  # absent twice: 10% of its weight each
    assert v.stake_of("val-liar").active == 90 * CREDIT
    b_outcome = {x.validator: x.outcome for x in v.show(second.request_hash).votes}
    assert [b_outcome[v.address_of(n)] for n in VALIDATORS] == [
        "paid",
        "paid",
        "paid",
        "paid",
        "slashed",
    ]
    # The fee is shared by those found honest: 3 on the good job, 4 on the tampered one.
    assert v.credits.balance("val-1") == 100 * CREDIT + 5 * CREDIT // 3 + 5 * CREDIT // 4
    # Nothing was lost: the registry holds exactly the stake left and what was slashed.
    held = sum(v.stake_of(n).active + v.stake_of(n).unbonding for n in VALIDATORS)
    assert v.credits.balance(v.contract.address) == held + v.contract.functions.slashedPool().call()


@pytest.mark.skipif(
    BLOCK_TIME > 0,
    reason="reverts only: the contract and CLI tests cover them; the "
    "scenario above runs with the block time",
)
def test_bad_votes_get_clear_errors_and_move_nothing(
    market: dict, chain: Chain, tmp_path: Path
) -> None:
    v: Validation = market["v"]
    model, heldout = train_model(tmp_path)
    asset = "0x" + market["prov"].register(
        model, kind="model", owner="triage"
    ).asset_id.removeprefix("0x")
    document = request_document(model_accuracy_check(heldout), asset=asset, location=model)
    r = v.request(market["agent"].agent_id, document, by="triage", k=3, validators=list(VALIDATORS[:3]),
                  commit_period=60, reveal_period=60)  # fmt: skip
    with pytest.raises(MarketError, match=r"no commitment on request .* to reveal; commit first"):
        v.reveal(r.request_hash, by="val-1")
    with pytest.raises(TransactionRevertedError, match="caller is not a validator of the request"):
        v.commit(r.request_hash, 100, by="val-liar")
    v.commit(r.request_hash, 100, by="val-1")
    with pytest.raises(MarketError, match="val-1 already committed"):
        v.commit(r.request_hash, 50, by="val-1")
    with pytest.raises(MarketError, match="a response is 0 to 100"):
        v.commit(r.request_hash, 101, by="val-2")
    with pytest.raises(MarketError, match="k = 4: the quorum must be 1 to n = 3"):
        v.request(
            market["agent"].agent_id, document, by="triage", k=4, validators=list(VALIDATORS[:3])
        )
    with pytest.raises(MarketError, match="no validation request 0x"):
        v.show("0x" + "ab" * 32)
    with pytest.raises(MarketError, match="nothing unbonding"):
        v.withdraw(by="val-1")
    chain.wait_block_time(130)
    with pytest.raises(TransactionRevertedError, match="the reveal deadline has passed"):
        v.reveal(r.request_hash, by="val-1")
    assert v.show(r.request_hash).revealed == 0
