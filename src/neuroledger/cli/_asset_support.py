"""What the `asset` commands share: option types, hashing progress, owner labels, times."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from neuroledger.cli._context import byte_progress
from neuroledger.errors import MetadataError
from neuroledger.provenance import (
    Provenance,
)

__all__ = [
    "FORMATS",
    "AsOpt",
    "IgnoreOpt",
    "SignerOpt",
    "SymlinkOpt",
    "hash_progress",
    "owner_label",
    "parse_time",
]


AsOpt = Annotated[str, typer.Option("--as", help="Identity (local name) that owns or acts.")]


SignerOpt = Annotated[
    str | None,
    typer.Option("--signer", help="Identity whose key signs, as a veriKey delegate of --as."),
]


IgnoreOpt = Annotated[
    list[str] | None, typer.Option("--ignore", help="Path to leave out, relative to PATH.")
]


SymlinkOpt = Annotated[
    bool, typer.Option("--allow-symlinks", help="Hash the files symbolic links point to.")
]


FORMATS = ("tree", "json", "prov", "openlineage", "dot")


def hash_progress(
    path: Path, enabled: bool
) -> contextlib.AbstractContextManager[Callable[[int], None] | None]:
    """A byte progress bar on stderr while a path is hashed (terminals only)."""
    total = (
        sum(p.stat().st_size for p in [path, *path.rglob("*")] if p.is_file())
        if enabled and path.exists()
        else 0
    )
    return byte_progress(f"hashing {path.name}", total, enabled)


def owner_label(prov: Provenance) -> Callable[[str], str]:
    names = {r.identity.lower(): r.name for r in prov.keystore.list()}
    return lambda address: names.get(address.lower(), address[:10] + "…")


def parse_time(text: str, option: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise MetadataError(
            f"{option} {text!r} is not an ISO 8601 time such as 2026-11-24T09:00:00Z"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
