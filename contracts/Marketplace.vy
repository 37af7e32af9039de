# pragma version 0.4.3
"""
@title NeuroLedger marketplace: data and models sold with access grants and royalties along lineage
@custom:contract-name Marketplace
@license Apache-2.0
@notice An asset's owner lists it: a price in the payment token, the access it sells
        (download, compute-only for a purpose, or per-call over x402), how long a
        bought grant lasts, a licence and its terms. A buyer's payment and its grant in
        `AccessGrants` happen in one transaction: no grant without payment, no payment
        without grant. The payment stays in escrow for a hold period, during which the
        buyer gets it back if the grant stops holding (the owner revoked it, or the asset
        was revoked, deprecated or transferred). After the hold, anyone releases it: a
        share (`royaltyBps`, fixed per listing) goes to the asset's contributors and the
        rest to the seller, as balances each withdraws.
@dev Contributors are fixed when the asset is listed, from chain data only:
     - for the final model of a finished federated task, the task's participants,
       weighted by the rewards the task set by their contribution scores;
     - otherwise the asset's distinct ancestors up to `MAX_DEPTH` generations, one
       equal part each, paid to each ancestor's owner at release. The lister supplies
       each expanded node's parent list, checked against the asset registry's
       `parentsDigest`. Nodes are expanded breadth-first in the order their parents
       were listed; a generation that would pass `MAX_CONTRIBUTORS` is left out with
       all deeper ones, so the gas of a listing and of a release stays bounded.
     The marketplace issues grants as a `veriKey` delegate of the seller's identity
     (ERC-1056): it only ever calls `AccessGrants.grant` for assets their owner listed.
@custom:security The guardian may pause new listings and sales; delisting, release,
                 refund and withdrawal never check the pause, so no pause holds
                 anyone's money. The royalty share and the hold period change only
                 through the owner, the suite's timelock, and never for a listing
                 already made or a sale already paid.
"""


from ethereum.ercs import IERC20
from interfaces import IAssetRegistry
from interfaces import IDIDRegistry
from modules import governed
from modules import identity_actor

initializes: governed

exports: governed.__interface__


interface IAccessGrants:
    def grant(asset: bytes32, grantee: address, modes: uint8, purpose: bytes32, expiry: uint64): nonpayable
    def hasAccess(asset: bytes32, grantee: address, mode: uint8, purpose: bytes32) -> bool: view
    def grantOf(asset: bytes32, grantee: address, purpose: bytes32) -> (uint8, uint64, address): view


# @dev A federated task as `FederatedTask.tasks` returns it.
struct FederatedTaskView:
    owner: address
    modelAsset: bytes32
    codeAsset: bytes32
    rounds: uint32
    validators: uint32
    currentRound: uint32
    finalizedRound: uint32
    participants: uint32
    status: uint8
    pool: uint256
    stake: uint256
    deadline: uint256
    contributions: uint256


interface IFederatedTask:
    def tasks(taskId: uint256) -> FederatedTaskView: view
    def finalModelOf(taskId: uint256) -> bytes32: view
    def isParticipant(taskId: uint256, account: address) -> bool: view
    def rewardOf(taskId: uint256, account: address) -> uint256: view


# @dev Access modes a listing sells: grant bits of `AccessGrants` (1 download, 2 compute,
# 3 both), or per-call (4: paid per request over x402 at the listing's URI, never bought here).
MODE_PER_CALL: constant(uint8) = 4
_ALL_GRANT_MODES: constant(uint8) = 3

# @dev Sale states.
HELD: constant(uint8) = 1
RELEASED: constant(uint8) = 2
REFUNDED: constant(uint8) = 3

# @dev Bounds of the lineage walk: generations and contributors.
MAX_DEPTH: constant(uint256) = 3
MAX_CONTRIBUTORS: constant(uint256) = 32
MAX_EXPANDED: constant(uint256) = 33
MAX_PARENTS: constant(uint256) = 16
MAX_LICENSE: constant(uint256) = 128
MAX_URI: constant(uint256) = 256
_ADDRESS_MASK: constant(uint256) = 2**160 - 1
_U64_MASK: constant(uint256) = 2**64 - 1

# @dev Parameter bounds: royalty share (basis points), hold period, grant duration (seconds).
MAX_ROYALTY_BPS: constant(uint256) = 5000
MIN_HOLD: constant(uint256) = 60
MAX_HOLD: constant(uint256) = 30 * 86400
MIN_DURATION: constant(uint256) = 60
MAX_DURATION: constant(uint256) = 10 * 366 * 86400

# @dev The asset registry's "active" status and the federated task's "finished" status.
_ACTIVE: constant(uint8) = 1
_TASK_FINISHED: constant(uint8) = 2


# @dev One listing, as `getListing` returns it.
struct Listing:
    asset: bytes32
    seller: address
    price: uint256
    modes: uint8
    active: bool
    royaltyBps: uint16
    duration: uint64
    tenure: uint64
    purpose: bytes32
    task: uint256
    sales: uint256


# @dev One sale, as `getSale` returns it.
struct Sale:
    listing: uint256
    buyer: address
    grantee: address
    price: uint256
    expiry: uint64
    releaseAt: uint64
    status: uint8


# @dev The token prices are paid in.
paymentToken: public(immutable(address))

# @dev The suite contracts the marketplace reads and calls.
didRegistry: public(immutable(address))
assetRegistry: public(immutable(address))
accessGrants: public(immutable(address))
federatedTask: public(immutable(address))

# @dev Share of each sale paid to contributors, in basis points, for new listings.
royaltyBps: public(uint256)

# @dev How long a sale's payment stays in escrow, refundable if access stops holding.
holdSeconds: public(uint256)

# @dev Listings and sales made; ids start at 1.
listingCount: public(uint256)
saleCount: public(uint256)

# @dev Payments held in escrow, and balances owed (released, withdrawable).
heldTotal: public(uint256)
owed: public(HashMap[address, uint256])

# @dev A listing as stored, in five words: `packed` holds the seller (bits 0-159), the
# modes (160-167), active (168), the royalty share (176-191) and the tenure (192-255);
# `more` the duration (0-63), the sales count (64-127) and the task (128-255).
struct StoredListing:
    asset: bytes32
    price: uint256
    purpose: bytes32
    packed: uint256
    more: uint256


# @dev A sale as stored, in two words (its price is its listing's): `head` holds the buyer
# (bits 0-159), the state (160-167) and the release time (168-231); `tail` the grantee
# (0-159), the grant's expiry (160-223) and the listing (224-255).
struct StoredSale:
    head: uint256
    tail: uint256


_listings: HashMap[uint256, StoredListing]
_sales: HashMap[uint256, StoredSale]

# @dev listing => contributors: ancestor asset ids, or participant addresses (as
# bytes32) for a federated model; weights are stored only for the latter (else 1 each).
_contributors: HashMap[uint256, DynArray[bytes32, MAX_CONTRIBUTORS]]
_weights: HashMap[uint256, DynArray[uint256, MAX_CONTRIBUTORS]]


# @dev Emitted when an asset is listed, with its terms and its contributors.
event Listed:
    listingId: indexed(uint256)
    asset: indexed(bytes32)
    seller: indexed(address)
    price: uint256
    modes: uint8
    purpose: bytes32
    duration: uint64
    royaltyBps: uint16
    task: uint256
    license: String[MAX_LICENSE]
    uri: String[MAX_URI]
    contributors: DynArray[bytes32, MAX_CONTRIBUTORS]
    weights: DynArray[uint256, MAX_CONTRIBUTORS]
    sender: address


# @dev Emitted when a listing is withdrawn; its sales already made are untouched.
event Delisted:
    listingId: indexed(uint256)
    asset: indexed(bytes32)
    sender: address


# @dev Emitted when a buyer pays into escrow and the grant is issued.
event Sold:
    saleId: indexed(uint256)
    listingId: indexed(uint256)
    buyer: indexed(address)
    grantee: address
    price: uint256
    modes: uint8
    expiry: uint64
    releaseAt: uint64


# @dev Emitted when a held payment is released to the seller and the contributors.
event SaleReleased:
    saleId: indexed(uint256)
    listingId: indexed(uint256)
    seller: indexed(address)
    sellerAmount: uint256
    royalty: uint256


# @dev Emitted for each contributor credited by a release; `source` is the ancestor
# asset it is paid for (zero for a federated participant).
event RoyaltyPaid:
    saleId: indexed(uint256)
    payee: indexed(address)
    source: indexed(bytes32)
    amount: uint256


# @dev Emitted when a held payment returns to its buyer because the grant stopped holding.
event SaleRefunded:
    saleId: indexed(uint256)
    buyer: indexed(address)
    amount: uint256


# @dev Emitted when what an account is owed is paid out, to `to`.
event Withdrawn:
    account: indexed(address)
    to: indexed(address)
    amount: uint256


# @dev Emitted when the owner (the timelock) changes the royalty share or the hold period.
event ParametersChanged:
    royaltyBps: uint256
    holdSeconds: uint256


@deploy
def __init__(
    token: address,
    did_registry: address,
    asset_registry: address,
    access_grants: address,
    federated_task: address,
    owner_: address,
    guardian_: address,
):
    """
    @notice Binds the marketplace to the suite and sets governance.
    @param token The payment token (an ERC-20).
    @param did_registry The ERC-1056 DID registry.
    @param asset_registry The asset registry.
    @param access_grants The access grants contract.
    @param federated_task The federated task contract.
    @param owner_ The owner (the timelock); zero freezes the parameters.
    @param guardian_ The account that may pause new listings and sales; zero: nobody.
    """
    governed.__init__(owner_, guardian_)
    assert token != empty(address), "Marketplace: token is the zero address"
    assert did_registry != empty(address), "Marketplace: DID registry is the zero address"
    assert asset_registry != empty(address), "Marketplace: asset registry is the zero address"
    assert access_grants != empty(address), "Marketplace: access grants is the zero address"
    assert federated_task != empty(address), "Marketplace: federated task is the zero address"
    paymentToken = token
    didRegistry = did_registry
    assetRegistry = asset_registry
    accessGrants = access_grants
    federatedTask = federated_task
    self.royaltyBps = 1000
    self.holdSeconds = 86400
    log ParametersChanged(royaltyBps=1000, holdSeconds=86400)


@external
def list(
    seller: address,
    asset: bytes32,
    price: uint256,
    modes: uint8,
    purpose: bytes32,
    duration: uint64,
    license: String[MAX_LICENSE],
    uri: String[MAX_URI],
    task: uint256,
    lineage: DynArray[DynArray[bytes32, MAX_PARENTS], MAX_EXPANDED],
    participants: DynArray[address, MAX_CONTRIBUTORS],
) -> uint256:
    """
    @notice Lists an asset `seller` owns for sale.
    @dev The caller must act for `seller`; for grant modes, the marketplace must be a valid
         `veriKey` delegate of `seller`. With `task` zero, `lineage` holds the parent list
         of each node the walk expands (the asset first); with a task, `participants`
         names each of the task's participants once.
    @param seller The owner identity.
    @param asset The asset.
    @param price The price, in the payment token's units.
    @param modes 1 download, 2 compute, 3 both, 4 per-call (over x402 at `uri`).
    @param purpose The purpose the grant is for.
    @param duration How long a bought grant lasts, in seconds.
    @param license The licence (an SPDX expression or a URI).
    @param uri The listing's terms, or its x402 endpoint for per-call.
    @param task A finished federated task whose final model is `asset`, or zero.
    @param lineage Parent lists of the expanded nodes, breadth-first.
    @param participants The task's participants.
    @return The listing id.
    """
    governed._require_not_paused()
    self._check_actor(seller)
    owner: address = empty(address)
    status: uint8 = 0
    tenure: uint64 = 0
    owner, status, tenure = staticcall IAssetRegistry(assetRegistry).tenureOf(asset)
    assert status != 0, "Marketplace: unknown asset"
    assert owner == seller, "Marketplace: the seller does not own the asset"
    assert status == _ACTIVE, "Marketplace: the asset is not active"
    assert price > 0, "Marketplace: price is zero"
    assert modes == MODE_PER_CALL or (modes != 0 and modes & _ALL_GRANT_MODES == modes), (
        "Marketplace: modes must be 1, 2, 3 or 4"
    )
    assert purpose != empty(bytes32), "Marketplace: purpose is empty"
    if modes != MODE_PER_CALL:
        assert convert(duration, uint256) >= MIN_DURATION, "Marketplace: duration is under a minute"
        assert convert(duration, uint256) <= MAX_DURATION, "Marketplace: duration is over ten years"
        assert staticcall IDIDRegistry(didRegistry).validDelegate(seller, identity_actor.DELEGATE_TYPE, self), (
            "Marketplace: the marketplace is not a delegate of the seller"
        )
    contributors: DynArray[bytes32, MAX_CONTRIBUTORS] = []
    weights: DynArray[uint256, MAX_CONTRIBUTORS] = []
    if task == 0:
        assert len(participants) == 0, "Marketplace: participants without a task"
        contributors = self._ancestors(asset, lineage)
    else:
        assert len(lineage) == 0, "Marketplace: lineage with a task"
        contributors, weights = self._participants(task, asset, participants)
    listing_id: uint256 = self.listingCount + 1
    assert listing_id < 2**32 and task < 2**128, "Marketplace: listing or task number too large"
    self.listingCount = listing_id
    bps: uint256 = self.royaltyBps
    self._save_listing(listing_id, Listing(
        asset=asset,
        seller=seller,
        price=price,
        modes=modes,
        active=True,
        royaltyBps=convert(bps, uint16),
        duration=duration,
        tenure=tenure,
        purpose=purpose,
        task=task,
        sales=0,
    ))
    self._contributors[listing_id] = contributors
    if task != 0:
        self._weights[listing_id] = weights
    log Listed(
        listingId=listing_id,
        asset=asset,
        seller=seller,
        price=price,
        modes=modes,
        purpose=purpose,
        duration=duration,
        royaltyBps=convert(bps, uint16),
        task=task,
        license=license,
        uri=uri,
        contributors=contributors,
        weights=weights,
        sender=msg.sender,
    )
    return listing_id


@external
def delist(listingId: uint256):
    """
    @notice Withdraws a listing; sales already made are untouched.
    @param listingId The listing.
    """
    listing: Listing = self._listing(listingId)
    assert listing.active, "Marketplace: listing is not active"
    self._check_actor(listing.seller)
    listing.active = False
    self._save_listing(listingId, listing)
    log Delisted(listingId=listingId, asset=listing.asset, sender=msg.sender)


@external
@nonreentrant
def buy(listingId: uint256, grantee: address) -> uint256:
    """
    @notice Pays a listing's price into escrow and issues `grantee` its grant, at once.
    @dev The caller must have approved the price. A grant `grantee` already holds for
         the same purpose is never narrowed: modes add up, the later expiry wins.
    @param listingId The listing.
    @param grantee The identity that receives access (usually the buyer's).
    @return The sale id.
    """
    governed._require_not_paused()
    listing: Listing = self._listing(listingId)
    assert listing.active, "Marketplace: listing is not active"
    assert listing.modes != MODE_PER_CALL, "Marketplace: a per-call listing is paid per request over x402"
    assert grantee != empty(address), "Marketplace: grantee is the zero address"
    owner: address = empty(address)
    status: uint8 = 0
    tenure: uint64 = 0
    owner, status, tenure = staticcall IAssetRegistry(assetRegistry).tenureOf(listing.asset)
    assert owner == listing.seller and tenure == listing.tenure, "Marketplace: the asset changed hands since it was listed"
    assert status == _ACTIVE, "Marketplace: the asset is not active"
    assert extcall IERC20(paymentToken).transferFrom(msg.sender, self, listing.price, default_return_value=True), (
        "Marketplace: payment failed"
    )
    modes: uint8 = listing.modes
    expiry: uint64 = convert(block.timestamp, uint64) + listing.duration
    old_modes: uint8 = 0
    old_expiry: uint64 = 0
    grantor: address = empty(address)
    old_modes, old_expiry, grantor = staticcall IAccessGrants(accessGrants).grantOf(listing.asset, grantee, listing.purpose)
    if old_modes != 0 and staticcall IAccessGrants(accessGrants).hasAccess(listing.asset, grantee, old_modes, listing.purpose):
        modes = modes | old_modes
        expiry = max(expiry, old_expiry)
    extcall IAccessGrants(accessGrants).grant(listing.asset, grantee, modes, listing.purpose, expiry)
    sale_id: uint256 = self.saleCount + 1
    self.saleCount = sale_id
    release_at: uint64 = convert(block.timestamp + self.holdSeconds, uint64)
    self._sales[sale_id] = StoredSale(
        head=convert(msg.sender, uint256) | (convert(HELD, uint256) << 160) | (convert(release_at, uint256) << 168),
        tail=convert(grantee, uint256) | (convert(expiry, uint256) << 160) | (listingId << 224),
    )
    self.heldTotal += listing.price
    listing.sales += 1
    self._save_listing(listingId, listing)
    log Sold(
        saleId=sale_id,
        listingId=listingId,
        buyer=msg.sender,
        grantee=grantee,
        price=listing.price,
        modes=modes,
        expiry=expiry,
        releaseAt=release_at,
    )
    return sale_id


@external
def release(saleId: uint256):
    """
    @notice Releases a held payment once its hold period has passed: the royalty to the
            listing's contributors, the rest to the seller. Anyone may call it.
    @param saleId The sale.
    """
    sale: Sale = self._held(saleId)
    assert block.timestamp >= convert(sale.releaseAt, uint256), "Marketplace: the hold period has not passed"
    listing: Listing = self._load_listing(sale.listing)
    self._set_status(saleId, RELEASED)
    self.heldTotal -= sale.price
    payees: DynArray[address, MAX_CONTRIBUTORS] = []
    amounts: DynArray[uint256, MAX_CONTRIBUTORS] = []
    payees, amounts = self._split(sale.listing, sale.price)
    royalty: uint256 = 0
    contributors: DynArray[bytes32, MAX_CONTRIBUTORS] = self._contributors[sale.listing]
    for i: uint256 in range(len(payees), bound=MAX_CONTRIBUTORS):
        if amounts[i] == 0:
            continue
        self.owed[payees[i]] += amounts[i]
        royalty += amounts[i]
        source: bytes32 = empty(bytes32) if listing.task != 0 else contributors[i]
        log RoyaltyPaid(saleId=saleId, payee=payees[i], source=source, amount=amounts[i])
    self.owed[listing.seller] += sale.price - royalty
    log SaleReleased(
        saleId=saleId,
        listingId=sale.listing,
        seller=listing.seller,
        sellerAmount=sale.price - royalty,
        royalty=royalty,
    )


@external
@nonreentrant
def refund(saleId: uint256):
    """
    @notice Returns a held payment to its buyer when, within the hold period, the grant
            it bought stopped holding before its expiry. Anyone may call it.
    @param saleId The sale.
    """
    sale: Sale = self._held(saleId)
    assert block.timestamp < convert(sale.releaseAt, uint256), "Marketplace: the hold period has passed"
    listing: Listing = self._load_listing(sale.listing)
    holds: bool = staticcall IAccessGrants(accessGrants).hasAccess(listing.asset, sale.grantee, listing.modes, listing.purpose)
    assert block.timestamp < convert(sale.expiry, uint256) and not holds, "Marketplace: the buyer's access still holds"
    self._set_status(saleId, REFUNDED)
    self.heldTotal -= sale.price
    log SaleRefunded(saleId=saleId, buyer=sale.buyer, amount=sale.price)
    assert extcall IERC20(paymentToken).transfer(sale.buyer, sale.price, default_return_value=True), "Marketplace: refund failed"


@external
@nonreentrant
def withdraw(account: address):
    """
    @notice Pays the caller everything `account` is owed.
    @dev `account` is the caller, or an identity the caller acts for (its owner or a
         `veriKey` delegate): an identity whose key changed still gets its proceeds.
    @param account The account or identity owed.
    """
    if account != msg.sender:
        self._check_actor(account)
    amount: uint256 = self.owed[account]
    assert amount > 0, "Marketplace: nothing owed"
    self.owed[account] = 0
    log Withdrawn(account=account, to=msg.sender, amount=amount)
    assert extcall IERC20(paymentToken).transfer(msg.sender, amount, default_return_value=True), "Marketplace: payment failed"


@external
def setParameters(royalty_bps: uint256, hold_seconds: uint256):
    """
    @notice Sets the royalty share of new listings and the hold period of new sales (owner).
    @param royalty_bps Basis points of each sale paid to contributors (at most 5,000).
    @param hold_seconds Seconds a payment stays refundable (1 minute to 30 days).
    """
    governed._check_owner()
    assert royalty_bps <= MAX_ROYALTY_BPS, "Marketplace: royalty over 50%"
    assert hold_seconds >= MIN_HOLD and hold_seconds <= MAX_HOLD, "Marketplace: hold period out of range"
    self.royaltyBps = royalty_bps
    self.holdSeconds = hold_seconds
    log ParametersChanged(royaltyBps=royalty_bps, holdSeconds=hold_seconds)


@external
@view
def getListing(listingId: uint256) -> Listing:
    """
    @notice Returns a listing (all zero when unknown).
    @param listingId The listing.
    @return The listing.
    """
    return self._load_listing(listingId)


@external
@view
def getSale(saleId: uint256) -> Sale:
    """
    @notice Returns a sale (all zero when unknown).
    @param saleId The sale.
    @return The sale.
    """
    return self._load_sale(saleId)


@external
@view
def contributorsOf(listingId: uint256) -> (DynArray[bytes32, MAX_CONTRIBUTORS], DynArray[uint256, MAX_CONTRIBUTORS]):
    """
    @notice Returns a listing's contributors and weights (empty weights: one part each).
    @param listingId The listing.
    @return The contributors (asset ids, or participants as bytes32) and their weights.
    """
    return self._contributors[listingId], self._weights[listingId]


@external
@view
def splitOf(listingId: uint256, amount: uint256) -> (DynArray[address, MAX_CONTRIBUTORS], DynArray[uint256, MAX_CONTRIBUTORS]):
    """
    @notice Returns who a release of `amount` for the listing would credit now, and how much,
            in contributor order; the seller gets the rest.
    @param listingId The listing.
    @param amount A sale price.
    @return The payees and their amounts.
    """
    self._listing(listingId)
    return self._split(listingId, amount)


@internal
@view
def _split(listingId: uint256, amount: uint256) -> (DynArray[address, MAX_CONTRIBUTORS], DynArray[uint256, MAX_CONTRIBUTORS]):
    listing: Listing = self._load_listing(listingId)
    contributors: DynArray[bytes32, MAX_CONTRIBUTORS] = self._contributors[listingId]
    weights: DynArray[uint256, MAX_CONTRIBUTORS] = self._weights[listingId]
    royalty: uint256 = amount * convert(listing.royaltyBps, uint256) // 10000
    total: uint256 = len(contributors)
    if listing.task != 0:
        total = 0
        for w: uint256 in weights:
            total += w
    payees: DynArray[address, MAX_CONTRIBUTORS] = []
    amounts: DynArray[uint256, MAX_CONTRIBUTORS] = []
    for i: uint256 in range(len(contributors), bound=MAX_CONTRIBUTORS):
        payee: address = empty(address)
        weight: uint256 = 1
        if listing.task != 0:
            payee = convert(convert(contributors[i], uint256), address)
            weight = weights[i]
        else:
            kind: uint8 = 0
            status: uint8 = 0
            payee, kind, status = staticcall IAssetRegistry(assetRegistry).assetOf(contributors[i])
        payees.append(payee)
        amounts.append(royalty * weight // total)
    return payees, amounts


@internal
@view
def _ancestors(asset: bytes32, lineage: DynArray[DynArray[bytes32, MAX_PARENTS], MAX_EXPANDED]) -> DynArray[bytes32, MAX_CONTRIBUTORS]:
    found: DynArray[bytes32, MAX_CONTRIBUTORS] = []
    level: DynArray[bytes32, MAX_CONTRIBUTORS] = [asset]
    used: uint256 = 0
    for depth: uint256 in range(MAX_DEPTH):
        following: DynArray[bytes32, MAX_CONTRIBUTORS] = []
        full: bool = False
        for node: bytes32 in level:
            assert used < len(lineage), "Marketplace: lineage is incomplete"
            parents: DynArray[bytes32, MAX_PARENTS] = lineage[used]
            used += 1
            digest: bytes32 = empty(bytes32)
            if len(parents) > 0:
                digest = keccak256(abi_encode(parents))
            assert digest == staticcall IAssetRegistry(assetRegistry).parentsDigest(node), (
                "Marketplace: lineage does not match the asset registry"
            )
            for parent: bytes32 in parents:
                if parent == asset or parent in found or parent in following:
                    continue
                if len(found) + len(following) == MAX_CONTRIBUTORS:
                    full = True
                    break
                following.append(parent)
            if full:
                break
        if full or len(following) == 0:
            break
        for parent: bytes32 in following:
            found.append(parent)
        level = following
    assert used == len(lineage), "Marketplace: lineage has extra entries"
    return found


@internal
@view
def _participants(task: uint256, asset: bytes32, participants: DynArray[address, MAX_CONTRIBUTORS]) -> (DynArray[bytes32, MAX_CONTRIBUTORS], DynArray[uint256, MAX_CONTRIBUTORS]):
    info: FederatedTaskView = staticcall IFederatedTask(federatedTask).tasks(task)
    assert info.status == _TASK_FINISHED, "Marketplace: the task has not finished"
    assert staticcall IFederatedTask(federatedTask).finalModelOf(task) == asset, "Marketplace: the asset is not the task's final model"
    assert convert(info.participants, uint256) <= MAX_CONTRIBUTORS, "Marketplace: the task has more than 32 participants"
    assert len(participants) == convert(info.participants, uint256), "Marketplace: name every participant of the task once"
    contributors: DynArray[bytes32, MAX_CONTRIBUTORS] = []
    weights: DynArray[uint256, MAX_CONTRIBUTORS] = []
    total: uint256 = 0
    for account: address in participants:
        assert staticcall IFederatedTask(federatedTask).isParticipant(task, account), "Marketplace: not a participant of the task"
        word: bytes32 = convert(convert(account, uint256), bytes32)
        assert word not in contributors, "Marketplace: participant named twice"
        contributors.append(word)
        weight: uint256 = staticcall IFederatedTask(federatedTask).rewardOf(task, account)
        weights.append(weight)
        total += weight
    assert total > 0, "Marketplace: the task set no rewards"
    return contributors, weights


@internal
@view
def _listing(listingId: uint256) -> Listing:
    listing: Listing = self._load_listing(listingId)
    assert listing.seller != empty(address), "Marketplace: unknown listing"
    return listing


@internal
@view
def _held(saleId: uint256) -> Sale:
    sale: Sale = self._load_sale(saleId)
    assert sale.status != 0, "Marketplace: unknown sale"
    assert sale.status == HELD, "Marketplace: sale is settled"
    return sale


@internal
@view
def _check_actor(identity: address):
    assert identity_actor._may_act(didRegistry, identity, msg.sender), (
        "Marketplace: caller is not the identity owner or a delegate"
    )


@internal
def _save_listing(listingId: uint256, listing: Listing):
    self._listings[listingId] = StoredListing(
        asset=listing.asset,
        price=listing.price,
        purpose=listing.purpose,
        packed=(
            convert(listing.seller, uint256)
            | (convert(listing.modes, uint256) << 160)
            | (convert(listing.active, uint256) << 168)
            | (convert(listing.royaltyBps, uint256) << 176)
            | (convert(listing.tenure, uint256) << 192)
        ),
        more=convert(listing.duration, uint256) | (listing.sales << 64) | (listing.task << 128),
    )


@internal
@view
def _load_listing(listingId: uint256) -> Listing:
    stored: StoredListing = self._listings[listingId]
    return Listing(
        asset=stored.asset,
        seller=convert(stored.packed & _ADDRESS_MASK, address),
        price=stored.price,
        modes=convert((stored.packed >> 160) & 255, uint8),
        active=(stored.packed >> 168) & 1 == 1,
        royaltyBps=convert((stored.packed >> 176) & 65535, uint16),
        duration=convert(stored.more & _U64_MASK, uint64),
        tenure=convert(stored.packed >> 192, uint64),
        purpose=stored.purpose,
        task=stored.more >> 128,
        sales=(stored.more >> 64) & _U64_MASK,
    )


@internal
@view
def _load_sale(saleId: uint256) -> Sale:
    stored: StoredSale = self._sales[saleId]
    listing_id: uint256 = stored.tail >> 224
    return Sale(
        listing=listing_id,
        buyer=convert(stored.head & _ADDRESS_MASK, address),
        grantee=convert(stored.tail & _ADDRESS_MASK, address),
        price=self._listings[listing_id].price,
        expiry=convert((stored.tail >> 160) & _U64_MASK, uint64),
        releaseAt=convert((stored.head >> 168) & _U64_MASK, uint64),
        status=convert((stored.head >> 160) & 255, uint8),
    )


@internal
def _set_status(saleId: uint256, status: uint8):
    head: uint256 = self._sales[saleId].head
    self._sales[saleId].head = (head & ~(255 << 160)) | (convert(status, uint256) << 160)
