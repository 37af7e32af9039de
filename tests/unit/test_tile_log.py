"""The filesystem tile log: layout per C2SP tlog-tiles, reopening, proofs, crashes, bad input."""

from __future__ import annotations

import base64
import json
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from neuroledger.audit._log import STATE_FILE, TileLog
from neuroledger.audit._note import NoteSigner, open_checkpoint
from neuroledger.audit._tiles import decode_bundle, entries_path, tile_path
from neuroledger.core._merkle import leaf_hash, root_of, verify_consistency, verify_inclusion
from neuroledger.errors import AuditError, LogCorruptError, SignatureError

ORIGIN = "log.example/tests"


@pytest.fixture
def signer() -> NoteSigner:
    return NoteSigner.generate(ORIGIN)


def entry(i: int) -> bytes:
    return f"entry-{i}".encode()


def fill(log: TileLog, batches: list[int], *, materialize: bool = True) -> None:
    """Append batches; write their tiles after each one (as a checkpoint would)."""
    n = log.size
    for b in batches:
        log.append([entry(n + i) for i in range(b)])
        n += b
        if materialize:
            log.materialize()


def test_layout_of_the_spec_example_size_70000(tmp_path: Path, signer: NoteSigner) -> None:
    log = TileLog.create(tmp_path / "log", origin=ORIGIN, signer=signer)
    fill(log, [70_000])
    root = tmp_path / "log"
    level0 = [p for p in (root / "tile" / "0").rglob("*") if p.is_file()]
    assert len([p for p in level0 if ".p" not in str(p)]) == 273  # full level-0 tiles
    assert (root / tile_path(0, 273, width=112)).stat().st_size == 112 * 32
    assert (root / tile_path(1, 0)).stat().st_size == 8192
    assert (root / tile_path(1, 1, width=17)).stat().st_size == 17 * 32
    assert (root / tile_path(2, 0, width=1)).stat().st_size == 32
    assert (root / entries_path(273, width=112)).exists()
    assert tile_path(0, 1234067) == "tile/0/x001/x234/067"


def test_tiles_hold_the_right_hashes(tmp_path: Path, signer: NoteSigner) -> None:
    log = TileLog.create(tmp_path / "log", origin=ORIGIN, signer=signer)
    fill(log, [3, 300, 66_000])
    root = tmp_path / "log"
    leaves = [leaf_hash(entry(i)) for i in range(log.size)]
    assert (root / tile_path(0, 1)).read_bytes() == b"".join(leaves[256:512])
    tile1 = (root / tile_path(1, 0)).read_bytes()
    assert tile1[32:64] == root_of(leaves[256:512])
    assert decode_bundle((root / entries_path(2)).read_bytes()) == [
        entry(i) for i in range(512, 768)
    ]
    assert log.root_hash() == root_of(leaves)


def test_reopen_entries_proofs_and_checkpoint(tmp_path: Path, signer: NoteSigner) -> None:
    log = TileLog.create(tmp_path / "log", origin=ORIGIN, signer=signer)
    fill(log, [1, 255, 256, 1000, 7])
    text = log.checkpoint()
    log.close()
    again = TileLog.open(tmp_path / "log", signer=signer)
    assert again.size == 1519 and again.root_hash() == log.root_hash()
    assert again.entry(0) == entry(0) and again.entry(1518) == entry(1518)
    cp = open_checkpoint(text, signer.verifier)
    assert (cp.size, cp.root) == (1519, log.root_hash())
    for index in (0, 255, 256, 1518):
        verify_inclusion(
            leaf_hash(entry(index)), index, 1519, again.inclusion_proof(index), cp.root
        )
    fill(again, [300])
    verify_consistency(1519, 1819, again.consistency_proof(1519), cp.root, again.root_hash())


def test_oversized_entry_is_refused_and_nothing_changes(tmp_path: Path, signer: NoteSigner) -> None:
    log = TileLog.create(tmp_path / "log", origin=ORIGIN, signer=signer)
    fill(log, [10])
    before = (log.size, log.root_hash())
    with pytest.raises(AuditError, match="over the 65535-byte limit"):
        log.append([b"ok", b"x" * 70_000])
    assert (log.size, log.root_hash()) == before
    assert TileLog.open(tmp_path / "log").size == 10


def test_wrong_key_and_missing_log(tmp_path: Path, signer: NoteSigner) -> None:
    TileLog.create(tmp_path / "log", origin=ORIGIN, signer=signer)
    with pytest.raises(SignatureError, match="not the key"):
        TileLog.open(tmp_path / "log", signer=NoteSigner.generate("log.example/other"))
    with pytest.raises(AuditError, match="no log at"):
        TileLog.open(tmp_path / "nothing")
    with pytest.raises(AuditError, match="already exists"):
        TileLog.create(tmp_path / "log", origin=ORIGIN, signer=signer)


def test_damaged_level0_tile_is_detected_on_open(tmp_path: Path, signer: NoteSigner) -> None:
    log = TileLog.create(tmp_path / "log", origin=ORIGIN, signer=signer)
    fill(log, [600])
    path = tmp_path / "log" / tile_path(0, 1)
    raw = bytearray(path.read_bytes())
    raw[100] ^= 1
    path.write_bytes(bytes(raw))
    with pytest.raises(LogCorruptError, match="do not hash to the committed root"):
        TileLog.open(tmp_path / "log")
    path.unlink()
    with pytest.raises(LogCorruptError, match="is missing"):
        TileLog.open(tmp_path / "log")


def test_rolled_back_log_refuses_to_sign(tmp_path: Path, signer: NoteSigner) -> None:
    log = TileLog.create(tmp_path / "log", origin=ORIGIN, signer=signer)
    fill(log, [50, 50])  # the files of size 50 stay on disk
    log.checkpoint()
    state_path = tmp_path / "log" / STATE_FILE
    state = json.loads(state_path.read_text())
    state.update(size=50, root=base64.b64encode(log.root_hash(50)).decode())
    state_path.write_text(json.dumps(state))
    rolled = TileLog.open(tmp_path / "log", signer=signer)
    with pytest.raises(AuditError, match="rolled back"):
        rolled.checkpoint()


_WRITER = """
import sys
from pathlib import Path
from neuroledger.audit._log import TileLog
from neuroledger.audit._note import NoteSigner

root, skey, seed = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
import random
rng = random.Random(seed)
log = TileLog.open(root, signer=NoteSigner.from_skey(skey))
while True:
    n = log.size
    batch = [f"entry-{n + i}".encode() for i in range(rng.randint(1, 700))]
    log.append(batch)
    print(log.size, flush=True)
"""


@pytest.mark.slow
def test_sigkill_during_appends_loses_nothing_acknowledged(
    tmp_path: Path, signer: NoteSigner
) -> None:
    root = tmp_path / "log"
    TileLog.create(root, origin=ORIGIN, signer=signer)
    rng = random.Random(1)
    acknowledged = 0
    for round_ in range(8):
        proc = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(root), signer.skey, str(round_)],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert proc.stdout is not None
        for _ in range(rng.randint(1, 15)):
            line = proc.stdout.readline()
            if line:
                acknowledged = int(line)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        log = TileLog.open(root, signer=signer)  # reopens at its last durable state
        assert log.size >= acknowledged
        for index in {0, acknowledged - 1, rng.randrange(acknowledged)}:
            assert log.entry(index) == entry(index)
            verify_inclusion(
                leaf_hash(entry(index)),
                index,
                log.size,
                log.inclusion_proof(index),
                log.root_hash(),
            )
        assert log.root_hash() == root_of([leaf_hash(entry(i)) for i in range(log.size)])
        log.checkpoint()


def test_journaled_entries_survive_reopen_before_any_checkpoint(
    tmp_path: Path, signer: NoteSigner
) -> None:
    log = TileLog.create(tmp_path / "log", origin=ORIGIN, signer=signer)
    fill(log, [300, 5], materialize=False)
    assert not (tmp_path / "log" / tile_path(0, 0)).exists()  # tiles wait for a checkpoint
    log.close()
    again = TileLog.open(tmp_path / "log", signer=signer)
    assert again.size == 305 and again.entry(304) == entry(304)
    again.checkpoint()
    assert (tmp_path / "log" / tile_path(0, 0)).exists()
    assert TileLog.open(tmp_path / "log").size == 305


def test_torn_journal_batch_is_cut_off(tmp_path: Path, signer: NoteSigner) -> None:
    log = TileLog.create(tmp_path / "log", origin=ORIGIN, signer=signer)
    fill(log, [10, 20], materialize=False)
    log.close()
    journal = next((tmp_path / "log.journal").iterdir())
    data = journal.read_bytes()
    journal.write_bytes(data[:-7])  # the second batch was half written when the power went
    again = TileLog.open(tmp_path / "log", signer=signer)
    assert again.size == 10
    fill(again, [3], materialize=False)
    again.close()
    assert [TileLog.open(tmp_path / "log").entry(i) for i in (9, 10, 12)] == [
        entry(9),
        entry(10),
        entry(12),
    ]


def test_the_journal_is_never_in_the_served_tree(tmp_path: Path, signer: NoteSigner) -> None:
    """Issue 13: `.journal/` inside the log directory held not-yet-checkpointed entries in
    clear, so serving the directory with any static file server published them early."""
    log = TileLog.create(tmp_path / "log", origin=ORIGIN, signer=signer)
    secret = b"not yet checkpointed: patient 17's record"
    log.append([secret])
    log.close()
    served = [p for p in (tmp_path / "log").rglob("*") if p.is_file()]
    assert not any(secret in p.read_bytes() for p in served)
    assert any(secret in p.read_bytes() for p in (tmp_path / "log.journal").iterdir())
    assert TileLog.open(tmp_path / "log").entry(0) == secret


def test_a_journal_of_the_old_layout_is_moved_out(tmp_path: Path, signer: NoteSigner) -> None:
    log = TileLog.create(tmp_path / "log", origin=ORIGIN, signer=signer)
    fill(log, [7], materialize=False)
    log.close()
    (tmp_path / "log.journal").rename(tmp_path / "log" / ".journal")  # as older versions kept it
    again = TileLog.open(tmp_path / "log", signer=signer)
    assert again.size == 7 and again.entry(6) == entry(6)
    assert not (tmp_path / "log" / ".journal").exists() and (tmp_path / "log.journal").is_dir()
