"""Manifests against the OpenSSF model-signing reference, and the hash cache."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import model_signing.hashing as model_signing_hashing
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neuroledger.errors import ManifestError
from neuroledger.provenance import HashCache, Manifest, build_manifest
from neuroledger.provenance._manifest import hash_file


def reference(path: Path, **options) -> list[tuple[str, str]]:
    config = model_signing_hashing.Config()
    if options.get("ignore"):
        config.set_ignored_paths(paths=options["ignore"], ignore_git_paths=True)
    if options.get("allow_symlinks"):
        config.set_allow_symlinks(True)
    manifest = config.hash(path)
    return [(d.identifier, d.digest.digest_hex) for d in manifest.resource_descriptors()]


def ours(path: Path, **options) -> list[tuple[str, str]]:
    return [(f.name, f.digest) for f in build_manifest(path, **options).files]


@pytest.fixture
def model(tmp_path: Path) -> Path:
    root = tmp_path / "model"
    for rel, size in {
        "config.json": 10,
        "a": 1,
        "a.txt": 3,
        "a-b": 2,
        "sub/b": 4,
        "sub.txt": 5,
        "sub/deeper/c d": 6,
        "sub/deeper/ünï": 7,
        "empty": 0,
        ".hidden": 3,
        ".git/HEAD": 4,
        ".gitignore": 2,
        "sub/.git/keep": 2,
        "shards/model-00001-of-00002.safetensors": 300_000,
        "shards/model-00002-of-00002.safetensors": 200_001,
    }.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(size))
    return root


def test_same_files_digests_and_order_as_model_signing(model: Path) -> None:
    assert ours(model) == reference(model)


def test_single_file_matches_model_signing(model: Path) -> None:
    target = model / "shards" / "model-00001-of-00002.safetensors"
    assert ours(target) == reference(target) == [(".", hash_file(target))]


def test_ignore_paths_match_model_signing(model: Path) -> None:
    assert ours(model, ignore=["sub", "a.txt"]) == reference(
        model, ignore=[model / "sub", model / "a.txt"]
    )


def test_symlinked_files_match_model_signing(model: Path) -> None:
    (model / "link.json").symlink_to(model / "config.json")
    (model / "linkdir").symlink_to(model / "sub", target_is_directory=True)
    assert ours(model, allow_symlinks=True) == reference(model, allow_symlinks=True)


def test_subject_digest_matches_model_signing_statement(model: Path) -> None:
    from model_signing._signing import signing as ms_signing

    manifest = build_manifest(model)
    reference_manifest = model_signing_hashing.Config().hash(model)
    statement = ms_signing.Payload(reference_manifest).statement
    subject = statement.pb.subject[0]
    assert subject.digest["sha256"] == manifest.subject_digest
    assert manifest.to_statement()["subject"][0]["digest"]["sha256"] == manifest.subject_digest


def test_statement_round_trip_and_consistency_check(model: Path) -> None:
    manifest = build_manifest(model)
    again = Manifest.from_statement(manifest.to_statement())
    assert again.digest == manifest.digest
    assert [f.name for f in again.files] == [f.name for f in manifest.files]
    forged = manifest.to_statement()
    forged["predicate"]["resources"][0]["digest"] = "00" * 32
    with pytest.raises(ManifestError, match="inconsistent"):
        Manifest.from_statement(forged)


def test_content_digest_covers_names(model: Path) -> None:
    before = build_manifest(model)
    (model / "a.txt").rename(model / "a.text")  # same position in the order
    after = build_manifest(model)
    assert after.subject_digest == before.subject_digest  # model-signing's does not notice
    assert after.digest != before.digest  # ours does
    assert before.diff(after).added == ("a.text",)
    assert before.diff(after).removed == ("a.txt",)


def test_errors_name_the_fix(tmp_path: Path, model: Path) -> None:
    with pytest.raises(ManifestError, match="does not exist"):
        build_manifest(tmp_path / "nope")
    (model / "dangling").symlink_to(tmp_path / "nowhere")
    with pytest.raises(ManifestError, match="--allow-symlinks"):
        build_manifest(model)
    with pytest.raises(ManifestError, match="broken symlink"):
        build_manifest(model, allow_symlinks=True)


def test_worker_count_does_not_change_result(model: Path) -> None:
    assert ours(model, workers=1) == ours(model, workers=4)


def test_progress_counts_every_byte(model: Path) -> None:
    seen: list[int] = []
    manifest = build_manifest(model, progress=seen.append)
    assert sum(seen) == manifest.size


def test_large_file_streams(tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    block = os.urandom(1 << 20)
    h = hashlib.sha256()
    with open(big, "wb") as fh:
        for _ in range(40):
            fh.write(block)
            h.update(block)
    assert hash_file(big) == h.hexdigest()


# -- cache ---------------------------------------------------------------------------


def test_cache_skips_unchanged_files_and_catches_changes(tmp_path: Path, model: Path) -> None:
    cache = HashCache(tmp_path / "cache.sqlite", racy_window_ns=0)
    cold = build_manifest(model, cache=cache)
    assert cold.stats["hashed"] == cold.stats["files"]
    warm = build_manifest(model, cache=cache)
    assert warm.stats["hashed"] == 0
    assert warm.digest == cold.digest
    target = model / "sub" / "b"
    st = target.stat()
    target.write_bytes(b"XXXX")  # same size
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))  # mtime restored
    again = build_manifest(model, cache=cache)
    assert again.stats["hashed"] == 1
    assert again.digest != cold.digest


def test_racily_clean_files_are_not_cached(tmp_path: Path, model: Path) -> None:
    cache = HashCache(tmp_path / "cache.sqlite")  # default 1 s window
    build_manifest(model, cache=cache)  # every file was written just now
    assert build_manifest(model, cache=cache).stats["hashed"] > 0


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    names=st.lists(
        st.text(alphabet="ab.-_/0", min_size=1, max_size=8).filter(
            lambda s: (
                not s.startswith("/")
                and "//" not in s
                and not s.endswith("/")
                and all(p not in ("", ".", "..") for p in s.split("/"))
            )
        ),
        min_size=1,
        max_size=6,
        unique=True,
    )
)
def test_fuzz_order_matches_model_signing(tmp_path_factory, names: list[str]) -> None:
    root = tmp_path_factory.mktemp("fuzz") / "m"
    root.mkdir()
    written = []
    for name in names:
        path = root / name
        if any(p == path or p in path.parents or path in p.parents for p in written):
            continue
        if any(part.startswith(".git") for part in Path(name).parts[:1]):
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(name.encode())
        written.append(path)
    assert ours(root) == reference(root)


_AS_NOBODY = """
import sys
from neuroledger.errors import ManifestError
from neuroledger.provenance import build_manifest
try:
    build_manifest(sys.argv[1])
except ManifestError as exc:
    print(exc)
    sys.exit(3)
"""


def test_unreadable_file_is_a_clear_error() -> None:
    import shutil
    import subprocess
    import sys
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="nl-unreadable-"))
    try:
        root.chmod(0o755)
        (root / "ok.bin").write_bytes(b"fine")
        secret = root / "secret.bin"
        secret.write_bytes(b"no")
        secret.chmod(0)
        if os.geteuid() != 0:
            with pytest.raises(ManifestError, match="permission denied"):
                build_manifest(root)
            return
        nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable]
        if (
            shutil.which("setpriv") is None
            or subprocess.run(
                [*nobody, "-c", "import neuroledger"], capture_output=True, timeout=60
            ).returncode
        ):
            pytest.skip("running as root, and an unprivileged user cannot run this Python")
        proc = subprocess.run(
            [*nobody, "-c", _AS_NOBODY, str(root)], capture_output=True, text=True, timeout=60
        )
        assert proc.returncode == 3, proc.stderr
        assert "secret.bin cannot be read: permission denied" in proc.stdout
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.parametrize("op", ["flip", "append", "truncate", "remove", "rename", "restore-mtime"])
def test_every_file_every_tampering_changes_the_digest(
    tmp_path: Path, model: Path, op: str
) -> None:
    """For each file of the model in turn: tamper, check with the warm cache, undo."""
    import random
    import shutil

    cache = HashCache(tmp_path / "cache.sqlite", racy_window_ns=0)
    original = build_manifest(model, cache=cache)
    rng = random.Random(op)
    backup = tmp_path / "backup"
    for entry in original.files:
        target = model / entry.name
        shutil.copy2(target, backup)
        data = bytearray(target.read_bytes())
        st = target.stat()
        if op == "flip" and data:
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
            target.write_bytes(bytes(data))
        elif op == "append":
            target.write_bytes(bytes(data) + b"\0")
        elif op == "truncate" and data:
            target.write_bytes(bytes(data[:-1]))
        elif op == "remove":
            target.unlink()
        elif op == "rename":
            target.rename(target.with_name(target.name + ".renamed"))
        elif op == "restore-mtime" and data:
            data[0] ^= 0xFF
            target.write_bytes(bytes(data))
            os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
        else:
            continue  # an empty file cannot be flipped or truncated
        tampered = build_manifest(model, cache=cache)
        assert tampered.digest != original.digest, (op, entry.name)
        assert original.diff(tampered), (op, entry.name)
        target.with_name(target.name + ".renamed").unlink(missing_ok=True)
        target.unlink(missing_ok=True)
        shutil.copy2(backup, target)
    assert build_manifest(model, cache=cache).digest == original.digest
