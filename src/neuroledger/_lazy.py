"""Lazy package exports: ``import neuroledger.audit`` does not import web3.

A package lists what it exports as ``{module: names}``; a name is imported from its
module the first time it is read (PEP 562). Start-up of the CLI pays only for what a
command uses. The same imports stay under ``TYPE_CHECKING`` for type checkers, and a
unit test checks both lists agree.

>>> import neuroledger.store as store
>>> store.is_digest("ab" * 32)
True
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, exports: dict[str, tuple[str, ...]]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``, serving each name of ``exports`` from
    its module on first use. A module named in its own list is a submodule export."""
    where = {name: module for module, names in exports.items() for name in names}

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
