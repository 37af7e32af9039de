"""The embedded node: lifetime, lock, stale lock, corrupted state, port in use."""

from __future__ import annotations

import json
import os
import signal
import socket
from pathlib import Path
from unittest import mock

import pytest

from neuroledger.chain._client import Chain
from neuroledger.chain._node import EmbeddedNode
from neuroledger.errors import DeploymentMismatchError, NodeStateCorruptError, PortInUseError
from tests.waiting import soon

pytestmark = pytest.mark.anvil


def node_of(settings) -> EmbeddedNode:
    return EmbeddedNode(chain_dir=settings.chain_dir, port=settings.node_port)


def test_start_status_stop_restart_keeps_chain(settings) -> None:
    node = node_of(settings)
    status = node.start()
    assert status.running and status.url and status.chain_id == 20044
    chain = Chain.connect(settings)
    address = chain.deployment().contracts["DIDRegistry"]["address"]
    assert node.stop()
    assert not node.status().running
    assert node.stop() is False
    chain = Chain.connect(settings)  # auto-start
    assert chain.deployment().contracts["DIDRegistry"]["address"] == address
    assert len(chain.w3.eth.get_code(address)) > 0
    node.stop()


def test_second_start_reuses_running_node(settings) -> None:
    first = node_of(settings).start()
    second = node_of(settings).start()
    try:
        assert second.pid == first.pid and second.url == first.url
    finally:
        node_of(settings).stop()


def test_stale_lock_of_dead_node_is_recovered(settings) -> None:
    node = node_of(settings)
    first = node.start()
    os.kill(first.pid, signal.SIGKILL)
    assert soon(
        lambda: not node_of(settings).status().running
    )  # the kernel reaps it in its own time
    again = node_of(settings).start()
    try:
        assert again.running and again.pid != first.pid
    finally:
        node_of(settings).stop()


def saved_state(settings) -> Path:
    """Run the node once so that it leaves a state file; return its path."""
    node = node_of(settings)
    node.start()
    node.stop()
    return settings.chain_dir / "state.bin"


def test_corrupted_state_refuses_and_keeps_file(settings) -> None:
    state = saved_state(settings)
    data = bytearray(state.read_bytes())
    data[-10] ^= 0xFF
    state.write_bytes(bytes(data))
    with pytest.raises(NodeStateCorruptError, match="--reset-state") as info:
        node_of(settings).start()
    assert "\n" not in str(info.value)
    assert state.read_bytes() == bytes(data)  # kept untouched
    before = node_of(settings).status()
    assert not before.running
    # `node status` says the saved state fails its check (issue 13: it showed a block).
    assert before.state_problem and "SHA-256" in before.state_problem
    assert before.state_block is None
    status = node_of(settings).start(reset_state=True)
    try:
        assert status.running
        assert list(settings.chain_dir.glob("state.*.bin.old"))  # moved aside, not deleted
    finally:
        node_of(settings).stop()


def test_truncated_state_refuses(settings) -> None:
    state = saved_state(settings)
    state.write_bytes(state.read_bytes()[:40])
    with pytest.raises(NodeStateCorruptError):
        node_of(settings).start()
    assert node_of(settings).status().state_problem


def test_port_in_use(settings) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(PortInUseError, match="--port"):
            node_of(settings.with_(node_port=port)).start()


def test_genesis_hash_change_never_redeploys(settings) -> None:
    """C1: a new block-0 hash after a restart is not a reason to forget the suite."""
    chain = Chain.connect(settings)
    record = chain.deployment()
    path = settings.deployments_dir / f"{chain.chain_id}.json"
    data = json.loads(path.read_text())
    data["genesis_hash"] = "0x" + "ab" * 32  # as anvil sometimes reports after --load-state
    path.write_text(json.dumps(data))
    node_of(settings).stop()
    again = Chain.connect(settings).deployment()
    try:
        assert again.contracts == record.contracts
        assert not list(settings.deployments_dir.glob("*.replaced"))
    finally:
        node_of(settings).stop()


def test_reset_chain_refuses_until_deploy_force(settings) -> None:
    """C1: contracts missing at recorded addresses are an error naming `deploy --force`;
    only --force deploys anew, and it keeps the old record."""
    from neuroledger.cli.main import run

    chain = Chain.connect(settings)
    old = chain.deployment().contracts["DIDRegistry"]["address"]
    node_of(settings).stop()
    node_of(settings).start(reset_state=True)
    try:
        with pytest.raises(DeploymentMismatchError, match="deploy --force") as info:
            Chain.connect(settings).deployment()
        assert "\n" not in str(info.value) and "no code there" in str(info.value)
        record_path = settings.deployments_dir / "20044.json"
        assert json.loads(record_path.read_text())["contracts"]["DIDRegistry"]["address"] == old
        env = {"NEUROLEDGER_HOME": str(settings.home)}
        with mock.patch.dict(os.environ, env):
            assert run(["deploy", "--force", "--json"]) == 0
        new = Chain.connect(settings).deployment().contracts["DIDRegistry"]["address"]
        assert len(Chain.connect(settings).w3.eth.get_code(new)) > 0
        aside = list(settings.deployments_dir.glob("20044.*.json.replaced"))
        assert len(aside) == 1
        assert json.loads(aside[0].read_text())["contracts"]["DIDRegistry"]["address"] == old
    finally:
        node_of(settings).stop()
