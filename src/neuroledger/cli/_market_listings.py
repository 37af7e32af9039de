"""``neuroledger market list|listings|buy|release|refund|withdraw|delist|royalties``:
data and models for sale, with grants and royalties along lineage."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import typer

from neuroledger.cli._context import context_of, emit
from neuroledger.cli._options import JsonOpt
from neuroledger.market import MODES, Listings, ListingView, SaleView, format_amount, parse_amount

FromOpt = Annotated[str, typer.Option("--from", help="Local identity that sends the call.")]
ListingArg = Annotated[int, typer.Argument(help="The listing's number.", min=1)]
SaleArg = Annotated[int, typer.Argument(help="The sale's number.", min=1)]


def _market(ctx: typer.Context) -> Listings:
    c = context_of(ctx)
    return Listings(c.chain(), c.keystore(), c.provenance())


def _when(t: int) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _listing_line(m: Listings, v: ListingView) -> str:
    d = m.credits.decimals
    source = f"task {v.task} participants" if v.task else "ancestors"
    return (f"listing {v.listing_id}: asset {v.asset[:18]}… for {format_amount(v.price, d)} "
            f"credits, {v.mode} for {v.purpose!r}"
            + (f", {v.duration // 86400} d" if v.mode != "per-call" else f" at {v.uri}")
            + f"; royalty {v.royalty_bps / 100:g}% to {len(v.contributors)} {source}"
            + f"; {v.sales} sold" + ("" if v.active else "; WITHDRAWN")
            + (f"; licence {v.license}" if v.license else ""))  # fmt: skip


def _sale_line(m: Listings, s: SaleView) -> str:
    d = m.credits.decimals
    return (f"sale {s.sale_id} of listing {s.listing_id}: {format_amount(s.price, d)} credits "
            f"{s.status}" + (f" until {_when(s.release_at)}" if s.status == "held" else "")
            + f"; {s.grantee} has access until {_when(s.expiry)}")  # fmt: skip


def list_asset(
    ctx: typer.Context,
    asset: Annotated[
        str, typer.Argument(help="The asset: id, unique prefix, or its content path.")
    ],
    from_: FromOpt,
    price: Annotated[str, typer.Option("--price", help="Price in credits, e.g. 5 or 2.5.")],
    mode: Annotated[
        str, typer.Option("--mode", help=f"What it sells: {', '.join(MODES)}.")
    ] = "compute",
    purpose: Annotated[
        str, typer.Option("--purpose", help="The purpose the grant is for.")
    ] = "research",
    duration: Annotated[int, typer.Option("--duration", help="Seconds a bought grant lasts.")] = 30
    * 86400,
    license: Annotated[str, typer.Option("--license", help="SPDX expression or URI.")] = "",
    uri: Annotated[str, typer.Option("--uri", help="Terms, or the x402 endpoint (per-call).")] = "",
    task: Annotated[
        int | None,
        typer.Option(
            "--task",
            help="The federated task whose final model this is: its participants get the royalties by score.",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """List an asset you own for sale (the marketplace becomes your delegate for grants)."""
    m = _market(ctx)
    v = m.list_asset(asset, by=from_, price=parse_amount(price, m.credits.decimals), mode=mode,
                     purpose=purpose, duration=duration, license=license, uri=uri,
                     task=task)  # fmt: skip
    emit(v.to_json(), as_json=as_json, human=_listing_line(m, v))


def listings(
    ctx: typer.Context,
    asset: Annotated[
        str | None, typer.Option("--asset", help="Only this asset's listings.")
    ] = None,
    seller: Annotated[
        str | None, typer.Option("--seller", help="Only this seller's (name or address).")
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="Include withdrawn listings.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """What is for sale, newest first."""
    m = _market(ctx)
    ref = m.prov.resolve(asset) if asset else None
    found = m.listings(asset=ref, seller=seller, include_inactive=all_)
    human = "\n".join(_listing_line(m, v) for v in found) or "nothing is listed"
    emit([v.to_json() for v in found], as_json=as_json, human=human)


def buy(
    ctx: typer.Context,
    listing: ListingArg,
    from_: FromOpt,
    for_: Annotated[
        str | None, typer.Option("--for", help="Who gets the access (default: the buyer).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Buy a listing: the price goes into escrow and the grant is issued in one transaction."""
    m = _market(ctx)
    s = m.buy(listing, by=from_, grantee=for_)
    emit(s.to_json(), as_json=as_json, human=_sale_line(m, s))


def release(ctx: typer.Context, sale: SaleArg, from_: FromOpt, as_json: JsonOpt = False) -> None:
    """Pay out a sale after its hold period: royalties to contributors, the rest to the seller."""
    m = _market(ctx)
    s = m.release(sale, by=from_)
    emit(s.to_json(), as_json=as_json, human=_sale_line(m, s))


def refund(ctx: typer.Context, sale: SaleArg, from_: FromOpt, as_json: JsonOpt = False) -> None:
    """Return a held sale's payment to its buyer: only if the grant it bought stopped holding."""
    m = _market(ctx)
    s = m.refund(sale, by=from_)
    emit(s.to_json(), as_json=as_json, human=_sale_line(m, s))


def withdraw(
    ctx: typer.Context,
    from_: FromOpt,
    account: Annotated[
        str | None, typer.Option("--account", help="An identity you act for.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Withdraw your sales and royalties."""
    m = _market(ctx)
    amount = m.withdraw(by=from_, account=account)
    human = f"withdrew {format_amount(amount, m.credits.decimals)} credits to {from_}"
    emit({"amount": amount}, as_json=as_json, human=human)


def delist(
    ctx: typer.Context, listing: ListingArg, from_: FromOpt, as_json: JsonOpt = False
) -> None:
    """Withdraw a listing; sales already made stand."""
    m = _market(ctx)
    m.delist(listing, by=from_)
    v = m.listing(listing)
    emit(v.to_json(), as_json=as_json, human=_listing_line(m, v))


def royalties(ctx: typer.Context, listing: ListingArg, as_json: JsonOpt = False) -> None:
    """Who a listing pays and how much, re-derived from chain data and checked (exit 1 if not)."""
    m = _market(ctx)
    report = m.royalties(listing)
    emit(report, as_json=as_json, human=_royalty_text(m, report))
    if not report["ok"]:
        raise typer.Exit(1)


def _royalty_text(m: Listings, r: dict[str, Any]) -> str:
    d = m.credits.decimals
    lines = [f"listing {r['listing']}: price {format_amount(r['price'], d)}, royalty "
             f"{r['royalty_bps'] / 100:g}% = {format_amount(r['royalty'], d)}, seller keeps "
             f"{format_amount(r['seller_amount'], d)}"]  # fmt: skip
    for c in r["contributors"]:
        where = f"depth {c['depth']}" if c["depth"] else f"weight {c['weight']}"
        lines.append(f"  {c['payee']}  {format_amount(c['amount'], d):>12}  "
                     f"for {c['kind']} {c['contributor'][:18]}… ({where})")  # fmt: skip
    for s in r["sales"]:
        paid = sum(p["amount"] for p in s["paid"])
        lines.append(f"  sale {s['sale']}: {s['status']}"
                     + (f", {format_amount(paid, d)} paid in royalties" if s["paid"] else ""))  # fmt: skip
    lines.append("verified from chain data: OK" if r["ok"] else
                 "MISMATCH: " + "; ".join(r["problems"]))  # fmt: skip
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    """Add the listing commands to ``neuroledger market``."""
    app.command("list")(list_asset)
    app.command("listings")(listings)
    app.command("buy")(buy)
    app.command("release")(release)
    app.command("refund")(refund)
    app.command("withdraw")(withdraw)
    app.command("delist")(delist)
    app.command("royalties")(royalties)
