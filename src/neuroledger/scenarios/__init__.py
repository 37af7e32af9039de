"""Runnable scenarios that show NeuroLedger end to end (the ``neuroledger demo`` job)."""

from neuroledger.scenarios.demo import DemoReport, run_demo

__all__ = ["DemoReport", "run_demo"]
