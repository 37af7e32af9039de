# pragma version 0.4.3
"""
@title NeuroLedger audit anchors
@custom:contract-name AuditAnchor
@license Apache-2.0
@notice Anchors signed checkpoints of tamper-evident logs (RFC 9162 Merkle
        logs in the C2SP tlog-tiles format) on chain: for a log id, a tree
        size and a root hash. Once a size is anchored, the log cannot present
        a smaller tree as its latest, and anyone can compare a checkpoint
        with the chain.
@dev A log id is the SHA-256 of the log's verifier key string, so it names
     both the log's origin and its public key. Anchors are kept per anchoring
     account: each account has its own latest size for each log id, and its
     sizes only grow. So nobody can squat a log id (anchoring size 2^64-1
     first used to lock its operator out): a squatter only fills its own
     namespace. Verifiers read the anchors of the account that operates the
     log (the `owner` of its `Anchored` events).
     Storage holds one word per (account, log): the latest size. Roots are in
     the `Anchored` event, which off-chain verifiers read.
@custom:security An anchor proves that the owner published this root at this
                 size by this block; consistency between anchors is checked
                 off chain with consistency proofs, since it needs hashes the
                 chain does not hold. The contract has no owner, no guardian
                 and no pause: nobody can stop anchoring or rewrite an anchor.
"""


# @dev anchoring account => log id => latest anchored size (zero: never anchored).
_sizes: HashMap[address, HashMap[bytes32, uint64]]


# @dev Emitted for every anchor: the log, its new size and root, the size before.
event Anchored:
    logId: indexed(bytes32)
    owner: indexed(address)
    treeSize: uint64
    rootHash: bytes32
    previousSize: uint64


@external
def anchor(logId: bytes32, treeSize: uint64, rootHash: bytes32):
    """
    @notice Anchors the checkpoint (`treeSize`, `rootHash`) of log `logId` in the caller's namespace.
    @param logId SHA-256 of the log's verifier key string.
    @param treeSize The checkpoint's tree size; must exceed the caller's last anchored size.
    @param rootHash The checkpoint's root hash.
    """
    assert logId != empty(bytes32), "AuditAnchor: log id is zero"
    assert rootHash != empty(bytes32), "AuditAnchor: root hash is zero"
    previous: uint64 = self._sizes[msg.sender][logId]
    assert treeSize > previous, "AuditAnchor: tree size does not grow"
    self._sizes[msg.sender][logId] = treeSize
    log Anchored(logId=logId, owner=msg.sender, treeSize=treeSize, rootHash=rootHash, previousSize=previous)


@external
@view
def latest(owner: address, logId: bytes32) -> uint64:
    """
    @notice Returns the latest size `owner` anchored for log `logId`.
    @param owner The anchoring account.
    @param logId The log id.
    @return The latest tree size (zero if never anchored by `owner`).
    """
    return self._sizes[owner][logId]
