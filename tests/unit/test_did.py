from __future__ import annotations

import pytest

from neuroledger.errors import MalformedDIDError
from neuroledger.identity._did import format_did, parse_did

ADDR = "0xb9c5714089478a327f09197987f16f9e5d936e8a"


def test_parse_hex_and_decimal_chain_ids() -> None:
    assert parse_did(f"did:ethr:0x4e4c:{ADDR}").chain_id == 20044
    assert parse_did(f"did:ethr:20044:{ADDR}").chain_id == 20044
    assert parse_did(f"did:ethr:sepolia:{ADDR}").chain_id == 11155111
    assert parse_did(f"did:ethr:{ADDR}").chain_id is None


def test_parse_strips_fragment_and_query() -> None:
    parsed = parse_did(f"did:ethr:0x1:{ADDR}#controller")
    assert parsed.did == f"did:ethr:0x1:{ADDR}"


def test_public_key_form_derives_address() -> None:
    from eth_account import Account
    from eth_keys import keys

    acct = Account.from_key(b"\x01" * 32)
    pub = keys.PrivateKey(b"\x01" * 32).public_key.to_compressed_bytes().hex()
    parsed = parse_did(f"did:ethr:0x1:0x{pub}")
    assert parsed.address == acct.address and parsed.public_key == f"0x{pub}"


def test_format_roundtrip() -> None:
    did = format_did(20044, ADDR)
    assert parse_did(did).address.lower() == ADDR


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "did:web:example.com",
        "did:ethr:",
        "did:ethr:0x123",
        f"did:ethr:nowhere:{ADDR}",
        f"did:ethr:a:b:{ADDR}",
        "did:ethr:0x" + "zz" * 20,
        "did:ethr:0x02" + "00" * 32,
    ],
)
def test_malformed_dids_give_one_line_errors(bad: str) -> None:
    with pytest.raises(MalformedDIDError) as info:
        parse_did(bad)
    assert "\n" not in str(info.value)
