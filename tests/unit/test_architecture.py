"""The import rules of docs/architecture.md, checked on the source.

Every ``from neuroledger… import`` and ``import neuroledger…`` in ``src/`` is read with
:mod:`ast`, including the ones inside functions and under ``TYPE_CHECKING``: a lazy
import is still a dependency.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "neuroledger"

#: Modules at the root that everything may use; they import only each other.
BASE = {"errors", "config", "_fs", "_json", "_lazy", "environment"}

#: Which packages each package may import (besides itself and BASE). Layers run one way:
#: primitives, then infrastructure, then identities, then the features, then the apps.
#: Everything below the apps.
_FEATURES = {"core", "chain", "store", "identity", "provenance", "audit", "privacy", "federated",
             "governance", "market"}  # fmt: skip

ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "chain": set(),
    "store": set(),
    "identity": {"chain"},
    "provenance": {"core", "chain", "store", "identity"},
    "audit": {"core", "chain", "store", "identity"},
    "privacy": {"core", "chain", "store", "identity", "provenance"},
    "federated": {"core", "chain", "store", "identity", "provenance"},
    "governance": {"chain", "identity"},
    "market": {"core", "chain", "store", "identity", "provenance", "audit", "privacy"},
    "explorer": {"core", "chain", "store", "identity", "provenance"},
    "scenarios": _FEATURES,
    "cli": _FEATURES | {"scenarios", "explorer"},
}

APPS = {"cli", "scenarios"}

#: Public modules beside the faces, each for a reason: ``age`` is a file format users call
#: as a namespace (``age.encrypt_stream``), ``gateway`` is the HTTP service (it imports
#: FastAPI, which the rest of privacy need not load), ``flower`` needs the ``flower`` extra.
#: Every other module of a package is private (``_name.py``).
PUBLIC_MODULES = {"neuroledger.privacy.age", "neuroledger.privacy.gateway",
                  "neuroledger.federated.flower"}  # fmt: skip


def _imports(path: Path) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
    return [(line, m) for line, m in found if m == "neuroledger" or m.startswith("neuroledger.")]


def _where(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return parts[0] if parts[0] != "__init__" else ""


def _sources() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def test_every_package_has_a_rule() -> None:
    packages = {p.name for p in SRC.iterdir() if (p / "__init__.py").exists()}
    modules = {p.stem for p in SRC.glob("*.py")} - {"__init__"}
    assert packages == set(ALLOWED), "add the new package to ALLOWED and docs/architecture.md"
    assert modules <= BASE | {"py"}, "a new root module: put it in a package or in BASE"


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(SRC)))
def test_layers_run_one_way(path: Path) -> None:
    here = _where(path)
    if here == "":
        return  # the root face exports the capability services of every layer
    for line, module in _imports(path):
        parts = module.split(".")
        if len(parts) == 1:  # `from neuroledger import __version__`
            assert here in ("provenance", "cli"), f"{path}:{line} imports the root package"
            continue
        target = parts[1]
        if target == here or target in BASE:
            continue
        if here in BASE:
            pytest.fail(f"{path}:{line}: base module {here} imports {module}")
        assert here in ALLOWED, f"{path} is in no package with rules"
        assert target in ALLOWED[here], f"{path}:{line}: {here} may not import {module}"


@pytest.mark.parametrize(
    "path",
    [p for p in _sources() if _where(p) not in APPS],
    ids=lambda p: str(p.relative_to(SRC)),
)
def test_features_use_each_others_faces_only(path: Path) -> None:
    here = _where(path)
    for line, module in _imports(path):
        parts = module.split(".")
        if len(parts) > 2 and parts[1] != here and parts[1] not in BASE:
            pytest.fail(
                f"{path}:{line} imports {module}: use its package's face "
                f"`neuroledger.{parts[1]}` (export the name there if it is public)"
            )


def test_only_the_environment_module_reads_the_environment() -> None:
    pattern = re.compile(r"\bos\.(environ|getenv|putenv)\b|\bgetenv\(")
    readers = [
        str(p.relative_to(SRC))
        for p in _sources()
        if p.name != "environment.py" and pattern.search(p.read_text())
    ]
    assert readers == []


#: The most lines a module may have (docstrings and comments included).
MAX_LINES = 400
#: The most lines a command-line module may have: commands stay thin, logic lives below.
MAX_CLI_LINES = 250


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(SRC)))
def test_no_module_outgrows_its_room(path: Path) -> None:
    name = str(path.relative_to(SRC))
    lines = len(path.read_text().splitlines())
    limit = MAX_CLI_LINES if name.startswith("cli/") else MAX_LINES
    assert lines <= limit, (
        f"{name} has {lines} lines, over {limit}: split it along its seams "
        "(docs/architecture.md, rule 5)"
    )


def test_every_exception_lives_in_the_error_tree() -> None:
    import neuroledger.errors as errors

    elsewhere = []
    for path in _sources():
        if path.name == "errors.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and any(
                ast.unparse(b).endswith(("Error", "Exception", "Failure")) for b in node.bases
            ):
                elsewhere.append(f"{path.relative_to(SRC)}: {node.name}")
    assert elsewhere == [], "define exceptions in neuroledger/errors.py"
    for name in errors.__all__:
        assert name in errors.__doc__, f"{name} is missing from the tree in errors.py's docstring"


def test_implementation_modules_are_private() -> None:
    public = [
        f"neuroledger.{path.parent.name}.{path.stem}"
        for path in _sources()
        if path.parent != SRC and _where(path) != "cli" and not path.stem.startswith("_")
    ]
    assert sorted(public) == sorted(PUBLIC_MODULES), (
        "name implementation modules _name.py and export what users need from the face"
    )


def test_the_apps_use_faces_and_public_modules_only() -> None:
    for path in _sources():
        if _where(path) not in APPS:
            continue
        for line, module in _imports(path):
            parts = module.split(".")
            if len(parts) > 2 and parts[1] not in APPS and parts[1] not in BASE:
                assert module in PUBLIC_MODULES, (
                    f"{path}:{line} imports {module}: import from `neuroledger.{parts[1]}`"
                )
