"""The agent SDK: record events in a tamper-evident log, durably, from any thread.

>>> import tempfile
>>> from pathlib import Path
>>> from neuroledger.audit._note import NoteSigner
>>> root = Path(tempfile.mkdtemp()) / "log"
>>> signer = NoteSigner.generate("log.example/agent")
>>> with AuditLog.create(root, signer=signer) as log:
...     receipt = log.record(AuditEvent(system="triage", event_type="decision"))
...     receipt.index
0

Calls to :meth:`AuditLog.record` from many threads are group-committed: a
background writer appends whatever is waiting as one batch (up to
``batch_size`` entries, or after ``max_delay`` seconds), makes it durable, and
only then returns each caller its :class:`Receipt`.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from neuroledger.audit._entries import AuditEvent, digest_of_value, encode_event
from neuroledger.audit._log import TileLog
from neuroledger.audit._note import NoteSigner
from neuroledger.core import leaf_hash
from neuroledger.errors import AuditError

__all__ = ["AuditLog", "Receipt", "Span"]

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True)
class Receipt:
    """Proof of logging: the entry's index and leaf hash, given once it is durable."""

    index: int
    leaf_hash: bytes


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class Span:
    """An event being timed by :meth:`AuditLog.span`; set ``output`` before it ends."""

    system: str
    event_type: str
    start: str
    input_digest: str | None = None
    output: Any = None
    risk_flag: bool = False
    details: dict[str, Any] | None = None


class AuditLog:
    """A tile log with group commit, for agents that log many events per second."""

    def __init__(self, log: TileLog, *, batch_size: int = 4096, max_delay: float = 0.005) -> None:
        self.log = log
        self.batch_size = batch_size
        self.max_delay = max_delay
        self._queue: list[tuple[bytes, Future[Receipt]]] = []
        self._cond = threading.Condition()
        self._closed = False
        self._writer = threading.Thread(target=self._run, name="audit-writer", daemon=True)
        self._writer.start()

    @classmethod
    def create(cls, root: Path, *, signer: NoteSigner, **options: Any) -> AuditLog:
        """A new log at ``root`` whose origin is the signer's name."""
        return cls(TileLog.create(root, origin=signer.name, signer=signer), **options)

    @classmethod
    def open(cls, root: Path, *, signer: NoteSigner | None = None, **options: Any) -> AuditLog:
        """An existing log."""
        return cls(TileLog.open(root, signer=signer), **options)

    # -- recording -------------------------------------------------------------------
    def submit(self, event: AuditEvent | dict[str, Any] | bytes) -> Future[Receipt]:
        """Queue an event; the future resolves once it is durable."""
        entry = event if isinstance(event, bytes) else encode_event(event)
        future: Future[Receipt] = Future()
        with self._cond:
            if self._closed:
                raise AuditError("the log is closed")
            self._queue.append((entry, future))
            if len(self._queue) == 1 or len(self._queue) >= self.batch_size:
                self._cond.notify()  # wake the writer: a batch starts, or one is full
        return future

    def record(self, event: AuditEvent | dict[str, Any] | bytes) -> Receipt:
        """Log one event; return its receipt once it is durable."""
        return self.submit(event).result()

    def record_many(self, events: Sequence[AuditEvent | dict[str, Any] | bytes]) -> list[Receipt]:
        """Log many events; return their receipts once all are durable."""
        futures = [self.submit(e) for e in events]
        return [f.result() for f in futures]

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._queue and not self._closed:
                    self._cond.wait()
                if self._queue and len(self._queue) < self.batch_size and not self._closed:
                    self._cond.wait(self.max_delay)  # let a batch gather
                batch, self._queue = self._queue[: self.batch_size], self._queue[self.batch_size :]
                if not batch and self._closed:
                    return
            if not batch:
                continue
            entries = [e for e, _ in batch]
            try:
                first = self.log.append(entries)
            except BaseException as exc:  # the callers see the failure, nothing is acknowledged
                for _, future in batch:
                    future.set_exception(exc)
                continue
            for offset, (entry, future) in enumerate(batch):
                future.set_result(Receipt(index=first + offset, leaf_hash=leaf_hash(entry)))

    # -- helpers for agents ----------------------------------------------------------
    @contextmanager
    def span(self, system: str, event_type: str, *, inputs: Any = None) -> Iterator[Span]:
        """Time a piece of work and log it when the block ends (also when it raises)."""
        span = Span(
            system=system, event_type=event_type, start=_now(),
            input_digest=None if inputs is None else digest_of_value(inputs),
        )  # fmt: skip
        error: BaseException | None = None
        try:
            yield span
        except BaseException as exc:
            error = exc
            raise
        finally:
            details = dict(span.details or {})
            if error is not None:
                details["error"] = type(error).__name__
            self.record(
                AuditEvent(
                    system=system,
                    event_type=event_type,
                    start=span.start,
                    end=_now(),
                    input_digest=span.input_digest,
                    output_digest=None if span.output is None else digest_of_value(span.output),
                    risk_flag=span.risk_flag or error is not None,
                    details=details,
                )
            )

    def traced(
        self, system: str, event_type: str = "call"
    ) -> Callable[[Callable[P, R]], Callable[P, R]]:
        """Decorator: log every call of the function (inputs and output hashed)."""

        def wrap(fn: Callable[P, R]) -> Callable[P, R]:
            @functools.wraps(fn)
            def inner(*args: P.args, **kwargs: P.kwargs) -> R:
                inputs = {
                    "args": [repr(a) for a in args],
                    "kwargs": {k: repr(v) for k, v in kwargs.items()},
                }
                with self.span(system, event_type, inputs=inputs) as span:
                    span.details = {"function": fn.__qualname__}
                    result = fn(*args, **kwargs)
                    span.output = repr(result)
                return result

            return inner

        return wrap

    # -- life cycle ------------------------------------------------------------------
    def checkpoint(self) -> str:
        """Sign and publish a checkpoint of everything recorded so far."""
        self.flush()
        return self.log.checkpoint()

    @contextmanager
    def checkpoints_every(self, seconds: float) -> Iterator[None]:
        """While the block runs, sign a checkpoint every ``seconds`` when the log grew, so
        auditors see entries within that time; one more is signed at the end."""
        stop = threading.Event()

        def loop() -> None:
            while not stop.wait(seconds):
                if self.log.size > self.log.state.checkpoint_size:
                    self.checkpoint()

        signer = threading.Thread(target=loop, name="checkpoints", daemon=True)
        signer.start()
        try:
            yield
        finally:
            stop.set()
            signer.join()
            self.checkpoint()

    def flush(self) -> None:
        """Wait until everything submitted so far is durable."""
        with self._cond:
            pending = [f for _, f in self._queue]
            self._cond.notify()
        for future in pending:
            future.exception()
        deadline = time.monotonic() + 1
        while True:
            with self._cond:
                if not self._queue:
                    return
                self._cond.notify()
            if time.monotonic() > deadline:
                return
            time.sleep(self.max_delay)

    def close(self) -> None:
        """Write what is waiting and stop the writer."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._writer.join()
        self.log.close()

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
