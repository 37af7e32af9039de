"""The compute jobs a home submitted: which gateway, dataset, purpose and identity each
was sent with, so that ``job status ID`` and ``job result ID`` need only the id.

One JSON file in the home (``jobs-submitted.json``), written atomically under a lock, so
two processes submitting at once both keep their job.

>>> import tempfile
>>> from pathlib import Path
>>> jobs = SubmittedJobs(Path(tempfile.mkdtemp()))
>>> jobs.add("j1", gateway="http://127.0.0.1:8700", dataset="ab" * 32, purpose="research",
...          identity="lab")
>>> jobs.get("last")["id"], jobs.get("j1")["purpose"]
('j1', 'research')
"""

from __future__ import annotations

import json
from pathlib import Path

from neuroledger._fs import atomic_write, file_lock
from neuroledger.errors import PrivacyError

__all__ = ["SubmittedJobs"]

#: The most jobs one home remembers (the oldest are forgotten first).
MAX_JOBS = 10_000


class SubmittedJobs:
    """The jobs submitted from one home."""

    def __init__(self, home: Path) -> None:
        self.path = home / "jobs-submitted.json"

    def _load(self) -> dict[str, dict[str, str]]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise PrivacyError(
                f"{self.path} is unreadable ({exc}); move it aside to start a new list"
            ) from None
        if not isinstance(data, dict):
            raise PrivacyError(f"{self.path} is not a JSON object; move it aside")
        return data

    def add(self, job_id: str, *, gateway: str, dataset: str, purpose: str, identity: str) -> None:
        """Remember job ``job_id`` and how it was submitted."""
        with file_lock(self.path.with_name(".jobs-submitted.lock")):
            known = self._load()
            known.pop(job_id, None)
            known[job_id] = {"gateway": gateway, "dataset": dataset, "purpose": purpose,
                             "identity": identity}  # fmt: skip
            while len(known) > MAX_JOBS:
                known.pop(next(iter(known)))
            atomic_write(self.path, json.dumps(known, indent=1).encode())

    def get(self, job_id: str) -> dict[str, str]:
        """What this home knows of job ``job_id`` (``last``: the last job submitted)."""
        known = self._load()
        if job_id == "last" and known:
            job_id = list(known)[-1]
        if job_id not in known:
            raise PrivacyError(
                f"no job {job_id} was submitted from this home; `neuroledger job submit` starts one"
            )
        return {**known[job_id], "id": job_id}
