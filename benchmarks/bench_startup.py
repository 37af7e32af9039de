"""Command start-up: this checkout vs the commit before lazy loading, same run, same machine.

The baseline is a ``git worktree`` of ``--baseline`` (default: the last commit before the
CLI loaded its command groups and libraries on use), run with this venv's Python and
libraries, so the only difference is NeuroLedger's own code. Each command runs in a
fresh process against the same home; the figure is the median wall time of ``--runs``
runs after one warm-up (the OS file cache is warm for both).

Rows: ``--help`` and ``identity list`` (the issue's targets: at least 4x faster), then
every command that needs no chain (target: under 0.5 s each).

Usage: python benchmarks/bench_startup.py [--runs N] [--baseline REF]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, machine, write_section

#: The commit before `LazyGroup` and the lazy package exports (issue 13 §4).
BASELINE = "0294913"

#: (label, arguments): what is timed, in order; none of them needs the chain.
COMMANDS: list[tuple[str, list[str]]] = [
    ("neuroledger --help", ["--help"]),
    ("identity list", ["identity", "list"]),
    ("node status", ["node", "status"]),
    ("data list", ["data", "list"]),
    ("audit verify --no-chain", ["audit", "verify", "bench", "--no-chain"]),
    ("fl prepare --help", ["fl", "prepare", "--help"]),
    ("grant add --help", ["grant", "add", "--help"]),
    # The whole command: most of it is its work (importing scikit-learn, loading and
    # splitting the data set), so it is shown without a start-up target.
    ("fl prepare (whole command)", ["fl", "prepare", "{work}/parties", "--parties", "2"]),
]

_RUNNER = (
    "import sys; sys.path.insert(0, sys.argv.pop(1)); from neuroledger.cli.main import run; run()"
)


def _time(src: Path, args: list[str], env: dict[str, str], runs: int) -> float:
    cmd = [sys.executable, "-c", _RUNNER, str(src), *args]
    samples = []
    for i in range(runs + 1):
        start = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        elapsed = time.perf_counter() - start
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(args)} failed ({src}): {proc.stderr.strip()}")
        if i:  # the first run warms the file cache
            samples.append(elapsed)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--baseline", default=BASELINE)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="nl-startup-") as tmp:
        work = Path(tmp)
        base_tree = work / "baseline"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q",
                        str(base_tree), args.baseline], check=True)  # fmt: skip
        try:
            pw = work / "pw"
            pw.write_text("bench\n")
            env = {**os.environ, "NEUROLEDGER_HOME": str(work / "home"),
                   "NEUROLEDGER_PASSPHRASE_FILE": str(pw), "NEUROLEDGER_SCRYPT_N": "16384"}  # fmt: skip
            env.pop("NEUROLEDGER_RPC_URL", None)
            ours = ROOT / "src"
            setup = [["init"], ["identity", "create", "hospital"], ["audit", "create", "bench"],
                     ["node", "stop"]]  # fmt: skip
            for step in setup:
                subprocess.run([sys.executable, "-c", _RUNNER, str(ours), *step], env=env,
                               check=True, capture_output=True)  # fmt: skip
            rows = []
            for label, argv in COMMANDS:
                argv = [a.replace("{work}", str(work)) for a in argv]
                new = _time(ours, argv, env, args.runs)
                old = _time(base_tree / "src", argv, env, args.runs)
                rows.append((label, new, old))
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force",
                            str(base_tree)], check=False)  # fmt: skip

    lines = [
        f"Median of {args.runs} runs after a warm-up; baseline = commit `{args.baseline}` "
        "(before lazy loading), same Python and libraries, same home, same run.",
        "",
        "| command (no chain needed) | NeuroLedger now (s) | baseline (s) | speed-up | target |",
        "|---|---:|---:|---:|---|",
    ]
    for i, (label, new, old) in enumerate(rows):
        speedup = old / new
        if i < 2:
            target = f"≥4x: {'met' if speedup >= 4 else 'NOT met'}"
        elif "whole command" in label:
            target = "none (start-up is the `--help` row)"
        else:
            target = f"<0.5 s: {'met' if new < 0.5 else 'NOT met'}"
        lines.append(f"| `{label}` | {new:.3f} | {old:.3f} | {speedup:.1f}x | {target} |")
    table = "\n".join(lines)
    print(table)
    body = f"### Command start-up (issue 13 §4)\n\nMachine: {machine()}\n\n{table}\n"
    write_section(ROOT / "docs" / "benchmarks.md", "bench_startup", body)


if __name__ == "__main__":
    main()
