"""Compiled contract artifacts: ABI, bytecode and the hash of the source they came from.

Artifacts are JSON files inside the package (``neuroledger/chain/artifacts``),
built from ``contracts/*.vy`` by ``make contracts`` with the pinned Vyper. The
contracts import shared code from ``contracts/interfaces`` and
``contracts/modules`` and audited modules from the pinned snekmate package;
each artifact records Vyper's ``integrity`` hash over every file its
compilation read, so a change in an imported module marks it stale too.

>>> art = load_artifact("DIDRegistry")
>>> art.compiler
'vyper 0.4.3'
>>> "identityOwner" in {e.get("name") for e in art.abi}
True
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from neuroledger._fs import atomic_write
from neuroledger.errors import ArtifactError

__all__ = ["VYPER_VERSION", "Artifact", "artifact_names", "compile_contract", "load_artifact"]

#: The exact Vyper release every artifact is compiled with.
VYPER_VERSION = "0.4.3"

_PACKAGE = "neuroledger.chain"


@dataclass(frozen=True)
class Artifact:
    """One compiled contract."""

    name: str
    abi: list[dict[str, Any]]
    bytecode: bytes
    runtime_bytecode: bytes
    source_sha256: str
    compiler: str
    integrity: str = ""

    @property
    def runtime_code_hash(self) -> str:
        """SHA-256 of the deployed code, used to recognise a deployment."""
        return hashlib.sha256(self.runtime_bytecode).hexdigest()

    def to_json(self) -> dict[str, Any]:
        """Return the artifact as the JSON object stored in the package."""
        return {
            "contractName": self.name,
            "compiler": self.compiler,
            "sourceSha256": self.source_sha256,
            "integrity": self.integrity,
            "abi": self.abi,
            "bytecode": "0x" + self.bytecode.hex(),
            "deployedBytecode": "0x" + self.runtime_bytecode.hex(),
        }


def _from_json(data: dict[str, Any]) -> Artifact:
    return Artifact(
        name=data["contractName"],
        abi=data["abi"],
        bytecode=bytes.fromhex(data["bytecode"].removeprefix("0x")),
        runtime_bytecode=bytes.fromhex(data["deployedBytecode"].removeprefix("0x")),
        source_sha256=data["sourceSha256"],
        compiler=data["compiler"],
        integrity=data.get("integrity", ""),
    )


def artifact_names() -> list[str]:
    """Names of the contracts shipped with the package, sorted."""
    folder = resources.files(_PACKAGE) / "artifacts"
    return sorted(p.name[: -len(".json")] for p in folder.iterdir() if p.name.endswith(".json"))


@cache
def load_artifact(name: str) -> Artifact:
    """Load the compiled artifact of contract ``name`` from the package."""
    path = resources.files(_PACKAGE) / "artifacts" / f"{name}.json"
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ArtifactError(
            f"no compiled artifact for contract {name!r}; run `make contracts` to build it"
        ) from None
    return _from_json(data)


def compile_contract(source_path: Path) -> Artifact:
    """Compile one Vyper source file with the pinned compiler."""
    import sys

    import vyper
    from vyper.compiler import compile_code
    from vyper.compiler.input_bundle import FilesystemInputBundle

    if vyper.__version__ != VYPER_VERSION:
        raise ArtifactError(
            f"vyper {vyper.__version__} is installed but artifacts need {VYPER_VERSION}; "
            f"run `pip install vyper=={VYPER_VERSION}`"
        )
    source = source_path.read_text()
    # The contract's own folder first (interfaces/, modules/), then the installed
    # packages (snekmate), as `vyper -p contracts` would search.
    paths = [source_path.parent.resolve(), *(Path(p) for p in sys.path if p)]
    out = compile_code(
        source,
        contract_path=source_path.name,
        input_bundle=FilesystemInputBundle(paths),
        output_formats=["abi", "bytecode", "bytecode_runtime", "integrity"],
    )
    return Artifact(
        name=source_path.stem,
        abi=out["abi"],
        bytecode=bytes.fromhex(out["bytecode"].removeprefix("0x")),
        runtime_bytecode=bytes.fromhex(out["bytecode_runtime"].removeprefix("0x")),
        source_sha256=hashlib.sha256(source.encode()).hexdigest(),
        compiler=f"vyper {VYPER_VERSION}",
        integrity=out["integrity"],
    )


def build_all(contracts_dir: Path, out_dir: Path) -> list[Path]:
    """Compile every ``*.vy`` in ``contracts_dir`` into JSON artifacts in ``out_dir``."""
    written = []
    for source in sorted(contracts_dir.glob("*.vy")):
        artifact = compile_contract(source)
        target = out_dir / f"{artifact.name}.json"
        text = json.dumps(artifact.to_json(), indent=1, sort_keys=True) + "\n"
        atomic_write(target, text.encode(), mode=0o644)
        written.append(target)
    return written


def main() -> None:
    """Entry point of ``make contracts``: rebuild every artifact."""
    import sys

    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path.cwd()
    out = Path(str(resources.files(_PACKAGE) / "artifacts"))
    for path in build_all(root / "contracts", out):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
