"""`verify_log` finds a flipped byte in any tile, entry bundle or checkpoint, and names the file."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from neuroledger.audit.log import TileLog
from neuroledger.audit.note import NoteSigner
from neuroledger.audit.verify import verify_log

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
