"""The age format: round trips at chunk boundaries, interop with the `age` tool and pyrage,
re-wrapping, and every kind of bad ciphertext."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyrage
import pytest

from neuroledger.errors import DecryptError, PrivacyError
from neuroledger.privacy import age
from neuroledger.privacy.age import CHUNK


@pytest.fixture(scope="module")
def age_tool() -> str:
    """The `age` command-line tool (`make setup` installs it from the system packages)."""
    path = shutil.which("age")
    assert path, "the age tool is missing; run `make setup` (it installs Debian's age package)"
    return path


SIZES = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, CHUNK * age.BATCH, CHUNK * age.BATCH + 1,
         3 * CHUNK * age.BATCH + 17]  # fmt: skip


def _keys() -> tuple[bytes, bytes]:
    private = os.urandom(32)
    return private, age.x25519_public(private)


def _seal(data: bytes, *recipients: bytes) -> bytes:
    out = io.BytesIO()
    age.encrypt_stream(io.BytesIO(data), out, list(recipients))
    return out.getvalue()


def _open(blob: bytes, private: bytes) -> bytes:
    out = io.BytesIO()
    age.decrypt_stream(io.BytesIO(blob), out, private)
    return out.getvalue()


@pytest.mark.parametrize("size", SIZES)
def test_round_trip_at_chunk_boundaries(size: int) -> None:
    private, public = _keys()
    data = os.urandom(size)
    blob = _seal(data, public)
    chunks = max(1, -(-size // CHUNK))
    assert len(blob) - blob.index(b"\n--- ") - 49 == 16 + size + 16 * chunks  # payload size
    assert _open(blob, private) == data


def test_several_recipients_each_decrypt() -> None:
    (a, pa), (b, pb) = _keys(), _keys()
    blob = _seal(b"shared", pa, pb)
    assert _open(blob, a) == _open(blob, b) == b"shared"


def test_text_forms_round_trip() -> None:
    private, public = _keys()
    assert age.parse_identity(age.identity_string(private)) == private
    assert age.parse_recipient(age.recipient_string(public)) == public
    assert age.identity_string(private).startswith("AGE-SECRET-KEY-1")
    with pytest.raises(PrivacyError, match="age recipient"):
        age.parse_recipient("age1notakey")
    with pytest.raises(PrivacyError, match="one AGE-SECRET-KEY"):
        age.parse_identity("")


def test_wrong_key_is_refused_with_the_fix() -> None:
    _, public = _keys()
    other, _ = _keys()
    with pytest.raises(DecryptError, match="not encrypted to the given key"):
        _open(_seal(b"x", public), other)


@pytest.mark.parametrize("where", ["header", "mac", "nonce", "first-chunk", "last-chunk"])
def test_a_flipped_byte_anywhere_is_caught(where: str) -> None:
    private, public = _keys()
    blob = bytearray(_seal(os.urandom(3 * CHUNK + 5), public))
    end = blob.index(b"\n--- ") + 1
    header_end = blob.index(b"\n", end) + 1
    position = {
        "header": 30,
        "mac": end + 6,
        "nonce": header_end + 3,
        "first-chunk": header_end + 16 + 100,
        "last-chunk": len(blob) - 3,
    }[where]
    blob[position] ^= 0x01
    with pytest.raises(DecryptError):
        _open(bytes(blob), private)


def test_truncation_and_appended_chunks_are_caught() -> None:
    private, public = _keys()
    blob = _seal(os.urandom(2 * CHUNK), public)
    header_end = blob.index(b"\n", blob.index(b"\n--- ") + 1) + 1
    sealed = CHUNK + 16
    # Cut exactly at a chunk boundary: the remaining last chunk was not sealed as final.
    with pytest.raises(DecryptError, match="chunk 0"):
        _open(blob[: header_end + 16 + sealed], private)
    with pytest.raises(DecryptError, match="truncated"):
        _open(blob[: header_end + 8], private)
    with pytest.raises(DecryptError):
        _open(blob + b"\x00" * 20, private)
    with pytest.raises(DecryptError, match="not an age v1 file"):
        _open(b"PK\x03\x04 not age\nmore", private)
    with pytest.raises(DecryptError, match="truncated or not age"):
        _open(b"PK\x03\x04", private)
    with pytest.raises(DecryptError, match="longer than 64 KiB"):
        _open(b"age-encryption.org/v1\n-> " + b"A" * 70_000, private)


def test_decrypt_file_leaves_no_partial_plaintext(tmp_path: Path) -> None:
    private, public = _keys()
    src = tmp_path / "plain"
    src.write_bytes(os.urandom(5 * CHUNK))
    age.encrypt_file(src, tmp_path / "c.age", [public])
    blob = bytearray((tmp_path / "c.age").read_bytes())
    blob[-40] ^= 1  # corrupt the last chunk: the first four decrypt fine
    (tmp_path / "bad.age").write_bytes(bytes(blob))
    with pytest.raises(DecryptError):
        age.decrypt_file(tmp_path / "bad.age", tmp_path / "out", private)
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_rewrap_gives_a_new_party_the_same_payload() -> None:
    (owner, owner_pub), (lab, lab_pub) = _keys(), _keys()
    blob = _seal(b"records" * 1000, owner_pub)
    src = io.BytesIO(blob)
    header = age.rewrap(src, owner, [lab_pub])
    payload = blob[src.tell() :]
    assert _open(header + payload, lab) == b"records" * 1000
    with pytest.raises(DecryptError):
        _open(header + payload, owner)  # the new header is for the lab only
    with pytest.raises(DecryptError, match="not encrypted to the given key"):
        age.rewrap(io.BytesIO(blob), lab, [lab_pub])  # only a key holder can re-wrap


@pytest.mark.slow
def test_streaming_uses_bounded_memory(tmp_path: Path) -> None:
    """A file larger than the process's address-space limit round-trips (in a child)."""
    script = tmp_path / "big.py"
    script.write_text(
        f"""
import os, resource, sys, hashlib
sys.path.insert(0, {str(Path(age.__file__).parents[2])!r})
from neuroledger.privacy import age
size = 512 * 1024 * 1024
private = os.urandom(32)
with open(sys.argv[1], "wb") as f:
    block = os.urandom(1 << 20)
    for _ in range(size >> 20):
        f.write(block)
resource.setrlimit(resource.RLIMIT_AS, (448 * 1024 * 1024,) * 2)  # smaller than the file
age.encrypt_file(sys.argv[1], sys.argv[1] + ".age", [age.x25519_public(private)])
age.decrypt_file(sys.argv[1] + ".age", sys.argv[1] + ".out", private)
def digest(p):
    h = hashlib.sha256()
    with open(p, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()
print(digest(sys.argv[1]) == digest(sys.argv[1] + ".out"), os.path.getsize(sys.argv[1] + ".out"))
"""
    )
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "data")],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", str(512 * 1024 * 1024)]


@pytest.mark.parametrize("size", [0, 1, CHUNK, CHUNK + 1, 3 * CHUNK * age.BATCH + 17])
def test_interop_with_the_age_tool(tmp_path: Path, size: int, age_tool: str) -> None:
    AGE = age_tool
    private, public = _keys()
    key_file = tmp_path / "key.txt"
    key_file.write_text(age.identity_string(private) + "\n")
    data = os.urandom(size)
    (tmp_path / "plain").write_bytes(data)
    # ours -> age (read from stdout: age creates no -o file for an empty plaintext)
    age.encrypt_file(tmp_path / "plain", tmp_path / "ours.age", [public])
    done = subprocess.run(
        [AGE, "-d", "-i", str(key_file), str(tmp_path / "ours.age")],
        capture_output=True,
        check=True,
    )
    assert done.stdout == data
    # age -> ours
    subprocess.run([AGE, "-r", age.recipient_string(public), "-o", str(tmp_path / "theirs.age"),
                    str(tmp_path / "plain")], check=True)  # fmt: skip
    age.decrypt_file(tmp_path / "theirs.age", tmp_path / "b.out", private)
    assert (tmp_path / "b.out").read_bytes() == data


def test_age_decrypts_a_rewrapped_file(tmp_path: Path, age_tool: str) -> None:
    AGE = age_tool
    (owner, owner_pub), (lab, lab_pub) = _keys(), _keys()
    (tmp_path / "plain").write_bytes(b"hospital records\n" * 5000)
    subprocess.run([AGE, "-r", age.recipient_string(owner_pub), "-o", str(tmp_path / "c.age"),
                    str(tmp_path / "plain")], check=True)  # fmt: skip
    with open(tmp_path / "c.age", "rb") as src:
        header = age.rewrap(src, owner, [lab_pub])
        payload = src.read()
    (tmp_path / "lab.age").write_bytes(header + payload)
    (tmp_path / "lab.key").write_text(age.identity_string(lab) + "\n")
    done = subprocess.run([AGE, "-d", "-i", str(tmp_path / "lab.key"), str(tmp_path / "lab.age")],
                          capture_output=True, check=True)  # fmt: skip
    assert done.stdout == b"hospital records\n" * 5000


def test_interop_with_pyrage() -> None:
    private, public = _keys()
    theirs = pyrage.x25519.Identity.from_str(age.identity_string(private))
    data = os.urandom(CHUNK * 2 + 3)
    assert pyrage.decrypt(_seal(data, public), [theirs]) == data
    blob = pyrage.encrypt(data, [pyrage.x25519.Recipient.from_str(age.recipient_string(public))])
    assert _open(blob, private) == data
