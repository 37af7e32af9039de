"""Parsing and formatting ``did:ethr`` identifiers.

>>> d = parse_did("did:ethr:0x4e4c:0xb9c5714089478a327f09197987f16f9e5d936e8a")
>>> d.chain_id, d.address
(20044, '0xB9C5714089478a327F09197987f16f9E5d936E8a')
>>> format_did(20044, "0xb9c5714089478a327f09197987f16f9e5d936e8a")
'did:ethr:0x4e4c:0xB9C5714089478a327F09197987f16f9E5d936E8a'
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from neuroledger.errors import MalformedDIDError

__all__ = ["NAMED_NETWORKS", "ParsedDID", "format_did", "parse_did"]

#: Network names the did:ethr method defines, with their chain ids.
NAMED_NETWORKS = {"mainnet": 1, "sepolia": 11155111, "holesky": 17000, "polygon": 137}

_ID = re.compile(r"^(0x[0-9a-fA-F]{40}|0x[0-9a-fA-F]{66})$")
_HELP = "expected did:ethr:<chain id>:<0x address> (e.g. did:ethr:0x4e4c:0xAbc…)"


@dataclass(frozen=True)
class ParsedDID:
    """A parsed ``did:ethr``: chain id (None = mainnet by default), address, optional public key."""

    did: str
    chain_id: int | None
    address: str
    public_key: str | None = None


def parse_did(text: str) -> ParsedDID:
    """Parse ``did:ethr[:network]:<address or compressed public key>``."""
    did = text.strip().split("#", 1)[0].split("?", 1)[0]
    parts = did.split(":")
    if len(parts) < 3 or parts[0] != "did" or parts[1] != "ethr":
        raise MalformedDIDError(f"{text!r} is not a did:ethr DID; {_HELP}")
    if len(parts) > 4:
        raise MalformedDIDError(f"{text!r} has too many ':'-separated parts; {_HELP}")
    ident = parts[-1]
    if not _ID.match(ident):
        raise MalformedDIDError(
            f"{text!r} does not end in a 20-byte address or 33-byte public key in hex; {_HELP}"
        )
    chain_id: int | None = None
    if len(parts) == 4:
        network = parts[2]
        try:
            chain_id = int(network, 16) if network.startswith("0x") else int(network)
        except ValueError:
            if network not in NAMED_NETWORKS:
                raise MalformedDIDError(
                    f"{text!r} names an unknown network {network!r}; use a chain id such as 0x4e4c"
                ) from None
            chain_id = NAMED_NETWORKS[network]
    public_key = None
    if len(ident) == 68:
        try:
            from eth_keys.datatypes import PublicKey

            address = PublicKey.from_compressed_bytes(bytes.fromhex(ident[2:])).to_address()
        except Exception:
            raise MalformedDIDError(
                f"{text!r} holds a public key that is not on secp256k1"
            ) from None
        public_key = ident
    else:
        address = ident
    return ParsedDID(
        did=did, chain_id=chain_id, address=to_checksum_address(address), public_key=public_key
    )


#: The delegate types NeuroLedger grants (ERC-1056 names them by bytes32).
DELEGATE_TYPES = ("veriKey", "sigAuth")


def to_checksum_address(address: str) -> str:
    """EIP-55 checksum form of ``address`` (eth-utils, imported on first use)."""
    from eth_utils.address import to_checksum_address as checksum

    return str(checksum(address))


def format_did(chain_id: int, address: str) -> str:
    """The canonical ``did:ethr:<hex chain id>:<checksum address>`` of an identity."""
    return f"did:ethr:{hex(chain_id)}:{to_checksum_address(address)}"
