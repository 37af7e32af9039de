"""The embedded node's journal format: records, cut lines, damage, segments."""

from __future__ import annotations

from pathlib import Path

import pytest

from neuroledger.chain._journal import (
    JournalWriter,
    encode_record,
    journal_segments,
    parse_segment,
    read_journal,
    replay,
)
from neuroledger.errors import NodeStateCorruptError

RECORDS = [{"p": "0x02f8", "h": "0xaa"}, {"q": "evm_increaseTime", "a": [60]},
           {"b": 1, "h": "0xbb", "t": 5, "f": "0x1", "x": ["0xaa"], "s": 1, "w": 5.0}]  # fmt: skip


def test_records_round_trip() -> None:
    data = b"".join(encode_record(r) for r in RECORDS)
    assert parse_segment(data, "s") == (RECORDS, False)


def test_a_line_cut_by_a_crash_ends_the_segment_and_is_dropped() -> None:
    data = b"".join(encode_record(r) for r in RECORDS)
    for cut in range(len(data) - len(encode_record(RECORDS[-1])) + 1, len(data)):
        records, torn = parse_segment(data[:cut], "s")
        assert records == RECORDS[:-1] and torn


def test_a_garbled_last_line_is_dropped_but_damage_before_it_is_an_error() -> None:
    lines = [encode_record(r) for r in RECORDS]
    garbled = lines[-1].replace(b'"b":1', b'"b":7')  # the CRC no longer matches
    assert parse_segment(b"".join(lines[:-1]) + garbled, "s") == (RECORDS[:-1], True)
    middle = lines[0] + lines[1].replace(b"60", b"61") + lines[2]
    with pytest.raises(
        NodeStateCorruptError, match=r"seg\.log is damaged at line 2.*--reset-state"
    ):
        parse_segment(middle, "seg.log")


def test_writer_segments_rotate_carry_and_drop(tmp_path: Path) -> None:
    writer = JournalWriter(tmp_path, 3)
    writer.append(*RECORDS[:2])
    writer.sync()
    assert writer.synced == writer.appended == 2
    assert writer.rotate([RECORDS[0]]) == 4
    writer.append(RECORDS[2])
    writer.close()
    assert [n for n, _ in journal_segments(tmp_path)] == [3, 4]
    assert read_journal(tmp_path, 3) == ([*RECORDS[:2], RECORDS[0], RECORDS[2]], [3, 4])
    assert read_journal(tmp_path, 4) == ([RECORDS[0], RECORDS[2]], [4])
    JournalWriter(tmp_path, 5).drop_before(4)
    assert [n for n, _ in journal_segments(tmp_path)] == [4, 5]
    (tmp_path / "notes.txt").write_text("not a segment")
    assert [n for n, _ in journal_segments(tmp_path)] == [4, 5]


def test_a_replay_stops_at_a_mark_the_journal_cannot_replay_past() -> None:
    """After a revert (say) the gate writes a mark and snapshots before any later write is
    reported durable; a crash before that snapshot replays up to the mark only."""
    made: list[tuple[str, list]] = []

    def call(method: str, params: list) -> object:
        made.append((method, params))
        return None

    records = [{"q": "anvil_setBalance", "a": ["0x01", "0x1"]}, {"z": "evm_revert"},
               {"q": "anvil_setBalance", "a": ["0x02", "0x1"]}]  # fmt: skip
    result = replay(records, call, lambda calls: [])
    assert made == [("anvil_setBalance", ["0x01", "0x1"])]
    assert result.stopped == "evm_revert" and result.blocks == 0


def test_a_segment_that_cannot_be_opened_leaves_the_current_one_in_use(tmp_path: Path) -> None:
    writer = JournalWriter(tmp_path, 1)
    writer.append(RECORDS[0])
    (tmp_path / f"{2:012d}.log").mkdir()  # the next segment's name is taken: open fails
    with pytest.raises(OSError):
        writer.rotate()
    writer.append(RECORDS[1])  # still the first segment, still writable
    writer.sync()
    writer.close()
    assert writer.segment == 1
    assert parse_segment((tmp_path / f"{1:012d}.log").read_bytes(), "s") == (RECORDS[:2], False)
