"""Runnable scenarios that show NeuroLedger end to end (the ``neuroledger demo`` job)."""

from typing import TYPE_CHECKING

from neuroledger._lazy import lazy_exports

if TYPE_CHECKING:
    from neuroledger.scenarios._demo import DemoReport, run_demo

__getattr__, __dir__ = lazy_exports(__name__, __file__)

__all__ = ["DemoReport", "run_demo"]
