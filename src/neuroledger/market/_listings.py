"""Data and models for sale: listings, purchases that grant access, and royalties.

A listing offers an asset at a price for one access mode (``download``, ``compute``,
``both``, or ``per-call`` over x402). :meth:`Listings.buy` pays into the marketplace's
escrow and issues the buyer's grant in ``AccessGrants`` in the same transaction. After the
hold period, :meth:`Listings.release` credits the seller and the contributors along the
asset's lineage; within it, :meth:`Listings.refund` returns the payment if the grant
stopped holding. :meth:`Listings.royalties` re-derives a listing's contributors and every
release's split from chain data alone and says whether the chain's figures agree.

On a chain (see docs/market.md)::

    market = Listings(chain, keystore, provenance)
    listing = market.list_asset(model_id, by="consortium", price=5_000_000, mode="compute",
                          purpose="research", duration=30 * 86400, task=task_id)
    sale = market.buy(listing.listing_id, by="lab")
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from eth_abi.abi import encode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from neuroledger.chain import Chain, Receipt, contract_call
from neuroledger.errors import MarketError
from neuroledger.identity import Keystore
from neuroledger.market._credits import Credits, format_amount
from neuroledger.market._lineage_walk import MAX_CONTRIBUTORS, walk_lineage
from neuroledger.provenance import Provenance

__all__ = ["MODES", "ListingView", "Listings", "SaleView"]

#: Access modes a listing sells, as the contract numbers them.
MODES = {"download": 1, "compute": 2, "both": 3, "per-call": 4}
_MODE_NAMES = {v: k for k, v in MODES.items()}
_SALE_STATES = {1: "held", 2: "released", 3: "refunded"}
_VERIKEY = b"veriKey".ljust(32, b"\0")
#: How long the marketplace stays a delegate of a seller after each listing.
DELEGATION_SECONDS = 366 * 86400
_LISTED = "Listed(uint256,bytes32,address,uint256,uint8,bytes32,uint64,uint16,uint256,string,string,bytes32[],uint256[],address)"
_SOLD = "Sold(uint256,uint256,address,address,uint256,uint8,uint64,uint64)"
_ZERO32 = b"\0" * 32


def purpose_bytes(purpose: str) -> bytes:
    """A purpose name as the contracts store it: ASCII, left-aligned in 32 bytes."""
    raw = purpose.encode()
    if not purpose or len(raw) > 32 or not purpose.isascii() or not purpose.isprintable():
        raise MarketError(f"purpose {purpose!r} must be 1 to 32 printable ASCII characters")
    return raw.ljust(32, b"\0")


def _purpose_text(raw: bytes) -> str:
    return bytes(raw).rstrip(b"\0").decode("ascii", "replace")


def _hex(raw: bytes) -> str:
    return "0x" + bytes(raw).hex()


@dataclass(frozen=True)
class ListingView:
    """A listing as the chain holds it, with its terms from the ``Listed`` event."""

    listing_id: int
    asset: str
    seller: str
    price: int
    mode: str
    active: bool
    royalty_bps: int
    duration: int
    purpose: str
    task: int
    sales: int
    license: str
    uri: str
    contributors: list[str] = field(default_factory=list)
    weights: list[int] = field(default_factory=list)
    tx: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SaleView:
    """A sale: who paid, for whom, until when, and whether its escrow is settled."""

    sale_id: int
    listing_id: int
    buyer: str
    grantee: str
    price: int
    expiry: int
    release_at: int
    status: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class Listings:
    """The suite's marketplace: list, buy, release, refund, withdraw, and check royalties."""

    def __init__(self, chain: Chain, keystore: Keystore, provenance: Provenance) -> None:
        self.chain = chain
        self.keystore = keystore
        self.prov = provenance
        self.contract = chain.contract("Marketplace")
        self.credits = Credits(chain, keystore, token=self.contract.functions.paymentToken().call())
        self.start_block = int(chain.deployment().contracts["Marketplace"].get("block", 0))

    # -- helpers ----------------------------------------------------------------------
    def _send(self, by: str, fn: str, args: list[Any], label: str, contract: Any = None) -> Receipt:
        account = self.keystore.owner_account(by)
        call = contract_call(contract or self.contract, fn, args, label=label)
        return self.chain.sender(account).send(call)

    def _identity(self, who: str) -> str:
        if who.startswith("0x") and len(who) == 42:
            return to_checksum_address(who)
        return to_checksum_address(self.keystore.get(who).identity)

    def now(self) -> int:
        return int(self.chain.w3.eth.get_block("latest")["timestamp"])

    def parents_of(self, asset: str) -> list[str]:
        """An asset's registered parents, in order, from the synced lineage index."""
        record = self.prov.index.get(asset.lower().removeprefix("0x"))
        if record is None:
            raise MarketError(f"asset {asset} is not in the lineage index; is it registered?")
        return ["0x" + p.lower().removeprefix("0x") for p in record.parents]

    # -- the seller -------------------------------------------------------------------
    def list_asset(self, asset_ref: str, *, by: str, price: int, mode: str, purpose: str,
             duration: int, license: str = "", uri: str = "",
             task: int | None = None) -> ListingView:  # fmt: skip
        """List an asset ``by`` owns. The marketplace becomes a delegate of ``by``'s identity
        (it issues buyers' grants); a federated model names its ``task``."""
        if mode not in MODES:
            raise MarketError(f"mode {mode!r} is not one of {', '.join(MODES)}")
        if price <= 0:
            raise MarketError("the price must be positive: give --price above 0")
        if mode != "per-call" and not 60 <= duration <= 10 * 366 * 86400:
            raise MarketError("the grant duration must be 1 minute to 10 years: give --duration")
        if len(license.encode()) > 128 or len(uri.encode()) > 256:
            raise MarketError("the licence is over 128 bytes or the URI over 256; shorten them")
        raw = self.prov.resolve(asset_ref)
        record = self.prov.index.get(raw)
        asset = "0x" + raw
        seller = self._identity(by)
        if record is None or record.owner.lower() != seller.lower():
            owner = record.owner if record else "nobody"
            raise MarketError(f"{by} does not own asset {asset[:18]}… (its owner is {owner}); "
                              "only the owner can list it")  # fmt: skip
        if record.status != "active":
            raise MarketError(
                f"asset {asset[:18]}… is {record.status}; only an active asset can be listed"
            )
        lineage: list[list[bytes]] = []
        participants: list[str] = []
        if task:
            participants = self.participants(task)
        else:
            walk = walk_lineage(asset, self.parents_of)
            lineage = [[bytes.fromhex(p[2:]) for p in ps] for ps in walk.lists]
        if mode != "per-call":
            self._delegate(by, seller)
        args = [seller, bytes.fromhex(asset[2:]), price, MODES[mode], purpose_bytes(purpose),
                duration if mode != "per-call" else 0, license, uri, task or 0, lineage,
                participants]  # fmt: skip
        receipt = self._send(by, "list", args, f"list asset {asset[:10]}")
        listing_id = receipt.first_indexed(_LISTED)
        if listing_id is None:
            raise MarketError(f"list was mined in {receipt.tx_hash} but logged no listing")
        return self.listing(listing_id)

    def _delegate(self, by: str, seller: str) -> None:
        did = self.chain.contract("DIDRegistry")
        market = self.contract.address
        if not did.functions.validDelegate(seller, _VERIKEY, market).call():
            self._send(by, "addDelegate", [seller, _VERIKEY, market, DELEGATION_SECONDS],
                       "make the marketplace a delegate", contract=did)  # fmt: skip

    def participants(self, task: int) -> list[str]:
        """A federated task's participants, in the order they joined (from its events)."""
        fl = self.chain.contract("FederatedTask")
        start = int(self.chain.deployment().contracts["FederatedTask"].get("block", 0))
        events = fl.events.ParticipantJoined().get_logs(
            from_block=start, argument_filters={"taskId": task}
        )
        joined = [str(to_checksum_address(e["args"]["participant"])) for e in events]
        if not joined:
            raise MarketError(f"federated task {task} has no participants; is it the right task?")
        if len(joined) > MAX_CONTRIBUTORS:
            raise MarketError(f"task {task} has {len(joined)} participants; a listing pays at "
                              f"most {MAX_CONTRIBUTORS}: list the model without --task")  # fmt: skip
        return joined

    def delist(self, listing_id: int, *, by: str) -> Receipt:
        """Withdraw a listing (its seller); sales already made stand."""
        view = self.listing(listing_id)
        if not view.active:
            raise MarketError(f"listing {listing_id} is already withdrawn")
        return self._send(by, "delist", [listing_id], f"delist {listing_id}")

    # -- the buyer --------------------------------------------------------------------
    def buy(self, listing_id: int, *, by: str, grantee: str | None = None) -> SaleView:
        """Pay listing ``listing_id``'s price into escrow; ``grantee`` (default: ``by``'s
        identity) gets the grant in the same transaction."""
        view = self.listing(listing_id)
        if not view.active:
            raise MarketError(f"listing {listing_id} was withdrawn by its seller; "
                              "`neuroledger market listings` shows what is for sale")  # fmt: skip
        if view.mode == "per-call":
            raise MarketError(f"listing {listing_id} is sold per call over x402: pay each request "
                              f"with `neuroledger market pay {view.uri}`")  # fmt: skip
        # one registry read, not a sync of the whole lineage index on every purchase
        registry = self.chain.contract("AssetRegistry")
        status = int(registry.functions.assetOf(bytes.fromhex(view.asset[2:])).call()[2])
        if status != 1:
            state = {2: "deprecated", 3: "revoked"}.get(status, f"in state {status}")
            raise MarketError(f"asset {view.asset[:18]}… of listing {listing_id} is "
                              f"{state}; it can no longer be bought")  # fmt: skip
        payer = self.credits.address_of(by)
        held = self.credits.balance(payer)
        if held < view.price:
            d = self.credits.decimals
            raise MarketError(f"{by} holds {format_amount(held, d)}, less than the price "
                              f"{format_amount(view.price, d)}; get credits first")  # fmt: skip
        to = self._identity(grantee or by)
        self._send(by, "approve", [self.contract.address, view.price], "approve marketplace",
                   contract=self.credits.contract)  # fmt: skip
        receipt = self._send(by, "buy", [listing_id, to], f"buy listing {listing_id}")
        sale_id = receipt.first_indexed(_SOLD)
        if sale_id is None:
            raise MarketError(f"buy was mined in {receipt.tx_hash} but logged no sale")
        return self.sale(sale_id)

    # -- settlement -------------------------------------------------------------------
    def release(self, sale_id: int, *, by: str) -> SaleView:
        """Pay out a sale after its hold period (anyone)."""
        sale = self.sale(sale_id)
        # The hold is over by the chain's clock or, on an idle chain whose last block is
        # old, by the wall clock: the release's own block will be stamped now.
        if sale.status == "held" and max(self.now(), int(time.time())) < sale.release_at:
            raise MarketError(f"sale {sale_id} is held until {sale.release_at} (unix time); "
                              "release it after that")  # fmt: skip
        self._send(by, "release", [sale_id], f"release sale {sale_id}")
        return self.sale(sale_id)

    def refund(self, sale_id: int, *, by: str) -> SaleView:
        """Return a held sale's payment to its buyer when its grant stopped holding (anyone)."""
        self._send(by, "refund", [sale_id], f"refund sale {sale_id}")
        return self.sale(sale_id)

    def owed(self, who: str) -> int:
        """What the marketplace owes ``who`` (an identity name or an address)."""
        return int(self.contract.functions.owed(self._identity(who)).call())

    def withdraw(self, *, by: str, account: str | None = None) -> int:
        """Withdraw what ``account`` (default: ``by``'s identity) is owed, to ``by``'s key."""
        target = self._identity(account or by)
        amount = int(self.contract.functions.owed(target).call())
        if amount == 0:
            raise MarketError(f"the marketplace owes {account or by} nothing")
        self._send(by, "withdraw", [target], "withdraw sales")
        return amount

    # -- reading ----------------------------------------------------------------------
    def _listed(self, listing_id: int) -> dict[str, Any]:
        logs = self.contract.events.Listed().get_logs(
            from_block=self.start_block, argument_filters={"listingId": listing_id}
        )
        if not logs:
            raise MarketError(f"no listing {listing_id}; `neuroledger market listings` shows them")
        return {"args": logs[-1]["args"], "tx": _hex(logs[-1]["transactionHash"])}

    def listing(self, listing_id: int) -> ListingView:
        """A listing: its state and its terms."""
        got = self.contract.functions.getListing(listing_id).call()
        asset, seller, price, modes, active, bps, duration, _tenure, purpose, task, sales = got
        if int(seller, 16) == 0:
            raise MarketError(f"no listing {listing_id}; `neuroledger market listings` shows them")
        listed = self._listed(listing_id)
        args = listed["args"]
        return ListingView(listing_id=listing_id, asset=_hex(asset), seller=seller, price=price,
                           mode=_MODE_NAMES.get(modes, str(modes)), active=active,
                           royalty_bps=bps, duration=duration, purpose=_purpose_text(purpose),
                           task=task, sales=sales, license=args["license"], uri=args["uri"],
                           contributors=[_hex(c) for c in args["contributors"]],
                           weights=[int(w) for w in args["weights"]], tx=listed["tx"])  # fmt: skip

    def listings(self, *, asset: str | None = None, seller: str | None = None,
                 include_inactive: bool = False) -> list[ListingView]:  # fmt: skip
        """Listings, newest first, optionally of one asset or seller."""
        count = int(self.contract.functions.listingCount().call())
        want_seller = self._identity(seller).lower() if seller else None
        out = []
        for listing_id in range(count, 0, -1):
            view = self.listing(listing_id)
            if (view.active or include_inactive) and (asset is None or view.asset == asset.lower()) \
                    and (want_seller is None or view.seller.lower() == want_seller):  # fmt: skip
                out.append(view)
        return out

    def sale(self, sale_id: int) -> SaleView:
        """A sale as the chain holds it."""
        listing_id, buyer, grantee, price, expiry, release_at, status = (
            self.contract.functions.getSale(sale_id).call()
        )
        if status == 0:
            raise MarketError(f"no sale {sale_id}")
        return SaleView(sale_id=sale_id, listing_id=listing_id, buyer=buyer, grantee=grantee,
                        price=price, expiry=expiry, release_at=release_at,
                        status=_SALE_STATES[status])  # fmt: skip

    def sales(self, listing_id: int) -> list[SaleView]:
        """Every sale of a listing, oldest first."""
        logs = self.contract.events.Sold().get_logs(
            from_block=self.start_block, argument_filters={"listingId": listing_id}
        )
        return [self.sale(int(e["args"]["saleId"])) for e in logs]

    # -- royalties, from chain data alone -----------------------------------------------
    def royalties(self, listing_id: int) -> dict[str, Any]:
        """Re-derive a listing's contributors from the asset registry (each parent list
        checked against its on-chain digest) or the federated task, compute the split of
        its price, and check every release's ``RoyaltyPaid`` amounts against it."""
        from neuroledger.market._royalty_check import verify_royalties

        return verify_royalties(self, self.listing(listing_id))


def parents_digest(parents: list[str]) -> bytes:
    """``keccak256(abi.encode(parents))`` as the asset registry stores it (zero: none)."""
    if not parents:
        return _ZERO32
    return keccak(encode(["bytes32[]"], [[bytes.fromhex(p[2:]) for p in parents]]))
