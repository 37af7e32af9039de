"""The compute-to-data sandbox: what an algorithm may and may not do, and the limits."""

from __future__ import annotations

import contextlib
import socket
import threading
from pathlib import Path

import pytest

from neuroledger.errors import ConsentError, SandboxError
from neuroledger.privacy._consent_filter import filter_consent
from neuroledger.privacy._sandbox import JobLimits, declared_outputs, run_sandboxed

LIMITS = JobLimits(memory_mb=512, cpu_seconds=3, wall_seconds=20)
FAILED = "the algorithm failed (exit code 1); the owner has its log"


def _run(tmp_path: Path, code: str, limits: JobLimits = LIMITS):
    algorithm = tmp_path / "algorithm.py"
    algorithm.write_text(code)
    data = tmp_path / "data.csv"
    data.write_text("subject,value\n0xa,1\n0xb,3\n")
    return run_sandboxed(
        algorithm,
        data,
        outputs=declared_outputs(algorithm.read_bytes()),
        limits=limits,
        release_to=tmp_path / "released",
    )


def test_an_algorithm_reads_its_input_and_only_declared_outputs_are_released(
    tmp_path: Path,
) -> None:
    result = _run(
        tmp_path,
        "import sys, json, statistics\n"
        'OUTPUTS = ["summary.json"]\n'
        "rows = open(sys.argv[1]).read().splitlines()[1:]\n"
        "mean = statistics.mean(float(r.split(',')[1]) for r in rows)\n"
        "json.dump({'mean': mean}, open(sys.argv[2] + '/summary.json', 'w'))\n"
        "open(sys.argv[2] + '/raw-copy.csv', 'w').write(open(sys.argv[1]).read())\n",
    )
    assert result.status == "succeeded", result.stderr_tail
    assert list(result.released) == ["summary.json"]
    assert result.withheld == ["raw-copy.csv"]
    assert (tmp_path / "released" / "summary.json").read_text() == '{"mean": 2.0}'
    assert not (tmp_path / "released" / "raw-copy.csv").exists()


@pytest.mark.slow
def test_a_network_connection_fails(tmp_path: Path) -> None:
    """A listener on loopback in the parent's namespace gets no connection from the job."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(5)
    port = server.getsockname()[1]
    accepted: list[object] = []

    def accept() -> None:
        with contextlib.suppress(OSError):
            accepted.append(server.accept())

    thread = threading.Thread(target=accept)
    thread.start()
    result = _run(
        tmp_path,
        'OUTPUTS = ["x"]\nimport socket\n'
        f"socket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
        "open(__import__('sys').argv[2] + '/x', 'w').write('sent')\n",
    )
    server.close()
    thread.join()
    assert result.status == "failed"
    assert result.reason == FAILED  # a fixed category: the job's words stay with the owner
    assert "Error" in result.stderr_tail  # PermissionError (Landlock) or OSError (no route)
    assert accepted == [] and result.released == {}


def test_udp_has_no_route_out(tmp_path: Path) -> None:
    result = _run(
        tmp_path,
        'OUTPUTS = ["x"]\nimport socket\n'
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "s.sendto(b'leak', ('10.0.0.1', 53))\n",
    )
    assert result.status == "failed" and "unreachable" in result.stderr_tail.lower()


def test_writing_outside_the_output_dir_fails(tmp_path: Path) -> None:
    target = tmp_path / "escaped.txt"
    result = _run(tmp_path, f'OUTPUTS = ["x"]\nopen({str(target)!r}, "w").write("data")\n')
    assert result.status == "failed" and result.reason == FAILED
    assert "Error" in result.stderr_tail  # not in the job's world (mount namespace)
    assert not target.exists()


def test_reading_outside_the_allowed_paths_fails(tmp_path: Path) -> None:
    secret = tmp_path / "keystore.json"
    secret.write_text("secret")
    result = _run(tmp_path, f'OUTPUTS = ["x"]\nprint(open({str(secret)!r}).read())\n')
    assert result.status == "failed" and "FileNotFoundError" in result.stderr_tail
    assert "secret" not in result.stderr_tail


def test_the_input_copy_is_read_only(tmp_path: Path) -> None:
    result = _run(tmp_path, 'OUTPUTS = ["x"]\nimport sys\nopen(sys.argv[1], "a").write("x")\n')
    assert result.status == "failed" and "Error" in result.stderr_tail


def test_memory_over_the_limit_is_killed(tmp_path: Path) -> None:
    result = _run(tmp_path, 'OUTPUTS = ["x"]\nblob = bytearray(2 * 1024**3)\n')
    assert (result.status, result.reason) == ("killed", "memory limit of 512 MB")


@pytest.mark.slow
def test_cpu_over_the_limit_is_killed(tmp_path: Path) -> None:
    result = _run(tmp_path, 'OUTPUTS = ["x"]\nwhile True:\n    pass\n')
    assert (result.status, result.reason) == ("killed", "CPU limit of 3 s")


def test_wall_time_over_the_limit_is_killed(tmp_path: Path) -> None:
    limits = JobLimits(memory_mb=512, cpu_seconds=30, wall_seconds=1.5)
    result = _run(tmp_path, 'OUTPUTS = ["x"]\nimport time\ntime.sleep(60)\n', limits)
    assert (result.status, result.reason) == ("killed", "wall-time limit of 1.5 s")
    assert result.seconds < 10


def test_a_missing_declared_output_fails_the_job(tmp_path: Path) -> None:
    result = _run(
        tmp_path,
        'OUTPUTS = ["a.json", "b.json"]\nimport sys\nopen(sys.argv[2] + "/a.json", "w").write("{}")\n',
    )
    assert result.status == "failed" and "b.json" in result.reason


@pytest.mark.parametrize(
    "code",
    [
        "print('no outputs')\n",
        "OUTPUTS = []\n",
        "OUTPUTS = ['../escape']\n",
        "OUTPUTS = compute()\n",
        "def (:\n",
    ],
)
def test_outputs_must_be_declared_as_plain_names(code: str) -> None:
    with pytest.raises(SandboxError):
        declared_outputs(code.encode())


def test_consent_filter_drops_withdrawn_subjects(tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    src.write_text("subject,value\n0xAA,1\ndid:ethr:0x7a69:0xbb,2\n0xcc,3\n")
    kept, excluded = filter_consent(src, tmp_path / "out.csv", {"0xaa", "0xbb"})
    assert (kept, excluded) == (1, 2)
    assert (tmp_path / "out.csv").read_text().splitlines() == ["subject,value", "0xcc,3"]
    other = tmp_path / "plain.bin"
    other.write_bytes(b"\x00\x01no csv")
    with pytest.raises(ConsentError, match="--no-subjects"):
        filter_consent(other, tmp_path / "copy.bin", {"0xaa"})
    assert filter_consent(other, tmp_path / "copy.bin", {"0xaa"}, per_subject=False) == (-1, 0)
    assert (tmp_path / "copy.bin").read_bytes() == b"\x00\x01no csv"
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbfSubject ;value\r\n0xAA;1\r\n;2\r\n0xcc;3\r\n")
    assert filter_consent(bom, tmp_path / "bom-out.csv", {"0xaa"}) == (1, 2)  # empty subject out
