"""Every import the README and docs/*.md show names a public face, and the face has it.

Users copy these lines; an import of an implementation module would tie them to a layout
that may change. Faces: ``neuroledger``, each package (``neuroledger.audit``, …) and the
root modules ``errors``, ``config`` and ``environment``.
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "neuroledger"
FACES = {"neuroledger", "neuroledger.errors", "neuroledger.config", "neuroledger.environment"} | {
    f"neuroledger.{p.name}" for p in SRC.iterdir() if (p / "__init__.py").exists()
}
_BLOCK = re.compile(r"^```(?:python|py)\n(.*?)^```", re.M | re.S)


_IMPORT = re.compile(
    r"^(?:from neuroledger\S* import (?:\([^)]*\)|.*)|import neuroledger.*)$", re.M
)


def _parse(block: str) -> ast.Module:
    """The block, or, for a sketch that is not valid Python, its import lines."""
    try:
        return ast.parse(block)
    except SyntaxError:
        return ast.parse("\n".join(_IMPORT.findall(block)))


def _imports() -> list[tuple[str, str, list[str]]]:
    found = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for block in _BLOCK.findall(doc.read_text()):
            for node in ast.walk(_parse(block)):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                    "neuroledger"
                ):
                    found.append((doc.name, str(node.module), [a.name for a in node.names]))
                elif isinstance(node, ast.Import):
                    found.extend(
                        (doc.name, a.name, [])
                        for a in node.names
                        if a.name.startswith("neuroledger")
                    )
    return found


def test_the_docs_show_imports() -> None:
    assert len(_imports()) >= 5  # the parser finds the examples at all


@pytest.mark.parametrize("doc,module,names", _imports(), ids=lambda v: str(v)[:40])
def test_docs_import_faces_only(doc: str, module: str, names: list[str]) -> None:
    assert module in FACES, f"{doc} imports {module}: import from its package's face instead"
    face = importlib.import_module(module)
    public = set(getattr(face, "__all__", dir(face)))
    missing = [n for n in names if n not in public]
    assert missing == [], f"{doc}: {module} does not export {missing}"
