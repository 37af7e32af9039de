"""What the packages export is what the docs promise, and the error tree holds."""

from __future__ import annotations

import doctest
import importlib

import pytest

import neuroledger
from neuroledger import errors

PACKAGES = [
    "neuroledger",
    "neuroledger.core",
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


def test_the_root_face_exports_every_capability_service() -> None:
    """One service per feature package, reachable as ``neuroledger.<Service>``."""
    services = {
        name: getattr(neuroledger, name).__module__.split(".")[1]
        for name in neuroledger.__all__
        if isinstance(getattr(neuroledger, name), type)
    }
    for package in (
        "identity",
        "provenance",
        "audit",
        "privacy",
        "federated",
        "governance",
        "chain",
    ):
        assert package in services.values(), f"neuroledger exports no service of {package}"
    for name, package in services.items():
        face = importlib.import_module(f"neuroledger.{package}")
        assert getattr(face, name, None) is getattr(neuroledger, name), f"{name} is not on its face"


def test_every_error_derives_from_root() -> None:
    for name in errors.__all__:
        assert issubclass(getattr(errors, name), errors.NeuroLedgerError)


def _all_modules() -> list[str]:
    import pkgutil

    found = ["neuroledger"]
    for info in pkgutil.walk_packages(neuroledger.__path__, "neuroledger."):
        found.append(info.name)
    return sorted(found)


@pytest.mark.parametrize("name", _all_modules())
def test_docstring_examples_run(name: str) -> None:
    module = importlib.import_module(name)
    # A package's exports are lazy: give its examples the names it exports.
    names = {n: getattr(module, n) for n in getattr(module, "__all__", ())}
    result = doctest.testmod(module, extraglobs=names)
    assert result.failed == 0


@pytest.mark.parametrize("name", PACKAGES)
def test_lazy_exports_match_the_typed_imports(name: str) -> None:
    """Each package serves lazily exactly the names its TYPE_CHECKING imports list, and
    those are its __all__."""
    from pathlib import Path

    from neuroledger._lazy import typed_imports

    module = importlib.import_module(name)
    if not hasattr(module, "__path__"):
        return
    served = typed_imports(name, Path(str(module.__file__)).read_text())
    assert set(served) == set(module.__all__) - {"__version__"}
    for item, where in served.items():
        assert getattr(module, item) is not None and importlib.import_module(where)


def test_a_plain_import_stays_light() -> None:
    """`import neuroledger.cli.main` (every --help) must not import web3 or eth-account."""
    import subprocess
    import sys

    code = (
        "import sys, neuroledger.cli.main; "
        "print(sorted(m for m in ('web3', 'eth_account', 'sklearn', 'torch', 'flwr') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_revert_decoding() -> None:
    from eth_abi import encode

    from neuroledger.chain._reverts import decode_revert

    data = "0x08c379a0" + encode(["string"], ["did: nope"]).hex()
    assert decode_revert(data) == "did: nope"
    assert decode_revert("0x4e487b71" + encode(["uint256"], [0x11]).hex()) == "panic 0x11"
    assert decode_revert("0xdeadbeef") is None
