"""The embedded node's journal under SIGKILL: after any kill (while writing, while
saving a snapshot, while replaying the journal) the next start gives the application
the same blocks (hash for hash), the same suite and every confirmed write."""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from pathlib import Path

import pytest
from eth_account import Account

from neuroledger.chain._client import Chain
from neuroledger.chain._node import EmbeddedNode
from neuroledger.chain._rpc import rpc_call
from neuroledger.config import Settings
from neuroledger.errors import NodeRPCError
from neuroledger.identity._registry import RegistryClient

pytestmark = pytest.mark.anvil
VALIDITY = 10**9


def _node(settings: Settings) -> EmbeddedNode:
    return EmbeddedNode(chain_dir=settings.chain_dir, port=settings.node_port)


def _hashes(url: str) -> list[str]:
    head = int(rpc_call(url, "eth_blockNumber"), 16)
    return [rpc_call(url, "eth_getBlockByNumber", [hex(n), False])["hash"] for n in range(head + 1)]


def _kill_gate(node: EmbeddedNode) -> None:
    status = node.status()
    assert status.running and status.pid
    os.kill(status.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while node.status().running and time.monotonic() < deadline:
        time.sleep(0.02)


def _writer(chain: Chain):
    account = Account.create()
    chain.fund(account.address)
    registry = RegistryClient(chain.contract("DIDRegistry"))
    sender = chain.sender(account)

    def write(label: str, count: int = 3) -> list[str]:
        calls = [registry.set_attribute(account.address, "did/svc/J", f"{label}-{k}".encode(),
                                        VALIDITY) for k in range(count)]  # fmt: skip
        return [r.tx_hash for r in sender.send_batch(calls)]

    return write


def test_a_kill_after_writes_of_every_kind_recovers_every_block_hash(settings: Settings) -> None:
    chain = Chain.connect(settings)
    node = _node(settings)
    suite = chain.deployment().contracts
    write = _writer(chain)
    try:
        write("a")
        auth = node.auth_headers()
        rpc_call(chain.url, "anvil_setBalance", ["0x" + "22" * 20, hex(10**18)], headers=auth)
        chain.wait_block_time(3600)  # evm_increaseTime + evm_mine: the clock leads by an hour
        rpc_call(chain.url, "anvil_mine", ["0x5"], headers=auth)  # blocks a client mined
        confirmed = write("b", 5)
        before = _hashes(chain.url)
        lead = int(before and rpc_call(chain.url, "eth_getBlockByNumber", ["latest", False])
                   ["timestamp"], 16) - time.time()  # fmt: skip
        _kill_gate(node)
        assert node.status().journal_bytes > 0  # the state file is older: a replay follows
        node.start()
        after = Chain.connect(settings, start_node=False)
        assert _hashes(after.url)[: len(before)] == before
        assert after.deployment().contracts == suite
        for tx_hash in confirmed:
            assert rpc_call(after.url, "eth_getTransactionReceipt", [tx_hash])["status"] == "0x1"
        balance = rpc_call(after.url, "eth_getBalance", ["0x" + "22" * 20, "latest"])
        assert int(balance, 16) == 10**18
        write("c")  # the clock still leads: the next block is an hour ahead of the wall
        latest = rpc_call(after.url, "eth_getBlockByNumber", ["latest", False])
        assert int(latest["timestamp"], 16) - time.time() > lead - 60
        assert node.status().journal_bytes > 0 and node.status().state_block == len(before) - 1
    finally:
        node.stop()
    assert node.status().journal_bytes == 0  # a stop saves a snapshot; the journal is empty


def test_kills_while_snapshots_are_being_saved_lose_no_confirmed_write(
    settings: Settings,
) -> None:
    """Snapshots back to back while a writer writes; the gate is SIGKILLed at random moments,
    so most kills land in a snapshot (dump, new segment, state file, old segments deleted)."""
    chain = Chain.connect(settings)
    node = _node(settings)
    write = _writer(chain)
    rng = random.Random(5)
    confirmed: list[str] = []
    interrupted = 0
    try:
        for round_ in range(8):
            stop = threading.Event()
            failures: list[str] = []

            thread = threading.Thread(target=_snapshots, args=(chain.url, node, stop, failures))
            thread.start()
            for k in range(rng.randint(2, 6)):
                confirmed.extend(write(f"r{round_}-{k}", rng.randint(1, 4)))
            before = _hashes(chain.url)
            time.sleep(rng.uniform(0, 0.05))
            _kill_gate(node)
            stop.set()
            thread.join(timeout=30)
            interrupted += bool(failures)
            node.start()
            chain = Chain.connect(settings, start_node=False)
            write = _writer(chain)
            assert _hashes(chain.url)[: len(before)] == before, f"round {round_}"
            for tx_hash in confirmed:
                receipt = rpc_call(chain.url, "eth_getTransactionReceipt", [tx_hash])
                assert receipt is not None, f"round {round_}: confirmed {tx_hash} lost"
    finally:
        node.stop()
    assert interrupted >= 4, f"only {interrupted} of 8 kills landed while a snapshot was saved"


def _snapshots(url: str, node: EmbeddedNode, stop: threading.Event, failures: list[str]) -> None:
    """Ask for snapshots back to back until ``stop``, or until the gate dies."""
    while not stop.is_set():
        try:
            rpc_call(url, "neuroledger_snapshot", headers=node.auth_headers(), timeout=30)
        except NodeRPCError as exc:
            failures.append(str(exc))
            return


def _gate_pid(settings: Settings) -> int | None:
    spec = str(settings.chain_dir / "gate.spec.json").encode()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                args = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if spec in args and any(a.endswith(b"_gate.py") for a in args):
                return int(entry.name)
    return None


def test_a_kill_during_recovery_leaves_a_journal_the_next_start_recovers(
    settings: Settings,
) -> None:
    chain = Chain.connect(settings)
    node = _node(settings)
    write = _writer(chain)
    auth = node.auth_headers()
    confirmed = write("x")
    for _ in range(4):  # a long journal: thousands of blocks to replay
        rpc_call(chain.url, "anvil_mine", [hex(1000)], headers=auth, timeout=120)
        confirmed += write("y")
    before = _hashes(chain.url)
    _kill_gate(node)
    progress = settings.chain_dir / "recovery.json"
    failed: list[BaseException] = []

    def start() -> None:
        try:
            node.start()
        except Exception as exc:  # the gate dies in the middle of its replay
            failed.append(exc)

    starter = threading.Thread(target=start)
    starter.start()
    deadline = time.monotonic() + 60
    while not progress.exists():  # the replay reports its progress: kill it in the middle
        assert time.monotonic() < deadline, "the replay never reported progress"
        time.sleep(0.01)
    pid = _gate_pid(settings)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    starter.join(timeout=60)
    assert failed and "did not start" in str(failed[0])
    assert node.status().journal_bytes > 0  # nothing was replaced or deleted
    try:
        node.start()
        after = Chain.connect(settings, start_node=False)
        assert _hashes(after.url)[: len(before)] == before
        for tx_hash in confirmed:
            assert rpc_call(after.url, "eth_getTransactionReceipt", [tx_hash]) is not None
    finally:
        node.stop()


def test_a_revert_is_saved_at_once_and_survives_a_kill(settings: Settings) -> None:
    """evm_revert cannot be replayed from the journal: the gate saves a snapshot after it."""
    chain = Chain.connect(settings)
    node = _node(settings)
    write = _writer(chain)
    auth = node.auth_headers()
    try:
        snapshot = rpc_call(chain.url, "evm_snapshot", headers=auth)
        dropped = write("dropped")
        rpc_call(chain.url, "evm_revert", [snapshot], headers=auth)
        kept = write("kept")
        before = _hashes(chain.url)
        _kill_gate(node)
        node.start()
        after = Chain.connect(settings, start_node=False)
        assert _hashes(after.url) == before
        assert rpc_call(after.url, "eth_getTransactionReceipt", [dropped[0]]) is None
        assert rpc_call(after.url, "eth_getTransactionReceipt", [kept[0]]) is not None
    finally:
        node.stop()


def test_automine_cannot_be_switched_on_behind_the_gate(chain: Chain) -> None:
    assert chain.node is not None
    with pytest.raises(NodeRPCError, match="gate mines every block"):
        rpc_call(chain.url, "evm_setAutomine", [True], headers=chain.node.auth_headers())
    with pytest.raises(NodeRPCError, match="with the credential"):
        rpc_call(chain.url, "neuroledger_snapshot")  # the gate's own methods need the credential


def test_blocks_mined_on_a_clock_are_journaled_and_recovered(settings: Settings) -> None:
    """With a block time the gate mines on its own clock (empty blocks too); a kill loses
    none of them that a write was confirmed in, and every hash comes back."""
    timed = settings.with_(block_time=0.5)
    chain = Chain.connect(timed)
    node = EmbeddedNode(chain_dir=timed.chain_dir, port=timed.node_port, block_time=0.5)
    write = _writer(chain)
    try:
        confirmed = write("t1") + write("t2")
        time.sleep(1.2)  # a few empty blocks
        before = _hashes(chain.url)
        _kill_gate(node)
        node.start()
        after = Chain.connect(timed, start_node=False)
        assert _hashes(after.url)[: len(before)] == before
        for tx_hash in confirmed:
            assert rpc_call(after.url, "eth_getTransactionReceipt", [tx_hash]) is not None
        time.sleep(1.2)
        assert int(rpc_call(after.url, "eth_blockNumber"), 16) > len(before)  # still mining
    finally:
        node.stop()


def test_a_long_chain_killed_leaves_no_state_files_behind(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # anvil's default spills the states of blocks older than its last 500 to
    # ~/.foundry/anvil/tmp, which a killed anvil never removes: 75 GB on this machine
    # after a few days of test runs.
    home = tmp_path / "user-home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    chain = Chain.connect(settings)
    node = _node(settings)
    try:
        rpc_call(chain.url, "anvil_mine", [hex(700)], headers=node.auth_headers())
        assert int(rpc_call(chain.url, "eth_blockNumber"), 16) >= 700
        _kill_gate(node)
        assert [str(p) for p in home.rglob("*")] == []  # not even an empty directory
    finally:
        node.stop()
