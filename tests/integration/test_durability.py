"""Nothing reported as confirmed is lost when the node and its clients are SIGKILLed.

Several writer processes write at once; the node is killed 30 times mid-stream
(and, half the time, the writers too; a writer that survives follows the
restarted node at the home's stable endpoint). After every restart each confirmed write
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

from neuroledger.chain._client import Chain
from neuroledger.chain._node import EmbeddedNode
from neuroledger.chain._rpc import rpc_call
from neuroledger.config import Settings
from neuroledger.identity._did import format_did
from neuroledger.identity._resolver import resolve_did

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


def _check_resolved(chain: Chain, registry, rows: list[tuple[str, str, str]], when: str) -> None:
    """Every value in ``rows`` is a service of its identity's resolved DID document."""
    by_identity: dict[str, set[str]] = defaultdict(set)
    for _, identity, value in rows:
        by_identity[identity].add(value)
    for identity, values in by_identity.items():
        did = format_did(chain.chain_id, identity)
        document = resolve_did(chain.w3, registry, did, chain_id=chain.chain_id).document
        found = {str(s["serviceEndpoint"]) for s in document.get("service", [])}
        missing = values - found
        assert not missing, f"{when}: {did} lost confirmed attributes {sorted(missing)}"


def test_confirmed_writes_survive_sigkill(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    registry_address = Chain.connect(settings).contract("DIDRegistry").address
    node = EmbeddedNode(chain_dir=settings.chain_dir)
    rng = random.Random(1234)
    env = {**os.environ, "PYTHONPATH": str(HERE.parents[1] / "src")}
    logs: list[Path] = []
    checked: set[str] = set()
    writers: list[subprocess.Popen[bytes] | None] = [None] * WRITERS
    try:
        for kill in range(KILLS):
            for w in range(WRITERS):
                if writers[w] is None or writers[w].poll() is not None:  # type: ignore[union-attr]
                    log = tmp_path / f"confirmed-{kill}-{w}.txt"
                    logs.append(log)
                    writers[w] = subprocess.Popen(
                        [sys.executable, str(HERE / "durability_writer.py"),
                         str(settings.home), str(log), str(kill * WRITERS + w)],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                    )  # fmt: skip
            # Let every writer confirm something since the last restart, then write a while longer.
            sizes = {
                log: (log.stat().st_size if log.exists() else 0) for log in logs[-WRITERS * 2 :]
            }
            deadline = time.monotonic() + 60
            while sum((log.stat().st_size if log.exists() else 0) for log in sizes) <= sum(
                sizes.values()
            ):
                assert time.monotonic() < deadline, f"kill {kill}: the writers confirmed nothing"
                time.sleep(0.05)
            time.sleep(rng.uniform(0.1, 1.0))
            status = node.status()
            assert status.running and status.pid
            os.kill(status.pid, signal.SIGKILL)  # kill the node mid-stream
            gone = (
                time.monotonic() + 10
            )  # a killed process takes a moment to go (longer under load)
            while node.status().running and time.monotonic() < gone:
                time.sleep(0.01)
            if rng.random() < 0.5:
                for writer in writers:
                    assert writer is not None
                    writer.kill()  # and, half the time, the clients too
                    writer.wait(timeout=60)
            time.sleep(rng.uniform(0, 0.1))
            node.start()

            # Through the application: the deployment record, the contract client, the resolver.
            chain = Chain.connect(settings, start_node=False)
            registry = chain.contract("DIDRegistry")
            assert registry.address == registry_address, f"kill {kill}: the suite was redeployed"
            rows = _confirmed(logs)
            new = [r for r in rows if r[0] not in checked]
            # Every receipt again now and then (an old write must not vanish on a later crash);
            # the new writes of this round through the resolver.
            for tx_hash, _, _ in rows if kill % 10 == 9 else new:
                receipt = rpc_call(chain.url, "eth_getTransactionReceipt", [tx_hash])
                assert receipt is not None, f"kill {kill}: confirmed {tx_hash} lost"
                assert int(receipt["status"], 16) == 1
            _check_resolved(chain, registry, new, f"kill {kill}")
            checked.update(r[0] for r in rows)
        for writer in writers:
            if writer is not None:
                writer.kill()
                writer.wait(timeout=60)
        chain = Chain.connect(settings, start_node=False)
        _check_resolved(chain, chain.contract("DIDRegistry"), _confirmed(logs), "at the end")
        record = chain.deployment()
        assert record.contracts["DIDRegistry"]["address"] == registry_address
    finally:  # never leave writers or a node behind, even when an assertion failed
        for writer in writers:
            if writer is not None and writer.poll() is None:
                writer.kill()
                writer.wait(timeout=60)
        node.stop()
    assert len(checked) >= KILLS, f"too few confirmed writes to be meaningful ({len(checked)})"
    from tests import security_figures

    security_figures.record(
        "embedded node",
        "C1 SIGKILL of the node (and clients) mid-write",
        tried=len(checked),
        through=0,
        what=f"{KILLS} SIGKILLs of the node while {WRITERS} writer processes write (half the "
        "time the writers too); every write reported as confirmed must be found again through "
        "the resolver and the home's deployment record, with one registry address throughout "
        "(the test fails on any loss, so this row counts confirmed writes checked).",
        test="tests/integration/test_durability.py",
    )
    assert not list(settings.deployments_dir.glob("*.replaced"))
