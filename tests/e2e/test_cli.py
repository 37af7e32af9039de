"""The CLI in a temporary home, run as users run it: a subprocess, one line per error."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.anvil


def _failed_checks(stdout: str) -> str:
    """The checks a demo's JSON report marks failed (a failure's message would not show them)."""
    try:
        report = json.loads(stdout)
    except ValueError:
        return ""
    checks = report.get("checks", []) if isinstance(report, dict) else []
    return "".join(f"\nFAILED CHECK: {c['check']}" for c in checks if not c.get("ok"))


@pytest.fixture
def cli(tmp_path: Path):
    pw = tmp_path / "pw"
    pw.write_text("s3cret\n")
    env = {
        **os.environ,
        "NEUROLEDGER_HOME": str(tmp_path / "home"),
        "NEUROLEDGER_PASSPHRASE_FILE": str(pw),
        "NEUROLEDGER_SCRYPT_N": "16384",
    }
    env.pop("NEUROLEDGER_RPC_URL", None)

    def run(
        *args: str, ok: bool = True, extra_env: dict | None = None, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(Path(sys.executable).parent / "neuroledger"), *args],
            input=stdin,
            capture_output=True,
            text=True,
            env={**env, **(extra_env or {})},
            timeout=120,
        )
        if ok:
            assert proc.returncode == 0, proc.stderr + _failed_checks(proc.stdout)
        return proc

    run.env = env  # type: ignore[attr-defined]
    run("init")  # only `init` creates a home, as the README says
    yield run
    run("node", "stop", ok=False)


def test_identity_lifecycle(cli) -> None:
    created = json.loads(cli("identity", "create", "hospital-a", "--kind", "org", "--json").stdout)
    cli("identity", "create", "agent-7", "--kind", "agent")
    listed = json.loads(cli("identity", "list", "--json").stdout)
    assert [r["name"] for r in listed] == ["agent-7", "hospital-a"]
    cli("identity", "delegate", "hospital-a", "--to", "agent-7", "--type", "sigAuth")
    rotated = json.loads(cli("identity", "rotate", "hospital-a", "--json").stdout)
    shown = json.loads(cli("identity", "show", "hospital-a", "--json").stdout)
    assert shown["owner_on_chain"] == rotated["new_owner"] == shown["owner"]
    doc = json.loads(cli("identity", "resolve", created["did"]).stdout)["didDocument"]
    assert doc["id"] == created["did"] and "keyAgreement" in doc
    status = json.loads(cli("node", "status", "--json").stdout)
    # Saved: in the snapshot, or in the journal the next start replays.
    assert status["running"] and (status["state_block"] >= 1 or status["journal_bytes"] > 0)


def test_errors_are_one_line_with_exit_codes(cli, tmp_path) -> None:
    cli("identity", "create", "hospital-a")
    cases = [
        (("identity", "show", "hospital-b"), "did you mean 'hospital-a'", None),
        (("identity", "resolve", "did:ethr:nope"), "not end in a 20-byte address", None),
        (("identity", "create", "Bad Name"), "not allowed", None),
        (
            ("identity", "rotate", "hospital-a"),
            "wrong passphrase",
            {"NEUROLEDGER_PASSPHRASE_FILE": str(tmp_path / "wrong")},
        ),
        (("identity", "list"), "must start with http", {"NEUROLEDGER_RPC_URL": "localhost:1"}),
        (
            ("identity", "show", "hospital-a"),
            "no JSON-RPC node answers",
            {"NEUROLEDGER_RPC_URL": "http://127.0.0.1:9"},
        ),
    ]
    (tmp_path / "wrong").write_text("nope")
    for args, expected, extra in cases:
        proc = cli(*args, ok=False, extra_env=extra)
        assert proc.returncode != 0, args
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and expected in proc.stderr, (args, proc.stderr)
        assert "Traceback" not in proc.stderr


def test_debug_shows_traceback(cli) -> None:
    proc = cli("--debug", "identity", "resolve", "did:ethr:nope", ok=False)
    assert "Traceback" in proc.stderr and proc.returncode != 0


def test_missing_passphrase_source(cli) -> None:
    proc = cli("identity", "create", "x", ok=False, extra_env={"NEUROLEDGER_PASSPHRASE_FILE": ""})
    assert "NEUROLEDGER_PASSPHRASE_FILE" in proc.stderr and proc.returncode == 6


def test_ctrl_c_says_what_was_kept(cli) -> None:
    """Ctrl-C (SIGINT) in a long command: one line and exit 130 (it printed nothing)."""
    import signal
    import time

    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "neuroledger"), "fl", "simulate", "--clients", "5",
         "--rounds", "100000"],
        env=cli.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        time.sleep(4)  # well into the rounds
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert "interrupted; confirmed writes are saved" in stderr
    assert "Traceback" not in stderr


def test_an_output_path_that_cannot_be_made_is_one_line(cli, tmp_path: Path) -> None:
    """An output directory under a regular file (issue 13: a raw traceback)."""
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    prepared = cli("fl", "prepare", str(blocker / "parties"), ok=False)
    assert prepared.returncode == 8, prepared.stderr
    assert "cannot use" in prepared.stderr and str(blocker) in prepared.stderr
    assert len(prepared.stderr.strip().splitlines()) == 1
    cli("identity", "create", "hospital", "--kind", "org")
    data = tmp_path / "d.csv"
    data.write_text("subject,age\n0x" + "00" * 20 + ",3\n")
    encrypted = cli("data", "encrypt", str(data), "--to", "hospital", "-o",
                    str(blocker / "d.age"), ok=False)  # fmt: skip
    assert encrypted.returncode == 8 and len(encrypted.stderr.strip().splitlines()) == 1
    debug = cli("--debug", "fl", "prepare", str(blocker / "parties"), ok=False)
    assert "Traceback" in debug.stderr


def test_help_names_every_environment_variable(cli) -> None:
    """Rich took `[env …]` for markup and dropped it (issue 13)."""
    top = cli("--help").stdout
    for name in ("NEUROLEDGER_HOME", "NEUROLEDGER_RPC_URL", "NEUROLEDGER_NODE_PORT",
                 "NEUROLEDGER_PASSPHRASE_FILE"):  # fmt: skip
        assert name in top, name
    assert "NEUROLEDGER_SHARED" in cli("fl", "create", "--help").stdout


def test_only_init_creates_a_home(cli, tmp_path: Path) -> None:
    """A mistyped NEUROLEDGER_HOME: read and write commands say there is no home and name
    `neuroledger init`, and create nothing (issue 13: a new home, node and suite appeared)."""
    typo = tmp_path / "hmoe"
    for args in (("identity", "list"), ("asset", "list"), ("node", "start"), ("node", "status"),
                 ("identity", "create", "x"), ("data", "list"), ("audit", "export", "access")):  # fmt: skip
        proc = cli(*args, ok=False, extra_env={"NEUROLEDGER_HOME": str(typo)})
        assert proc.returncode != 0, args
        assert "no NeuroLedger home" in proc.stderr and "neuroledger init" in proc.stderr, args
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert not typo.exists(), args
    made = cli("init", "--json", extra_env={"NEUROLEDGER_HOME": str(typo)})
    assert json.loads(made.stdout)["home"] == str(typo)
    assert cli("identity", "list", extra_env={"NEUROLEDGER_HOME": str(typo)}).returncode == 0
    cli("node", "stop", extra_env={"NEUROLEDGER_HOME": str(typo)})


def test_first_time_on_an_external_chain_runs_without_an_error_in_between(cli, tmp_path) -> None:
    """Issue 13: `identity create` failed half-way ("DIDRegistry is not deployed") after it had
    made the key. The documented flow: init, create a deployer identity, fund it, deploy,
    publish, create identities; each step exits 0 and says what comes next."""
    from web3 import Web3

    from neuroledger.chain._anvil import start_dev_anvil

    proc, url = start_dev_anvil()
    try:
        env = {"NEUROLEDGER_HOME": str(tmp_path / "ext"), "NEUROLEDGER_RPC_URL": url,
               "NEUROLEDGER_CONFIRMATIONS": "0"}  # fmt: skip
        made = json.loads(cli("init", "--json", extra_env=env).stdout)
        assert made["contracts"] == {} and "deploy --from deployer" in made["next_step"]
        deployer = json.loads(cli("identity", "create", "deployer", "--json", extra_env=env).stdout)
        assert not deployer["published"] and "deploy --from deployer" in deployer["next_step"]
        w3 = Web3(Web3.HTTPProvider(url))
        w3.provider.make_request("anvil_setBalance", [deployer["owner"], hex(10**18)])  # "send gas"
        deployed = json.loads(cli("deploy", "--from", "deployer", "--json", extra_env=env).stdout)
        assert set(deployed["contracts"]) >= {"DIDRegistry", "AssetRegistry"}
        cli("identity", "publish", "deployer", extra_env=env)
        lab = json.loads(cli("identity", "create", "lab", "--json", extra_env=env).stdout)
        assert not lab["published"] and lab["owner"] in lab["next_step"]
        assert "holds no gas" in lab["next_step"]
        w3.provider.make_request("anvil_setBalance", [lab["owner"], hex(10**17)])
        cli("identity", "publish", "lab", extra_env=env)
        doc = json.loads(cli("identity", "resolve", "lab", extra_env=env).stdout)["didDocument"]
        assert "keyAgreement" in doc
    finally:
        proc.kill()
        proc.wait()


def test_output_off_a_terminal_is_not_wrapped(cli) -> None:
    """Issue 13: piped output was cut at 80 columns (paths, the demo's inspect command)."""
    long_hint = cli("asset", "list").stdout  # "no assets yet; register one with `…`"
    assert len(long_hint.strip().splitlines()) == 1 and len(long_hint.strip()) > 80


def test_node_start_with_another_port_on_a_running_node_says_so(cli) -> None:
    """Issue 13: `node start --port P` on a running node silently ignored P."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    running = json.loads(cli("node", "status", "--json").stdout)
    assert running["running"] and running["port"] != free
    again = cli("--port", str(free), "node", "start")
    assert f"--port {free} was not applied" in again.stdout and "node stop" in again.stdout
    same = cli("--port", str(running["port"]), "node", "start")
    assert "not applied" not in same.stdout


def test_ctrl_c_ends_the_process_even_when_the_interrupt_is_swallowed() -> None:
    """A KeyboardInterrupt raised inside a finalizer or C callback is dropped by Python and a
    long loop runs on (seen once in CI: `fl simulate` ignored Ctrl-C). The handler ends the
    process after a grace period anyway."""
    import signal
    import time

    code = (
        "import signal, time, neuroledger.cli.main as m\n"
        "m._UNWIND_SECONDS = 0.5\n"
        "signal.signal(signal.SIGINT, m._on_interrupt)\n"
        "ready = False\n"
        "while True:\n"
        # `ready` is printed inside the try too: the parent may signal before print returns.
        "    try:\n"
        "        if not ready:\n"
        "            ready = True\n"
        "            print('ready', flush=True)\n"
        "        while True:\n"
        "            time.sleep(0.05)\n"
        "    except KeyboardInterrupt:\n"
        "        pass  # swallowed, as Python does in a finalizer\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130 and time.monotonic() - started < 10
    assert "interrupted; confirmed writes are saved" in stderr


def test_demo_runs_on_an_external_chain_paid_by_dev_accounts_or_a_named_identity(
    cli, tmp_path
) -> None:
    """Issue 13 §6: `demo --rpc-url URL` deploys a fresh suite on that chain and runs every
    check there, funded by the node's development accounts, or by `--fund-from NAME`."""
    from web3 import Web3

    from neuroledger.chain._anvil import start_dev_anvil

    proc, url = start_dev_anvil()
    try:
        env = {"NEUROLEDGER_HOME": str(tmp_path / "ext"), "NEUROLEDGER_RPC_URL": url}
        report = json.loads(cli("demo", "--rpc-url", url, "--json", extra_env=env).stdout)
        assert report["ok"] and report["rpc_url"] == url and report["chain_id"] == 31337

        cli("init", extra_env=env)
        payer = json.loads(cli("identity", "create", "payer", "--json", extra_env=env).stdout)
        w3 = Web3(Web3.HTTPProvider(url))
        w3.provider.make_request("anvil_setBalance", [payer["owner"], hex(10**22)])
        report = json.loads(
            cli("demo", "--rpc-url", url, "--fund-from", "payer", "--json", extra_env=env).stdout
        )
        assert report["ok"]
        paid = 10**22 - w3.eth.get_balance(Web3.to_checksum_address(payer["owner"]))
        assert paid >= 5 * 10 * 10**18  # the deployer and every identity, 10 ETH each
    finally:
        proc.kill()
        proc.wait()


def test_governance_from_the_cli(cli) -> None:
    cli("identity", "create", "operator", "--kind", "org")
    cli("identity", "create", "guard", "--kind", "person")
    deploy = ("deploy", "--force", "--from", "operator", "--guardian", "guard", "--delay", "60")
    deployed = json.loads(cli(*deploy, "--json").stdout)
    assert {"Timelock", "FederatedTask", "AccessGrants"} <= set(deployed["contracts"])
    paused = json.loads(cli("gov", "pause", "AccessGrants", "--from", "guard", "--json").stdout)
    assert paused["paused"] is True
    status = json.loads(cli("gov", "status", "--json").stdout)
    assert [c["paused"] for c in status["contracts"]] == [False, True, False, False, False]
    assert status["minimum_delay"] == 60
    wrong = cli("gov", "pause", "AccessGrants", "--from", "operator", ok=False)
    assert wrong.returncode != 0 and len(wrong.stderr.strip().splitlines()) == 1
    assert "paused" in wrong.stderr or "guardian" in wrong.stderr
    propose = ("gov", "propose", "FederatedTask", "setMaxDuration", "864000")
    op = json.loads(cli(*propose, "--from", "operator", "--json").stdout)
    too_soon = cli("gov", "execute", op["id"], "--from", "operator", ok=False)
    assert "is waiting" in too_soon.stderr
    human = cli("gov", "status").stdout
    assert "PAUSED (exits still work)" in human and "setMaxDuration(864000)" in human
    short = cli("deploy", "--force", "--from", "operator", "--delay", "5", ok=False)
    assert "at least 60 s" in short.stderr
