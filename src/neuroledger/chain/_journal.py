"""The embedded node's journal: every change to its chain since the last snapshot, in order.

The gate (:mod:`neuroledger.chain._gate`) appends a record for each change it lets
through, fsyncs when a client asks for durability, and now and then saves a snapshot
(``state.bin``) after which older segments are deleted. A start loads the snapshot
and replays the segments it does not hold; the replay checks every block hash it
reproduces. Why this design: docs/architecture.md, "Durable writes".

Layout: ``chain/journal/<segment>.log``, segment numbers rising; the snapshot names
the first segment that is not in it. A record is one line, ``<JSON> <CRC-32 hex>``:

- ``{"p": raw, "h": hash}``: a signed transaction the node accepted into its pool;
- ``{"q": method, "a": params}``: a change that is neither a transaction nor a block
  (``anvil_setBalance``, ``evm_increaseTime``, ...);
- ``{"b": number, "h": hash, "t": timestamp, "f": base fee, "x": [tx hashes], "s": senders,
  "w": wall time}``: a block as it was mined;
- ``{"z": reason}``: a change the journal cannot replay (a revert, a reorganisation, a
  transaction it does not hold). The gate saves a snapshot at once, and no write after
  the mark is reported durable before that snapshot is: a replay stops at the mark.

A line cut short (a crash in the middle of a write) can only be the last of its
segment: it was never reported as durable and is dropped. Damage anywhere else is
an error that names the file; nothing is ever rewritten or deleted by a reader.

>>> line = encode_record({"q": "evm_increaseTime", "a": [60]})
>>> parse_segment(line, "1.log")
([{'q': 'evm_increaseTime', 'a': [60]}], False)
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neuroledger._fs import fsync_dir
from neuroledger.errors import NodeStateCorruptError

__all__ = [
    "JournalWriter",
    "ReplayResult",
    "decode_state",
    "encode_record",
    "encode_state",
    "journal_segments",
    "parse_segment",
    "read_journal",
    "replay",
]

_STATE_MAGIC = b"NEUROLEDGER-ANVIL-STATE/1\n"
_SUFFIX = ".log"
#: How often (in blocks) the replay compares a reproduced block hash with the journal's.
_CHECK_EVERY = 256


def encode_state(payload_gz: bytes, block: int, journal: int) -> bytes:
    """Wrap anvil's gzipped state dump in NeuroLedger's checked envelope; ``journal`` is the
    first journal segment the dump does not hold."""
    header = {"sha256": hashlib.sha256(payload_gz).hexdigest(), "block": block, "journal": journal}
    return _STATE_MAGIC + json.dumps(header).encode() + b"\n" + payload_gz


def decode_state(path: Path) -> tuple[dict[str, Any], bytes]:
    """Read and check a state file; return its header and anvil's JSON state."""
    recovery = (
        "the file is kept as it is. To recover, restore a backup of it, or run "
        "`neuroledger node start --reset-state` to move it aside and start an empty chain"
    )
    data = path.read_bytes()
    if not data.startswith(_STATE_MAGIC):
        raise NodeStateCorruptError(f"chain state {path} has no NeuroLedger header; {recovery}")
    try:
        header_line, payload = data[len(_STATE_MAGIC) :].split(b"\n", 1)
        header = json.loads(header_line)
        expected = header["sha256"]
    except (ValueError, KeyError, TypeError):
        raise NodeStateCorruptError(
            f"chain state {path} has a damaged header; {recovery}"
        ) from None
    if hashlib.sha256(payload).hexdigest() != expected:
        raise NodeStateCorruptError(f"chain state {path} fails its SHA-256 check; {recovery}")
    try:
        state_json = gzip.decompress(payload)
        json.loads(state_json)
    except (OSError, EOFError, zlib.error, ValueError):
        raise NodeStateCorruptError(f"chain state {path} does not decompress; {recovery}") from None
    return header, state_json


def encode_record(record: dict[str, Any]) -> bytes:
    """One journal line: compact JSON, a space, the CRC-32 of the JSON, a newline."""
    body = json.dumps(record, separators=(",", ":")).encode()
    return body + b" %08x\n" % zlib.crc32(body)


def _decode_line(line: bytes) -> dict[str, Any] | None:
    body, _, crc = line.rpartition(b" ")
    try:
        if not body or int(crc, 16) != zlib.crc32(body):
            return None
        record = json.loads(body)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def parse_segment(data: bytes, name: str) -> tuple[list[dict[str, Any]], bool]:
    """The records of one segment, and whether its last line was cut short (and dropped)."""
    lines = data.split(b"\n")
    tail = lines.pop()  # after the last newline: empty unless a write was cut short
    records: list[dict[str, Any]] = []
    for number, line in enumerate(lines, 1):
        record = _decode_line(line)
        if record is None:
            if number == len(lines) and not tail:
                return records, True  # the last line, cut or garbled by a crash
            raise NodeStateCorruptError(
                f"chain journal {name} is damaged at line {number}; it is kept as it is. To "
                "recover, restore a backup of the chain directory, or run `neuroledger node "
                "start --reset-state` to move the saved chain aside and start an empty one"
            )
        records.append(record)
    return records, bool(tail)


def journal_segments(directory: Path) -> list[tuple[int, Path]]:
    """The segment files of a journal, oldest first."""
    found = []
    with contextlib.suppress(FileNotFoundError):
        for path in directory.iterdir():
            if path.suffix == _SUFFIX and path.stem.isdigit() and path.is_file():
                found.append((int(path.stem), path))
    return sorted(found)


def read_journal(directory: Path, first: int) -> tuple[list[dict[str, Any]], list[int]]:
    """Every record of segments ``first`` and later, in order, and those segments' numbers."""
    records: list[dict[str, Any]] = []
    numbers = []
    for number, path in journal_segments(directory):
        if number >= first:
            records.extend(parse_segment(path.read_bytes(), str(path))[0])
            numbers.append(number)
    return records, numbers


class JournalWriter:
    """Appends records to the current segment; fsyncs on request; starts new segments."""

    def __init__(self, directory: Path, segment: int) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.segment = segment
        self._fd = self._open(segment)
        self.written = 0  # bytes appended since the last snapshot
        self.appended = 0  # records appended (a clock for group commit)
        self.synced = 0  # records known to be on disk

    def _open(self, segment: int) -> int:
        fd = os.open(
            self.directory / f"{segment:012d}{_SUFFIX}", os.O_WRONLY | os.O_APPEND | os.O_CREAT,
            0o600,
        )  # fmt: skip
        fsync_dir(self.directory)  # the new file's name survives a crash
        return fd

    def append(self, *records: dict[str, Any]) -> None:
        """Write ``records`` (one ``write``: a crash keeps all, none, or a cut last line)."""
        data = b"".join(encode_record(r) for r in records)
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]
        self.written += len(data)
        self.appended += len(records)

    def sync(self) -> None:
        """Make everything appended so far durable."""
        target = self.appended
        os.fsync(self._fd)
        self.synced = max(self.synced, target)

    def rotate(self, carry: Iterable[dict[str, Any]] = ()) -> int:
        """Start the next segment (the current one is made durable and closed first); return
        its number. If the new segment cannot be opened, the current one stays in use.

        ``carry``: records the new segment starts with (transactions still in the pool,
        which a snapshot does not hold)."""
        fd = self._open(self.segment + 1)
        old, self._fd = self._fd, fd
        self.segment += 1
        try:
            os.fsync(old)
        finally:
            os.close(old)
        self.written = 0
        carried = list(carry)
        if carried:
            self.append(*carried)
        return self.segment

    def drop_before(self, segment: int) -> None:
        """Delete the segments a durable snapshot now holds."""
        for number, path in journal_segments(self.directory):
            if number < segment:
                path.unlink(missing_ok=True)

    def close(self) -> None:
        """Close the current segment's file."""
        with contextlib.suppress(OSError):
            os.close(self._fd)


@dataclass
class ReplayResult:
    """What a replay reproduced."""

    blocks: int = 0
    head: int | None = None  # the number of the last block replayed
    stopped: str | None = None  # the mark a replay stopped at
    pending: dict[str, str] = field(default_factory=dict)  # hash -> raw, still in the pool


def replay(
    records: list[dict[str, Any]],
    call: Callable[[str, list[Any]], Any],
    batch: Callable[[list[tuple[str, list[Any]]]], list[Any]],
    *,
    progress: Callable[[int, int], None] | None = None,
) -> ReplayResult:
    """Apply ``records`` to a node that holds the snapshot they follow.

    ``call(method, params)`` performs one JSON-RPC call and raises on an error;
    ``batch(calls)`` several at once. Each block is mined again with its recorded
    transactions (in their recorded order: the node orders its pool first in, first
    out; a block of one sender's transactions goes in one batch, as their nonces
    order them whatever order the node takes them in), timestamp and base fee; block hashes
    are compared every few hundred blocks and at the end, and any difference raises
    :class:`NodeStateCorruptError` (the chain cannot be reproduced: nothing is lost
    on disk, but the node must not serve a different history).
    """
    result = ReplayResult()
    marks = [i for i, r in enumerate(records) if "z" in r]
    if marks:  # nothing after a mark was reported durable (see the module docstring)
        result.stopped = str(records[marks[0]]["z"])
        records = records[: marks[0]]
    last_block = max((i for i, r in enumerate(records) if "b" in r), default=-1)
    previous_time: int | None = None
    for index, record in enumerate(records):
        if "p" in record:
            result.pending[str(record["h"])] = str(record["p"])
        elif "q" in record:
            call(str(record["q"]), list(record.get("a") or []))
        elif "b" in record:
            number, timestamp = int(record["b"]), int(record["t"])
            raws = []
            for tx_hash in record["x"]:
                raw = result.pending.pop(tx_hash, None)
                if raw is None:
                    raise _diverged(number, f"its transaction {tx_hash} is not in the journal")
                raws.append(raw)
            if len(raws) > 1 and record.get("s") == 1:
                got = batch([("eth_sendRawTransaction", [raw]) for raw in raws])
            else:
                got = [call("eth_sendRawTransaction", [raw]) for raw in raws]
            if [str(h).lower() for h in got] != [str(h).lower() for h in record["x"]]:
                raise _diverged(number, "the node gave its transactions other hashes")
            if previous_time is None or timestamp < previous_time:
                call("evm_setTime", [timestamp])
            call("anvil_setNextBlockBaseFeePerGas", [record["f"]])
            call("evm_mine", [timestamp])
            previous_time = timestamp
            result.blocks += 1
            result.head = number
            if result.blocks % _CHECK_EVERY == 0 or index == last_block:
                _check_block(call, number, str(record["h"]))
            if index == last_block:
                _restore_clock(call, timestamp, float(record.get("w") or 0))
        if progress is not None and index % 500 == 0:
            progress(index, len(records))
    for raw in result.pending.values():  # in the pool when the node stopped: back in the pool
        with contextlib.suppress(Exception):
            call("eth_sendRawTransaction", [raw])
    if progress is not None:
        progress(len(records), len(records))
    return result


def _check_block(call: Callable[[str, list[Any]], Any], number: int, expected: str) -> None:
    block = call("eth_getBlockByNumber", [hex(number), False])
    got = block.get("hash") if isinstance(block, dict) else None
    if str(got).lower() != expected.lower():
        raise _diverged(number, f"its hash is {got}, the journal says {expected}")


def _restore_clock(call: Callable[[str, list[Any]], Any], timestamp: int, wall: float) -> None:
    """Set the node's clock as it ran: the wall clock, plus any lead the chain had taken
    (``evm_increaseTime``), never before the last block."""
    lead = timestamp - wall if wall else 0.0
    now = time.time() + (lead if lead > 2 else 0.0)
    call("evm_setTime", [max(int(now), timestamp)])


def _diverged(number: int, what: str) -> NodeStateCorruptError:
    return NodeStateCorruptError(
        f"replaying the chain journal does not reproduce block {number} ({what}); the saved "
        "state and journal are kept as they are. Check that anvil is the version that wrote "
        "them, or run `neuroledger node start --reset-state` to move them aside"
    )
