"""The ``neuroledger`` command line (Typer + Rich)."""

from neuroledger.cli.main import app, run

__all__ = ["app", "run"]
