"""Federated tasks run as separate OS processes: one owner, participants each with its own home.

The owner's home runs the embedded anvil node; every participant has its own
home (its own keystore), reaches the chain over JSON-RPC, and shares only the
task directory (content store + signed board) with the others.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from web3 import Web3

from neuroledger.chain._node import EmbeddedNode
from neuroledger.federated._models import LogisticModel, local_train

pytestmark = pytest.mark.anvil

NL = str(Path(sys.executable).parent / "neuroledger")
PARTIES = 4


@dataclass
class Consortium:
    root: Path
    shared: Path
    owner_env: dict[str, str]
    party_envs: list[dict[str, str]]
    url: str

    def owner(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([NL, *args], env=self.owner_env, capture_output=True, text=True,
                              timeout=timeout)  # fmt: skip

    def party(self, i: int, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([NL, *args], env=self.party_envs[i], capture_output=True, text=True,
                              timeout=timeout)  # fmt: skip

    def data(self, dataset: str) -> Path:
        out = self.root / f"data-{dataset}"
        if not out.exists():
            proc = self.owner("fl", "prepare", str(out), "--dataset", dataset, "--parties",
                              str(PARTIES), "--alpha", "0.5", "--seed", "3")  # fmt: skip
            assert proc.returncode == 0, proc.stderr
        return out


def _env(home: Path, passphrase: Path, shared: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEUROLEDGER_")}
    env.update(NEUROLEDGER_HOME=str(home), NEUROLEDGER_PASSPHRASE_FILE=str(passphrase),
               NEUROLEDGER_SCRYPT_N="16384", NEUROLEDGER_SHARED=str(shared), **extra)  # fmt: skip
    return env


@pytest.fixture(scope="module")
def consortium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Consortium]:
    root = tmp_path_factory.mktemp("consortium")
    passphrase = root / "passphrase"
    passphrase.write_text("correct horse battery staple\n")
    shared = root / "shared"
    owner_env = _env(root / "owner", passphrase, shared)
    c = Consortium(root, shared, owner_env, [], "")
    assert c.owner("init").returncode == 0
    assert c.owner("identity", "create", "sponsor").returncode == 0
    c.url = json.loads(c.owner("node", "status", "--json").stdout)["url"]
    # The chain's operator (the owner's home, holding its node credential) funds the parties.
    operator = EmbeddedNode(chain_dir=root / "owner" / "chain").auth_headers()
    w3 = Web3(Web3.HTTPProvider(c.url, request_kwargs={"headers": operator}))
    record = root / "owner" / "deployments"
    try:
        for i in range(PARTIES):
            home = root / f"party-{i}"
            (home / "deployments").mkdir(parents=True)
            # Participants on a consortium chain use the suite's deployment record.
            for path in record.glob("*.json"):
                shutil.copy(path, home / "deployments" / path.name)
            env = _env(home, passphrase, shared, NEUROLEDGER_RPC_URL=c.url)
            c.party_envs.append(env)
            created = c.party(i, "identity", "create", f"hospital-{i}", "--json")
            # On an external chain nobody funds new keys: the identity is created (exit 0) and
            # the output says what to fund before `identity publish` (issue 13: exit 4).
            assert created.returncode == 0, created.stderr
            made = json.loads(created.stdout)
            assert not made["published"] and "identity publish" in made["next_step"]
            address = json.loads(c.party(i, "identity", "show", f"hospital-{i}", "--json").stdout)
            w3.provider.make_request("anvil_setBalance", [address["owner"], hex(10**19)])
            assert c.party(i, "identity", "publish", f"hospital-{i}").returncode == 0
        yield c
    finally:
        c.owner("node", "stop")


def _create(c: Consortium, data: Path, *args: str) -> int:
    proc = c.owner("fl", "create", "--from", "sponsor", "--validation", str(data / "validation.npz"),
                   "--pool", "0.4", "--json", *args)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return int(json.loads(proc.stdout)["task_id"])


def _run(c: Consortium, task: int, data: Path, faults: dict[int, str] | None = None,
         parties: int = PARTIES) -> tuple[dict, subprocess.CompletedProcess[str], list[tuple[int, str, str]]]:  # fmt: skip
    """Start the participant processes, drive the task as the owner, collect everything."""
    faults = faults or {}
    procs = []
    for i in range(parties):
        extra = ["--fault", faults[i]] if i in faults else []
        procs.append(subprocess.Popen(
            [NL, "fl", "join", str(task), "--identity", f"hospital-{i}", "--data",
             str(data / f"party-{i + 1}.npz"), "--timeout", "120", "--json", *extra],
            env=c.party_envs[i], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        ))  # fmt: skip
    out = c.root / f"results-{task}.json"
    try:
        run = c.owner("fl", "run", str(task), "--validation", str(data / "validation.npz"),
                      "--out", str(out), "--join-timeout", "120", timeout=300)  # fmt: skip
        finished = []
        for p in procs:
            stdout, stderr = p.communicate(timeout=120)
            finished.append((p.returncode, stdout, stderr))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert run.returncode == 0, run.stderr + "".join(e for _, _, e in finished)
    return json.loads(out.read_text()), run, finished


def _central_accuracy(data: Path) -> float:
    parts = [np.load(data / f"party-{i + 1}.npz") for i in range(PARTIES)]
    x = np.concatenate([p["x"] for p in parts])
    y = np.concatenate([p["y"] for p in parts])
    val = np.load(data / "validation.npz")
    model = LogisticModel(x.shape[1], int(y.max()) + 1)
    w = local_train(model, model.init(), x, y, epochs=500, lr=0.5)
    return model.accuracy(w, val["x"], val["y"])


def test_breast_cancer_secure_aggregation_matches_centralized(consortium: Consortium) -> None:
    c = consortium
    data = c.data("breast-cancer")
    task = _create(c, data, "--rounds", "10", "--secure", "--min-participants", str(PARTIES),
                   "--phase-timeout", "20")  # fmt: skip
    report, _, parties = _run(c, task, data)
    central = _central_accuracy(data)
    final = report["rounds"][-1]["accuracy"]
    assert final >= central - 0.02, (final, central)
    summaries = [json.loads(out) for code, out, _ in parties if code == 0]
    assert len(summaries) == PARTIES
    assert all(s["claimed"] and s["rounds_played"] == 10 for s in summaries)
    assert sum(int(v) for v in report["rewards"].values()) == 4 * 10**17
    status = json.loads(c.owner("fl", "status", str(task), "--json").stdout)
    assert status["status"] == "finished" and status["final_round"] == 10
    lineage = json.loads(c.owner("asset", "lineage", report["final_model_asset"], "--format",
                                 "json").stdout)  # fmt: skip
    kinds = [node["kind"] for node in lineage["nodes"].values()]
    assert kinds.count("dataset") == PARTIES and kinds.count("federated-round") == 10
    assert "code" in kinds and "training-run" in kinds
    assert all(r["gas"] and r["gas"] < 200_000 for r in report["rounds"])


def test_digits_plain_processes_match_centralized(consortium: Consortium) -> None:
    c = consortium
    data = c.data("digits")
    task = _create(c, data, "--rounds", "15", "--min-participants", str(PARTIES))
    report, run, parties = _run(c, task, data)
    central = _central_accuracy(data)
    assert report["rounds"][-1]["accuracy"] >= central - 0.02, (report["rounds"][-1], central)
    assert all(code == 0 for code, _, _ in parties)
    # Off a terminal a participant says what it waits for, and each round (issue 13: it
    # printed nothing for up to 600 s); the owner says when it scores and pays.
    for _, _, err in parties:
        assert "waiting for the owner to start round 1" in err and "round 15/15" in err, err
    assert "scoring contributions and paying rewards" in run.stderr


def test_bad_updates_are_rejected_and_the_task_goes_on(consortium: Consortium) -> None:
    c = consortium
    data = c.data("breast-cancer")
    task = _create(c, data, "--rounds", "5", "--min-participants", str(PARTIES),
                   "--phase-timeout", "10")  # fmt: skip
    faults = {0: "nan@2", 1: "wrong-shape@3", 2: "stale@4", 3: "wrong-attest@2"}
    report, run, parties = _run(c, task, data, faults)
    addresses = {i: json.loads(out)["address"] for i, (_, out, _) in enumerate(parties)}
    rounds = {r["round"]: r for r in report["rounds"]}
    assert "NaN" in rounds[2]["rejected"][addresses[0]]
    assert "holds" in rounds[3]["rejected"][addresses[1]]
    assert rounds[4]["rejected"][addresses[2]].startswith("stale")
    assert f"round 2: rejected the update of {addresses[0]}: update holds NaN" in run.stderr
    assert "wrong attestation was refused by the contract" in parties[3][2]
    assert all(code == 0 for code, _, _ in parties)
    assert len(report["rounds"]) == 5 and report["rounds"][-1]["accuracy"] > 0.9


def test_dropout_mid_round_is_recovered_under_secure_aggregation(consortium: Consortium) -> None:
    c = consortium
    data = c.data("breast-cancer")
    task = _create(c, data, "--rounds", "4", "--secure", "--min-participants", "3",
                   "--phase-timeout", "5", "--dp-noise", "0.3", "--clip", "2")  # fmt: skip
    report, run, parties = _run(c, task, data, {2: "drop@2"}, parties=3)
    dropped = json.loads(parties[2][1])
    assert dropped["dropped"] and dropped["rounds_played"] == 1
    assert rounds_dropped(report) == {2: [dropped["address"]]}
    assert "dropped out" in run.stderr and "revealed shares" in run.stderr
    epsilons = [r["epsilon"] for r in report["rounds"]]
    assert all(e > 0 for e in epsilons) and epsilons == sorted(epsilons)
    assert report["rounds"][-1]["accuracy"] > 0.85


def rounds_dropped(report: dict) -> dict[int, list[str]]:
    return {r["round"]: r["dropped"] for r in report["rounds"] if r["dropped"]}


def test_join_twice_and_bad_data_are_refused(consortium: Consortium) -> None:
    c = consortium
    data = c.data("breast-cancer")
    task = _create(c, data, "--rounds", "1", "--min-participants", "1", "--validators", "1")
    bad = c.root / "bad.npz"
    np.savez(bad, x=np.zeros((5, 7)), y=np.zeros(5, dtype=np.int64))
    proc = c.party(0, "fl", "join", str(task), "--identity", "hospital-0", "--data", str(bad))
    assert proc.returncode == 15 and "has 7 features, the task's model takes 30" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    report, _, parties = _run(c, task, data, parties=1)
    assert parties[0][0] == 0 and report["rewards"]
    again = c.party(0, "fl", "join", str(task), "--identity", "hospital-0", "--data",
                    str(data / "party-1.npz"))  # fmt: skip
    assert again.returncode == 15 and "already joined" in again.stderr
    unknown = c.owner("fl", "status", "999")
    assert unknown.returncode == 15 and "does not exist" in unknown.stderr


def test_bad_options_give_one_line_and_change_nothing(consortium: Consortium) -> None:
    c = consortium
    data = c.data("breast-cancer")
    task = _create(c, data, "--rounds", "1", "--min-participants", "1", "--validators", "1")
    before = json.loads(c.owner("fl", "status", str(task), "--json").stdout)
    cases = [
        (c.owner, ["fl", "create", "--from", "sponsor", "--validation", str(data / "validation.npz"),
                   "--pool", "lots"], "is not an amount of ETH"),
        (c.owner, ["fl", "create", "--from", "sponsor", "--validation", str(data / "validation.npz"),
                   "--validators", "5", "--min-participants", "3"], "must be between 1 and"),
        (c.owner, ["fl", "create", "--from", "sponsor", "--validation", str(data / "nope.npz")],
         "no data file"),
        (c.owner, ["fl", "create", "--from", "sponsor", "--validation", str(data / "validation.npz"),
                   "--secure", "--aggregator", "krum"], "needs every update in the clear"),
        (lambda *a: c.party(0, *a), ["fl", "run", str(task), "--validation", str(data / "validation.npz")],
         "not a key of this home"),
        (lambda *a: c.party(0, *a), ["fl", "join", str(task), "--identity", "hospital-0", "--data",
                                     str(data / "party-1.npz"), "--fault", "boom"], "unknown fault"),
    ]  # fmt: skip
    for run, args, message in cases:
        proc = run(*args)
        assert proc.returncode == 15, (args, proc.stderr)
        assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    after = json.loads(c.owner("fl", "status", str(task), "--json").stdout)
    assert after == before
    # No bad `fl create` left a task behind.
    assert c.owner("fl", "status", str(task + 1)).returncode == 15


def test_m6_a_task_that_never_starts_is_cancelled_and_nothing_stays_locked(
    consortium: Consortium,
) -> None:
    """k is more than will ever join: the owner cancels, gets the pool back; the participant
    gets its stake back; the owner can neither join its own task nor claim twice."""
    c = consortium
    data = c.data("breast-cancer")
    task = _create(c, data, "--rounds", "2", "--min-participants", "3", "--validators", "3",
                   "--stake", "0.02", "--deadline", "1h")  # fmt: skip
    status = json.loads(c.owner("fl", "status", str(task), "--json").stdout)
    assert status["stake_wei"] == str(2 * 10**16) and status["status"] == "open"
    early = c.party(0, "fl", "claim", str(task), "--identity", "hospital-0")
    assert early.returncode == 15 and "still open" in early.stderr
    own = c.owner("fl", "join", str(task), "--identity", "sponsor", "--data",
                  str(data / "party-1.npz"))  # fmt: skip
    assert own.returncode == 15 and "never participates" in own.stderr
    joiner = subprocess.Popen(
        [NL, "fl", "join", str(task), "--identity", "hospital-0", "--data",
         str(data / "party-1.npz"), "--timeout", "60"],
        env=c.party_envs[0], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        for _ in range(240):
            if json.loads(c.owner("fl", "status", str(task), "--json").stdout)["participants"]:
                break
            time.sleep(0.25)
        else:
            raise AssertionError("hospital-0 never joined")
    finally:
        joiner.kill()
        joiner.communicate()
    not_owner = c.party(0, "fl", "cancel", str(task), "--from", "hospital-0")
    assert not_owner.returncode == 15 and "does not own" in not_owner.stderr
    assert c.owner("fl", "cancel", str(task), "--from", "sponsor").returncode == 0
    assert json.loads(c.owner("fl", "status", str(task), "--json").stdout)["status"] == "refunded"
    pool = json.loads(c.owner("fl", "claim", str(task), "--identity", "sponsor", "--json").stdout)
    assert pool["received_wei"] == str(4 * 10**17)
    stake = json.loads(c.party(0, "fl", "claim", str(task), "--identity", "hospital-0",
                               "--json").stdout)  # fmt: skip
    assert stake["received_wei"] == str(2 * 10**16)
    again = c.owner("fl", "claim", str(task), "--identity", "sponsor")
    assert again.returncode == 15 and "already claimed" in again.stderr
    for bad, message in (("7x", "not a duration"), ("400d", "366 days")):
        proc = c.owner("fl", "create", "--from", "sponsor", "--validation",
                       str(data / "validation.npz"), "--deadline", bad)  # fmt: skip
        assert proc.returncode == 15 and message in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1


def test_a_task_runs_after_its_owner_identity_rotated_its_key(consortium: Consortium) -> None:
    """The task belongs to the key that created it; rotating the identity's key afterwards
    must not orphan the task (issue 13: `fl run` said the owner key was not in this home)."""
    c = consortium
    data = c.data("breast-cancer")
    task = _create(c, data, "--rounds", "1", "--min-participants", "1", "--validators", "1")
    rotated = c.owner("identity", "rotate", "sponsor")
    assert rotated.returncode == 0, rotated.stderr
    report, run, parties = _run(c, task, data, parties=1)
    assert parties[0][0] == 0 and report["rewards"], run.stderr
    status = json.loads(c.owner("fl", "status", str(task), "--json").stdout)
    assert status["status"] == "finished"
