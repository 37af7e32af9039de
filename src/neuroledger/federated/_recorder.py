"""Recording rounds on chain off the training's critical path."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Mapping
from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import Web3

from neuroledger.federated._ledger import TaskLedger

__all__ = ["RoundWriter"]

#: Registers round ``r`` as an asset: (round, what was submitted with it, commitments
#: root, parent asset) -> the round's asset id.
RegisterRound = Callable[[int, Any, str, str | None], str]


class RoundWriter:
    """Records rounds on chain off the critical path; registers them as assets at the end.

    A round's commitments root and aggregate digest go on chain as soon as the
    previous round is final (validators attest them while the next round
    trains). The round assets that carry the lineage (each round's parent is
    the one before) are registered when training is over, so that their
    transactions do not compete with training for the machine.
    """

    def __init__(
        self,
        ledger: TaskLedger,
        account: LocalAccount,
        task_id: int,
        *,
        wait_final: Callable[[int], None],
        register_round: RegisterRound | None = None,
        on_recorded: Callable[[int, str], None] | None = None,
    ) -> None:
        self.ledger, self.account, self.task_id = ledger, account, task_id
        self.wait_final, self.register_round = wait_final, register_round
        self.on_recorded = on_recorded
        self.jobs: queue.Queue[tuple[int, Mapping[str, str], str, Any] | None] = queue.Queue()
        self.error: BaseException | None = None
        self.gas: dict[int, int] = {}
        self.assets: list[str] = []
        self.recorded: list[tuple[int, Any, str]] = []
        self.thread = threading.Thread(target=self._loop, name="ledger", daemon=True)
        self.thread.start()

    def submit(
        self, r: int, updates: Mapping[str, str], aggregate: str, payload: Any = None
    ) -> None:
        """Queue round ``r`` (its update digests by party, its aggregate digest) for the
        chain; ``payload`` is handed to ``register_round`` at the end."""
        if self.error is not None:
            raise self.error
        self.jobs.put((r, updates, aggregate, payload))

    def close(self) -> None:
        """Wait for every queued round; then register the round assets."""
        self.jobs.put(None)
        self.thread.join()
        if self.error is not None:
            raise self.error
        if self.register_round is not None:
            for r, payload, root in self.recorded:
                parent = self.assets[-1] if self.assets else None
                self.assets.append(self.register_round(r, payload, root, parent))

    def _loop(self) -> None:
        while (job := self.jobs.get()) is not None:
            if self.error is not None:
                continue
            try:
                self._record(*job)
            except BaseException as exc:  # surfaced to the coordinator's thread
                self.error = exc

    def _record(self, r: int, updates: Mapping[str, str], aggregate: str, payload: Any) -> None:
        if r > 1:
            self.wait_final(r - 1)
        # The protocol keys updates by participant address; Flower's adapter keys them by
        # node id and records no contributors (an expired task then shares out equally).
        contributors = [a for a in updates if Web3.is_address(a)]
        record = self.ledger.record_digests(
            self.account, self.task_id, r, dict(updates), aggregate, contributors
        )
        self.gas[r] = record.gas_used
        self.recorded.append((r, payload, record.commitments_root))
        if self.on_recorded is not None:
            self.on_recorded(r, record.commitments_root)
