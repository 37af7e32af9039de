"""The jobs a home submitted: remembered across commands, with a clear error for a bad file."""

from __future__ import annotations

from pathlib import Path

import pytest

from neuroledger.errors import PrivacyError
from neuroledger.privacy import SubmittedJobs


def test_submitted_jobs_survive_a_bad_file_with_a_clear_error(tmp_path: Path) -> None:
    jobs = SubmittedJobs(tmp_path)
    with pytest.raises(PrivacyError, match="no job j9 was submitted"):
        jobs.get("j9")
    jobs.add("j1", gateway="http://g", dataset="d", purpose="p", identity="lab")
    jobs.add("j2", gateway="http://g", dataset="d", purpose="q", identity="lab")
    assert jobs.get("last")["id"] == "j2" and jobs.get("j1")["purpose"] == "p"
    jobs.path.write_text("{not json")
    with pytest.raises(PrivacyError, match=r"unreadable.*move it aside"):
        jobs.get("j1")
