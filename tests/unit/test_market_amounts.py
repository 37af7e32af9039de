"""Amounts of credits: decimal text to atomic units and back, and one line for bad text."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from neuroledger.errors import PaymentError
from neuroledger.market import Authorization, format_amount, parse_amount


@given(atomic=st.integers(0, 10**30), decimals=st.integers(0, 18))
def test_format_and_parse_round_trip(atomic: int, decimals: int) -> None:
    text = format_amount(atomic, decimals)
    assert "e" not in text.lower() and parse_amount(text, decimals) == atomic


def test_examples() -> None:
    assert parse_amount("12.5", 6) == 12_500_000 and parse_amount(" 7 ", 0) == 7
    assert format_amount(1, 6) == "0.000001" and format_amount(10**12, 6) == "1000000"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("abc", "is not an amount"),
        ("", "is not an amount"),
        ("-1", "a number of 0 or more"),
        ("NaN", "a number of 0 or more"),
        ("Infinity", "a number of 0 or more"),
        ("0.0000001", "more than the token's 6 decimal places"),
        ("1e80", "more than any token holds"),
        ("1" * 101, "101 characters is not an amount"),
    ],
)
def test_bad_amounts_get_one_line(text: str, message: str) -> None:
    with pytest.raises(PaymentError, match=message):
        parse_amount(text, 6)


GOOD = {
    "signature": "0x" + "11" * 65,
    "authorization": {"from": "0x" + "22" * 20, "to": "0x" + "33" * 20, "value": "250000",
                      "validAfter": "0", "validBefore": "1900000000", "nonce": "0x" + "44" * 32},
}  # fmt: skip


def test_an_x402_payload_round_trips() -> None:
    auth = Authorization.from_x402(GOOD)
    assert auth.value == 250_000 and auth.nonce == b"\x44" * 32
    back = auth.to_x402()
    assert back["authorization"]["value"] == "250000" and back["signature"] == GOOD["signature"]
    assert Authorization.from_x402(back) == auth


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("from", "0x1234", "`from` is not an address"),
        ("to", 42, "`to` is not an address"),
        ("value", "-1", "`value` is not a decimal string"),
        ("value", "1e6", "`value` is not a decimal string"),
        ("value", "²", "`value` is not a decimal string"),
        ("value", "9" * 78, "`value` is larger than a uint256"),
        ("validBefore", 1900000000, "`validBefore` is not a decimal string"),
        ("nonce", "0x" + "zz" * 32, "`nonce` is not 0x and 64 hex digits"),
        ("nonce", "0x44", "`nonce` is not 0x and 64 hex digits"),
        ("signature", "0x" + "11" * 64, "`signature` is not 0x and 130 hex digits"),
    ],
)
def test_a_bad_payload_field_is_named(field: str, value: object, message: str) -> None:
    payload = {"signature": GOOD["signature"], "authorization": dict(GOOD["authorization"])}
    if field == "signature":
        payload["signature"] = value
    else:
        payload["authorization"][field] = value
    with pytest.raises(PaymentError, match=message):
        Authorization.from_x402(payload)
    with pytest.raises(PaymentError, match="no `authorization` object"):
        Authorization.from_x402({"signature": "0x"})


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=80),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)


@given(
    auth=st.fixed_dictionaries({}, optional={k: _JSON for k in GOOD["authorization"]}),
    signature=_JSON,
)
def test_any_json_gives_an_authorization_or_a_payment_error(auth: dict, signature: object) -> None:
    with contextlib.suppress(PaymentError):
        Authorization.from_x402({"authorization": auth, "signature": signature})
