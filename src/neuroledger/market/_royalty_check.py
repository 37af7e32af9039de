"""Check a listing's royalties from chain data alone.

Anyone can re-derive who a listing pays and how much, without trusting the seller or
the marketplace's own bookkeeping:

- for an asset, walk its lineage from the asset registry's ``AssetRegistered`` events
  (through the lineage index) and check every parent list read against the registry's
  on-chain ``parentsDigest``;
- for a federated model, read the task's participants from its ``ParticipantJoined``
  events, their rewards from ``rewardOf`` and the final model from ``finalModelOf``;
- compute the split of the price the way the contract does, and compare it with the
  listing's recorded contributors and with every release's ``RoyaltyPaid`` events.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from neuroledger.market._lineage_walk import walk_lineage

if TYPE_CHECKING:
    from neuroledger.market._listings import Listings, ListingView

__all__ = ["split_amounts", "verify_royalties"]

_FINISHED = 2


def split_amounts(price: int, royalty_bps: int, weights: list[int]) -> list[int]:
    """Each contributor's part of a sale at ``price``, as the contract computes it: the
    royalty (``price * bps // 10,000``) pro rata to the weights, rounded down."""
    royalty = price * royalty_bps // 10_000
    total = sum(weights)
    return [royalty * w // total if total else 0 for w in weights]


def _word(address: str) -> str:
    return "0x" + "00" * 12 + address[2:].lower()


def verify_royalties(market: Listings, view: ListingView) -> dict[str, Any]:
    """The listing's contributors and split, re-derived, and every disagreement found."""
    from neuroledger.market._listings import parents_digest

    chain = market.chain
    problems: list[str] = []
    depth: dict[str, int] = {}
    if view.task:
        fl = chain.contract("FederatedTask")
        participants = market.participants(view.task)
        derived = [_word(p) for p in participants]
        weights = [int(fl.functions.rewardOf(view.task, p).call()) for p in participants]
        payees = list(participants)
        if int(fl.functions.tasks(view.task).call()[8]) != _FINISHED:
            problems.append(f"task {view.task} has not finished")
        final = "0x" + bytes(fl.functions.finalModelOf(view.task).call()).hex()
        if final != view.asset:
            problems.append(f"task {view.task}'s final model is {final}, not the listed asset")
    else:
        market.prov.sync()
        walk = walk_lineage(view.asset, market.parents_of)
        registry = chain.contract("AssetRegistry")
        for node, parents in zip(walk.expanded, walk.lists, strict=True):
            on_chain = bytes(registry.functions.parentsDigest(bytes.fromhex(node[2:])).call())
            if on_chain != parents_digest(parents):
                problems.append(f"the parents of {node} do not match the registry's digest")
        derived, weights, depth = walk.ancestors, [1] * len(walk.ancestors), walk.depth
        payees = [str(registry.functions.assetOf(bytes.fromhex(a[2:])).call()[0]) for a in derived]
    if derived != view.contributors:
        problems.append("the listing's contributors differ from the ones the chain data gives")
    if view.task and weights != view.weights:
        problems.append("the listing's weights differ from the task's rewards")
    parts = split_amounts(view.price, view.royalty_bps, weights)
    contributors = [{"contributor": c, "kind": "participant" if view.task else "asset",
                     "depth": depth.get(c), "payee": p, "weight": w, "amount": a}
                    for c, p, w, a in zip(derived, payees, weights, parts, strict=True)]  # fmt: skip
    sales = [_check_sale(market, view, sale.sale_id, sale.price, sale.status, weights, problems)
             for sale in market.sales(view.listing_id)]  # fmt: skip
    return {
        "listing": view.listing_id,
        "asset": view.asset,
        "seller": view.seller,
        "price": view.price,
        "royalty_bps": view.royalty_bps,
        "royalty": sum(parts),
        "seller_amount": view.price - sum(parts),
        "contributors": contributors,
        "sales": sales,
        "ok": not problems,
        "problems": problems,
    }


def _check_sale(market: Listings, view: ListingView, sale_id: int, price: int, status: str,
                weights: list[int], problems: list[str]) -> dict[str, Any]:  # fmt: skip
    """One sale: for a released one, its ``RoyaltyPaid`` and ``SaleReleased`` events against
    the split the chain data gives."""
    out: dict[str, Any] = {"sale": sale_id, "price": price, "status": status, "paid": []}
    if status != "released":
        return out
    c, start = market.contract, market.start_block
    paid = c.events.RoyaltyPaid().get_logs(from_block=start, argument_filters={"saleId": sale_id})
    released = c.events.SaleReleased().get_logs(
        from_block=start, argument_filters={"saleId": sale_id}
    )
    got = [int(e["args"]["amount"]) for e in paid]
    want = [a for a in split_amounts(price, view.royalty_bps, weights) if a]
    out["paid"] = [{"payee": e["args"]["payee"], "source": "0x" + bytes(e["args"]["source"]).hex(),
                    "amount": int(e["args"]["amount"])} for e in paid]  # fmt: skip
    seller_amount = int(released[0]["args"]["sellerAmount"]) if released else -1
    out["seller_amount"] = seller_amount
    if got != want:
        problems.append(f"sale {sale_id} paid royalties {got}, the chain data gives {want}")
    if seller_amount + sum(got) != price:
        problems.append(f"sale {sale_id}'s payouts do not add up to its price")
    return out
