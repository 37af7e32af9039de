"""`neuroledger fl simulate` as users run it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.anvil


def fl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "neuroledger"), "fl", "simulate", *args],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_simulate_writes_per_round_results(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    proc = fl(
        "--clients",
        "5",
        "--rounds",
        "8",
        "--mode",
        "async",
        "--dp-noise",
        "1.0",
        "--dp-clip",
        "5",
        "-o",
        str(out),
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    assert report["aggregator"] == "dp-fedavg" and len(report["rounds"]) == 8
    epsilons = [r["epsilon"] for r in report["rounds"]]
    assert epsilons == sorted(epsilons) and epsilons[0] > 0
    assert all(0 <= r["accuracy"] <= 1 for r in report["rounds"])


def test_robust_run_and_bad_options() -> None:
    proc = fl(
        "--dataset",
        "digits",
        "--attackers",
        "2",
        "--aggregator",
        "median",
        "--rounds",
        "10",
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["rounds"][-1]["accuracy"] > 0.85
    bad = fl("--aggregator", "nope")
    assert bad.returncode == 15 and "unknown aggregator" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
    assert fl("--dataset", "imagenet").returncode == 15
