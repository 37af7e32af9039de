"""Amounts of credits: decimal text to atomic units and back, and one line for bad text."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from neuroledger.errors import PaymentError
from neuroledger.market import format_amount, parse_amount


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
