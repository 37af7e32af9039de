"""Shared fixtures: a temporary home, the embedded node, an external anvil."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from neuroledger.chain._rpc import RPCFailure, rpc_call
from neuroledger.chain.client import Chain
from neuroledger.chain.node import _free_port, find_anvil
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


def start_raw_anvil(*extra: str, chain_id: int = 31337) -> tuple[subprocess.Popen[bytes], str]:
    """Start a bare anvil (an "external" chain) on a free loopback port."""
    port = _free_port()
    proc = subprocess.Popen(
        [str(find_anvil()), "--host", "127.0.0.1", "--port", str(port), "--chain-id", str(chain_id), *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            rpc_call(url, "eth_chainId", timeout=0.5)
            return proc, url
        except RPCFailure:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("anvil did not start")


@pytest.fixture
def external_anvil() -> Iterator[str]:
    """URL of a separately started anvil acting as an external chain."""
    proc, url = start_raw_anvil()
    yield url
    proc.kill()
    proc.wait()
