"""Identities for organizations, people, AI agents and devices, as ``did:ethr`` DIDs.

Each identity has an owner key (secp256k1) and an X25519 key-agreement key,
both kept encrypted in the home's keystore; the registry contract (ERC-1056)
holds the owner, delegates and published keys.

>>> from neuroledger.identity import parse_did
>>> parse_did("did:ethr:0x4e4c:0x0000000000000000000000000000000000000001").chain_id
20044
"""

from typing import TYPE_CHECKING

from neuroledger._lazy import lazy_exports

if TYPE_CHECKING:
    from neuroledger.identity._did import ParsedDID, format_did, parse_did
    from neuroledger.identity._keystore import KINDS, IdentityRecord, Keystore
    from neuroledger.identity._registry import DELEGATE_TYPES, X25519_ATTRIBUTE, RegistryClient
    from neuroledger.identity._resolver import ResolvedDID, resolve_did
    from neuroledger.identity._service import Identities, Rotation, published_x25519

__getattr__, __dir__ = lazy_exports(__name__, __file__)

__all__ = [
    "DELEGATE_TYPES",
    "KINDS",
    "X25519_ATTRIBUTE",
    "Identities",
    "IdentityRecord",
    "Keystore",
    "ParsedDID",
    "RegistryClient",
    "ResolvedDID",
    "Rotation",
    "format_did",
    "parse_did",
    "published_x25519",
    "resolve_did",
]
