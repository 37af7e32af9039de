"""Artifacts must match the contract sources; the ABI must match the ERC-1056 reference."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from neuroledger.chain._artifacts import artifact_names, compile_contract, load_artifact

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = (
    ROOT
    / "node_modules/ethr-did-registry/dist/artifacts/contracts/EthereumDIDRegistry.sol/EthereumDIDRegistry.json"
)


@pytest.mark.parametrize("name", [p.stem for p in sorted((ROOT / "contracts").glob("*.vy"))])
def test_artifact_is_fresh(name: str) -> None:
    source = ROOT / "contracts" / f"{name}.vy"
    shipped = load_artifact(name)
    assert shipped.source_sha256 == hashlib.sha256(source.read_bytes()).hexdigest(), (
        f"artifact of {name} is stale: run `make contracts`"
    )
    fresh = compile_contract(source)
    assert fresh.integrity == shipped.integrity, (
        f"artifact of {name} is stale (an imported module changed): run `make contracts`"
    )
    assert fresh.bytecode == shipped.bytecode, f"artifact of {name} is stale: run `make contracts`"
    assert fresh.abi == shipped.abi


def test_every_contract_has_an_artifact() -> None:
    assert artifact_names() == sorted(p.stem for p in (ROOT / "contracts").glob("*.vy"))


def _signatures(abi: list[dict]) -> set[str]:
    out = set()
    for item in abi:
        if item["type"] not in ("function", "event"):
            continue
        types = ",".join(i["type"] for i in item["inputs"])
        extra = ""
        if item["type"] == "event":
            extra = "|" + ",".join(str(i.get("indexed", False)) for i in item["inputs"])
        elif item["type"] == "function":
            extra = (
                "|" + item["stateMutability"] + "|" + ",".join(o["type"] for o in item["outputs"])
            )
        out.add(f"{item['type']} {item['name']}({types}){extra}")
    return out


@pytest.mark.node
def test_abi_matches_reference_ethereum_did_registry() -> None:
    reference = json.loads(REFERENCE.read_text())["abi"]
    ours = load_artifact("DIDRegistry").abi
    assert _signatures(ours) == _signatures(reference)


#: Contracts deployed one per user rather than once per chain (an agent's account).
PER_USER = ("AgentAccount",)


def test_every_contract_is_in_the_deployment_suite() -> None:
    from neuroledger.chain._suite import SUITE

    assert sorted([*(name for name, _ in SUITE), *PER_USER]) == artifact_names()
