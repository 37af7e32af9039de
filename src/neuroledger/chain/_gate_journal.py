"""Where the gate keeps the chain durable: its journal writer and snapshot policy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from neuroledger.chain._journal import (
    JournalWriter,
)

__all__ = ["SNAPSHOT_MIN_BYTES", "SNAPSHOT_RATIO", "GateJournal"]


#: A snapshot is taken when the journal since the last one reaches this many bytes, or this
#: fraction of the last snapshot's size, whichever is larger: the durable cost of a write
#: stays a constant on average, and a replay after a crash is bounded by the state's size.
SNAPSHOT_MIN_BYTES = 8 * 1024 * 1024


SNAPSHOT_RATIO = 0.5


class GateJournal:
    """Where the gate keeps the chain durable: the journal and the snapshot file."""

    def __init__(self, writer: JournalWriter, state_path: Path, state_bytes: int) -> None:
        self.writer = writer
        self.state_path = state_path
        self.state_bytes = state_bytes  # size of the last snapshot
        self.error: str | None = None  # why a record could not be written (until a snapshot)

    def append(self, *records: dict[str, Any]) -> None:
        """Append ``records``; after a failed write nothing more goes into that segment (a cut
        line may only end a segment), and syncs fail until a snapshot holds everything."""
        if self.error is not None:
            return
        try:
            self.writer.append(*records)
        except OSError as exc:
            self.error = f"the chain journal could not be written ({exc})"

    def wants_snapshot(self) -> bool:
        """Whether the journal has grown enough since the last snapshot."""
        limit = max(SNAPSHOT_MIN_BYTES, int(SNAPSHOT_RATIO * self.state_bytes))
        return self.error is not None or self.writer.written >= limit
