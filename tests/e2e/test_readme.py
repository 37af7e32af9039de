"""The README's "Using the CLI" walkthrough runs as written, in order, on a fresh home.

The shell block is taken from README.md as it is and run by bash with ``set -e`` in an
empty working directory, with ``HOME`` pointing at a temporary directory (so
``~/.neuroledger`` and ``~/.nl-pass`` are fresh) and the venv's ``neuroledger`` first on
``PATH``, as the README tells the user. Any command that fails fails the test.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.anvil

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def readme_walkthrough() -> str:
    """The first ``sh`` block of the README's "Using the CLI" section."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Using the CLI") :]
    match = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert match, "README's 'Using the CLI' section has no sh block"
    return match.group(1)


def test_the_readme_walkthrough_runs_as_written(tmp_path: Path) -> None:
    script = readme_walkthrough()
    home = tmp_path / "user"
    work = tmp_path / "work"
    home.mkdir()
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEUROLEDGER_")}
    env.update(
        HOME=str(home),
        PATH=f"{BIN}:{env['PATH']}",
        # Only the keystore's work factor is lowered, to keep the test short.
        NEUROLEDGER_SCRYPT_N="16384",
    )
    proc = subprocess.Popen(
        ["bash", "-e", "-c", script],
        cwd=work,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # the background processes die with the group if it fails
    )
    try:
        output, _ = proc.communicate(timeout=900)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        pytest.fail(f"the walkthrough did not finish in 15 minutes:\n{output[-4000:]}")
    finally:
        with_home = {**env, "NEUROLEDGER_HOME": str(home / ".neuroledger")}
        subprocess.run([str(BIN / "neuroledger"), "node", "stop"], env=with_home,
                       capture_output=True, timeout=60)  # fmt: skip
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    assert proc.returncode == 0, output[-6000:]
    # What the walkthrough says the user sees.
    assert "Traceback" not in output
    assert json.loads((work / "results" / "summary.json").read_text()) == {"records": 2}
    assert "excluded by withdrawn consent" in output or '"excluded": 1' in output
    results = json.loads((work / "results.json").read_text())
    assert results["rounds"] and len(results["rounds"]) == 3
