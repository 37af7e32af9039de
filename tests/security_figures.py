"""The tally behind docs/security.md: every attack a test tries, and how many got through.

Security tests call :func:`record` with one row per kind of attack. Rows are kept
in ``docs/security-figures.json`` (a test run that runs only some of the tests
updates only their rows) and ``docs/security.md`` is rewritten from it each time.
"""

from __future__ import annotations

import fcntl
import json
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs"
FIGURES = DOCS / "security-figures.json"
DOC = DOCS / "security.md"

_HEAD = """# Security figures

Written by the test run: every row is one kind of attack, tried repeatedly by a test
against the real component (the gateway over HTTP on loopback, the compute sandbox as a
real process tree, the contracts on titanoboa or anvil, the embedded node under SIGKILL).
A try *gets through* if the attacker obtains what the row names. Every row must say 0:
a test that sees anything get through fails. Alongside, valid requests were served, so
the component was working the whole time. `docs/security-figures.json` holds the same
rows as data.

| class | attack | tried | got through | test |
|---|---|---:|---:|---|
"""

_TAIL = """
What is argued rather than fixed, and the low-severity findings, are in
[security-notes.md](security-notes.md).
"""


def record(cls: str, kind: str, *, tried: int, through: int, what: str, test: str) -> None:
    """Add or replace the row ``(cls, kind)`` and rewrite docs/security.md."""
    DOCS.mkdir(exist_ok=True)
    lock = open(DOCS / ".security.lock", "w")  # noqa: SIM115 (held until the end)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        rows = json.loads(FIGURES.read_text()) if FIGURES.exists() else []
        rows = [r for r in rows if (r["class"], r["attack"]) != (cls, kind)]
        rows.append({"class": cls, "attack": kind, "tried": tried, "through": through,
                     "what": what, "test": test})  # fmt: skip
        rows.sort(key=lambda r: (r["class"], r["attack"]))
        FIGURES.write_text(json.dumps(rows, indent=1) + "\n")
        body = "".join(
            f"| {r['class']} | {r['attack']} | {r['tried']} | {r['through']} | `{r['test']}` |\n"
            for r in rows
        )
        total = (sum(r["tried"] for r in rows), sum(r["through"] for r in rows))
        body += f"| **total** | | **{total[0]}** | **{total[1]}** | |\n"
        notes = "\n## What each attack does\n\n" + "".join(
            f"- **{r['class']} / {r['attack']}**: {r['what']}\n" for r in rows
        )
        DOC.write_text(_HEAD + body + notes + _TAIL)
    finally:
        lock.close()
