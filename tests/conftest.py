"""Shared fixtures: a temporary home, the embedded node, an external anvil."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from neuroledger.chain._anvil import start_dev_anvil
from neuroledger.chain._client import Chain
from neuroledger.config import KdfParams, Settings
from neuroledger.identity._keystore import Keystore
from neuroledger.identity._service import Identities
from neuroledger.provenance import HashCache, Provenance
from neuroledger.store import FileStore

ROOT = Path(__file__).resolve().parents[1]
PASSPHRASE = "correct horse battery staple"


#: Seconds between the embedded node's blocks in this test run (`make test-block-time`
#: sets 2, as a real network has; 0, the default, mines each write at once).
BLOCK_TIME = float(os.environ.get("NEUROLEDGER_TEST_BLOCK_TIME", "0"))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings for a fresh home with a cheap KDF."""
    return Settings(home=tmp_path / "home", kdf=KdfParams.light(), block_time=BLOCK_TIME)


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


@pytest.fixture
def prov(
    chain: Chain, keystore: Keystore, identities: Identities, settings: Settings
) -> Provenance:
    """Provenance service with two identities, hospital-a and auditor."""
    for name in ("hospital-a", "auditor"):
        identities.create(name, "org", publish=False)
    return Provenance(
        chain,
        keystore,
        store=FileStore(settings.store_dir),
        index_path=settings.index_path,
        hash_cache=HashCache(settings.hash_cache_path, racy_window_ns=0),
    )


def make_model(root: Path, name: str = "model", seed: bytes = b"") -> Path:
    """A small model directory: a config, two shards, a tokenizer."""
    import json

    model = root / name
    (model / "shards").mkdir(parents=True)
    (model / "config.json").write_text(json.dumps({"layers": 2, "seed": seed.hex()}))
    (model / "shards" / "00.bin").write_bytes(b"\x01" * 5000 + seed)
    (model / "shards" / "01.bin").write_bytes(b"\x02" * 7000 + seed)
    (model / "tokenizer.txt").write_text("a b c" + seed.hex())
    return model


#: Fixtures that start an anvil node.
_ANVIL_FIXTURES = {"chain", "external_anvil", "identities"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Markers say where a test runs: one that starts a node (an integration or end-to-end
    test, or one using a node fixture) must carry ``anvil``, so ``make test-fast`` can
    leave it out."""
    unmarked = [
        item.nodeid
        for item in items
        if item.get_closest_marker("anvil") is None
        and (
            {"integration", "e2e"} & set(Path(str(item.path)).relative_to(ROOT).parts)
            or _ANVIL_FIXTURES & set(getattr(item, "fixturenames", ()))
        )
    ]
    if unmarked:
        raise pytest.UsageError(
            f"{len(unmarked)} tests start a node without the anvil marker "
            f"(e.g. {unmarked[0]}); add `pytestmark = pytest.mark.anvil` to the module"
        )
