"""The Flower adapter in a real Flower deployment: a SuperLink, SuperNodes and `flwr run`.

Flower's own processes carry every message over their HTTP/gRPC APIs on
loopback; the ServerApp wraps FedAvg in ``LedgerStrategy.from_env``; two
consortium members validate every round from the board and attest on the
embedded anvil chain of the owner's home.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from neuroledger.chain._client import Chain
from neuroledger.config import KdfParams, Settings
from neuroledger.federated._board import Board
from neuroledger.federated._ledger import TaskLedger
from neuroledger.federated.flower import validate_round
from neuroledger.identity._keystore import Keystore
from neuroledger.store import FileStore

pytestmark = pytest.mark.anvil

BIN = Path(sys.executable).parent
ROUNDS = 3

SERVER_APP = """
import json

import numpy as np
from flwr.app import Array, ArrayRecord, Context
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg

from neuroledger.federated._data import split_dataset
from neuroledger.federated.flower import LedgerStrategy, aggregate_digest
from neuroledger.federated._models import LogisticModel

app = ServerApp()
_, (XV, YV) = split_dataset("breast-cancer", parties=2, alpha=1.0, seed=4)


@app.main()
def main(grid: Grid, context: Context) -> None:
    cfg = context.run_config
    strategy = LedgerStrategy.from_env(
        FedAvg(fraction_evaluate=0.0, min_available_nodes=2, min_train_nodes=2),
        task_id=int(cfg["task-id"]), owner=str(cfg["owner"]),
        utility=lambda arrays: LogisticModel(30, 2).accuracy(arrays["w"].numpy(), XV, YV),
    )
    result = strategy.start(grid, ArrayRecord({"w": Array(np.zeros(62))}),
                            num_rounds=int(cfg["num-server-rounds"]))
    members = str(cfg["payees"]).split(",")
    payees = dict(zip(sorted(strategy.scores), members))
    strategy.finish(aggregate_digest(result.arrays), payees)
    print("NEUROLEDGER-DONE", json.dumps({"rounds": strategy.rounds, "scores": strategy.scores}))
"""

CLIENT_APP = """
from flwr.app import Array, ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from neuroledger.federated._data import split_dataset
from neuroledger.federated._models import LogisticModel, local_train

app = ClientApp()
PARTIES, _ = split_dataset("breast-cancer", parties=2, alpha=1.0, seed=4)


@app.train()
def train(msg: Message, context: Context) -> Message:
    x, y = PARTIES[int(context.node_config["partition-id"])]
    w = msg.content["arrays"]["w"].numpy()
    new = local_train(LogisticModel(30, 2), w, x, y, epochs=5, lr=0.5)
    content = RecordDict({"arrays": ArrayRecord({"w": Array(new)}),
                          "metrics": MetricRecord({"num-examples": len(y)})})
    return Message(content, reply_to=msg)
"""

PYPROJECT = """
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "nlflower"
version = "1.0.0"
description = "NeuroLedger's Flower adapter under a real SuperLink"
license = "Apache-2.0"
dependencies = []

[tool.hatch.build.targets.wheel]
packages = ["."]

[tool.flwr.app]
publisher = "neuroledger"

[tool.flwr.app.components]
serverapp = "nlflower.server_app:app"
clientapp = "nlflower.client_app:app"

[tool.flwr.app.config]
num-server-rounds = 3
task-id = 0
owner = ""
payees = ""
"""


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listens on {port}")


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[dict]:  # type: ignore[type-arg]
    home, shared, flwr_home = tmp_path / "home", tmp_path / "shared", tmp_path / "flwr"
    passphrase = tmp_path / "passphrase"
    passphrase.write_text("flower deployment test\n")
    settings = Settings(home=home, kdf=KdfParams.light())
    chain = Chain.connect(settings)
    keystore = Keystore(settings.keystore_dir, passphrase=lambda: "flower deployment test",
                        kdf=settings.kdf)  # fmt: skip
    for name in ("owner", "member-a", "member-b"):
        keystore.create(name, "org")
        chain.fund(keystore.get(name).owner)
    ledger = TaskLedger(chain, FileStore(shared / "store"))
    owner = keystore.owner_account("owner")
    members = [keystore.owner_account(n) for n in ("member-a", "member-b")]
    task_id = ledger.create_task(owner, model_asset="11" * 32, code_asset="22" * 32,
                                 rounds=ROUNDS, validators=2, pool_wei=10**17)  # fmt: skip
    for m in members:
        ledger.join(m, task_id)
    app = tmp_path / "app"
    (app / "nlflower").mkdir(parents=True)
    (app / "pyproject.toml").write_text(PYPROJECT)
    (app / "nlflower" / "__init__.py").write_text("")
    (app / "nlflower" / "server_app.py").write_text(SERVER_APP)
    (app / "nlflower" / "client_app.py").write_text(CLIENT_APP)
    port = _port()
    flwr_home.mkdir()
    (flwr_home / "config.toml").write_text(textwrap.dedent(f"""
        [superlink]
        default = "test"

        [superlink.test]
        address = "127.0.0.1:{port}"
        insecure = true
    """))  # fmt: skip
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "FLWR_HOME": str(flwr_home),
           "NEUROLEDGER_HOME": str(home), "NEUROLEDGER_PASSPHRASE_FILE": str(passphrase),
           "NEUROLEDGER_SHARED": str(shared)}  # fmt: skip
    logs = tmp_path / "logs"
    logs.mkdir()
    procs = [subprocess.Popen(
        [str(BIN / "flower-superlink"), "--insecure", "--disable-runtime-dependency-installation",
         "--database", ":flwr-in-memory:", "--port", str(port)],
        env=env, cwd=tmp_path, stdout=(logs / "superlink.log").open("w"), stderr=subprocess.STDOUT,
    )]  # fmt: skip
    try:
        _wait_port(port)
        for i in range(2):
            procs.append(subprocess.Popen(
                [str(BIN / "flower-supernode"), "--insecure", "--superlink", f"127.0.0.1:{port}",
                 "--port", str(_port()), "--node-config", f"partition-id={i}"],
                env=env, cwd=tmp_path, stdout=(logs / f"supernode-{i}.log").open("w"),
                stderr=subprocess.STDOUT,
            ))  # fmt: skip
        yield {"env": env, "app": app, "ledger": ledger, "owner": owner, "members": members,
               "task_id": task_id, "board": Board(shared, task_id), "logs": logs}  # fmt: skip
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        if chain.node is not None:
            chain.node.stop()


def test_a_flower_run_through_a_superlink_is_recorded_and_attested(deployment: dict) -> None:  # type: ignore[type-arg]
    d = deployment
    ledger, board, owner = d["ledger"], d["board"], d["owner"]
    attested: list[tuple[int, str]] = []
    errors: list[BaseException] = []

    def validator(account) -> None:  # type: ignore[no-untyped-def]
        try:
            for r in range(1, ROUNDS + 1):
                Board.wait(lambda r=r: board.read(f"r{r}/result.json", signer=owner.address),
                           timeout=120, what=f"round {r}")  # fmt: skip
                attested.append((r, validate_round(ledger, account, board, ledger.store,
                                                   owner.address, r)))  # fmt: skip
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=validator, args=(m,)) for m in d["members"]]
    for t in threads:
        t.start()
    payees = ",".join(str(m.address) for m in d["members"])
    run = subprocess.run(
        [str(BIN / "flwr"), "run", str(d["app"]), "test", "--stream", "--run-config",
         f'task-id={d["task_id"]} owner="owner" payees="{payees}"'],
        env=d["env"], capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    for t in threads:
        t.join(60)
    logs = run.stdout + run.stderr + "".join(p.read_text() for p in d["logs"].iterdir())
    assert not errors, (errors, logs[-3000:])
    assert "NEUROLEDGER-DONE" in logs, logs[-3000:]
    state = ledger.task(d["task_id"])
    assert state.finalized_round == ROUNDS and state.status == 2, logs[-3000:]
    assert len(attested) == 2 * ROUNDS
    for r in range(1, ROUNDS + 1):
        _, digest, count, _ = ledger.contract.functions.roundRecords(d["task_id"], r).call()
        assert count == 2 and sorted(x for rr, x in attested if rr == r) == [digest.hex()] * 2
    paid = sum(ledger.reward_of(d["task_id"], str(m.address)) for m in d["members"])
    assert paid == 10**17
