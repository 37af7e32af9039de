"""Helpers shared by the benchmarks: a bare anvil, the machine description, result files."""

from __future__ import annotations

import asyncio
import os
import platform
import re
import socket
import subprocess
import time
from pathlib import Path

from neuroledger.chain._anvil import find_anvil

ROOT = Path(__file__).resolve().parents[1]


def machine() -> str:
    """One line describing the machine the numbers come from."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))  # type: ignore[union-attr]
        mem = f", {kb / 2**20:.0f} GiB RAM"
    except (OSError, AttributeError):
        pass
    anvil = subprocess.run(
        [str(find_anvil()), "--version"], capture_output=True, text=True
    ).stdout.splitlines()[0]
    return f"{cpu}, {os.cpu_count()} cores{mem}; Python {platform.python_version()}; {anvil}"


def write_section(path: Path, marker: str, body: str) -> None:
    """Replace the section between ``<!-- marker -->`` comments in ``path`` (or append it)."""
    start, end = f"<!-- {marker} -->", f"<!-- /{marker} -->"
    text = path.read_text() if path.exists() else ""
    block = f"{start}\n{body.rstrip()}\n{end}"
    if start in text and end in text:
        text = text[: text.index(start)] + block + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip() + ("\n\n" if text else "") + block + "\n"
    path.write_text(text)


def free_port() -> int:
    """A free loopback port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def load(port: int, bodies: list[bytes] | None, count: int, connections: int, path: str,
               headers: list[dict[str, str]] | None = None) -> tuple[float, dict[int, int]]:  # fmt: skip
    """Send ``count`` requests (GET, or POST of ``bodies[i]`` with ``headers[i]``) over
    ``connections`` keep-alive connections; return (req/s, count per status)."""
    statuses: dict[int, int] = {}
    next_index = 0

    async def worker() -> None:
        nonlocal next_index
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while next_index < count:
            i = next_index
            next_index += 1
            extra = "".join(f"{k}: {v}\r\n" for k, v in (headers[i] if headers else {}).items())
            if bodies is None:
                writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n{extra}\r\n".encode())
            else:
                body = bodies[i]
                writer.write(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                             f"{extra}Content-Length: {len(body)}\r\n\r\n".encode() + body)  # fmt: skip
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            statuses[status] = statuses.get(status, 0) + 1
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    return count / (time.perf_counter() - started), statuses
