"""Gas of every existing write before and after the contracts moved onto snekmate and gained
governance (issue 14 §5): no existing call may cost more than 3% more.

"Before" is the suite of commit d11e590, its compiled artifacts kept in
``benchmarks/baseline/`` (so this runs from a fresh clone without rebuilding old
sources); "now" is the package's artifacts. Both suites are deployed on one bare
anvil in the same run and driven through the same calls with the same arguments,
the governed contracts "now" with a non-zero owner and guardian as the suite
deploys them. Writes the table to docs/gas.md and docs/benchmarks.md.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_utils import keccak
from web3 import Web3

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, machine, write_section
from gas_table import scenario

from neuroledger.chain._anvil import start_dev_anvil
from neuroledger.chain._artifacts import load_artifact

BASELINE = Path(__file__).resolve().parent / "baseline"
LIMIT = 1.03
NAMES = ("DIDRegistry", "AssetRegistry", "AuditAnchor", "FederatedTask", "AccessGrants")
OWNER, GUARDIAN = (Web3.to_checksum_address("0x" + b * 20) for b in ("71", "9a"))


def artifacts(version: str) -> dict[str, dict[str, Any]]:
    out = {}
    for name in NAMES:
        if version == "before":
            data = json.loads((BASELINE / f"{name}.json").read_text())
            out[name] = {"abi": data["abi"], "bytecode": data["bytecode"]}
        else:
            art = load_artifact(name)
            out[name] = {"abi": art.abi, "bytecode": "0x" + art.bytecode.hex()}
    return out


def deploy(w3: Web3, art: dict[str, Any], *args: Any):
    factory = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
    tx = factory.constructor(*args).transact({"from": w3.eth.accounts[0]})
    address = w3.eth.wait_for_transaction_receipt(tx)["contractAddress"]
    return w3.eth.contract(address=address, abi=art["abi"])


def suite_scenario(w3: Web3, arts: dict[str, dict[str, Any]], version: str, seed: int
                   ) -> list[tuple[str, int]]:  # fmt: skip
    """Every write of the asset registry, the anchor, the task and the grants contracts."""
    governed = (OWNER, GUARDIAN) if version == "now" else ()
    people = [Account.from_key(keccak(bytes([seed, i]))).address for i in range(4)]
    for p in people:
        w3.provider.make_request("anvil_setBalance", [p, hex(10**21)])
    me, lab, alice, bob = people
    did = deploy(w3, arts["DIDRegistry"])
    assets = deploy(w3, arts["AssetRegistry"], did.address).functions
    grants = deploy(w3, arts["AccessGrants"], did.address, assets.address, *governed)
    anchor = deploy(w3, arts["AuditAnchor"]).functions
    task = deploy(w3, arts["FederatedTask"], *governed).functions
    g = grants.functions
    out: list[tuple[str, int]] = []

    def send(label: str, fn: Callable[..., Any], sender: str, value: int = 0) -> None:
        receipt = w3.eth.wait_for_transaction_receipt(fn.transact({"from": sender, "value": value}))
        assert receipt["status"] == 1, f"{version}: {label}"
        out.append((label, receipt["gasUsed"]))

    meta, uri = keccak(b"meta"), "sha256:" + "ab" * 32
    digests = [keccak(bytes([seed, i])) for i in range(6)]
    ids = [assets.assetId(me, d).call() for d in digests]
    send(
        "AssetRegistry.register (no parent)",
        assets.register(me, digests[0], 1, meta, uri, [], "MIT"),
        me,
    )
    send("AssetRegistry.register (two parents)",
         assets.register(me, digests[1], 3, meta, uri, [ids[0]], "MIT"), me)  # fmt: skip
    send("AssetRegistry.attest", assets.attest(ids[1], lab, keccak(b"eval"), uri), lab)
    send("AssetRegistry.deprecate", assets.deprecate(ids[1], "superseded"), me)
    send(
        "AssetRegistry.register (code)",
        assets.register(me, digests[2], 2, meta, uri, [], "MIT"),
        me,
    )
    send("AssetRegistry.transfer", assets.transfer(ids[2], lab), me)
    send("AssetRegistry.revoke", assets.revoke(ids[2], "withdrawn"), lab)
    log_id = keccak(b"log")
    send("AuditAnchor.anchor (first)", anchor.anchor(log_id, 10, keccak(b"r1")), me)
    send("AuditAnchor.anchor (later)", anchor.anchor(log_id, 20, keccak(b"r2")), me)

    now = w3.eth.get_block("latest")["timestamp"]
    purpose, other = b"research".ljust(32, b"\0"), b"audit".ljust(32, b"\0")
    send("AccessGrants.grant (new)", g.grant(ids[0], lab, 1, purpose, now + 86400), me)
    send("AccessGrants.grant (replace)", g.grant(ids[0], lab, 3, purpose, now + 7200), me)
    send("AccessGrants.grant (second purpose)", g.grant(ids[0], lab, 2, other, now + 7200), me)
    send("AccessGrants.revoke", g.revoke(ids[0], lab, other), me)
    send("AccessGrants.approveAlgorithm", g.approveAlgorithm(ids[0], digests[5], True), me)
    send(
        "AccessGrants.approveAlgorithm (withdraw)",
        g.approveAlgorithm(ids[0], digests[5], False),
        me,
    )
    send("AccessGrants.setConsent (withdraw)", g.setConsent(alice, purpose, False), alice)
    send("AccessGrants.setConsent (give again)", g.setConsent(alice, purpose, True), alice)

    pool, stake = 10**18, 10**16
    send("FederatedTask.createTask", task.createTask(digests[3], digests[4], 1, 2, stake,
         now + 86400), me, pool)  # fmt: skip
    task_id = task.taskCount().call()
    send("FederatedTask.join (first)", task.join(task_id), alice, stake)
    send("FederatedTask.join (second)", task.join(task_id), bob, stake)
    send("FederatedTask.recordRound", task.recordRound(task_id, 1, keccak(b"root"), keccak(b"agg"),
         3), me)  # fmt: skip
    send("FederatedTask.attest", task.attest(task_id, 1, keccak(b"agg")), alice)
    send("FederatedTask.attest (finalizing)", task.attest(task_id, 1, keccak(b"agg")), bob)
    send("FederatedTask.finish", task.finish(task_id, keccak(b"final"), [alice, bob],
         [pool // 2, pool // 2]), me)  # fmt: skip
    send("FederatedTask.claim", task.claim(task_id), alice)
    send("FederatedTask.createTask (to cancel)", task.createTask(digests[3], digests[4], 1, 1,
         stake, now + 86400), me, pool)  # fmt: skip
    send("FederatedTask.cancel", task.cancel(task_id + 1), me)
    send("FederatedTask.claim (refund)", task.claim(task_id + 1), me)
    return out


def main() -> None:
    proc, url = start_dev_anvil("--auto-impersonate")
    try:
        w3 = Web3(Web3.HTTPProvider(url))
        rows: dict[str, dict[str, int]] = {}
        for seed, version in enumerate(("before", "now")):
            arts = artifacts(version)
            did = deploy(w3, arts["DIDRegistry"])
            for label, _, gas in scenario(w3, did, bytes([0x50 + seed]) * 32):
                rows.setdefault(f"DIDRegistry.{label}", {})[version] = gas
            for label, gas in suite_scenario(w3, arts, version, seed):
                rows.setdefault(label, {})[version] = gas
    finally:
        proc.kill()
    lines = [
        "| call | before (d11e590) | now | ratio | at most +3% |",
        "|---|---:|---:|---:|---|",
    ]
    failures = []
    for label, gas in rows.items():
        ratio = gas["now"] / gas["before"]
        ok = ratio <= LIMIT
        if not ok:
            failures.append(label)
        lines.append(f"| {label} | {gas['before']:,} | {gas['now']:,} | {ratio:.3f} | "
                     f"{'yes' if ok else 'NO'} |")  # fmt: skip
    table = "\n".join(lines)
    verdict = (f"\n\nDearer than +3%: {', '.join(failures)}" if failures
               else "\n\nNo existing call is more than 3% dearer.")  # fmt: skip
    print(table + verdict)
    intro = (
        "Every existing write before the move onto snekmate and governance (the artifacts of "
        "commit d11e590, kept in benchmarks/baseline/) and now, same anvil, same run, same "
        f"arguments.\n\nMachine: {machine()}\n\n"
    )
    write_section(ROOT / "docs" / "gas.md", "gas_before_after", intro + table + verdict)
    write_section(ROOT / "docs" / "benchmarks.md", "gas_before_after",
                  "gas_before_after: " + intro + table + verdict)  # fmt: skip
    if failures:
        sys.exit(f"dearer than +3%: {', '.join(failures)}")


if __name__ == "__main__":
    main()
