"""Shared fixtures of the contract tests (titanoboa): each contract compiled once per run."""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import boa
import pytest

CONTRACTS = Path(__file__).resolve().parents[2] / "contracts"
ZERO = "0x" + "00" * 20


@cache
def compiled(name: str) -> Any:
    """The compiled contract ``name`` (a titanoboa deployer), compiled once per test run."""
    return boa.load_partial(str(CONTRACTS / f"{name}.vy"))


def deploy(name: str, *args: Any) -> Any:
    """A fresh instance of contract ``name`` in the current titanoboa environment."""
    return compiled(name).deploy(*args)


@pytest.fixture
def fresh_env() -> Iterator[None]:
    """A fresh titanoboa environment: its storage traces of earlier tests' contracts at the
    same addresses would otherwise break titanoboa's error reports (a titanoboa 0.2.8 quirk)."""
    with boa.swap_env(boa.Env()):
        yield
