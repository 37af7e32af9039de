"""The main job: a hospital consortium and an AI agent get identities on the embedded chain
(or on any EVM chain the user names).

Steps: three hospitals and one AI agent are created (keys encrypted in a fresh
demo home, funded from anvil's development accounts), each publishes its X25519
key-agreement key, the agent becomes a signing delegate of hospital A, hospital
A rotates its owner key, and every DID is resolved into its DID document.
Then the provenance scenario (:mod:`neuroledger.scenarios._provenance`) records
datasets, code, a training run, a model, an audit and a deployment, and shows
that a one-byte change to the model is caught; and the audit scenario
(:mod:`neuroledger.scenarios._audit`) has the triage agent log every decision,
anchors the log, verifies one decision from a proof bundle, and shows that a
one-byte change to a tile is reported where it is; and the federated scenario
(:mod:`neuroledger.scenarios._federated`) has the three hospitals train one
classifier with secure aggregation and DP, then with a poisoner held off by a
robust rule, scores contributions, pays rewards and plots sync vs async; and the
market scenario (:mod:`neuroledger.scenarios._market`) has the triage agent register,
serve the federated model per call over x402 and earn feedback only from paid calls,
with one job completed in escrow and one refunded after its expiry.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount

from neuroledger._fs import atomic_write
from neuroledger.chain import WH_PER_GAS_POS, WH_PER_GAS_POW, Chain, energy_report
from neuroledger.config import KdfParams, Settings
from neuroledger.identity import Identities, Keystore
from neuroledger.market import Listings
from neuroledger.provenance import HashCache, Provenance
from neuroledger.scenarios._audit import run_audit
from neuroledger.scenarios._federated import run_federated
from neuroledger.scenarios._market import run_market
from neuroledger.scenarios._privacy import run_privacy
from neuroledger.scenarios._provenance import run_provenance
from neuroledger.scenarios._sales import release_sales, sell_federated_model
from neuroledger.store import FileStore

__all__ = ["DemoReport", "run_demo"]

PARTICIPANTS = [
    ("hospital-a", "org"),
    ("hospital-b", "org"),
    ("hospital-c", "org"),
    ("triage-agent", "agent"),
    ("auditor", "org"),
]


@dataclass
class DemoReport:
    """What the demo did, for printing or JSON."""

    home: str
    chain_id: int
    rpc_url: str
    identities: list[dict[str, Any]] = field(default_factory=list)
    rotation: dict[str, Any] = field(default_factory=dict)
    delegation: dict[str, Any] = field(default_factory=dict)
    checks: list[dict[str, Any]] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)
    audit: dict[str, Any] = field(default_factory=dict)
    federated: dict[str, Any] = field(default_factory=dict)
    privacy: dict[str, Any] = field(default_factory=dict)
    market: dict[str, Any] = field(default_factory=dict)
    sales: dict[str, Any] = field(default_factory=dict)
    energy: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when every check passed."""
        return all(c["ok"] for c in self.checks)

    def to_json(self) -> dict[str, Any]:
        """The report as JSON."""
        return {
            "home": self.home,
            "chain_id": self.chain_id,
            "rpc_url": self.rpc_url,
            "identities": self.identities,
            "rotation": self.rotation,
            "delegation": self.delegation,
            "provenance": self.provenance,
            "audit": self.audit,
            "federated": self.federated,
            "privacy": self.privacy,
            "market": self.market,
            "sales": self.sales,
            "energy": self.energy,
            "checks": self.checks,
            "ok": self.ok,
            "seconds": round(self.seconds, 2),
            "explorer": self.explorer_command,
        }

    @property
    def explorer_command(self) -> str:
        """The command that serves this run's records to a browser."""
        return f"neuroledger --home {self.home} explorer serve"


def new_demo_home(base: Path) -> Path:
    """A fresh, empty demo home under ``base``, with its own generated passphrase file."""
    home = base / "demo" / time.strftime("run-%Y%m%d-%H%M%S")
    suffix = 0
    while home.exists():
        suffix += 1
        home = home.with_name(f"{home.name.split('.')[0]}.{suffix}")
    home.mkdir(parents=True)
    atomic_write(home / "passphrase", secrets.token_urlsafe(24).encode())
    return home


def run_demo(
    settings: Settings,
    *,
    step: Callable[[str], None] = lambda _msg: None,
    stop_node: bool = True,
    rpc_url: str | None = None,
    payer: LocalAccount | None = None,
) -> DemoReport:
    """Run the scenario in a fresh demo home under ``settings.home``; return its report.

    By default the demo home has its own embedded node, stopped at the end with its
    state saved (``neuroledger --home <demo home> node start`` brings it back). With
    ``rpc_url`` it runs on that chain instead: a fresh suite is deployed there, and
    every identity is funded by ``payer`` (a funded key), or, without one, by the
    node's first development account.
    """
    started = time.monotonic()
    home = new_demo_home(settings.home)
    demo_settings = settings.with_(home=home, kdf=KdfParams.light(), rpc_url=rpc_url)
    passphrase = (home / "passphrase").read_text()
    step(
        f"starting the embedded chain in {home}" if rpc_url is None else f"connecting to {rpc_url}"
    )
    chain = Chain.connect(demo_settings)
    deployer: LocalAccount | None = None
    if not chain.is_embedded:
        paid_by = chain.fund_from(payer)
        step(f"deploying a fresh contract suite on chain {chain.chain_id}, paid by {paid_by}")
        deployer = Account.create()  # a throw-away key, as on the embedded chain
        chain.fund(deployer.address)
        chain.deployment(deployer=deployer)
    keystore = Keystore(
        demo_settings.keystore_dir, passphrase=lambda: passphrase, kdf=demo_settings.kdf
    )
    ids = Identities(chain, keystore)
    report = DemoReport(home=str(home), chain_id=chain.chain_id, rpc_url=chain.url)
    try:
        _scenario(ids, report, step)
        store = FileStore(demo_settings.store_dir)
        prov = Provenance(
            chain,
            keystore,
            store=store,
            index_path=demo_settings.index_path,
            hash_cache=HashCache(demo_settings.hash_cache_path),
        )
        report.provenance, checks = run_provenance(prov, home / "work", step)
        report.checks.extend(checks)
        report.audit, checks = run_audit(
            chain, keystore, store, home, report.provenance["model"], step
        )
        report.checks.extend(checks)

        def shared_provenance(shared_store: FileStore) -> Provenance:
            return Provenance(
                chain, keystore, store=shared_store, index_path=demo_settings.index_path,
                hash_cache=HashCache(demo_settings.hash_cache_path),
            )  # fmt: skip

        report.federated, checks = run_federated(chain, keystore, home, shared_provenance, step)
        report.checks.extend(checks)
        report.privacy, checks = run_privacy(chain, keystore, prov, home, step, minter=deployer)
        report.checks.extend(checks)
        robust = report.federated["robust"]
        model_dir = home / "shared" / "models" / f"task-{robust['task']}-final"
        report.market, checks = run_market(chain, keystore, home, model_dir,
                                           robust["final_model"], step, minter=deployer)  # fmt: skip
        report.checks.extend(checks)
        market = Listings(chain, keystore, prov)
        model_sale = sell_federated_model(market, robust["task"], robust["final_model"], step,
                                          deployer)  # fmt: skip
        report.sales, checks = release_sales(market, report.privacy["sale"], model_sale, step)
        report.checks.extend(checks)
        step("the energy and cost bill of all of the above, read from the chain's receipts")
        bill = energy_report(chain)
        report.energy = bill.to_json()
        billed = {c.capability for c in bill.capabilities}
        report.checks.append({
            "check": f"energy: {bill.gas:,} gas billed over {len(billed)} capabilities "
                     f"(about {bill.gas * WH_PER_GAS_POS:.3g} Wh on proof of stake, "
                     f"{bill.gas * WH_PER_GAS_POW / 1000:.3g} kWh on proof of work); batching saved "
                     f"{sum(b.saved_gas for b in bill.batching):,} gas",
            "ok": {"identity", "provenance", "audit", "federated", "private data", "market"} <= billed
            and bill.gas == sum(c.gas for c in bill.capabilities) > 0,
        })  # fmt: skip
    finally:
        if stop_node and chain.node is not None:
            chain.node.stop()
    report.seconds = time.monotonic() - started
    return report


def _scenario(ids: Identities, report: DemoReport, step: Callable[[str], None]) -> None:
    for name, kind in PARTICIPANTS:
        step(f"creating {kind} identity {name} and publishing its X25519 key")
        record = ids.create(name, kind)
        report.identities.append(
            {"name": name, "kind": kind, "did": ids.did(name), "x25519": record.x25519_public}
        )

    step("appointing triage-agent as a signing delegate (sigAuth) of hospital-a for one day")
    agent = ids.keystore.get("triage-agent")
    tx = ids.add_delegate("hospital-a", "triage-agent", "sigAuth", 86400)
    report.delegation = {"identity": "hospital-a", "delegate": agent.identity, "tx": tx}

    step("rotating the owner key of hospital-a")
    rotation = ids.rotate("hospital-a")
    report.rotation = dict(rotation.__dict__)

    step("resolving every DID")
    for entry in report.identities:
        doc = ids.resolve(entry["did"]).document
        methods = {m["id"]: m for m in doc.get("verificationMethod", [])}
        agreement = [methods[ref] for ref in doc.get("keyAgreement", []) if ref in methods]
        entry["verification_methods"] = len(methods)
        entry["controller"] = methods[f"{entry['did']}#controller"]["blockchainAccountId"]
        report.checks.append(
            {
                "check": f"{entry['name']}: key-agreement key in DID document matches keystore",
                "ok": any(m.get("publicKeyBase64") == entry["x25519"] for m in agreement),
            }
        )
    a = next(e for e in report.identities if e["name"] == "hospital-a")
    report.checks.append(
        {
            "check": "hospital-a: DID unchanged, controller is the rotated owner",
            "ok": a["controller"].endswith(rotation.new_owner)
            and a["did"].endswith(rotation.identity),
        }
    )
    doc_a = ids.resolve(a["did"]).document
    delegate_ids = [
        m["id"]
        for m in doc_a["verificationMethod"]
        if m.get("blockchainAccountId", "").endswith(agent.identity)
    ]
    report.checks.append(
        {
            "check": "hospital-a: triage-agent listed as an authentication delegate",
            "ok": bool(delegate_ids) and delegate_ids[0] in doc_a["authentication"],
        }
    )
    owner_on_chain = ids.registry.identity_owner(rotation.identity)
    report.checks.append(
        {
            "check": "registry: identityOwner(hospital-a) is the new key",
            "ok": owner_on_chain == rotation.new_owner,
        }
    )
