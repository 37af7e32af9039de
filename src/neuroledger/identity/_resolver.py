"""Resolution of ``did:ethr`` DIDs into W3C DID Core documents.

The registry keeps no list of an identity's keys; it keeps, per identity, the
block of its latest change, and every event points to the block of the change
before it. The resolver walks that chain of blocks back with one
``eth_getLogs`` each, then replays the events in order, as the did:ethr method
specification describes, producing the same document as the reference
``ethr-did-resolver`` (checked by a differential test).
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from eth_utils.address import to_checksum_address
from web3 import Web3
from web3.contract import Contract

from neuroledger._json import loads_bounded
from neuroledger.errors import IdentityError
from neuroledger.identity._did import ParsedDID, parse_did

__all__ = ["DID_CONTEXT", "ResolvedDID", "resolve_did"]

DID_CONTEXT = [
    "https://www.w3.org/ns/did/v1",
    "https://w3id.org/security/suites/secp256k1recovery-2020/v2",
    "https://w3id.org/security/v3-unstable",
]

_NULL = "0x0000000000000000000000000000000000000000"
_RECOVERY = "EcdsaSecp256k1RecoveryMethod2020"
_KEY_TYPES = {  # <algorithm><purpose> in attribute names -> verification method type
    "Secp256k1veriKey": "EcdsaSecp256k1VerificationKey2019",
    "Secp256k1sigAuth": "EcdsaSecp256k1VerificationKey2019",
    "Ed25519veriKey": "Ed25519VerificationKey2018",
    "Ed25519sigAuth": "Ed25519VerificationKey2018",
    "RSAveriKey": "RSAVerificationKey2018",
    "X25519enc": "X25519KeyAgreementKey2019",
}


@dataclass(frozen=True)
class ResolvedDID:
    """A DID resolution result: document, document metadata, resolution metadata."""

    document: dict[str, Any]
    metadata: dict[str, Any]
    resolution: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        """The result in the W3C DID Resolution layout."""
        return {
            "didDocument": self.document,
            "didDocumentMetadata": self.metadata,
            "didResolutionMetadata": self.resolution,
        }


def _name(raw: bytes) -> str:
    return raw.rstrip(b"\0").decode(errors="replace")


def _history(w3: Web3, registry: Contract, address: str) -> list[tuple[int, str, Any]]:
    """Events of ``address`` in chain order: (block, event name, args)."""
    topic = "0x" + "00" * 12 + address[2:].lower()
    decoders = {
        Web3.keccak(text=sig).hex().removeprefix("0x"): getattr(registry.events, name)()
        for name, sig in (
            ("DIDOwnerChanged", "DIDOwnerChanged(address,address,uint256)"),
            ("DIDDelegateChanged", "DIDDelegateChanged(address,bytes32,address,uint256,uint256)"),
            ("DIDAttributeChanged", "DIDAttributeChanged(address,bytes32,bytes,uint256,uint256)"),
        )
    }
    history: list[tuple[int, str, Any]] = []
    block = int(registry.functions.changed(address).call())
    while block:
        logs = w3.eth.get_logs(
            {
                "address": registry.address,
                "topics": [None, topic],
                "fromBlock": block,
                "toBlock": block,
            }
        )
        if not logs:
            raise IdentityError(
                f"the registry points to block {block} for {address} but the node returns no "
                "logs for it; use a node that keeps full log history (an archive node)"
            )
        events = []
        previous = 0
        for log in logs:
            decoder = decoders.get(log["topics"][0].hex().removeprefix("0x"))
            if decoder is None:
                continue
            event = decoder.process_log(log)
            events.append((block, event["event"], event["args"]))
            pc = int(event["args"]["previousChange"])
            if 0 < pc < block and (previous == 0 or pc < previous):
                previous = pc
        history[:0] = events
        block = previous
    return history


def resolve_did(w3: Web3, registry: Contract, did: str, *, chain_id: int) -> ResolvedDID:
    """Resolve ``did`` against ``registry`` on the chain ``chain_id``."""
    parsed = parse_did(did)
    if parsed.chain_id is not None and parsed.chain_id != chain_id:
        raise IdentityError(
            f"{did} belongs to chain {parsed.chain_id} but this chain is {chain_id}; "
            "connect to that chain with --rpc-url"
        )
    history = _history(w3, registry, parsed.address)
    # Rights expire by the chain's clock and by this machine's: an idle chain's stands still.
    now = max(int(w3.eth.get_block("latest")["timestamp"]), int(time.time()))
    document, deactivated, version = _document(parsed, history, chain_id, now)
    metadata: dict[str, Any] = {}
    if deactivated:
        metadata["deactivated"] = True
    if version:
        ts = int(w3.eth.get_block(version)["timestamp"])
        metadata["versionId"] = str(version)
        metadata["updated"] = datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return ResolvedDID(
        document=document,
        metadata=metadata,
        resolution={"contentType": "application/did+ld+json"},
    )


def _document(
    parsed: ParsedDID, history: list[tuple[int, str, Any]], chain_id: int, now: int
) -> tuple[dict[str, Any], bool, int]:
    did = parsed.did
    controller = parsed.address
    keys: dict[str, dict[str, Any]] = {}
    auth: dict[str, str] = {}
    assertion: dict[str, str] = {}
    agreement: dict[str, str] = {}
    services: dict[str, dict[str, Any]] = {}
    key_count = service_count = version = 0
    deactivated = False

    for block, name, args in history:
        version = max(version, block)
        if name == "DIDOwnerChanged":
            controller = to_checksum_address(args["owner"])
            if controller == _NULL:
                deactivated = True
                break
            continue
        # As the contract's validDelegate: valid while validTo is after the latest block time,
        # so a revocation (validTo = its block time) takes effect at once.
        valid = int(args["validTo"]) > now
        if name == "DIDDelegateChanged":
            kind = _name(args["delegateType"])
            index = f"delegate-{kind}-{to_checksum_address(args['delegate'])}"
            key_count += 1
            if valid and kind in ("veriKey", "sigAuth"):
                ref = f"{did}#delegate-{key_count}"
                keys[index] = {
                    "id": ref,
                    "type": _RECOVERY,
                    "controller": did,
                    "blockchainAccountId": f"eip155:{chain_id}:{to_checksum_address(args['delegate'])}",
                }
                assertion[index] = ref
                if kind == "sigAuth":
                    auth[index] = ref
            elif not valid:
                for table in (keys, auth, assertion, agreement):
                    table.pop(index, None)
            continue
        # DIDAttributeChanged
        attr = _name(args["name"])
        value: bytes = bytes(args["value"])
        index = f"attribute-{attr}-{value.hex()}"
        parts = attr.split("/")
        if len(parts) < 3 or parts[0] != "did" or parts[1] not in ("pub", "svc"):
            continue
        if parts[1] == "pub":
            key_count += 1
        else:
            service_count += 1
        if not valid:
            for table in (keys, auth, assertion, agreement, services):
                table.pop(index, None)
            continue
        if parts[1] == "pub":
            algorithm = parts[2]
            purpose = parts[3] if len(parts) > 3 else ""
            encoding = parts[4] if len(parts) > 4 else "hex"
            ref = f"{did}#delegate-{key_count}"
            method: dict[str, Any] = {
                "id": ref,
                "type": _KEY_TYPES.get(f"{algorithm}{purpose}", algorithm),
                "controller": did,
            }
            if encoding == "base64":
                method["publicKeyBase64"] = base64.b64encode(value).decode()
            elif encoding == "hex":
                method["publicKeyHex"] = value.hex()
            elif encoding == "pem":
                method["publicKeyPem"] = value.decode(errors="replace")
            else:
                method["value"] = value.hex()
            keys[index] = method
            if purpose == "sigAuth":
                auth[index] = ref
                assertion[index] = ref
            elif purpose == "enc":
                agreement[index] = ref
            else:
                assertion[index] = ref
        else:
            service_count_ref = f"{did}#service-{service_count}"
            text = value.decode(errors="replace")
            try:
                endpoint: Any = loads_bounded(value)
            except ValueError:
                endpoint = text
            services[index] = {
                "id": service_count_ref,
                "type": parts[2],
                "serviceEndpoint": endpoint,
            }

    base: dict[str, Any] = {
        "@context": DID_CONTEXT,
        "id": did,
        "verificationMethod": [],
        "authentication": [],
        "assertionMethod": [],
    }
    if deactivated:
        return base, True, version
    controller_method = {
        "id": f"{did}#controller",
        "type": _RECOVERY,
        "controller": did,
        "blockchainAccountId": f"eip155:{chain_id}:{controller}",
    }
    methods = [controller_method]
    authentication = [f"{did}#controller"]
    assertion_refs = [f"{did}#controller"]
    if parsed.public_key and controller == parsed.address:
        methods.append(
            {
                "id": f"{did}#controllerKey",
                "type": "EcdsaSecp256k1VerificationKey2019",
                "controller": did,
                "publicKeyHex": parsed.public_key[2:],
            }
        )
        authentication.append(f"{did}#controllerKey")
        assertion_refs.append(f"{did}#controllerKey")
    document = {
        **base,
        "verificationMethod": methods + list(keys.values()),
        "authentication": authentication + list(auth.values()),
        "assertionMethod": assertion_refs + list(assertion.values()),
    }
    if services:
        document["service"] = list(services.values())
    if agreement:
        document["keyAgreement"] = list(agreement.values())
    return document, False, version
