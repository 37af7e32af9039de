"""Nothing reported as confirmed is lost when the node and its clients are SIGKILLed.

Several writer processes write at once; the node is killed 30 times mid-stream
(and, half the time, the writers too). After every restart each confirmed write
must be found again *through the application*: the DID resolver, reached
through the home's deployment record, must show every attribute, and the
registry must stay at one address throughout (a crash never makes the home
forget or redeploy its contracts).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest

from neuroledger.chain._rpc import rpc_call
from neuroledger.chain.client import Chain
from neuroledger.chain.node import EmbeddedNode
from neuroledger.config import Settings
from neuroledger.identity.did import format_did
from neuroledger.identity.resolver import resolve_did

pytestmark = [pytest.mark.anvil, pytest.mark.slow]
HERE = Path(__file__).resolve().parent
KILLS = 30
WRITERS = 3


def _confirmed(logs: list[Path]) -> list[tuple[str, str, str]]:
    rows = []
    for log in logs:
        if log.exists():
            for line in log.read_text().splitlines():
                parts = line.split()
                if len(parts) == 3:  # a line cut by a kill is not a confirmed write
                    rows.append((parts[0], parts[1], parts[2]))
    return rows


def test_confirmed_writes_survive_sigkill(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    registry_address = Chain.connect(settings).contract("DIDRegistry").address
    node = EmbeddedNode(chain_dir=settings.chain_dir)
    rng = random.Random(1234)
    env = {**os.environ, "PYTHONPATH": str(HERE.parents[1] / "src")}
    logs: list[Path] = []
    checked: set[str] = set()
    for kill in range(KILLS):
        writers = []
        for w in range(WRITERS):
            log = tmp_path / f"confirmed-{kill}-{w}.txt"
            logs.append(log)
            writers.append(
                subprocess.Popen(
                    [sys.executable, str(HERE / "durability_writer.py"),
                     str(settings.home), str(log), str(kill * WRITERS + w)],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    env=env,
                )
            )  # fmt: skip
        time.sleep(rng.uniform(0.6, 1.6))  # let them write
        status = node.status()
        assert status.running and status.pid
        os.kill(status.pid, signal.SIGKILL)  # kill the node mid-stream
        if rng.random() < 0.5:
            for writer in writers:
                writer.kill()  # and, half the time, the clients too
        for writer in writers:
            writer.wait(timeout=60)
        time.sleep(rng.uniform(0, 0.1))
        node.start()

        # Through the application: the deployment record, the contract client, the resolver.
        chain = Chain.connect(settings, start_node=False)
        registry = chain.contract("DIDRegistry")
        assert registry.address == registry_address, f"kill {kill}: the suite was redeployed"
        rows = _confirmed(logs)
        recheck = rows if kill % 5 == 4 else [r for r in rows if r[0] not in checked]
        by_identity: dict[str, set[str]] = defaultdict(set)
        for tx_hash, identity, value in recheck:
            receipt = rpc_call(chain.url, "eth_getTransactionReceipt", [tx_hash])
            assert receipt is not None, f"kill {kill}: confirmed {tx_hash} lost"
            assert int(receipt["status"], 16) == 1
            by_identity[identity].add(value)
        for identity, values in by_identity.items():
            did = format_did(chain.chain_id, identity)
            document = resolve_did(chain.w3, registry, did, chain_id=chain.chain_id).document
            found = {s["serviceEndpoint"] for s in document.get("service", [])}
            missing = values - {str(v) for v in found}
            assert not missing, f"kill {kill}: {did} lost confirmed attributes {sorted(missing)}"
        checked.update(r[0] for r in rows)
    node.stop()
    assert len(checked) >= KILLS, f"too few confirmed writes to be meaningful ({len(checked)})"
    record = Chain.connect(settings).deployment()
    assert record.contracts["DIDRegistry"]["address"] == registry_address
    assert not list(settings.deployments_dir.glob("*.replaced"))
