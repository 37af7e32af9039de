"""Where privacy records its decisions, without depending on how logs are kept.

The gateway and the job queue write every access decision and every job's outcome to an
:class:`AuditSink`, a protocol this package owns; :class:`neuroledger.audit.AuditLog`
satisfies it. Events are JSON objects with the EU AI Act Art. 12 record fields the audit
package defines (``system``, ``event_type``, ``start``, ``end``, ``input_digest``,
``reference_data_id``, ``output_digest``, ``operator``, ``risk_flag``, ``details``).

>>> access_event("access.allowed", start="2026-01-01T00:00:00Z", risk=False, details={"a": 1})
{'system': 'neuroledger-gateway', 'event_type': 'access.allowed', 'start': '2026-01-01T00:00:00Z', 'details': {'a': 1}}
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any, Protocol

__all__ = ["AuditSink", "access_event", "job_event"]


class AuditSink(Protocol):
    """Takes one event (a JSON object); the future resolves once it is durable."""

    def submit(self, event: dict[str, Any]) -> Future[Any]:
        """Queue ``event`` for the log."""
        ...


def _event(system: str, event_type: str, *, risk: bool, **fields: Any) -> dict[str, Any]:
    event: dict[str, Any] = {"system": system, "event_type": event_type}
    event.update((k, v) for k, v in fields.items() if v not in (None, {}, []))
    if risk:
        event["risk_flag"] = True
    return event


def access_event(
    event_type: str,
    *,
    start: str,
    risk: bool,
    details: dict[str, Any],
    input_digest: str | None = None,
    asset: str | None = None,
    operator: str | None = None,
) -> dict[str, Any]:
    """An event of the access gateway: a decision on a request, or a summary of denials."""
    return _event(
        "neuroledger-gateway", event_type, risk=risk, start=start, input_digest=input_digest,
        reference_data_id=asset, operator=operator, details=details,
    )  # fmt: skip


def job_event(
    status: str,
    *,
    start: str,
    end: str,
    algorithm: str,
    dataset: str,
    outputs: str | None,
    operator: str,
    details: dict[str, Any],
) -> dict[str, Any]:
    """An event of the compute-job queue: one finished job and what it released."""
    return _event(
        "neuroledger-jobs", f"job.{status}", risk=status != "succeeded", start=start, end=end,
        input_digest=algorithm, reference_data_id=dataset, output_digest=outputs,
        operator=operator, details=details,
    )  # fmt: skip
