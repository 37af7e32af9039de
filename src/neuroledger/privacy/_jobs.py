"""Compute-to-data jobs at the owner's side: checked, queued, run confined, outputs registered.

A job names a dataset in the owner's vault and carries an algorithm: source
whose content digest is that of a code asset the owner approved for that
dataset on chain (the job records that asset's id). The owner's worker decrypts the data into a private directory, drops
the records of data subjects who withdrew consent to the job's purpose (CSV
files with a ``subject`` column), runs the algorithm in the sandbox, releases
only its declared outputs, and registers each as a ``job-output`` asset whose
parents are the dataset and the algorithm. Jobs and their states live in
``<root>/<job id>/job.json``; a restart requeues queued jobs and fails the one
that was running.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import queue
import secrets
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from neuroledger._fs import atomic_write
from neuroledger.errors import (
    AccessDeniedError,
    ConsentError,
    DecryptError,
    NeuroLedgerError,
    PrivacyError,
    SandboxError,
)
from neuroledger.privacy._audit import AuditSink, job_event
from neuroledger.privacy._consent_filter import filter_consent
from neuroledger.privacy._sandbox import JobLimits, declared_outputs, run_sandboxed
from neuroledger.privacy._service import PrivateData

__all__ = ["Job", "Jobs", "output_commitment"]

log = logging.getLogger(__name__)

#: The largest algorithm accepted (bytes of Python source).
MAX_ALGORITHM = 256 * 1024


@dataclass
class Job:
    """One job and what became of it."""

    id: str
    dataset: str
    algorithm: str  # the approved code asset's id
    requester: str  # address
    purpose: str
    status: str = "queued"  # queued, running, succeeded, failed, killed
    reason: str = ""
    created: float = field(default_factory=time.time)
    finished: float | None = None
    outputs: dict[str, dict[str, str]] = field(default_factory=dict)  # name -> asset, salt
    withheld: int = 0  # how many files the job wrote but did not declare (names: owner only)
    records: int | None = None
    excluded: int | None = None

    def to_json(self) -> dict[str, Any]:
        """The job as a JSON object."""
        return asdict(self)


def _iso(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


class Jobs:
    """The job queue of one data owner, with one worker thread."""

    def __init__(
        self,
        data: PrivateData,
        *,
        owner: str,
        root: Path,
        limits: JobLimits | None = None,
        audit: AuditSink | None = None,
    ) -> None:
        self.data = data
        self.owner = owner
        self.root = root
        self.limits = limits or JobLimits()
        self.audit = audit
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._lock = threading.Lock()
        self._worker: threading.Thread | None = None
        root.mkdir(parents=True, exist_ok=True)
        for job in self._all():
            if job.status == "running":
                job.status, job.reason, job.finished = (
                    "failed",
                    "interrupted by a restart",
                    time.time(),
                )
                self._save(job)
            elif job.status == "queued":
                self._queue.put(job.id)
        if not self._queue.empty():
            self._start()

    # -- records -----------------------------------------------------------------------
    def _path(self, job_id: str) -> Path:
        if len(job_id) != 32 or any(c not in "0123456789abcdef" for c in job_id):
            raise PrivacyError(f"{job_id!r} is not a job id (32 hex digits)")
        return self.root / job_id

    def _approved_assets(self, dataset: str, digest: str) -> list[str]:
        """Code assets with content ``digest`` approved for ``dataset``; the index is read
        from the chain again only when what it already holds has none (a new registration)."""
        provenance = self.data.provenance

        def approved() -> list[str]:
            return [
                asset for asset in provenance.index.by_digest(digest)
                if self.data.grants.is_approved(dataset, asset)
            ]  # fmt: skip

        found = approved()
        if not found:
            provenance.sync()
            found = approved()
        return found

    def _save(self, job: Job) -> None:
        atomic_write(self._path(job.id) / "job.json", json.dumps(job.to_json()).encode())

    def _all(self) -> list[Job]:
        jobs = []
        for path in sorted(self.root.glob("*/job.json")):
            jobs.append(Job(**json.loads(path.read_text())))
        return jobs

    def get(self, job_id: str) -> Job:
        """Job ``job_id``."""
        try:
            return Job(**json.loads((self._path(job_id) / "job.json").read_text()))
        except FileNotFoundError:
            raise PrivacyError(f"no job {job_id}; `neuroledger job submit` starts one") from None

    def output(self, job_id: str, name: str) -> Path:
        """The released output ``name`` of a finished job."""
        job = self.get(job_id)
        if name not in job.outputs:
            raise PrivacyError(
                f"job {job_id} released no output named {name!r} (released: "
                f"{', '.join(job.outputs) or 'none'})"
            )
        return self._path(job_id) / "outputs" / name

    # -- submission --------------------------------------------------------------------
    def submit(self, dataset: str, *, requester: str, purpose: str, code: bytes) -> Job:
        """Check and queue a job; raise :class:`AccessDeniedError` if its algorithm is not approved."""
        if len(code) > MAX_ALGORITHM:
            raise SandboxError(
                f"the algorithm is over {MAX_ALGORITHM // 1024} KiB; send the code only"
            )
        outputs = declared_outputs(code)
        self.data.vault.entry(dataset)  # raises if the dataset is not in this vault
        job = Job(id=secrets.token_hex(16), dataset=dataset, algorithm="", requester=requester,
                  purpose=purpose)  # fmt: skip
        directory = self._path(job.id)
        directory.mkdir(parents=True)
        (directory / "algorithm.py").write_bytes(code)
        digest = self.data.provenance.manifest(directory / "algorithm.py", use_cache=False).digest
        # Approvals name a code asset; this content may be registered by several identities,
        # each under its own id: the job runs as the one the owner approved.
        approved = self._approved_assets(dataset, digest)
        if not approved:
            (directory / "algorithm.py").unlink()
            directory.rmdir()
            raise AccessDeniedError(
                f"algorithm {digest[:12]} is not approved for dataset {dataset[:12]}; the "
                "owner approves it with `neuroledger grant approve DATASET ALGORITHM`"
            )
        job.algorithm = approved[0]
        (directory / "outputs.json").write_text(json.dumps(outputs))
        self._save(job)
        self._queue.put(job.id)
        self._start()
        return job

    def _start(self) -> None:
        with self._lock:
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._run, name="jobs", daemon=True)
                self._worker.start()

    def _run(self) -> None:
        while True:
            job_id = self._queue.get()
            if job_id is None:
                return
            try:
                self.run(job_id)
            except Exception as exc:  # a bug, not a job's fault: record it, and go on
                log.exception("job %s failed", job_id)
                job = self.get(job_id)
                if job.status in ("queued", "running"):
                    job.status, job.finished = "failed", time.time()
                    job.reason = (
                        f"internal error ({type(exc).__name__}: {exc}); see the gateway's log"
                    )
                    self._save(job)

    def wait(self, job_id: str, timeout: float = 300.0) -> Job:
        """Block until job ``job_id`` is finished."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.get(job_id)
            if job.status not in ("queued", "running"):
                return job
            if time.monotonic() > deadline:
                raise PrivacyError(f"job {job_id} is still {job.status} after {timeout:g} s")
            time.sleep(0.05)

    def close(self) -> None:
        """Stop the worker after the running job."""
        self._queue.put(None)
        if self._worker is not None:
            self._worker.join(timeout=self.limits.wall_seconds + 10)

    # -- running -----------------------------------------------------------------------
    def run(self, job_id: str) -> Job:
        """Run a queued job now (the worker calls this).

        What the requester sees (the job record, the audit log) holds fixed reasons,
        counts and commitments only: the job's own output on stderr, the names of
        files it was not allowed to release and the cause of an owner-side failure
        stay in ``<job>/job.log`` and ``<job>/owner.json``, for the owner.
        """
        job = self.get(job_id)
        if job.status != "queued":
            return job
        job.status = "running"
        self._save(job)
        directory = self._path(job_id)
        outputs = json.loads((directory / "outputs.json").read_text())
        owner_notes: dict[str, Any] = {}
        try:
            with tempfile.TemporaryDirectory(prefix="nl-data-") as tmp:
                plain = Path(tmp) / "plain"
                with open(plain, "wb") as out:
                    self.data.vault.decrypt(
                        job.dataset, identity=self.data.identity(self.owner),
                        private=self.data.keystore.x25519_private(self.owner), out=out,
                    )  # fmt: skip
                entry = self.data.vault.entry(job.dataset)
                usable = Path(tmp) / entry.name
                kept, excluded = filter_consent(plain, usable, self.data.withdrawn(job.purpose),
                                                per_subject=entry.per_subject)  # fmt: skip
                plain.unlink()
                job.records = None if kept < 0 else kept
                job.excluded = excluded
                result = run_sandboxed(directory / "algorithm.py", usable, outputs=outputs,
                                       limits=self.limits, release_to=directory / "outputs",
                                       log_path=directory / "job.log")  # fmt: skip
        except (ConsentError, SandboxError) as exc:  # our own words, about the dataset or machine
            job.status, job.reason = "failed", str(exc)
        except DecryptError as exc:
            job.status, job.reason = "failed", "the dataset does not decrypt with the owner's key"
            owner_notes["cause"] = str(exc)
        except (NeuroLedgerError, OSError, ValueError, csv.Error) as exc:
            # A full disk, a chain that is down: the cause may quote data, so the owner keeps it.
            job.status, job.reason = "failed", "the owner's side failed before the job ran"
            owner_notes["cause"] = f"{type(exc).__name__}: {exc}"
            log.warning("job %s failed on the owner's side: %s", job_id, owner_notes["cause"])
        else:
            job.status, job.reason = result.status, result.reason
            job.withheld = len(result.withheld)
            owner_notes["withheld"] = result.withheld
            if result.status == "succeeded":
                try:
                    self._register_outputs(job, result.released)
                except NeuroLedgerError as exc:  # the chain refused or is down: nothing released
                    job.status, job.reason, job.outputs = (
                        "failed", "the outputs could not be registered on chain", {},
                    )  # fmt: skip
                    owner_notes["cause"] = str(exc)
        job.finished = time.time()
        if owner_notes:
            atomic_write(directory / "owner.json", json.dumps(owner_notes).encode())
        self._save(job)
        if self.audit is not None:
            self.audit.submit(job_event(
                job.status, start=_iso(job.created), end=_iso(job.finished or time.time()),
                algorithm=job.algorithm, dataset=job.dataset,
                outputs=",".join(o["asset"] for o in job.outputs.values()) or None,
                operator=self.data.did(job.requester),
                details={"job": job.id, "purpose": job.purpose, "reason": job.reason,
                         "records": job.records, "excluded_records": job.excluded,
                         "outputs": sorted(job.outputs), "withheld": job.withheld},
            )).result()  # durable before the job is reported done  # fmt: skip
        return job

    def _register_outputs(self, job: Job, released: dict[str, Path]) -> None:
        """Register each output by a salted commitment, never by its plain digest.

        A result such as ``{"n": 3}`` has so little entropy that its SHA-256 on a
        public chain gives it away. The registered asset is the commitment document
        of :func:`output_commitment` (a random 256-bit salt); the salt goes to the
        requester with the job, who can recompute the asset id from the output.
        """
        provenance = self.data.provenance
        for name, path in sorted(released.items()):
            salt = secrets.token_bytes(32)
            document = output_commitment(job.id, name, salt, path.read_bytes())
            registration = provenance.register_document(
                document, kind="job-output", owner=self.owner,
                parents=[job.dataset, job.algorithm],
            )  # fmt: skip
            job.outputs[name] = {"asset": registration.asset_id, "salt": salt.hex()}


def output_commitment(job_id: str, name: str, salt: bytes, content: bytes) -> dict[str, str]:
    """The document registered for a job output: its name and ``SHA-256(salt || content)``.

    Its content digest is the SHA-256 of the document's RFC 8785 form, so the
    requester, holding the output and the salt, recomputes it and finds the asset
    on chain (the registry's event carries the digest; the id is derived from the
    registering owner and the digest).
    """
    return {
        "type": "neuroledger/job-output-commitment/v1",
        "job": job_id,
        "output": name,
        "commitment": hashlib.sha256(salt + content).hexdigest(),
    }
