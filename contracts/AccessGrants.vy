# pragma version 0.4.3
"""
@title NeuroLedger access grants (owner-granted, revocable access to private assets)
@custom:contract-name AccessGrants
@license Apache-2.0
@notice The owner of a registered asset grants an identity access to it for a
        purpose, in one or both modes (download: may fetch the key wrap and
        the ciphertext; compute: may only run approved algorithms on it at the
        owner's side), until an expiry. The owner revokes grants and approves
        algorithms (code assets, by asset id) per dataset. Data subjects (for
        example patients) withdraw from, or give again, consent to a purpose;
        owners exclude withdrawn subjects' records from use for that purpose.
        Every change is an event.
@dev Owners and subjects are `did:ethr` identities of the DID registry: the
     identity's owner or a valid `veriKey` delegate acts for it. A grant
     remembers the owner who gave it and the asset's tenure (how many times
     it had changed hands), and lapses for good when the asset passes to
     another owner (even if it comes back), is revoked, or expires. An
     algorithm approval likewise holds only in the tenure it was given in.
@custom:security The gateway reads `hasAccess` at request time (or from a
                 cache bounded in blocks), so revocation takes effect at once
                 on chain and within that bound at the gateway. The guardian
                 may pause new grants, the only way to new access; a pause
                 never blocks a revocation, leaves existing grants as they
                 are, and never touches algorithm approvals (which give no
                 access without a compute grant) or consent (the data
                 subject's to give or withdraw, never the guardian's). The gateway's signed requests
                 use this contract's EIP-712 domain, read from
                 `eip712Domain()` (EIP-5267).
"""


from interfaces import IAssetRegistry
from modules import governed
from modules import identity_actor
from snekmate.utils import eip712_domain_separator

initializes: governed
initializes: eip712_domain_separator

exports: (
    governed.__interface__,
    eip712_domain_separator.eip712Domain,
)


# @dev Bit positions and widths of a packed grant.
_MODES_SHIFT: constant(uint256) = 160
_EXPIRY_SHIFT: constant(uint256) = 168
_TENURE_SHIFT: constant(uint256) = 216
_ADDRESS_MASK: constant(uint256) = 2**160 - 1
_EXPIRY_LIMIT: constant(uint256) = 2**48
_TENURE_LIMIT: constant(uint256) = 2**40

# @dev Access modes, as bits: a grant may hold both.
MODE_DOWNLOAD: constant(uint8) = 1
MODE_COMPUTE: constant(uint8) = 2
_ALL_MODES: constant(uint8) = 3

# @dev The asset registry's "active" status.
_ACTIVE: constant(uint8) = 1

# @dev The EIP-712 domain of the gateway's signed access requests: clients read it
# with EIP-5267 `eip712Domain()` (chain id and this contract's address included).
DOMAIN_NAME: constant(String[50]) = "NeuroLedger Gateway"
DOMAIN_VERSION: constant(String[20]) = "1"


# @dev One grant (its purpose is its key): the expiry (unix seconds), the modes, the
# owner identity that gave it and that owner's tenure of the asset. Stored packed in
# one word: grantor in bits 0-159, modes in 160-167, expiry in 168-215, tenure in 216-255.
struct Grant:
    expiry: uint64
    modes: uint8
    grantor: address
    tenure: uint64


# @dev The DID registry whose identities own assets and consent.
didRegistry: public(immutable(address))

# @dev The asset registry that says who owns an asset.
assetRegistry: public(immutable(address))

# @dev asset => grantee identity => purpose => grant (modes zero when none). Grants
# for different purposes coexist; a new grant replaces only the one of its purpose.
_grants: HashMap[bytes32, HashMap[address, HashMap[bytes32, uint256]]]

# @dev dataset => algorithm (code asset id) => the dataset's tenure plus one when
# approved (zero: not approved); an approval of an earlier tenure no longer holds.
_approved: HashMap[bytes32, HashMap[bytes32, uint256]]

# @dev subject identity => purpose => consent withdrawn.
_withdrawn: HashMap[address, HashMap[bytes32, bool]]


# @dev Emitted when an owner grants access for a purpose; `replaced` is true when it
# replaces an unexpired grant of the same owner for the same purpose.
event AccessGranted:
    asset: indexed(bytes32)
    grantee: indexed(address)
    owner: indexed(address)
    modes: uint8
    purpose: bytes32
    expiry: uint64
    replaced: bool
    sender: address


# @dev Emitted when an owner revokes the grant for one purpose.
event AccessRevoked:
    asset: indexed(bytes32)
    grantee: indexed(address)
    owner: indexed(address)
    purpose: bytes32
    sender: address


# @dev Emitted when an owner approves an algorithm for a dataset, or withdraws the approval.
event AlgorithmApproval:
    dataset: indexed(bytes32)
    algorithm: indexed(bytes32)
    owner: indexed(address)
    approved: bool
    sender: address


# @dev Emitted when a data subject gives or withdraws consent to a purpose.
event ConsentChanged:
    subject: indexed(address)
    purpose: indexed(bytes32)
    given: bool
    sender: address


@deploy
def __init__(did_registry: address, asset_registry: address, owner_: address, guardian_: address):
    """
    @notice Binds the grants to the DID registry and the asset registry, and sets governance.
    @param did_registry Address of the ERC-1056 DID registry.
    @param asset_registry Address of the NeuroLedger asset registry.
    @param owner_ The owner (the timelock); zero freezes the guardian.
    @param guardian_ The account that may pause new grants; zero: nobody.
    """
    governed.__init__(owner_, guardian_)
    eip712_domain_separator.__init__(DOMAIN_NAME, DOMAIN_VERSION)
    assert did_registry != empty(address), "AccessGrants: DID registry is the zero address"
    assert asset_registry != empty(address), "AccessGrants: asset registry is the zero address"
    didRegistry = did_registry
    assetRegistry = asset_registry


@external
def grant(asset: bytes32, grantee: address, modes: uint8, purpose: bytes32, expiry: uint64):
    """
    @notice Grants `grantee` access to an active asset for `purpose`, replacing any earlier
            grant for the same purpose; grants for other purposes are left as they are.
    @dev The caller must act for the asset's owner identity.
    @param asset The asset (its content digest).
    @param grantee The identity that receives access.
    @param modes 1 download, 2 compute, 3 both.
    @param purpose What the access is for (a short ASCII name, left-aligned).
    @param expiry Unix time after which the grant no longer holds.
    """
    governed._require_not_paused()
    owner: address = empty(address)
    tenure: uint64 = 0
    owner, tenure = self._active_owner(asset)
    self._check_actor(owner)
    assert grantee != empty(address), "AccessGrants: grantee is the zero address"
    assert modes != 0 and modes & _ALL_MODES == modes, "AccessGrants: modes must be 1, 2 or 3"
    assert purpose != empty(bytes32), "AccessGrants: purpose is empty"
    assert convert(expiry, uint256) > block.timestamp, "AccessGrants: expiry is in the past"
    assert convert(expiry, uint256) < _EXPIRY_LIMIT, "AccessGrants: expiry is too far (2**48 s or later)"
    assert convert(tenure, uint256) < _TENURE_LIMIT, "AccessGrants: asset changed hands too often"
    old: Grant = self._unpack(self._grants[asset][grantee][purpose])
    replaced: bool = self._holds(old, owner, tenure)
    self._grants[asset][grantee][purpose] = (
        convert(owner, uint256)
        | (convert(modes, uint256) << _MODES_SHIFT)
        | (convert(expiry, uint256) << _EXPIRY_SHIFT)
        | (convert(tenure, uint256) << _TENURE_SHIFT)
    )
    log AccessGranted(
        asset=asset,
        grantee=grantee,
        owner=owner,
        modes=modes,
        purpose=purpose,
        expiry=expiry,
        replaced=replaced,
        sender=msg.sender,
    )


@external
def revoke(asset: bytes32, grantee: address, purpose: bytes32):
    """
    @notice Revokes the grant of `grantee` on `asset` for `purpose`; it stops holding at
            once. Grants for other purposes are left as they are.
    @dev The caller must act for the asset's current owner identity.
    @param asset The asset.
    @param grantee The identity whose grant ends.
    @param purpose The purpose of the grant that ends.
    """
    owner: address = self._owner(asset)
    self._check_actor(owner)
    assert self._grants[asset][grantee][purpose] != 0, "AccessGrants: no grant to revoke"
    self._grants[asset][grantee][purpose] = 0
    log AccessRevoked(
        asset=asset, grantee=grantee, owner=owner, purpose=purpose, sender=msg.sender
    )


@external
def approveAlgorithm(dataset: bytes32, algorithm: bytes32, approved: bool):
    """
    @notice Approves (or stops approving) an algorithm to run on a dataset at the owner's side.
    @dev The caller must act for the dataset's owner identity.
    @param dataset The dataset asset.
    @param algorithm The id of the code asset that may run on it.
    @param approved True to approve, false to withdraw the approval.
    """
    owner: address = empty(address)
    status: uint8 = 0
    tenure: uint64 = 0
    owner, status, tenure = staticcall IAssetRegistry(assetRegistry).tenureOf(dataset)
    assert status != 0, "AccessGrants: unknown asset"
    self._check_actor(owner)
    assert algorithm != empty(bytes32), "AccessGrants: algorithm digest is zero"
    if approved:
        self._approved[dataset][algorithm] = convert(tenure, uint256) + 1
    else:
        self._approved[dataset][algorithm] = 0
    log AlgorithmApproval(
        dataset=dataset, algorithm=algorithm, owner=owner, approved=approved, sender=msg.sender
    )


@external
def setConsent(subject: address, purpose: bytes32, given: bool):
    """
    @notice A data subject gives or withdraws consent to the use of its records for a purpose.
    @dev The caller must act for `subject`. Consent is given unless withdrawn.
    @param subject The data subject's identity.
    @param purpose The purpose (a short ASCII name, left-aligned).
    @param given True to give consent, false to withdraw it.
    """
    self._check_actor(subject)
    assert purpose != empty(bytes32), "AccessGrants: purpose is empty"
    self._withdrawn[subject][purpose] = not given
    log ConsentChanged(subject=subject, purpose=purpose, given=given, sender=msg.sender)


@external
@view
def hasAccess(asset: bytes32, grantee: address, mode: uint8, purpose: bytes32) -> bool:
    """
    @notice Tells whether `grantee` may now use `asset` in `mode` for `purpose`.
    @param asset The asset.
    @param grantee The identity asking.
    @param mode 1 download or 2 compute.
    @param purpose The purpose of the use.
    @return True when an unexpired grant of the current owner covers the mode and purpose.
    """
    g: Grant = self._unpack(self._grants[asset][grantee][purpose])
    if mode == 0 or g.modes & mode != mode:
        return False
    owner: address = empty(address)
    status: uint8 = 0
    tenure: uint64 = 0
    owner, status, tenure = staticcall IAssetRegistry(assetRegistry).tenureOf(asset)
    return status == _ACTIVE and self._holds(g, owner, tenure)


@external
@view
def grantOf(asset: bytes32, grantee: address, purpose: bytes32) -> (uint8, uint64, address):
    """
    @notice Returns the stored grant of `grantee` on `asset` for `purpose`.
    @param asset The asset.
    @param grantee The identity.
    @param purpose The purpose.
    @return The modes, the expiry and the grantor (all zero when none).
    """
    g: Grant = self._unpack(self._grants[asset][grantee][purpose])
    return g.modes, g.expiry, g.grantor


@external
@view
def isApproved(dataset: bytes32, algorithm: bytes32) -> bool:
    """
    @notice Tells whether an algorithm is approved for a dataset.
    @param dataset The dataset asset.
    @param algorithm The code asset's id.
    @return True when the dataset's current owner approved it since the dataset last
            changed hands.
    """
    approval: uint256 = self._approved[dataset][algorithm]
    if approval == 0:
        return False
    owner: address = empty(address)
    status: uint8 = 0
    tenure: uint64 = 0
    owner, status, tenure = staticcall IAssetRegistry(assetRegistry).tenureOf(dataset)
    return approval == convert(tenure, uint256) + 1


@external
@view
def hasWithdrawn(subject: address, purpose: bytes32) -> bool:
    """
    @notice Tells whether a data subject withdrew consent to a purpose.
    @param subject The data subject's identity.
    @param purpose The purpose.
    @return True when consent is withdrawn.
    """
    return self._withdrawn[subject][purpose]


@internal
@pure
def _unpack(word: uint256) -> Grant:
    return Grant(
        expiry=convert((word >> _EXPIRY_SHIFT) % _EXPIRY_LIMIT, uint64),
        modes=convert((word >> _MODES_SHIFT) & 255, uint8),
        grantor=convert(word & _ADDRESS_MASK, address),
        tenure=convert(word >> _TENURE_SHIFT, uint64),
    )


@internal
@view
def _holds(g: Grant, owner: address, tenure: uint64) -> bool:
    # A grant holds while unexpired and given by the asset's owner in its current tenure.
    return (
        g.modes != 0
        and convert(g.expiry, uint256) > block.timestamp
        and g.grantor == owner
        and g.tenure == tenure
    )


@internal
@view
def _owner(asset: bytes32) -> address:
    owner: address = empty(address)
    kind: uint8 = 0
    status: uint8 = 0
    owner, kind, status = staticcall IAssetRegistry(assetRegistry).assetOf(asset)
    assert status != 0, "AccessGrants: unknown asset"
    return owner


@internal
@view
def _active_owner(asset: bytes32) -> (address, uint64):
    owner: address = empty(address)
    status: uint8 = 0
    tenure: uint64 = 0
    owner, status, tenure = staticcall IAssetRegistry(assetRegistry).tenureOf(asset)
    assert status != 0, "AccessGrants: unknown asset"
    assert status == _ACTIVE, "AccessGrants: asset is not active"
    return owner, tenure


@internal
@view
def _check_actor(identity: address):
    assert identity_actor._may_act(didRegistry, identity, msg.sender), (
        "AccessGrants: caller is not the identity owner or a delegate"
    )
