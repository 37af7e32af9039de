"""Lazy package exports: ``import neuroledger.audit`` does not import web3.

A package writes its exports once, as ordinary ``from … import …`` lines under
``if TYPE_CHECKING:`` (type checkers read them there); :func:`lazy_exports` reads the same
lines from the package's source and imports each name from its module the first time it
is read (PEP 562), as scientific-python's ``lazy_loader`` does with stub files. Start-up
of the CLI then pays only for what a command uses.

>>> import neuroledger.store as store
>>> store.is_digest("ab" * 32)
True
"""

from __future__ import annotations

import ast
import importlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["lazy_exports", "typed_imports"]


def typed_imports(package: str, source: str) -> dict[str, str]:
    """``{name: module}`` of the ``from … import …`` lines under ``if TYPE_CHECKING:`` in
    ``source`` (a name imported from the package itself is a submodule)."""
    where: dict[str, str] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for imp in node.body:
                if not isinstance(imp, ast.ImportFrom) or imp.module is None:
                    raise TypeError(f"{package}: only `from … import …` under TYPE_CHECKING")
                for alias in imp.names:
                    submodule = imp.module == package
                    where[alias.name] = f"{package}.{alias.name}" if submodule else imp.module
    return where


def lazy_exports(
    package: str, init_file: str
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``, serving each name its ``__init__`` imports
    under ``TYPE_CHECKING`` from that module on first use."""
    where = typed_imports(package, Path(init_file).read_text(encoding="utf-8"))

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        imported = importlib.import_module(module)
        value = imported if module == f"{package}.{name}" else getattr(imported, name)
        setattr(sys.modules[package], name, value)  # later reads skip this function
        return value

    def __dir__() -> list[str]:
        return sorted(set(where) | set(vars(sys.modules[package])))

    return __getattr__, __dir__
