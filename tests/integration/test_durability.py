"""Nothing reported as confirmed is lost when the node and the client are SIGKILLed."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from neuroledger.chain._rpc import rpc_call
from neuroledger.chain.client import Chain
from neuroledger.chain.node import EmbeddedNode
from neuroledger.config import Settings

pytestmark = [pytest.mark.anvil, pytest.mark.slow]
HERE = Path(__file__).resolve().parent
ROUNDS = 12


def test_confirmed_writes_survive_sigkill(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    Chain.connect(settings).deployment()  # start the node, deploy the registry
    node = EmbeddedNode(chain_dir=settings.chain_dir)
    log = tmp_path / "confirmed.txt"
    rng = random.Random(1234)
    checked = 0
    env = {**os.environ, "PYTHONPATH": str(HERE.parents[1] / "src")}
    for round_no in range(ROUNDS):
        writer = subprocess.Popen(
            [
                sys.executable,
                str(HERE / "durability_writer.py"),
                str(settings.home),
                str(log),
                str(round_no),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env,
        )
        time.sleep(rng.uniform(0.4, 1.5))  # let it write
        status = node.status()
        assert status.running and status.pid
        os.kill(status.pid, signal.SIGKILL)  # kill the node mid-stream
        if rng.random() < 0.5:
            writer.kill()  # and, half the time, the client too
        writer.wait(timeout=30)
        time.sleep(rng.uniform(0, 0.1))
        url = node.start().url
        assert url
        hashes = [h for h in log.read_text().split("\n") if h] if log.exists() else []
        for tx_hash in hashes[checked:] if round_no % 3 else hashes:
            receipt = rpc_call(url, "eth_getTransactionReceipt", [tx_hash])
            assert receipt is not None, f"round {round_no}: confirmed {tx_hash} lost"
            assert int(receipt["status"], 16) == 1
        checked = len(hashes)
    node.stop()
    assert checked >= ROUNDS, f"too few confirmed writes to be meaningful ({checked})"
