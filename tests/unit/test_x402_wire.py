"""x402 wire forms without a chain: headers, requirements, and the fast EIP-712 digest."""

from __future__ import annotations

import base64

import pytest
from eth_account import Account
from hypothesis import given, settings
from hypothesis import strategies as st

from neuroledger.market._credits import _FIELDS, Authorization
from neuroledger.market._facilitator import authorization_signer, domain_separator
from neuroledger.market._x402 import (
    Requirements,
    X402Error,
    decode_header,
    encode_header,
    parse_payment,
    payment_required,
)

ACCOUNT = Account.from_key(b"\x01" * 32)
DOMAIN = {"name": "NeuroLedger Credits", "version": "1", "chainId": 31337,
          "verifyingContract": "0x" + "ab" * 20}  # fmt: skip
REQ = Requirements(network="eip155:31337", asset="0x" + "11" * 20, amount=250_000,
                   pay_to="0x" + "22" * 20, name="NeuroLedger Credits", version="1",
                   resource="http://127.0.0.1/predict")  # fmt: skip


def signed(
    value: int, after: int, before: int, nonce: bytes, domain: dict = DOMAIN
) -> Authorization:
    to = "0x" + "22" * 20
    message = {"from": ACCOUNT.address, "to": to, "value": value, "validAfter": after,
               "validBefore": before, "nonce": nonce}  # fmt: skip
    sig = Account.sign_typed_data(
        ACCOUNT.key, domain, {"TransferWithAuthorization": _FIELDS}, message
    )
    return Authorization("transfer", ACCOUNT.address, to, value, after, before, nonce,
                         bytes(sig.signature))  # fmt: skip


@settings(max_examples=30, deadline=None)
@given(value=st.integers(0, 2**256 - 1), after=st.integers(0, 2**64), before=st.integers(0, 2**64),
       nonce=st.binary(min_size=32, max_size=32), name=st.text(max_size=20),
       chain_id=st.integers(1, 2**64))  # fmt: skip
def test_the_fast_digest_recovers_what_eth_account_signed(value: int, after: int, before: int,
                                                          nonce: bytes, name: str, chain_id: int) -> None:  # fmt: skip
    domain = {**DOMAIN, "name": name, "chainId": chain_id}
    auth = signed(value, after, before, nonce, domain)
    assert authorization_signer(domain_separator(domain), auth) == ACCOUNT.address.lower()
    other = domain_separator({**domain, "version": "2"})  # another token version: another signer
    assert authorization_signer(other, auth) != ACCOUNT.address.lower()
    forged = Authorization(**{**auth.__dict__, "value": (value + 1) % 2**256})
    assert authorization_signer(domain_separator(domain), forged) != ACCOUNT.address.lower()


def test_a_malformed_signature_has_no_signer() -> None:
    auth = signed(1, 0, 10, b"\0" * 32)
    bad = Authorization(**{**auth.__dict__, "signature": b"\0" * 65})
    assert authorization_signer(domain_separator(DOMAIN), bad) == ""


def test_requirements_round_trip_v2_and_v1() -> None:
    required = decode_header(encode_header(payment_required(REQ)))
    assert required["x402Version"] == 2 and required["resource"]["url"] == REQ.resource
    assert Requirements.from_json(required["accepts"][0], REQ.resource) == REQ
    assert Requirements.from_json(REQ.to_v1()) == REQ
    assert REQ.matches(REQ.to_json())
    assert not REQ.matches({**REQ.to_json(), "amount": "250001"})
    assert not REQ.matches({**REQ.to_json(), "payTo": "0x" + "33" * 20})


@pytest.mark.parametrize(
    ("obj", "code"),
    [
        ([], "invalid_payload"),
        ({"x402Version": 2}, "invalid_payload"),
        ({"x402Version": 3, "accepted": {}}, "invalid_x402_version"),
        ({"x402Version": 2, "accepted": {"scheme": "upto", "network": "eip155:31337"}}, "unsupported_scheme"),
        ({"x402Version": 2, "accepted": {"scheme": "exact", "network": "eip155:1"}}, "invalid_network"),
        ({"x402Version": 2, "accepted": {"scheme": "exact", "network": "eip155:31337"},
          "payload": {"authorization": {"from": "0x12"}}}, "invalid_payload"),
        ({"x402Version": 1, "scheme": "exact", "network": "base"}, "invalid_network"),
    ],
)  # fmt: skip
def test_bad_payment_headers_name_the_spec_code(obj: object, code: str) -> None:
    header = base64.b64encode(__import__("json").dumps(obj).encode()).decode()
    version = obj.get("x402Version") if isinstance(obj, dict) else 2
    with pytest.raises(X402Error) as err:
        parse_payment(header, version=1 if version == 1 else 2, network="eip155:31337")
    assert err.value.code == code and str(err.value)


@pytest.mark.parametrize("raw", ["%%%", "A" * 9000, base64.b64encode(b"[" * 100).decode(),
                                 base64.b64encode(b"\xff\xfe").decode()])  # fmt: skip
def test_undecodable_headers_are_invalid_payloads(raw: str) -> None:
    with pytest.raises(X402Error) as err:
        decode_header(raw)
    assert err.value.code == "invalid_payload"
