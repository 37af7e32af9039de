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
     both the log's origin and its public key. The first account that anchors
     a log id owns it; only that account anchors it afterwards, and sizes
     only grow.
     Storage holds one word per log: the owner and the latest size. Roots
     are in the `Anchored` event, which off-chain verifiers read.
@custom:security An anchor proves that the owner published this root at this
                 size by this block; consistency between anchors is checked
                 off chain with consistency proofs, since it needs hashes the
                 chain does not hold.
"""


# @dev Bit position of the size in a log's packed word (owner in bits 0-159).
_SIZE_SHIFT: constant(uint256) = 160
_ADDRESS_MASK: constant(uint256) = 2**160 - 1


# @dev log id => packed (owner, latest anchored size); zero for unknown logs.
_logs: HashMap[bytes32, uint256]


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
    @notice Anchors the checkpoint (`treeSize`, `rootHash`) of log `logId`.
    @dev The first anchor of a log id makes the caller its owner.
    @param logId SHA-256 of the log's verifier key string.
    @param treeSize The checkpoint's tree size; must exceed the last anchored size.
    @param rootHash The checkpoint's root hash.
    """
    assert logId != empty(bytes32), "anchor: log id is zero"
    assert rootHash != empty(bytes32), "anchor: root hash is zero"
    record: uint256 = self._logs[logId]
    previous: uint64 = 0
    if record != 0:
        assert convert(record & _ADDRESS_MASK, address) == msg.sender, "anchor: log is anchored by another account"
        previous = convert(record >> _SIZE_SHIFT, uint64)
    assert treeSize > previous, "anchor: tree size does not grow"
    self._logs[logId] = convert(msg.sender, uint256) | (convert(treeSize, uint256) << _SIZE_SHIFT)
    log Anchored(logId=logId, owner=msg.sender, treeSize=treeSize, rootHash=rootHash, previousSize=previous)


@external
@view
def latest(logId: bytes32) -> (address, uint64):
    """
    @notice Returns the owner and the latest anchored size of log `logId`.
    @param logId The log id.
    @return The owner (zero if never anchored) and the latest tree size.
    """
    record: uint256 = self._logs[logId]
    return convert(record & _ADDRESS_MASK, address), convert(record >> _SIZE_SHIFT, uint64)
