"""What the packages export is what the docs promise, and the error tree holds."""

from __future__ import annotations

import doctest
import importlib

import pytest

import neuroledger
from neuroledger import errors

PACKAGES = [
    "neuroledger",
    "neuroledger.chain",
    "neuroledger.identity",
    "neuroledger.errors",
    "neuroledger.store",
    "neuroledger.provenance",
    "neuroledger.audit",
    "neuroledger.federated",
    "neuroledger.privacy",
]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_names_exist(name: str) -> None:
    module = importlib.import_module(name)
    for item in module.__all__:
        assert hasattr(module, item), f"{name}.__all__ lists missing {item}"


def test_top_level_api() -> None:
    assert set(neuroledger.__all__) == {
        "EMBEDDED_CHAIN_ID",
        "Chain",
        "Identities",
        "KdfParams",
        "Keystore",
        "NeuroLedgerError",
        "Settings",
        "__version__",
    }


def test_every_error_derives_from_root() -> None:
    for name in errors.__all__:
        assert issubclass(getattr(errors, name), errors.NeuroLedgerError)


@pytest.mark.parametrize(
    "name",
    [
        "neuroledger",
        "neuroledger.config",
        "neuroledger.chain",
        "neuroledger.chain.artifacts",
        "neuroledger.identity",
        "neuroledger.identity.did",
        "neuroledger.store",
        "neuroledger.provenance",
        "neuroledger.provenance.documents",
        "neuroledger.audit",
        "neuroledger.audit.merkle",
        "neuroledger.audit.note",
        "neuroledger.audit.tiles",
        "neuroledger.audit.entries",
        "neuroledger.audit.sdk",
        "neuroledger.federated",
        "neuroledger.federated.aggregators",
        "neuroledger.federated.contribution",
        "neuroledger.federated.models",
        "neuroledger.federated.dp",
        "neuroledger.federated.simulation",
        "neuroledger.federated.adapters",
        "neuroledger.privacy",
        "neuroledger.privacy.age",
    ],
)
def test_docstring_examples_run(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name))
    assert result.failed == 0


def test_revert_decoding() -> None:
    from eth_abi import encode

    from neuroledger.chain.tx import decode_revert

    data = "0x08c379a0" + encode(["string"], ["did: nope"]).hex()
    assert decode_revert(data) == "did: nope"
    assert decode_revert("0x4e487b71" + encode(["uint256"], [0x11]).hex()) == "panic 0x11"
    assert decode_revert("0xdeadbeef") is None
