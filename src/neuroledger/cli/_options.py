"""Option types every command group shares, defined once."""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = ["JsonOpt"]

#: ``--json``: print the result as JSON for scripts instead of the human text.
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
