"""Shared fixtures of the contract tests (titanoboa)."""

from __future__ import annotations

from collections.abc import Iterator

import boa
import pytest


@pytest.fixture
def fresh_env() -> Iterator[None]:
    """A fresh titanoboa environment: its storage traces of earlier tests' contracts at the
    same addresses would otherwise break titanoboa's error reports (a titanoboa 0.2.8 quirk)."""
    with boa.swap_env(boa.Env()):
        yield
