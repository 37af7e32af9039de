"""Shared fixtures: a temporary home, the embedded node, an external anvil."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from neuroledger.chain.client import Chain
from neuroledger.chain.node import start_dev_anvil
from neuroledger.config import KdfParams, Settings
from neuroledger.identity.keystore import Keystore
from neuroledger.identity.service import Identities

ROOT = Path(__file__).resolve().parents[1]
PASSPHRASE = "correct horse battery staple"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings for a fresh home with a cheap KDF."""
    return Settings(home=tmp_path / "home", kdf=KdfParams.light())


@pytest.fixture
def chain(settings: Settings) -> Iterator[Chain]:
    """A connection to the embedded node of a fresh home, stopped afterwards."""
    c = Chain.connect(settings)
    yield c
    assert c.node is not None
    c.node.stop()


@pytest.fixture
def keystore(settings: Settings) -> Keystore:
    """The keystore of the fresh home, opened with a fixed passphrase."""
    return Keystore(settings.keystore_dir, passphrase=lambda: PASSPHRASE, kdf=settings.kdf)


@pytest.fixture
def identities(chain: Chain, keystore: Keystore) -> Identities:
    """Identities service on the embedded chain."""
    return Identities(chain, keystore)


@pytest.fixture
def external_anvil() -> Iterator[str]:
    """URL of a separately started anvil acting as an external chain."""
    proc, url = start_dev_anvil()
    yield url
    proc.kill()
    proc.wait()
