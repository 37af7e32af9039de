"""`verify_log` finds a flipped byte in any tile, entry bundle or checkpoint, and names the file."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from neuroledger.audit._log import TileLog
from neuroledger.audit._note import NoteSigner
from neuroledger.audit._verify import verify_log

ORIGIN = "log.example/verify"


def make_log(root: Path, batches: tuple[int, ...]) -> tuple[Path, NoteSigner]:
    signer = NoteSigner.generate(ORIGIN)
    log = TileLog.create(root, origin=ORIGIN, signer=signer)
    n = 0
    for batch in batches:
        log.append([f"event {n + i}".encode() for i in range(batch)])
        n += batch
        log.checkpoint()
    return root, signer


@pytest.fixture(scope="module")
def log_dir(tmp_path_factory) -> tuple[Path, NoteSigner]:
    """A small log: full and partial level-0 tiles and bundles, a partial level-1 tile."""
    return make_log(tmp_path_factory.mktemp("v") / "log", (5, 300, 70, 700, 9))


@pytest.fixture(scope="module")
def big_log_dir(tmp_path_factory) -> tuple[Path, NoteSigner]:
    """A log past 65,536 entries: full level-1 tiles and a level-2 tile."""
    return make_log(tmp_path_factory.mktemp("v") / "log", (5, 66_000, 9))


def served_files(root: Path) -> list[str]:
    return sorted(
        str(p.relative_to(root))
        for p in root.rglob("*")
        # served files and the checkpoint history (the journal is outside the directory)
        if p.is_file() and not p.name.startswith(".")
    )


def test_clean_log_verifies(log_dir) -> None:
    root, signer = log_dir
    report = verify_log(root, signer.verifier)
    assert report.ok, report.problems
    assert report.size == 1084 and report.checkpoints == 6
    assert report.tiles == 6 and report.bundles == 5


def flip_each(root: Path, signer: NoteSigner, files: list[str], rng: random.Random) -> int:
    checked = 0
    for rel in files:
        path = root / rel
        original = path.read_bytes()
        if not original:
            continue
        position = rng.randrange(len(original))
        damaged = bytearray(original)
        damaged[position] ^= 1 << rng.randrange(8)
        path.write_bytes(bytes(damaged))
        try:
            report = verify_log(root, signer.verifier)
        finally:
            path.write_bytes(original)
        assert not report.ok, f"flipping byte {position} of {rel} went unnoticed"
        assert any(rel in p.place for p in report.problems), (
            rel,
            [str(p) for p in report.problems],
        )
        checked += 1
    assert verify_log(root, signer.verifier).ok
    return checked


def test_every_file_flipped_is_caught_and_named(log_dir) -> None:
    root, signer = log_dir
    files = served_files(root)
    assert any(".p/" in f for f in files) and "checkpoint" in files
    assert flip_each(root, signer, files, random.Random(5)) == len(files)


@pytest.mark.slow
def test_flips_in_higher_level_tiles_of_a_big_log(big_log_dir) -> None:
    root, signer = big_log_dir
    report = verify_log(root, signer.verifier)
    assert report.ok and report.size == 66_014
    files = served_files(root)
    rng = random.Random(9)
    sample = [f for f in files if f.startswith(("tile/1/", "tile/2/"))] + rng.sample(files, 6)
    assert "tile/1/000" in sample and "tile/2/000.p/1" in sample
    assert flip_each(root, signer, sample, rng) == len(sample)


def test_wrong_key_is_a_checkpoint_problem(log_dir) -> None:
    root, _ = log_dir
    report = verify_log(root, NoteSigner.generate(ORIGIN).verifier)
    assert not report.ok and report.problems[0].place == "checkpoint"


def test_a_deleted_partial_tile_of_an_older_checkpoint_is_found(log_dir) -> None:
    """Issue 13: clients that know an older checkpoint fetch its partial tiles; a log that
    deleted one passed `audit verify`."""
    root, signer = log_dir
    # Checkpoint size 1075's partials are still needed (tiles 004 are not full yet); the
    # partials of sizes 5, 305 and 375 went when their tiles filled, as the spec allows.
    assert not (root / "tile/0/000.p").exists() and (root / "tile/0/000").exists()
    for rel in ("tile/0/004.p/51", "tile/entries/004.p/51"):
        path = root / rel
        original = path.read_bytes()
        path.unlink()
        try:
            report = verify_log(root, signer.verifier)
        finally:
            path.write_bytes(original)
        assert not report.ok
        assert any(p.place == rel and "partial tile of checkpoint size" in p.message
                   for p in report.problems), [str(p) for p in report.problems]  # fmt: skip
    assert verify_log(root, signer.verifier).ok


def test_cosignatures_of_known_witnesses_are_checked(tmp_path: Path) -> None:
    """Issue 13: `audit verify` never checked the cosignatures it had keys for."""
    from neuroledger.audit._note import COSIGNATURE, add_cosignature

    root, signer = make_log(tmp_path / "log", (3,))
    witness = NoteSigner.generate("witness.example/w1", sig_type=COSIGNATURE)
    stranger = NoteSigner.generate("witness.example/w2", sig_type=COSIGNATURE)
    text = (root / "checkpoint").read_text()
    cosigned = add_cosignature(add_cosignature(text, witness), stranger)
    (root / "checkpoint").write_text(cosigned)
    report = verify_log(root, signer.verifier, [witness.verifier])
    assert report.ok and report.cosigned_by == ["witness.example/w1"]
    # A cosignature line whose signature was tampered with (one bit) fails, by name.
    lines = cosigned.splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if "witness.example/w1" in line)
    name, b64 = lines[at].rstrip("\n").rsplit(" ", 1)
    import base64

    raw = bytearray(base64.b64decode(b64))
    raw[-1] ^= 1
    lines[at] = f"{name} {base64.b64encode(bytes(raw)).decode()}\n"
    (root / "checkpoint").write_text("".join(lines))
    report = verify_log(root, signer.verifier, [witness.verifier])
    assert not report.ok
    assert "cosignature by witness witness.example/w1 does not verify" in str(report.problems[0])
