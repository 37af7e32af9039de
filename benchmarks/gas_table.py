"""Gas of every external write of the DID registry vs the reference Solidity ERC-1056 registry,
and of every write of the asset registry (which has no reference: its target is the issue's budget).

Both contracts are deployed on one bare anvil in the same run: ours from the
package artifact, the reference from the compiled artifact shipped in the npm
package ``ethr-did-registry`` (pinned in package.json). Each call runs with the
same arguments on a fresh identity for each contract, in the same order, so
that storage states match. Writes the table to docs/gas.md.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from eth_account import Account
from eth_utils import keccak
from web3 import Web3

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, machine, write_section

from neuroledger.chain._anvil import start_dev_anvil
from neuroledger.chain._artifacts import load_artifact

REFERENCE = (
    ROOT
    / "node_modules/ethr-did-registry/dist/artifacts/contracts/EthereumDIDRegistry.sol/EthereumDIDRegistry.json"
)
NEW_STORAGE_LIMIT = 50_000


def b32(text: str) -> bytes:
    return text.encode().ljust(32, b"\0")


def deploy(w3: Web3, abi: list, bytecode: str):
    tx = w3.eth.send_transaction({"from": w3.eth.accounts[0], "data": bytecode})
    address = w3.eth.wait_for_transaction_receipt(tx)["contractAddress"]
    return w3.eth.contract(address=address, abi=abi)


def scenario(w3: Web3, c, key: bytes) -> list[tuple[str, bool, int]]:
    """Run every write once (or twice, for first-write vs update); return (call, new storage, gas)."""
    owner = Account.from_key(key)
    me = owner.address
    other = Account.from_key(keccak(key)).address
    delegate = Account.from_key(keccak(keccak(key))).address
    w3.provider.make_request("anvil_setBalance", [me, hex(10**20)])
    for addr in (other, delegate):
        w3.provider.make_request("anvil_setBalance", [addr, hex(10**20)])
    results: list[tuple[str, bool, int]] = []

    def send(label: str, new_storage: bool, fn, sender: str) -> None:
        tx = fn.transact({"from": sender})
        receipt = w3.eth.wait_for_transaction_receipt(tx)
        assert receipt["status"] == 1, label
        results.append((label, new_storage, receipt["gasUsed"]))

    def signed(action: str, payload: bytes) -> tuple[int, bytes, bytes]:
        nonce = c.functions.nonce(c.functions.identityOwner(me).call()).call()
        digest = keccak(
            b"\x19\x00"
            + bytes.fromhex(c.address[2:])
            + nonce.to_bytes(32, "big")
            + bytes.fromhex(me[2:])
            + action.encode()
            + payload
        )
        cur = c.functions.identityOwner(me).call()
        signer = owner if cur == me else Account.from_key(keccak(key))
        sig = signer.unsafe_sign_hash(digest)
        return sig.v, sig.r.to_bytes(32, "big"), sig.s.to_bytes(32, "big")

    value = bytes(range(32))  # an X25519 public key
    name = b32("did/pub/X25519/enc/base64")
    f = c.functions
    send(
        "setAttribute (first change of the identity)",
        True,
        f.setAttribute(me, name, value, 86400),
        me,
    )
    send("setAttribute", False, f.setAttribute(me, name, value, 86400), me)
    send("revokeAttribute", False, f.revokeAttribute(me, name, value), me)
    send("addDelegate (new delegate)", True, f.addDelegate(me, b32("sigAuth"), delegate, 86400), me)
    send("addDelegate (renew)", False, f.addDelegate(me, b32("sigAuth"), delegate, 172800), me)
    send("revokeDelegate", False, f.revokeDelegate(me, b32("sigAuth"), delegate), me)
    v, r, s = signed("setAttribute", name + value + (86400).to_bytes(32, "big"))
    send(
        "setAttributeSigned (first nonce of the owner)",
        True,
        f.setAttributeSigned(me, v, r, s, name, value, 86400),
        other,
    )
    v, r, s = signed("revokeAttribute", name + value)
    send("revokeAttributeSigned", False, f.revokeAttributeSigned(me, v, r, s, name, value), other)
    v, r, s = signed(
        "addDelegate", b32("veriKey") + bytes.fromhex(delegate[2:]) + (86400).to_bytes(32, "big")
    )
    send(
        "addDelegateSigned (new delegate)",
        True,
        f.addDelegateSigned(me, v, r, s, b32("veriKey"), delegate, 86400),
        other,
    )
    v, r, s = signed("revokeDelegate", b32("veriKey") + bytes.fromhex(delegate[2:]))
    send(
        "revokeDelegateSigned",
        False,
        f.revokeDelegateSigned(me, v, r, s, b32("veriKey"), delegate),
        other,
    )
    send("changeOwner (first owner change)", True, f.changeOwner(me, other), me)
    send("changeOwner (owner to owner)", False, f.changeOwner(me, delegate), other)
    send("changeOwner (back to a previous owner)", False, f.changeOwner(me, other), delegate)
    v, r, s = signed("changeOwner", bytes.fromhex(me[2:]))
    send("changeOwnerSigned", True, f.changeOwnerSigned(me, v, r, s, me), delegate)
    return results


REGISTER_TWO_PARENTS_LIMIT = 100_000
ANCHOR_LIMIT = 35_000


def asset_scenario(w3: Web3, did_address: str) -> list[tuple[str, int, int | None]]:
    """Every write of the asset registry once; return (call, gas, target)."""
    art = load_artifact("AssetRegistry")
    deploy_data = "0x" + art.bytecode.hex() + "00" * 12 + did_address[2:].lower()
    c = deploy(w3, art.abi, deploy_data)
    me, auditor = Account.from_key(b"\x33" * 32).address, Account.from_key(b"\x44" * 32).address
    for addr in (me, auditor):
        w3.provider.make_request("anvil_setBalance", [addr, hex(10**20)])
    f = c.functions
    meta, uri = keccak(b"meta"), "sha256:" + "ab" * 32
    results: list[tuple[str, int, int | None]] = [
        ("deployment", w3.eth.estimate_gas({"data": deploy_data}), None)
    ]

    def send(label: str, fn, sender: str, target: int | None = None) -> None:
        receipt = w3.eth.wait_for_transaction_receipt(fn.transact({"from": sender}))
        assert receipt["status"] == 1, label
        results.append((label, receipt["gasUsed"], target))

    digests = [keccak(bytes([i])) for i in range(6)]
    ids = [f.assetId(me, d).call() for d in digests]  # an id names its registrant
    send(
        "register (no parent, first asset)",
        f.register(me, digests[0], 1, meta, uri, [], "CC-BY-4.0"),
        me,
    )
    send(
        "register (no parent, warm contract)",
        f.register(me, digests[1], 1, meta, uri, [], "CC-BY-4.0"),
        me,
    )
    send("register (one parent)", f.register(me, digests[2], 2, meta, uri, [ids[0]], "MIT"), me)
    send(
        "register (two parents)",
        f.register(me, digests[3], 3, meta, uri, [ids[0], ids[1]], "Apache-2.0"),
        me,
        REGISTER_TWO_PARENTS_LIMIT,
    )
    send("attest (by a third party)", f.attest(ids[3], auditor, keccak(b"eval"), uri), auditor)
    send("deprecate", f.deprecate(ids[2], "superseded by v2"), me)
    send("transfer", f.transfer(ids[1], auditor), me)
    send("revoke", f.revoke(ids[0], "consent withdrawn"), me)

    anchor_art = load_artifact("AuditAnchor")
    a = deploy(w3, anchor_art.abi, "0x" + anchor_art.bytecode.hex()).functions
    results.append(
        (
            "AuditAnchor deployment",
            w3.eth.estimate_gas({"data": "0x" + anchor_art.bytecode.hex()}),
            None,
        )
    )
    log_id = keccak(b"vkey of log.example/agent")
    send("anchor (first anchor of a log)", a.anchor(log_id, 1000, keccak(b"r1")), me)
    send("anchor (every later anchor)", a.anchor(log_id, 2000, keccak(b"r2")), me, ANCHOR_LIMIT)
    return results


def main() -> None:
    proc, url = start_dev_anvil("--auto-impersonate")
    try:
        w3 = Web3(Web3.HTTPProvider(url))
        ours_art = load_artifact("DIDRegistry")
        ref_art = json.loads(REFERENCE.read_text())
        ours = deploy(w3, ours_art.abi, "0x" + ours_art.bytecode.hex())
        ref = deploy(w3, ref_art["abi"], ref_art["bytecode"])
        deploy_ours = w3.eth.estimate_gas({"data": "0x" + ours_art.bytecode.hex()})
        deploy_ref = w3.eth.estimate_gas({"data": ref_art["bytecode"]})
        a = scenario(w3, ours, b"\x11" * 32)
        b = scenario(w3, ref, b"\x22" * 32)
        assets = asset_scenario(w3, ours.address)
    finally:
        proc.kill()
    lines = [
        "| call | new storage | NeuroLedger (Vyper 0.4.3) | reference ERC-1056 (Solidity, ethr-did-registry 1.3.0) | ratio | target |",
        "|---|---|---:|---:|---:|---|",
        f"| deployment | yes | {deploy_ours:,} | {deploy_ref:,} | {deploy_ours / deploy_ref:.2f} | — |",
    ]
    failures = []
    for (label, new, ga), (_, _, gb) in zip(a, b, strict=True):
        ok = ga <= gb and (new or ga <= NEW_STORAGE_LIMIT)
        if not ok:
            failures.append(label)
        lines.append(
            f"| {label} | {'yes' if new else 'no'} | {ga:,} | {gb:,} | {ga / gb:.3f} | {'met' if ok else 'MISSED'} |"
        )
    asset_lines = [
        "| asset registry / audit anchor call | gas | target | ratio to target |",
        "|---|---:|---:|---:|",
    ]
    for label, gas, target in assets:
        if target is not None and gas > target:
            failures.append(label)
        asset_lines.append(
            f"| {label} | {gas:,} | {f'{target:,}' if target else '—'} | "
            f"{f'{gas / target:.2f}' if target else '—'} |"
        )
    table = "\n".join(lines) + "\n\n" + "\n".join(asset_lines)
    print(table)
    header = (
        "# Gas table\n\nGas used per call, same arguments, same anvil, same run "
        "(`make bench` or `python benchmarks/gas_table.py` regenerates it).\n"
        f"Targets: each write at or below the reference; writes that create no new storage at or "
        f"below {NEW_STORAGE_LIMIT:,} gas.\n\nMachine: {machine()}\n"
    )
    verdict = f"\n\nTargets missed: {', '.join(failures)}" if failures else "\n\nAll targets met."
    path = ROOT / "docs" / "gas.md"
    if not path.exists():
        path.write_text(header)
    write_section(path, "gas_table", table + verdict)
    write_section(
        ROOT / "docs" / "benchmarks.md",
        "gas_table",
        f"gas_table: gas per DID-registry call vs the reference ERC-1056 registry, and per "
        f"asset-registry call vs its budget (details: gas.md)\n\nMachine: {machine()}\n\n{table}{verdict}",
    )
    if failures:
        sys.exit(f"gas targets missed: {', '.join(failures)}")


if __name__ == "__main__":
    main()
