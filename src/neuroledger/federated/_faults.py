"""Faults a participant injects on purpose (``fl join --fault``), to show how a task copes.

>>> Fault.parse("nan@2").active("nan", 2)
True
"""

from __future__ import annotations

from dataclasses import dataclass

from neuroledger.errors import FederatedError

__all__ = ["Fault"]


@dataclass(frozen=True)
class Fault:
    """A fault a participant injects on purpose, to show how the task copes.

    ``kind``: ``wrong-shape``, ``nan``, ``stale``, ``scale`` (a -10x poisoned
    update), ``label-flip`` (poisoned data), ``drop`` (vanish mid-round: after
    dealing shares under secure aggregation, before the update otherwise) or
    ``wrong-attest``; ``round``: only in that round (every round if None).
    """

    kind: str
    round: int | None = None

    KINDS = ("wrong-shape", "nan", "stale", "scale", "label-flip", "drop", "wrong-attest")

    @classmethod
    def parse(cls, text: str) -> Fault:
        """``kind`` or ``kind@round``."""
        kind, _, at = text.partition("@")
        if kind not in cls.KINDS or (at and not at.isdigit()):
            raise FederatedError(
                f"unknown fault {text!r}; use KIND or KIND@ROUND with KIND one of {', '.join(cls.KINDS)}"
            )
        return cls(kind, int(at) if at else None)

    def active(self, kind: str, round_: int) -> bool:
        """Whether this fault of ``kind`` fires in ``round_``."""
        return self.kind == kind and (self.round is None or self.round == round_)
