"""The one exception hierarchy of NeuroLedger.

Every error NeuroLedger raises derives from :class:`NeuroLedgerError`, and its
message says how to fix the problem. The CLI prints the message on one line and
exits with the error's ``exit_code``::

    NeuroLedgerError
    ├── ConfigError                  bad settings or home directory
    ├── EncodingError                a value with no canonical JSON form (RFC 8785)
    ├── NodeError                    embedded anvil node
    │   ├── NodeLockedError          another live node owns this home
    │   ├── NodeStateCorruptError    the saved chain state fails its check
    │   ├── PortInUseError           the requested port is taken
    │   ├── NodeRPCError             the node cannot be reached or answers with an error
    │   └── GateError                one of the gate's own methods failed (inside the gate)
    ├── ChainError                   talking to a chain
    │   ├── RPCUnreachableError      no JSON-RPC node answers at the URL
    │   ├── ChainIdMismatchError     the chain is not the one recorded
    │   ├── ContractsNotDeployedError  no NeuroLedger contracts on this chain
    │   ├── DeploymentMismatchError  a recorded contract is not at its address
    │   ├── InsufficientFundsError   an account cannot pay for gas
    │   ├── TransactionTimeoutError  no receipt within the timeout
    │   └── TransactionRevertedError the contract rejected the call (``contract`` names it)
    │       ├── NotAuthorizedError   the caller is not the owner or role the contract wants
    │       ├── SignatureRejectedError  a signed message the contract refused
    │       └── ContractPausedError  the guardian paused the contract (exits still work)
    ├── ArtifactError                missing or stale compiled contracts
    ├── KeystoreError                encrypted keys
    │   ├── WrongPassphraseError     the passphrase does not open a key
    │   └── IdentityNotFoundError    no identity by that name (did you mean …?)
    ├── IdentityError                DIDs and the identity registry
    │   └── MalformedDIDError        text that is not a did:ethr DID
    ├── StoreError                   the content-addressed blob store
    │   ├── BlobNotFoundError        no blob with that digest
    │   └── BlobCorruptError         a stored blob fails its digest check
    ├── ProvenanceError              assets, manifests, lineage
    │   ├── ManifestError            a path that cannot be hashed (missing, unreadable, symlink)
    │   ├── AssetNotFoundError       no asset with that id (did you mean …?)
    │   ├── MetadataError            metadata missing, malformed or over the size limit
    │   └── IndexReorgError          a reorg deeper than the index's confirmation depth
    ├── AuditError                   tamper-evident logs
    │   ├── InvalidProofError        a Merkle proof that does not verify
    │   ├── SignatureError           a note or checkpoint signature that does not verify
    │   └── LogCorruptError          log files that fail their check (names the place)
    ├── FederatedError               federated training (aggregation, rounds, updates)
    │   └── PhaseTimeoutError        a message of a round's phase that never came
    ├── PrivacyError                 encrypted assets, grants, the gateway, compute jobs
    │   ├── DecryptError             ciphertext that is corrupt or not for this key
    │   ├── AccessDeniedError        no valid grant, signature or consent for the request
    │   │   └── RequestRefusedError  a request the gateway refused, with its HTTP status
    │   ├── ConsentError             a dataset whose rows' subjects cannot be identified
    │   └── SandboxError             a compute job refused, killed or failed
    └── MarketError                  the market: credits, agents, jobs, payments, reputation
        └── PaymentError             a payment that cannot be made (amount, funds, token)
            ├── GuardrailError       an agent account's policy refused a call (on chain)
            └── X402Error            an x402 payment refused (``code``: the spec's error code)
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "AccessDeniedError",
    "ArtifactError",
    "AssetNotFoundError",
    "AuditError",
    "BlobCorruptError",
    "BlobNotFoundError",
    "ChainError",
    "ChainIdMismatchError",
    "ConfigError",
    "ConsentError",
    "ContractPausedError",
    "ContractsNotDeployedError",
    "DecryptError",
    "DeploymentMismatchError",
    "EncodingError",
    "FederatedError",
    "GateError",
    "GuardrailError",
    "IdentityError",
    "IdentityNotFoundError",
    "IndexReorgError",
    "InsufficientFundsError",
    "InvalidProofError",
    "KeystoreError",
    "LogCorruptError",
    "MalformedDIDError",
    "ManifestError",
    "MarketError",
    "MetadataError",
    "NeuroLedgerError",
    "NodeError",
    "NodeLockedError",
    "NodeRPCError",
    "NodeStateCorruptError",
    "NotAuthorizedError",
    "PaymentError",
    "PhaseTimeoutError",
    "PortInUseError",
    "PrivacyError",
    "ProvenanceError",
    "RPCUnreachableError",
    "RequestRefusedError",
    "SandboxError",
    "SignatureError",
    "SignatureRejectedError",
    "StoreError",
    "TransactionRevertedError",
    "TransactionTimeoutError",
    "WrongPassphraseError",
    "X402Error",
]


class NeuroLedgerError(Exception):
    """Root of every error NeuroLedger raises; its message names the fix."""

    exit_code = 1


class EncodingError(NeuroLedgerError):
    """Raised when a value has no canonical JSON form (RFC 8785): NaN, infinities,
    integers beyond the exact range of doubles, or types JSON does not have."""


class ConfigError(NeuroLedgerError):
    """Raised when settings or the home directory are unusable."""

    exit_code = 2


class NodeError(NeuroLedgerError):
    """Raised when the embedded anvil node cannot be started, reached or stopped."""

    exit_code = 3


class NodeLockedError(NodeError):
    """Raised when another live node already owns this home."""


class NodeStateCorruptError(NodeError):
    """Raised when the saved chain state fails its integrity check; the file is kept."""


class PortInUseError(NodeError):
    """Raised when the port asked for the embedded node is already taken."""


class NodeRPCError(NodeError):
    """Raised when the embedded node cannot be reached or answers with an error."""


class GateError(NodeError):
    """Raised inside the embedded node's gate when one of its own methods fails."""


class ChainError(NeuroLedgerError):
    """Raised when talking to a chain fails."""

    exit_code = 4


class RPCUnreachableError(ChainError):
    """Raised when no JSON-RPC node answers at the configured URL."""


class ChainIdMismatchError(ChainError):
    """Raised when the chain's id is not the one the deployment record expects."""


class ContractsNotDeployedError(ChainError):
    """Raised when the NeuroLedger contracts are not on the connected chain."""


class DeploymentMismatchError(ChainError):
    """Raised when a recorded contract's address does not hold its code (never redeployed
    silently: `neuroledger deploy --force` does it and keeps the old record)."""


class InsufficientFundsError(ChainError):
    """Raised when an account cannot pay for a transaction; says how much it needs."""


class TransactionTimeoutError(ChainError):
    """Raised when a sent transaction has no receipt within the timeout."""


class TransactionRevertedError(ChainError):
    """Raised when a contract rejects a call; ``reason`` holds the decoded revert reason."""

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        tx_hash: str | None = None,
        contract: str | None = None,
    ):
        super().__init__(message)
        self.reason = reason
        self.tx_hash = tx_hash
        #: The contract or snekmate module the revert reason names (its prefix), if any.
        self.contract = contract


class NotAuthorizedError(TransactionRevertedError):
    """Raised when a contract rejects the caller: it is not the owner it must be."""


class SignatureRejectedError(TransactionRevertedError):
    """Raised when a contract rejects a signed message (wrong signer, reused nonce, bad form)."""


class ContractPausedError(TransactionRevertedError):
    """Raised when a call needs a contract its guardian paused; exits are never paused."""


class ArtifactError(NeuroLedgerError):
    """Raised when compiled contract artifacts are missing or stale."""

    exit_code = 5


class KeystoreError(NeuroLedgerError):
    """Raised when an encrypted key cannot be read, written or opened."""

    exit_code = 6


class WrongPassphraseError(KeystoreError):
    """Raised when the passphrase does not decrypt a key."""


class IdentityNotFoundError(KeystoreError):
    """Raised when no identity has the given name; suggests the nearest names."""

    def __init__(self, name: str, known: Iterable[str]):
        known = sorted(known)
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        hint = (
            f"did you mean {', '.join(repr(c) for c in close)}?"
            if close
            else "run `neuroledger identity list` to see them, or `neuroledger identity create`"
        )
        super().__init__(f"no identity named {name!r} in this home; {hint}")
        self.name = name
        self.suggestions = close


class IdentityError(NeuroLedgerError):
    """Raised when a DID operation or resolution fails."""

    exit_code = 7


class MalformedDIDError(IdentityError):
    """Raised when text is not a valid ``did:ethr`` DID."""


class StoreError(NeuroLedgerError):
    """Raised when the content-addressed blob store cannot store or return a blob."""

    exit_code = 8


class DiskFullError(StoreError):
    """The file system (or the user's quota) is full."""


class BlobNotFoundError(StoreError):
    """Raised when no blob with the given digest is in the store."""


class BlobCorruptError(StoreError):
    """Raised when a stored blob's bytes no longer hash to its digest."""


class ProvenanceError(NeuroLedgerError):
    """Raised when an asset, a manifest or a lineage query fails."""

    exit_code = 9


class ManifestError(ProvenanceError):
    """Raised when a path cannot be hashed into a manifest."""


class AssetNotFoundError(ProvenanceError):
    """Raised when no registered asset matches an id; suggests the nearest ids."""

    def __init__(self, ref: str, known: Iterable[str] = ()):
        close = difflib.get_close_matches(ref, sorted(known), n=3, cutoff=0.6)
        hint = (
            f"did you mean {', '.join(close)}?"
            if close
            else "run `neuroledger asset list` to see registered assets"
        )
        super().__init__(f"no registered asset matches {ref!r}; {hint}")
        self.ref = ref
        self.suggestions = close


class MetadataError(ProvenanceError):
    """Raised when asset metadata is missing, not JSON, or over the size limit."""


class IndexReorgError(ProvenanceError):
    """Raised when the chain reorganised below the index's final block."""


class AuditError(NeuroLedgerError):
    """Raised when a tamper-evident log cannot be written, read or verified."""

    exit_code = 14  # 10-13 are the outcomes of `asset verify`


class InvalidProofError(AuditError):
    """Raised when an inclusion or consistency proof does not verify."""


class SignatureError(AuditError):
    """Raised when a signed note or checkpoint has no valid signature by a trusted key."""


class LogCorruptError(AuditError):
    """Raised when a log's files fail their check; the message names the file and position."""


class FederatedError(NeuroLedgerError):
    """Raised when federated training cannot go on (too few updates, bad settings)."""

    exit_code = 15


class PhaseTimeoutError(FederatedError):
    """Raised when a party waited a phase's whole timeout for a message that never came."""


class PrivacyError(NeuroLedgerError):
    """Raised when encrypted data, a grant, the gateway or a compute job cannot proceed."""

    exit_code = 16


class DecryptError(PrivacyError):
    """Raised when ciphertext is corrupt, truncated, or not encrypted to the given key."""


class AccessDeniedError(PrivacyError):
    """Raised when a request lacks a valid grant, signature, nonce or consent."""


class RequestRefusedError(AccessDeniedError):
    """Raised by the gateway for a refused request; carries the HTTP status it answers."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class ConsentError(PrivacyError):
    """Raised when a job's dataset cannot be filtered by consent (no readable subjects)."""


class SandboxError(PrivacyError):
    """Raised when a compute-to-data job is refused, killed at a limit, or fails."""


class MarketError(NeuroLedgerError):
    """Raised when a market action (credits, agents, jobs, payments, feedback) cannot proceed."""

    exit_code = 17


class PaymentError(MarketError):
    """Raised when a payment cannot be made: a bad amount, too few credits, a foreign token."""


class GuardrailError(PaymentError):
    """An agent account's policy refused a call: nothing was made, the refusal is on chain
    (``tx_hash``: the transaction that logged it)."""

    def __init__(self, message: str, *, tx_hash: str | None = None) -> None:
        super().__init__(message)
        self.tx_hash = tx_hash


class X402Error(PaymentError):
    """An x402 payment refused, with the spec's error code (``code``) and a one-line reason."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
