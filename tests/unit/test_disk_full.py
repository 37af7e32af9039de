"""A full disk: one clear error, no temporary file left behind, nothing half replaced.

The file system is a real 64 KiB tmpfs, mounted in a private mount namespace
(``unshare``), so the kernel itself answers ENOSPC.
"""

from __future__ import annotations

import errno
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from neuroledger.chain._tx import TransactionSender
from neuroledger.errors import DiskFullError

NL = str(Path(sys.executable).parent / "neuroledger")


def _in_tiny_fs(tmp_path: Path, command: str) -> subprocess.CompletedProcess[str]:
    """Run ``command`` (sh) with ``$FS`` a 64 KiB tmpfs of its own."""
    if shutil.which("unshare") is None:
        pytest.fail("util-linux `unshare` is required (apt-get install util-linux)")
    fs = tmp_path / "fs"
    fs.mkdir()
    script = f"mount -t tmpfs -o size=64k tmpfs {fs} && FS={fs} && {command}"
    proc = subprocess.run(
        ["unshare", "--mount", "--map-root-user", "sh", "-c", script],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    if "mount" in proc.stderr and "permission denied" in proc.stderr.lower():
        pytest.fail(f"cannot mount a tmpfs in a user namespace here: {proc.stderr.strip()}")
    return proc


_WRITER = """
import os
from pathlib import Path
from neuroledger._fs import atomic_write
from neuroledger.errors import DiskFullError
fs = Path(os.environ["FS"])
atomic_write(fs / "state.json", b"old")
try:
    atomic_write(fs / "state.json", os.urandom(200_000))
except DiskFullError as exc:
    print("FULL", exc)
print(sorted(p.name for p in fs.iterdir()), (fs / "state.json").read_bytes())
"""


def test_atomic_write_on_a_full_disk_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    script = tmp_path / "writer.py"
    script.write_text(_WRITER)
    proc = _in_tiny_fs(tmp_path, f'export FS; "{sys.executable}" "{script}"')
    assert proc.returncode == 0, proc.stderr
    assert "FULL no space left on the device to write" in proc.stdout
    assert "['state.json'] b'old'" in proc.stdout  # no .tmp left; the old content intact


@pytest.mark.slow
def test_a_full_disk_gives_the_cli_one_line(tmp_path: Path) -> None:
    proc = _in_tiny_fs(tmp_path, f'"{NL}" fl prepare "$FS/parties" --dataset digits --parties 3')
    assert proc.returncode == DiskFullError.exit_code, proc.stderr
    assert "no space left on the device" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


class _Receipt:
    tx_hash = "0x" + "ab" * 32
    status = 1


def test_a_write_mined_before_the_disk_filled_says_it_may_have_been_applied() -> None:
    """Saving the node's state after the receipts fails with ENOSPC (injected here: the
    node's save is the only step between mining and reporting)."""

    def save(_hashes: list[str]) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", "anvil-state.json")

    sender = TransactionSender.__new__(TransactionSender)
    sender.on_confirmed = save
    sender._estimate = lambda calls: [21000] * len(calls)  # type: ignore[method-assign]
    sender.fees = type("F", (), {"quote": staticmethod(lambda w3: (1, 1))})()
    sender.w3 = None
    sender._check_funds = lambda *a: None  # type: ignore[method-assign]
    sender._broadcast = lambda *a: ([b""], ["0x" + "ab" * 32])  # type: ignore[method-assign]
    sender._collect = lambda *a: [_Receipt()]  # type: ignore[method-assign]
    with pytest.raises(DiskFullError, match=r"were mined .* and may have been applied"):
        sender.send_batch([object()])  # type: ignore[list-item]
