"""A whole task on one machine with no chain: the owner here, each party a thread or a
forked process. For experiments and baselines: the same protocol, board and store as a
deployment, minus the ledger."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from neuroledger.errors import FederatedError
from neuroledger.federated._board import Board
from neuroledger.federated._coordinator import Coordinator, RunReport
from neuroledger.federated._faults import Fault
from neuroledger.federated._models import LogisticModel
from neuroledger.federated._participant import Participant
from neuroledger.federated._protocol import participant_path
from neuroledger.federated._spec import TaskSpec
from neuroledger.federated._vectors import Vector, put_vector

__all__ = ["Workers", "run_local"]


class Workers:
    """Run callables as threads, or as forked OS processes (one GIL each, as in deployment)."""

    def __init__(self, jobs: list[Callable[[], Any]], *, processes: bool = False) -> None:
        import multiprocessing

        self.errors: list[BaseException] = []
        self.processes = processes
        self.handles: list[Any] = []
        for i, job in enumerate(jobs):
            if processes:
                handle: Any = multiprocessing.get_context("fork").Process(
                    target=job, name=f"party-{i}", daemon=True
                )
            else:
                handle = threading.Thread(target=self._guard, args=(job,), name=f"party-{i}")
            handle.start()
            self.handles.append(handle)

    def _guard(self, job: Callable[[], Any]) -> None:
        try:
            job()
        except BaseException as exc:  # reported by join()
            self.errors.append(exc)

    def join(self, timeout: float = 300.0) -> None:
        """Wait for every worker; raise the first failure."""
        for handle in self.handles:
            handle.join(timeout)
        if self.errors:
            raise self.errors[0]
        failed = [h.name for h in self.handles if self.processes and h.exitcode != 0]
        if failed:
            raise FederatedError(f"participant processes failed: {', '.join(failed)}")


def run_local(
    shared: Path,
    template: TaskSpec,
    parties: list[tuple[Vector, NDArray[np.int64]]],
    validation: tuple[Vector, NDArray[np.int64]],
    *,
    faults: Mapping[int, Fault] | None = None,
    processes: bool = False,
) -> RunReport:
    """Run a task on this machine with no chain: the owner here, each party a thread or process.

    For experiments and baselines (the same protocol, board and store, minus
    the ledger). ``template``'s owner and initial model are filled in here.
    """
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        NoEncryption,
        PrivateFormat,
        PublicFormat,
    )
    from eth_account import Account

    from neuroledger.store import FileStore

    store = FileStore(shared / "store")
    owner = Account.create()
    model = LogisticModel(template.features, template.classes)
    spec = TaskSpec(
        **{
            **template.to_json(),
            "owner": str(owner.address),
            "initial_model": put_vector(store, model.init()),
        }
    ).check()
    board = Board(shared, spec.task_id)
    accounts = [Account.create() for _ in parties]
    keys = [X25519PrivateKey.generate() for _ in parties]
    public = {
        str(a.address): k.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        for a, k in zip(accounts, keys, strict=True)
    }
    for a in accounts:
        board.post(participant_path(str(a.address)), {"identity": a.address}, a)

    def serve(i: int) -> None:
        private = keys[i].private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        Participant(
            board,
            store,
            spec,
            accounts[i],
            parties[i][0],
            parties[i][1],
            private,
            public.__getitem__,
            fault=(faults or {}).get(i),
            timeout=120,
        ).run()

    workers = Workers(
        [lambda i=i: serve(i) for i in range(len(parties))],  # type: ignore[misc]
        processes=processes,
    )
    coordinator = Coordinator(board, store, spec, owner, validation=validation)
    report = coordinator.run(coordinator.wait_participants())
    workers.join()
    return report
