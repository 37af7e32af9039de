# pragma version 0.4.3
"""
@title NeuroLedger asset registry (provenance and lineage)
@custom:contract-name AssetRegistry
@license Apache-2.0
@notice Records AI assets (datasets, code, models, training runs,
        evaluations, deployments, agents) by their content digest, with
        their owner, their parents (lineage), their metadata and their
        status. Owners are `did:ethr` identities of the DID registry; the
        identity's owner or any of its valid `veriKey` delegates acts for it.
        Third parties (auditors, evaluators) attest statements about assets.
@dev An asset's id is keccak256(abi.encode(registrant, digest)): the
     identity that registers it and its content digest (for a file or a
     model directory, the SHA-256 root digest of its OpenSSF model-signing
     manifest). One identity registers one digest at most once; another
     identity registering the same content gets another id. So nobody can
     occupy an id that belongs to someone else: neither by front-running a
     pending registration nor by squatting a public digest (published
     weights), and grants and approvals keyed by the id stay with its
     registrant. The id stays the same when the asset is transferred.
     Parents must be registered before the child, so the lineage graph has
     no cycles.
     Storage holds one word per asset: what other contracts must read (owner,
     kind, status). Everything else (metadata, parents, license, reasons,
     attestations) is in events, which the off-chain index reads.
@custom:security Kinds are small integers that this contract does not
                 interpret beyond "not zero", so new kinds need no upgrade.
                 Revocation is final. Attestations are not filtered: anyone
                 controlling an identity may attest; readers decide whose
                 attestations they trust. The registry has no owner, no
                 guardian and no pause: nobody can stop or rewrite it.
"""


from modules import identity_actor


# @dev Most parents an asset may have.
MAX_PARENTS: constant(uint256) = 16

# @dev Longest metadata or statement URI.
MAX_URI: constant(uint256) = 256

# @dev Longest license reference (an SPDX expression or a URI).
MAX_LICENSE: constant(uint256) = 128

# @dev Longest reason given for deprecation or revocation.
MAX_REASON: constant(uint256) = 256

# @dev Asset statuses (0 means "not registered").
STATUS_ACTIVE: constant(uint8) = 1
STATUS_DEPRECATED: constant(uint8) = 2
STATUS_REVOKED: constant(uint8) = 3

# @dev The DID delegate type allowed to act for an identity: "veriKey".
_DELEGATE_TYPE: constant(bytes32) = 0x766572694b657900000000000000000000000000000000000000000000000000

# @dev Bit positions of the packed record: owner in bits 0-159, status in
# 160-167, kind in 168-175, tenure (how many times the asset changed hands)
# in 176-239.
_STATUS_SHIFT: constant(uint256) = 160
_KIND_SHIFT: constant(uint256) = 168
_TENURE_SHIFT: constant(uint256) = 176
_ADDRESS_MASK: constant(uint256) = 2**160 - 1
_TENURE_MASK: constant(uint256) = 2**64 - 1


# @dev The DID registry whose identities own assets.
didRegistry: public(immutable(address))

# @dev asset id => packed (owner, status, kind, tenure); zero when not registered.
_records: HashMap[bytes32, uint256]

# @dev asset id => keccak256(abi.encode(parents)) of a derived asset (zero: no parents).
# Lineage never changes after registration, so a contract can check a claimed parent
# list against it (the marketplace walks lineage this way to pay royalties).
parentsDigest: public(HashMap[bytes32, bytes32])


# @dev Emitted when an asset is registered.
event AssetRegistered:
    id: indexed(bytes32)
    owner: indexed(address)
    digest: indexed(bytes32)
    kind: uint8
    metadataDigest: bytes32
    metadataURI: String[MAX_URI]
    parents: DynArray[bytes32, MAX_PARENTS]
    license: String[MAX_LICENSE]
    sender: address


# @dev Emitted when an active asset is deprecated (superseded, still valid).
event AssetDeprecated:
    id: indexed(bytes32)
    owner: indexed(address)
    reason: String[MAX_REASON]
    sender: address


# @dev Emitted when an asset is revoked; revocation is final.
event AssetRevoked:
    id: indexed(bytes32)
    owner: indexed(address)
    reason: String[MAX_REASON]
    sender: address


# @dev Emitted when an asset passes to another owner identity.
event AssetTransferred:
    id: indexed(bytes32)
    previousOwner: indexed(address)
    newOwner: indexed(address)
    sender: address


# @dev Emitted when an identity attests a statement about an asset.
event AssetAttested:
    id: indexed(bytes32)
    attester: indexed(address)
    statementDigest: bytes32
    statementURI: String[MAX_URI]
    sender: address


@deploy
def __init__(did_registry: address):
    """
    @notice Binds the registry to the DID registry that defines owners.
    @param did_registry Address of the ERC-1056 DID registry.
    """
    assert did_registry != empty(address), "AssetRegistry: DID registry is the zero address"
    didRegistry = did_registry


@external
def register(
    identity: address,
    digest: bytes32,
    kind: uint8,
    metadataDigest: bytes32,
    metadataURI: String[MAX_URI],
    parents: DynArray[bytes32, MAX_PARENTS],
    license: String[MAX_LICENSE],
) -> bytes32:
    """
    @notice Registers content `digest` as an asset owned by `identity`, derived from `parents`.
    @dev The caller must be the identity's owner or a valid `veriKey` delegate.
         Each parent must be registered and not revoked, and listed once.
    @param identity The owner identity (a `did:ethr` address).
    @param digest The asset's content digest.
    @param kind The asset kind (1 dataset, 2 code, 3 model, 4 training run,
           5 evaluation, 6 deployment, 7 agent; others by convention).
    @param metadataDigest SHA-256 of the canonical metadata document.
    @param metadataURI Where the metadata document can be fetched.
    @param parents The assets this one was derived from.
    @param license A license reference (an SPDX expression or a URI).
    @return The asset id, `assetId(identity, digest)`.
    """
    assert digest != empty(bytes32), "AssetRegistry: digest is zero"
    assert kind != 0, "AssetRegistry: kind is zero"
    assert identity != empty(address), "AssetRegistry: owner is the zero address"
    id: bytes32 = self._asset_id(identity, digest)
    assert self._records[id] == 0, "AssetRegistry: digest already registered by this identity"
    self._check_actor(identity)
    for i: uint256 in range(len(parents), bound=MAX_PARENTS):
        parent: bytes32 = parents[i]
        record: uint256 = self._records[parent]
        assert record != 0, "AssetRegistry: unknown parent"
        assert self._status(record) != STATUS_REVOKED, "AssetRegistry: parent is revoked"
        for j: uint256 in range(i, bound=MAX_PARENTS):
            assert parents[j] != parent, "AssetRegistry: duplicate parent"
    self._records[id] = self._pack(identity, STATUS_ACTIVE, kind, 0)
    if len(parents) > 0:
        self.parentsDigest[id] = keccak256(abi_encode(parents))
    log AssetRegistered(
        id=id,
        owner=identity,
        digest=digest,
        kind=kind,
        metadataDigest=metadataDigest,
        metadataURI=metadataURI,
        parents=parents,
        license=license,
        sender=msg.sender,
    )
    return id


@external
def deprecate(id: bytes32, reason: String[MAX_REASON]):
    """
    @notice Marks an active asset as deprecated (superseded but not withdrawn).
    @param id The asset.
    @param reason Why, for readers of the record.
    """
    record: uint256 = self._record_of(id)
    owner: address = self._owner(record)
    self._check_actor(owner)
    assert self._status(record) == STATUS_ACTIVE, "AssetRegistry: asset is not active"
    self._records[id] = self._pack(owner, STATUS_DEPRECATED, self._kind(record), self._tenure(record))
    log AssetDeprecated(id=id, owner=owner, reason=reason, sender=msg.sender)


@external
def revoke(id: bytes32, reason: String[MAX_REASON]):
    """
    @notice Revokes an asset for good: it must no longer be used or derived from.
    @param id The asset.
    @param reason Why, for readers of the record.
    """
    record: uint256 = self._record_of(id)
    owner: address = self._owner(record)
    self._check_actor(owner)
    assert self._status(record) != STATUS_REVOKED, "AssetRegistry: asset is already revoked"
    self._records[id] = self._pack(owner, STATUS_REVOKED, self._kind(record), self._tenure(record))
    log AssetRevoked(id=id, owner=owner, reason=reason, sender=msg.sender)


@external
def transfer(id: bytes32, newOwner: address):
    """
    @notice Passes an asset that is not revoked to another owner identity.
    @param id The asset.
    @param newOwner The new owner identity.
    """
    record: uint256 = self._record_of(id)
    owner: address = self._owner(record)
    self._check_actor(owner)
    assert newOwner != empty(address), "AssetRegistry: owner is the zero address"
    status: uint8 = self._status(record)
    assert status != STATUS_REVOKED, "AssetRegistry: asset is revoked"
    self._records[id] = self._pack(newOwner, status, self._kind(record), self._tenure(record) + 1)
    log AssetTransferred(id=id, previousOwner=owner, newOwner=newOwner, sender=msg.sender)


@external
def attest(id: bytes32, attester: address, statementDigest: bytes32, statementURI: String[MAX_URI]):
    """
    @notice Records that `attester` makes a statement about asset `id`.
    @dev The caller must be the attester identity's owner or a valid delegate.
    @param id The asset the statement is about.
    @param attester The attesting identity.
    @param statementDigest SHA-256 of the canonical statement document.
    @param statementURI Where the statement can be fetched.
    """
    self._record_of(id)
    assert attester != empty(address), "AssetRegistry: attester is the zero address"
    assert statementDigest != empty(bytes32), "AssetRegistry: statement digest is zero"
    self._check_actor(attester)
    log AssetAttested(
        id=id,
        attester=attester,
        statementDigest=statementDigest,
        statementURI=statementURI,
        sender=msg.sender,
    )


@external
@view
def assetOf(id: bytes32) -> (address, uint8, uint8):
    """
    @notice Returns what the registry stores about asset `id`.
    @param id The asset.
    @return The owner identity, the kind and the status (all zero if unknown).
    """
    record: uint256 = self._records[id]
    return self._owner(record), self._kind(record), self._status(record)


@external
@view
def tenureOf(id: bytes32) -> (address, uint8, uint64):
    """
    @notice Returns asset `id`'s owner, status and tenure: how many times it changed hands.
    @dev Grants and approvals remember the tenure they were given in, so they lapse for
         good when the asset passes on, even if it later comes back to the same owner.
    @param id The asset.
    @return The owner identity, the status and the tenure (all zero if unknown).
    """
    record: uint256 = self._records[id]
    return self._owner(record), self._status(record), self._tenure(record)


@external
@pure
def assetId(identity: address, digest: bytes32) -> bytes32:
    """
    @notice Returns the id that content `digest` gets when `identity` registers it.
    @param identity The registering identity.
    @param digest The content digest.
    @return keccak256(abi.encode(identity, digest)).
    """
    return self._asset_id(identity, digest)


@external
@view
def isActive(id: bytes32) -> bool:
    """
    @notice Tells whether asset `id` is registered and active.
    @param id The asset.
    @return True when the asset's status is active.
    """
    return self._status(self._records[id]) == STATUS_ACTIVE


@internal
@view
def _check_actor(identity: address):
    assert identity_actor._may_act(didRegistry, identity, msg.sender), (
        "AssetRegistry: caller is not the identity owner or a delegate"
    )


@internal
@pure
def _asset_id(identity: address, digest: bytes32) -> bytes32:
    return keccak256(abi_encode(identity, digest))


@internal
@view
def _record_of(id: bytes32) -> uint256:
    record: uint256 = self._records[id]
    assert record != 0, "AssetRegistry: unknown asset"
    return record


@internal
@pure
def _pack(owner: address, status: uint8, kind: uint8, tenure: uint64) -> uint256:
    return (
        convert(owner, uint256)
        | (convert(status, uint256) << _STATUS_SHIFT)
        | (convert(kind, uint256) << _KIND_SHIFT)
        | (convert(tenure, uint256) << _TENURE_SHIFT)
    )


@internal
@pure
def _tenure(record: uint256) -> uint64:
    return convert((record >> _TENURE_SHIFT) & _TENURE_MASK, uint64)


@internal
@pure
def _owner(record: uint256) -> address:
    return convert(record & _ADDRESS_MASK, address)


@internal
@pure
def _status(record: uint256) -> uint8:
    return convert((record >> _STATUS_SHIFT) & 255, uint8)


@internal
@pure
def _kind(record: uint256) -> uint8:
    return convert((record >> _KIND_SHIFT) & 255, uint8)
