"""Every shell block of the README and of docs/*.md runs as written, in order, on a fresh home.

Each block is taken from its file as it is and run by bash with ``set -e`` in an empty
working directory, with ``HOME`` pointing at a temporary directory (so ``~/.neuroledger``
and ``~/.nl-pass`` are fresh) and the venv's ``neuroledger`` first on ``PATH``. The README's
walkthrough starts from nothing; a doc's block starts after the README's set-up, as each
doc says. A block that is not run is listed in ``SKIPPED`` with the reason, so a new
block cannot escape the test unnoticed. Any command that fails fails the test.
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

#: The README's set-up, which every doc's walkthrough assumes.
SETUP = """
echo 'a long passphrase' > ~/.nl-pass && chmod 600 ~/.nl-pass
export NEUROLEDGER_PASSPHRASE_FILE=~/.nl-pass
neuroledger init
"""

#: (file, first line of the block) -> why the block is not run here.
SKIPPED = {
    ("README.md", "make demo"): "the two set-up commands; CI runs `make test`, and the fresh-"
    "clone check before each release runs both",
    ("docs/privacy.md", "neuroledger data key lab -o lab.key"): "a few steps of the walkthrough "
    "further down the same page, which runs them",
    ("docs/federated.md", "flower-superlink --insecure --port 8000"): "needs a Flower app "
    "project and three long-running servers; tests/e2e/test_flower_deployment.py runs these "
    "commands",
}


def shell_blocks(relative: str) -> list[str]:
    text = (ROOT / relative).read_text()
    return re.findall(r"^```sh\n(.*?)^```", text, re.DOTALL | re.MULTILINE)


def _cases() -> list[tuple[str, str]]:
    cases = []
    for relative in ["README.md", *sorted(f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md"))]:
        for block in shell_blocks(relative):
            first = block.strip().splitlines()[0].split("  #")[0].strip()
            if (relative, first) not in SKIPPED:
                cases.append((relative, block))
    return cases


def test_every_skipped_block_still_exists() -> None:
    firsts = {
        (relative, block.strip().splitlines()[0].split("  #")[0].strip())
        for relative in ["README.md", "docs/privacy.md", "docs/federated.md"]
        for block in shell_blocks(relative)
    }
    assert set(SKIPPED) <= firsts, set(SKIPPED) - firsts


def run_block(script: str, tmp_path: Path) -> tuple[int, str, Path]:
    home = tmp_path / "user"
    work = tmp_path / "work"
    home.mkdir()
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEUROLEDGER_")}
    env.update(
        HOME=str(home),
        PATH=f"{BIN}:{env['PATH']}",
        NEUROLEDGER_SCRYPT_N="16384",  # only the keystore's work factor is lowered, for speed
    )
    proc = subprocess.Popen(
        ["bash", "-e", "-c", script], cwd=work, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True,  # background processes die with the group if it fails
    )  # fmt: skip
    try:
        output, _ = proc.communicate(timeout=900)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        output += "\n(did not finish in 15 minutes)"
    finally:
        with_home = {**env, "NEUROLEDGER_HOME": str(home / ".neuroledger")}
        subprocess.run([str(BIN / "neuroledger"), "node", "stop"], env=with_home,
                       capture_output=True, timeout=60)  # fmt: skip
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    return proc.returncode, output, work


@pytest.mark.parametrize(
    ("relative", "block"),
    _cases(),
    ids=lambda v: v if str(v).endswith(".md") else "",
)
def test_walkthrough_runs_as_written(relative: str, block: str, tmp_path: Path) -> None:
    script = block if relative == "README.md" else SETUP + block
    code, output, work = run_block(script, tmp_path)
    assert code == 0, f"{relative}:\n{output[-6000:]}"
    assert "Traceback" not in output
    if relative == "README.md":  # what the README says the user sees
        assert json.loads((work / "results" / "summary.json").read_text()) == {"records": 2}
        assert "records excluded by withdrawn consent: 1" in output
        assert len(json.loads((work / "results.json").read_text())["rounds"]) == 3
