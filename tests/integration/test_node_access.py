"""H4: only the home's owner reaches cheat codes and development-account signing.

Another process on the same machine, without the home's node credential, talks
to the node's endpoint. It must not impersonate an identity, sign with the
development accounts, edit storage, move the clock, mine, dump or load state;
it may read and send transactions it signed itself. anvil itself is not
reachable: it lives in another network namespace.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from eth_account import Account

from neuroledger.chain._client import Chain
from neuroledger.chain._rpc import rpc_call
from neuroledger.errors import NodeRPCError
from tests import security_figures
from tests.waiting import soon

pytestmark = pytest.mark.anvil
TEST = "tests/integration/test_node_access.py"
DEV0 = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"  # anvil's first development account
# Its published private key (anvil's default mnemonic, in every Foundry tutorial).
DEV0_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"

# One attacking process: sends each call with no credential (or a guessed one) and prints
# what the node answered.
ATTACKER = r"""
import json, sys, urllib.request
url, calls, token = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
out = []
for call in calls:
    body = json.dumps(call).encode()
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = "Bearer " + token
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            out.append(json.loads(resp.read()))
    except Exception as exc:
        out.append({"transport_error": str(exc)})
print(json.dumps(out))
"""


def _attack(url: str, calls: list, token: str = "") -> list:
    done = subprocess.run(
        [sys.executable, "-c", ATTACKER, url, json.dumps(calls), token],
        capture_output=True, text=True, check=True, timeout=120,
        env={"PATH": os.environ.get("PATH", "/usr/bin")},
    )  # fmt: skip
    return json.loads(done.stdout)


def _call(method: str, params: list, id_: int = 1) -> dict:
    return {"jsonrpc": "2.0", "id": id_, "method": method, "params": params}


def test_a_process_without_the_credential_cannot_use_cheat_codes_or_dev_accounts(
    settings, tmp_path: Path
) -> None:
    chain = Chain.connect(settings)
    try:
        grants = chain.contract("AccessGrants")
        hospital = Account.create().address  # an identity the attacker wants to act as
        url = chain.url
        slot0 = rpc_call(url, "eth_getStorageAt", [grants.address, "0x0", "latest"])
        before = (chain.w3.eth.block_number, chain.w3.eth.get_balance(DEV0))
        grant_data = grants.encode_abi(
            "grant", args=[b"\x11" * 32, Account.create().address, 2, b"stats".ljust(32, b"\0"),
                           2**40],
        )  # fmt: skip
        attacks = [
            _call("anvil_impersonateAccount", [hospital]),
            _call("eth_sendTransaction", [{"from": hospital, "to": grants.address, "data": grant_data}]),
            _call("eth_sendTransaction", [{"from": DEV0, "to": hospital, "value": "0x1"}]),
            _call("eth_sendUnsignedTransaction", [{"from": hospital, "to": grants.address, "data": grant_data}]),
            _call("anvil_setStorageAt", [grants.address, "0x0", "0x" + "ff" * 32]),
            _call("anvil_setBalance", [hospital, "0xffffffffffffffff"]),
            _call("anvil_setCode", [grants.address, "0x00"]),
            _call("anvil_mine", []),
            _call("evm_mine", []),
            _call("evm_increaseTime", [86400]),
            _call("evm_setNextBlockTimestamp", [2**40]),
            _call("evm_snapshot", []),
            _call("evm_revert", ["0x1"]),
            _call("anvil_dumpState", []),
            _call("anvil_loadState", ["0x00"]),
            _call("anvil_reset", []),
            _call("eth_sign", [DEV0, "0xdeadbeef"]),
            _call("eth_signTypedData_v4", [DEV0, "{}"]),
            _call("personal_sign", ["0xdeadbeef", DEV0]),
            _call("eth_accounts", []),
            _call("debug_traceTransaction", ["0x" + "00" * 32]),
        ]  # fmt: skip
        # anvil's development keys are public: a raw transaction signed with one proves nothing.
        dev_signed = Account.from_key(DEV0_KEY).sign_transaction({
            "to": hospital, "value": 10**18, "gas": 21000,
            "nonce": chain.w3.eth.get_transaction_count(DEV0), "chainId": chain.chain_id,
            "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9,
        })  # fmt: skip
        attacks.append(_call("eth_sendRawTransaction", ["0x" + dev_signed.raw_transaction.hex()]))
        batch = [[_call("eth_blockNumber", [], 1), _call("evm_mine", [], 2),
                  _call("anvil_impersonateAccount", [hospital], 3)]]  # fmt: skip
        tried = through = 0
        for token in ("", "0" * 64):  # no credential, and a guessed one
            replies = _attack(url, attacks + batch, token)
            for call, reply in zip(attacks, replies[: len(attacks)], strict=True):
                tried += 1
                ok = "result" in reply
                through += ok
                assert not ok and reply["error"]["code"] == -32601, (call["method"], reply)
                assert "credential" in reply["error"]["message"]
            mixed = replies[-1]
            assert [("result" in r) for r in mixed] == [True, False, False], mixed
            tried += 2
            through += sum("result" in r for r in mixed[1:])
        # Nothing changed.
        assert rpc_call(url, "eth_getStorageAt", [grants.address, "0x0", "latest"]) == slot0
        assert chain.w3.eth.get_balance(DEV0) == before[1]
        # No block since holds a transaction (with a block time, empty blocks come anyway).
        since = range(before[0] + 1, chain.w3.eth.block_number + 1)
        assert [n for n in since if chain.w3.eth.get_block(n)["transactions"]] == []
        assert len(chain.w3.eth.get_code(grants.address)) > 1

        # What stays open: reads and transactions the sender signed itself.
        user = Account.create()
        chain.fund(user.address)  # the owner's process, with the credential
        tx = user.sign_transaction({
            "to": hospital, "value": 1, "gas": 21000, "nonce": 0, "chainId": chain.chain_id,
            "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9,
        })  # fmt: skip
        replies = _attack(url, [
            _call("eth_chainId", []),
            _call("eth_call", [{"to": grants.address, "data": "0x"}, "latest"]),
            _call("eth_sendRawTransaction", ["0x" + tx.raw_transaction.hex()]),
        ])  # fmt: skip
        assert int(replies[0]["result"], 16) == chain.chain_id
        assert "result" in replies[2], replies[2]
        chain.w3.eth.wait_for_transaction_receipt(replies[2]["result"], timeout=30)
        assert chain.w3.eth.get_balance(hospital) == 1

        # The owner's own process, with the credential, keeps every method.
        assert rpc_call(url, "evm_snapshot", headers=chain.node.auth_headers())
        with pytest.raises(NodeRPCError, match="credential"):
            rpc_call(url, "evm_snapshot")

        # anvil itself is in another network namespace: its port exists only there.
        info = json.loads((settings.chain_dir / "gate.json").read_text())
        assert info["isolated"] is True
        anvil_ns = os.readlink(f"/proc/{info['anvil_pid']}/ns/net")
        assert anvil_ns != os.readlink("/proc/self/ns/net")
        assert (settings.chain_dir / "credential").stat().st_mode & 0o077 == 0
        assert settings.chain_dir.stat().st_mode & 0o077 == 0
    finally:
        assert chain.node is not None
        chain.node.stop()
    security_figures.record(
        "embedded node",
        "H4 cheat codes and dev-account signing without the credential",
        tried=tried,
        through=through,
        what="another local process calls anvil_impersonateAccount, eth_sendTransaction as an "
        "identity or a development account, eth_sendUnsignedTransaction, anvil_setStorageAt/"
        "setBalance/setCode, evm_mine/increaseTime/snapshot/revert, dump/load/reset state, "
        "eth_sign and friends, a raw transaction signed with a published development key, "
        "alone and inside batches, with no or a guessed credential; "
        "state, balances and block number must be unchanged. Reads and self-signed raw "
        "transactions keep working.",
        test=TEST,
    )


def test_the_endpoint_is_stable_across_restarts_and_crashes(settings) -> None:
    """H3: the home's node answers at the same URL after a stop, a start and a kill -9."""
    import signal

    chain = Chain.connect(settings)
    node = chain.node
    assert node is not None
    url = chain.url
    node.stop()
    again = node.start()
    assert again.url == url
    assert again.pid is not None
    os.kill(again.pid, signal.SIGKILL)
    assert soon(lambda: not node.status().running)  # the kernel reaps it in its own time
    third = node.start()
    try:
        assert third.url == url
        assert chain.w3.eth.block_number >= 0  # the old connection object follows
    finally:
        node.stop()


def test_a_web_page_may_read_the_public_methods_but_never_send_the_credential(settings) -> None:
    """The explorer's in-browser checks call the node from another origin: the gate answers
    CORS preflights for JSON bodies, never allows the Authorization header cross-origin, and
    a page's request is an anonymous one (public methods only)."""
    import httpx

    chain = Chain.connect(settings)
    try:
        url = chain.url
        origin = {"Origin": "http://127.0.0.1:8700"}
        pre = httpx.options(url, headers={**origin, "Access-Control-Request-Method": "POST",
                                          "Access-Control-Request-Headers": "content-type"})  # fmt: skip
        assert pre.status_code == 204 and pre.headers["access-control-allow-origin"] == "*"
        assert "authorization" not in pre.headers["access-control-allow-headers"].lower()
        assert "access-control-allow-credentials" not in pre.headers
        read = httpx.post(url, json=_call("eth_chainId", []), headers=origin)
        assert read.headers["access-control-allow-origin"] == "*" and "result" in read.json()
        cheat = httpx.post(
            url, json=_call("anvil_setBalance", [DEV0, "0x1"]), headers=origin
        ).json()
        assert "not available without the home's node credential" in cheat["error"]["message"]
    finally:
        chain.node.stop()  # type: ignore[union-attr]
