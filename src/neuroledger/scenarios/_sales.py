"""The sales part of the demo: data and models sold with grants and royalties.

1. While hospital-b's gateway runs, hospital-b lists compute access to its cohort for a
   new purpose; the research lab buys it (payment into escrow and grant in one
   transaction) and runs its approved job under the bought grant.
2. The consortium lists the robust federated model; the lab buys it. After the hold
   period both sales are released: the model's royalty goes to the three hospitals in
   proportion to the rewards their contribution scores earned, and each listing's split
   is re-derived from chain data alone and found to agree.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from eth_account.signers.local import LocalAccount

from neuroledger.chain import Chain, contract_call
from neuroledger.identity import Keystore
from neuroledger.market import Credits, Listings, format_amount
from neuroledger.privacy import GatewayClient

__all__ = ["fund_credits", "release_sales", "sell_cohort", "sell_federated_model"]

HOSPITAL, LAB, CONSORTIUM = "hospital-b", "research-lab", "consortium"
HOSPITALS = ("hospital-a", "hospital-b", "hospital-c")
SOLD_PURPOSE = "trial-design"
COHORT_PRICE = 20 * 10**6
MODEL_PRICE = 40 * 10**6
DAY = 86_400


def fund_credits(chain: Chain, keystore: Keystore, name: str, amount: int,
                 minter: LocalAccount | None) -> None:  # fmt: skip
    """Credits for ``name``: from the faucet, or on a chain without one from ``minter``."""
    credits = Credits(chain, keystore)
    if minter is None:
        credits.faucet(name, amount, by=name)
        return
    call = contract_call(credits.contract, "mint", [credits.address_of(name), amount],
                         label=f"credits for {name}")  # fmt: skip
    chain.sender(minter).send(call)


def _granted_in_same_tx(market: Listings, sale_id: int) -> bool:
    """Whether the sale's transaction also logged the grant in AccessGrants."""
    sold = market.contract.events.Sold().get_logs(
        from_block=market.start_block, argument_filters={"saleId": sale_id}
    )
    receipt = market.chain.w3.eth.get_transaction_receipt(sold[0]["transactionHash"])
    grants = market.chain.contract("AccessGrants").address.lower()
    return any(log["address"].lower() == grants for log in receipt["logs"])


def sell_cohort(market: Listings, lab: GatewayClient, dataset: str, algorithm: bytes,
                step: Callable[[str], None], minter: LocalAccount | None,
                ) -> tuple[dict[str, Any], list[dict[str, Any]]]:  # fmt: skip
    """hospital-b sells compute access to its cohort; the lab buys and runs its job."""
    import time

    step(f"{HOSPITAL} lists compute access to its cohort for {SOLD_PURPOSE!r} on the market")
    listing = market.list_asset(dataset, by=HOSPITAL, price=COHORT_PRICE, mode="compute",
                                purpose=SOLD_PURPOSE, duration=30 * DAY,
                                license="LicenseRef-hospital-b-private")  # fmt: skip
    fund_credits(market.chain, market.keystore, LAB, COHORT_PRICE, minter)
    step(f"{LAB} buys it: payment into escrow and its grant in one transaction; it runs its job")
    sale = market.buy(listing.listing_id, by=LAB)
    time.sleep(0.5)  # the gateway's poller sees the grant's block
    raw = dataset.removeprefix("0x")
    job = lab.wait(lab.submit_job(raw, SOLD_PURPOSE, algorithm)["id"], raw, SOLD_PURPOSE)
    check = {
        "check": f"market: {HOSPITAL} sold compute access to its cohort; the lab's payment and "
        "grant were one transaction and its approved job ran under the bought grant",
        "ok": sale.status == "held"
        and _granted_in_same_tx(market, sale.sale_id)
        and job["status"] == "succeeded",
    }
    return {"listing": listing.listing_id, "sale": sale.sale_id, "job": job["id"]}, [check]


def sell_federated_model(market: Listings, task: int, model: str, step: Callable[[str], None],
                         minter: LocalAccount | None) -> dict[str, Any]:  # fmt: skip
    """The consortium lists the federated model (its participants get the royalty by
    score) and the lab buys it."""
    step(f"{CONSORTIUM} lists the robust federated model; its royalty goes to task {task}'s "
         "participants by score")  # fmt: skip
    listing = market.list_asset(model, by=CONSORTIUM, price=MODEL_PRICE, mode="compute",
                                purpose="diagnosis", duration=365 * DAY, license="CC-BY-NC-4.0",
                                task=task)  # fmt: skip
    fund_credits(market.chain, market.keystore, LAB, MODEL_PRICE, minter)
    sale = market.buy(listing.listing_id, by=LAB)
    return {"listing": listing.listing_id, "sale": sale.sale_id}


def release_sales(market: Listings, cohort: dict[str, Any], model: dict[str, Any],
                  step: Callable[[str], None]) -> tuple[dict[str, Any], list[dict[str, Any]]]:  # fmt: skip
    """After the hold, release both sales and check the royalties from chain data. On a
    chain whose clock the demo cannot move (an external network), the sales stay held
    and the split checked is the one ``release`` will pay (``splitOf``)."""
    embedded = market.chain.is_embedded
    hold = int(market.contract.functions.holdSeconds().call())
    if embedded:
        step("a day later the hold has passed: both sales are released and their royalties "
             "re-derived from chain data")  # fmt: skip
        market.chain.wait_block_time(hold)
        market.release(cohort["sale"], by=LAB)
    else:
        step(f"the sales stay in escrow for {hold} s (`neuroledger market release` after); "
             "their royalties are re-derived from chain data")  # fmt: skip
    wallets = {h: _wallet(market, h) for h in HOSPITALS}
    owed_before = {h: market.owed(wallets[h]) for h in HOSPITALS}
    view = market.listing(model["listing"])
    if embedded:
        market.release(model["sale"], by=LAB)
        got = {h: market.owed(wallets[h]) - owed_before[h] for h in HOSPITALS}
    else:
        payees, amounts = market.contract.functions.splitOf(view.listing_id, view.price).call()
        by_payee = {p.lower(): int(a) for p, a in zip(payees, amounts, strict=True)}
        got = {h: by_payee.get(wallets[h].lower(), 0) for h in HOSPITALS}
    fl = market.chain.contract("FederatedTask")
    rewards = {h: int(fl.functions.rewardOf(view.task, wallets[h]).call()) for h in HOSPITALS}
    royalty = MODEL_PRICE * view.royalty_bps // 10_000
    want = {h: royalty * rewards[h] // sum(rewards.values()) for h in HOSPITALS}
    reports = [market.royalties(x["listing"]) for x in (cohort, model)]
    state = "released" if embedded else "held"
    decimals = market.credits.decimals
    shares = ", ".join(f"{h} {format_amount(got[h], decimals)}" for h in HOSPITALS)
    checks = [{
        "check": f"market: the federated model's sale {'paid' if embedded else 'will pay'} each "
                 f"hospital its royalty in proportion to its score's reward ({shares} credits); "
                 "the poisoner got least",
        "ok": got == want and royalty - len(HOSPITALS) < sum(got.values()) <= royalty
        and got["hospital-c"] == min(got.values()) < max(got.values()),
    }, {
        "check": "market: both sales' splits re-derived from chain data alone agree, and add "
                 f"up to the prices ({state})",
        "ok": all(r["ok"] and r["sales"] and r["sales"][0]["status"] == state for r in reports),
    }]  # fmt: skip
    summary = {"cohort": cohort, "model": model, "royalties": got, "state": state}
    return summary, checks


def _wallet(market: Listings, name: str) -> str:
    """A hospital's participant account: its owner key (it joined the task with it)."""
    return str(market.keystore.owner_account(name).address)
