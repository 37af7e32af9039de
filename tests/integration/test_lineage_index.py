"""The lineage index on a real anvil: reorgs, crashes mid-indexing, queries."""

from __future__ import annotations

import hashlib
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from eth_account import Account
from web3 import Web3

from neuroledger.chain._anvil import start_dev_anvil
from neuroledger.chain._artifacts import load_artifact
from neuroledger.errors import IndexReorgError
from neuroledger.provenance import AssetRecord, AssetRegistryClient, LineageIndex
from neuroledger.provenance._registry import asset_id_for

pytestmark = pytest.mark.anvil

ROOT = Path(__file__).resolve().parents[2]


def aid(label: str) -> str:
    return hashlib.sha256(label.encode()).hexdigest()


class Registry:
    """A DID + asset registry deployed on a dev anvil, written to by a dev account."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.w3 = Web3(Web3.HTTPProvider(url))
        self.me = self.w3.eth.accounts[0]
        did = self._deploy(load_artifact("DIDRegistry").bytecode)
        art = load_artifact("AssetRegistry")
        self.address = self._deploy(art.bytecode + bytes(12) + bytes.fromhex(did[2:]))
        self.block = self.w3.eth.block_number
        self.client = AssetRegistryClient(self.w3.eth.contract(address=self.address, abi=art.abi))

    def _deploy(self, code: bytes) -> str:
        tx = self.w3.eth.send_transaction({"from": self.me, "data": "0x" + code.hex()})
        return str(self.w3.eth.wait_for_transaction_receipt(tx)["contractAddress"])

    def send(self, call) -> None:
        tx = self.w3.eth.send_transaction(
            {"from": self.me, "to": call.to, "data": "0x" + call.data.hex()}
        )
        assert self.w3.eth.wait_for_transaction_receipt(tx)["status"] == 1

    def register(self, label: str, parents: tuple[str, ...] = ()) -> str:
        self.send(
            self.client.register(
                self.me, aid(label), 1, aid("m"), "", [self.id(p) for p in parents], ""
            )
        )
        return self.id(label)

    def id(self, label: str) -> str:
        """The asset id of content ``label`` registered by this registry's account."""
        return asset_id_for(self.me, aid(label))

    def rpc(self, method: str, params: list) -> object:
        return self.w3.provider.make_request(method, params)["result"]


@pytest.fixture
def registry():
    proc, url = start_dev_anvil()
    yield Registry(url)
    proc.kill()
    proc.wait()


def open_index(tmp_path: Path, registry: Registry) -> LineageIndex:
    return LineageIndex(
        tmp_path / "index.sqlite",
        chain_id=31337,
        contract=registry.address,
        start_block=registry.block,
    )


def test_lineage_queries(tmp_path: Path, registry: Registry) -> None:
    registry.register("d1")
    registry.register("d2")
    registry.register("code")
    registry.register("run", ("d1", "d2", "code"))
    registry.register("model", ("run",))
    registry.register("deploy", ("model",))
    index = open_index(tmp_path, registry)
    assert index.sync(registry.w3, registry.address) == 6
    assert index.ancestors(registry.id("deploy")) == {
        registry.id("model"): 1, registry.id("run"): 2, registry.id("d1"): 3, registry.id("d2"): 3, registry.id("code"): 3,
    }  # fmt: skip
    assert index.descendants(registry.id("d2")) == {
        registry.id("run"): 1,
        registry.id("model"): 2,
        registry.id("deploy"): 3,
    }
    assert index.paths(registry.id("deploy"), registry.id("d1")) == [
        [registry.id("deploy"), registry.id("model"), registry.id("run"), registry.id("d1")]
    ]
    assert index.resolve(registry.id("model")[:6]) == registry.id("model")
    assert index.sync(registry.w3, registry.address) == 0  # nothing new


def test_shallow_reorg_is_followed(tmp_path: Path, registry: Registry) -> None:
    registry.register("base")
    index = open_index(tmp_path, registry)
    index.sync(registry.w3, registry.address, confirmations=5)
    snapshot = registry.rpc("evm_snapshot", [])
    registry.register("orphaned", ("base",))
    registry.send(registry.client.revoke(registry.id("base"), "orphaned revocation"))
    index.sync(registry.w3, registry.address, confirmations=5)
    assert index.get(registry.id("orphaned")) is not None
    assert index.get(registry.id("base")).status == "revoked"

    registry.rpc("evm_revert", [snapshot])  # the chain forgets both transactions
    registry.register("canonical", ("base",))
    registry.rpc("anvil_mine", [3])
    index.sync(registry.w3, registry.address, confirmations=5)
    assert index.get(registry.id("orphaned")) is None
    assert index.get(registry.id("canonical")) is not None
    assert index.get(registry.id("base")).status == "active"
    assert index.descendants(registry.id("base")) == {registry.id("canonical"): 1}


def test_reorg_below_final_block_is_refused(tmp_path: Path, registry: Registry) -> None:
    snapshot = registry.rpc("evm_snapshot", [])
    registry.register("final-then-gone")
    index = open_index(tmp_path, registry)
    index.sync(registry.w3, registry.address, confirmations=0)
    registry.rpc("evm_revert", [snapshot])
    registry.register("other")
    with pytest.raises(IndexReorgError, match="--rebuild"):
        index.sync(registry.w3, registry.address, confirmations=0)
    index.rebuild()
    index.sync(registry.w3, registry.address, confirmations=0)
    assert index.get(registry.id("final-then-gone")) is None
    assert index.get(registry.id("other")) is not None


_INDEXER = """
import sys, time
from pathlib import Path
from web3 import Web3
from neuroledger.provenance import LineageIndex

def progress(done, total):
    print(done, flush=True)
    time.sleep(0.01)

url, address, start, path = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
index = LineageIndex(path, chain_id=31337, contract=address, start_block=start)
# Small chunks: many commits, so that kills land at different points of the sync.
index.sync(Web3(Web3.HTTPProvider(url)), address, progress=progress, chunk_blocks=2)
"""


def test_crash_mid_indexing_resumes_to_the_same_index(tmp_path: Path, registry: Registry) -> None:
    labels = [f"a{i}" for i in range(60)]
    previous: tuple[str, ...] = ()
    for label in labels:
        registry.register(label, previous)
        previous = (label,)
    args = [registry.url, registry.address, str(registry.block), str(tmp_path / "crashed.sqlite")]
    for kill_after in (2, 3, 5):  # 10 chunks of 2 blocks in all: well short of 60
        proc = subprocess.Popen(
            [sys.executable, "-c", _INDEXER, *args], stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout is not None
        for _ in range(kill_after):
            if not proc.stdout.readline():
                break
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    crashed = LineageIndex(
        tmp_path / "crashed.sqlite", chain_id=31337, contract=registry.address,
        start_block=registry.block,
    )  # fmt: skip
    assert crashed.count() < len(labels)  # the kills did land mid-way
    crashed.sync(registry.w3, registry.address)
    clean = open_index(tmp_path, registry)
    clean.sync(registry.w3, registry.address)
    assert crashed.count() == clean.count() == len(labels)
    assert crashed.ancestors(registry.id("a59")) == clean.ancestors(registry.id("a59"))
    assert len(crashed.ancestors(registry.id("a59"))) == 59


def test_index_of_another_chain_starts_over(tmp_path: Path, registry: Registry) -> None:
    registry.register("x")
    index = open_index(tmp_path, registry)
    index.sync(registry.w3, registry.address)
    index.close()
    other = LineageIndex(
        tmp_path / "index.sqlite", chain_id=1, contract=Account.create().address, start_block=0
    )
    assert other.count() == 0


def test_index_of_another_chain_history_is_found_before_any_write(tmp_path: Path) -> None:
    """Issue 13: after a node reset, the index crashed with BlockNotFound (after the write).

    A chain rolled back below the index's final block (same genesis) is an error that names
    `--rebuild`; a new chain at the same id and address (another genesis) rebuilds itself.
    """
    proc, url = start_dev_anvil()
    try:
        first = Registry(url)
        snapshot = first.rpc("evm_snapshot", [])
        for label in ("a", "b", "c"):
            first.register(label)
        index = open_index(tmp_path, first)
        index.sync(first.w3, first.address)
        assert index.count() == 3
        first.rpc("evm_revert", [snapshot])  # the chain is now shorter than the index's final
        with pytest.raises(IndexReorgError, match=r"another chain history.*--rebuild"):
            index.sync(first.w3, first.address)
        index.close()
    finally:
        proc.kill()
        proc.wait()
    # A new chain (another genesis time): same id, same deployer, same addresses, and more
    # blocks than the old one, so only the genesis tells the histories apart.
    proc, url = start_dev_anvil("--timestamp", "1900000000")
    try:
        second = Registry(url)
        assert second.address == first.address
        for label in ("x", "y", "z"):
            second.register(label)
        index = open_index(tmp_path, second)
        index.sync(second.w3, second.address)
        assert index.count() == 3 and index.get(second.id("z")) is not None
        assert index.get(first.id("a")) is None  # nothing of the old history is left
    finally:
        proc.kill()
        proc.wait()


def _state(index: LineageIndex) -> tuple[list[AssetRecord], list[tuple[str, str]], dict]:
    records = index.all()
    ids = [r.id for r in records]
    return records, sorted(index.edges(ids)), {i: index.changes(i) for i in ids}


def test_reorgs_of_depth_1_to_3_during_writes_end_as_a_fresh_read(
    tmp_path: Path, registry: Registry
) -> None:
    """Issue 13 §6: anvil_reorg drops the last 1-3 blocks while assets are registered and
    revoked; the index (3 confirmations) follows, never treats a dropped block as final, and
    ends equal to an index read from scratch."""
    import random

    rng = random.Random(13)
    index = open_index(tmp_path, registry)
    registered: list[tuple[str, int]] = []  # (label, block) as sent
    reorgs = 0
    for step in range(60):
        head = registry.w3.eth.block_number
        final = [  # deep enough to outlive any reorg from now on, and not dropped before
            label for label, block in registered
            if block <= head - 3 and registry.client.asset_of(registry.id(label))[2] != 0
        ]  # fmt: skip
        if rng.random() < 0.15 and head - registry.block > 4:
            registry.rpc("anvil_reorg", [rng.randint(1, 3), []])  # those blocks' txs are gone
            reorgs += 1
        elif final and rng.random() < 0.15:
            label = rng.choice(final)
            if registry.client.asset_of(registry.id(label))[2] == 1:
                registry.send(registry.client.revoke(registry.id(label), f"step {step}"))
        else:
            active = [f for f in final if registry.client.asset_of(registry.id(f))[2] == 1]
            parents = tuple(rng.sample(active, min(len(active), rng.randint(0, 2))))
            label = f"asset-{step}"
            registry.register(label, parents)
            registered.append((label, registry.w3.eth.block_number))
        if step % 4 == 0:
            index.sync(registry.w3, registry.address, confirmations=3)  # never IndexReorgError
    assert reorgs >= 5
    index.sync(registry.w3, registry.address, confirmations=3)
    fresh = LineageIndex(
        tmp_path / "fresh.sqlite", chain_id=31337, contract=registry.address,
        start_block=registry.block,
    )  # fmt: skip
    fresh.sync(registry.w3, registry.address, confirmations=0)
    assert _state(index) == _state(fresh)
    dropped = [label for label, _ in registered if index.get(registry.id(label)) is None]
    assert dropped, "no registration was dropped by a reorg: the test did not test anything"
