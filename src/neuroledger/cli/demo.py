"""``neuroledger demo``: the main job, as a scenario with a printed report."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from neuroledger.cli._context import console, context_of, emit
from neuroledger.errors import NeuroLedgerError
from neuroledger.scenarios import DemoReport, run_demo


def demo(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    rpc_url: Annotated[
        str | None,
        typer.Option(
            "--rpc-url",
            help="Run on this EVM chain instead of a fresh embedded one (a fresh suite is "
            "deployed there).",
        ),
    ] = None,
    fund_from: Annotated[
        str | None,
        typer.Option(
            "--fund-from",
            help="With --rpc-url: the identity of this home that pays for the demo's "
            "identities (default: the node's development accounts, if it has them).",
        ),
    ] = None,
) -> None:
    """Run the main scenario on a fresh embedded chain (or --rpc-url) and print a report."""
    c = context_of(ctx)
    if fund_from and not rpc_url:
        raise NeuroLedgerError("--fund-from is for --rpc-url: the embedded chain pays by itself")
    payer = c.keystore().owner_account(fund_from) if fund_from else None
    if as_json:
        report = run_demo(c.settings, rpc_url=rpc_url, payer=payer)
    else:
        with console.status("demo") as status:
            report = run_demo(
                c.settings, step=lambda msg: status.update(msg), rpc_url=rpc_url, payer=payer
            )
    if as_json:
        emit(report.to_json(), as_json=True)
    else:
        _print(report)
    if not report.ok:
        raise NeuroLedgerError("the demo ran but a check failed; see the report above")


def _print(report: DemoReport) -> None:
    console.print(
        f"[bold]NeuroLedger demo[/bold] — chain {report.chain_id} (written {report.chain_id:#x} "
        f"in the DIDs below) at {report.rpc_url}"
    )
    table = Table("identity", "kind", "DID", "methods")
    for e in report.identities:
        table.add_row(e["name"], e["kind"], e["did"], str(e.get("verification_methods", "")))
    console.print(table)
    r = report.rotation
    console.print(f"rotated hospital-a owner {r['old_owner']} -> {r['new_owner']} (DID unchanged)")
    console.print(f"triage-agent is a sigAuth delegate of hospital-a ({report.delegation['tx']})")
    p = report.provenance
    if p:
        table = Table("asset", "id")
        for hospital, asset_id in p["datasets"].items():
            table.add_row(f"dataset of {hospital}", asset_id)
        for key in ("code", "training_run", "model", "deployment"):
            table.add_row(key.replace("_", " "), p[key])
        console.print(table)
        console.print(f"auditor's attested accuracy on a held-out cohort: {p['accuracy']}")
        console.print("lineage of the deployment:")
        console.print(p["lineage_tree"].rstrip(), highlight=False)
        console.print(f"after changing one byte: {p['tampered_verify']}", highlight=False)
    a = report.audit
    if a:
        console.print(
            f"triage-agent logged {a['entries']} decisions ({a['urgent']} urgent) in {a['log']}; "
            f"anchored size {a['anchor']['size']} in block {a['anchor']['block']}",
            highlight=False,
        )
        console.print(
            f"proof bundle for decision {a['bundle']['index']}: {a['bundle']['file']}",
            highlight=False,
        )
        for problem in a["tampered_verify"]:
            console.print(f"after changing one byte of a tile: {problem}", highlight=False)
    f = report.federated
    if f:
        p, r = f["private"], f["robust"]
        console.print(
            f"federated task {p['task']} (SecAgg + DP): accuracy {p['accuracy']:.3f} at epsilon "
            f"{p['epsilon']}; task {r['task']} (median, hospital-c poisoning): accuracy "
            f"{r['accuracy_median']:.3f} (FedAvg baseline {r['accuracy_fedavg_baseline']:.3f})",
            highlight=False,
        )
        table = Table("hospital", "GTG-Shapley score", "reward (ETH)")
        for hospital, score in r["scores"].items():
            table.add_row(
                hospital, f"{score:+.4f}", f"{int(r['rewards_wei'][hospital]) / 1e18:.4f}"
            )
        console.print(table)
        console.print(
            f"final model {r['final_model']}: lineage of {f['lineage']['nodes']} assets, "
            f"{f['lineage']['rounds']} rounds; plot {f['plot']['file']}",
            highlight=False,
        )
    v = report.privacy
    if v:
        first, after = v["jobs"]["first"], v["jobs"]["after_withdrawal"]
        console.print(
            f"research-lab's download of dataset {v['dataset'][:12]} refused without a grant; its "
            f"approved job returned {json.dumps(first['summary'])}; after patient-17 withdrew "
            f"consent: {after['summary']['records']} records ({after['excluded']} excluded)",
            highlight=False,
        )
        console.print(
            f"hospital-b's access log: {v['audit']['allowed']} allowed, {v['audit']['denied']} "
            f"denied, {v['audit']['jobs']} jobs, verified against its checkpoint",
            highlight=False,
        )
    m = report.market
    if m:
        rep = m["reputation"]
        console.print(
            f"agent {m['agent_id']} (triage-agent) served {len(m['paid_calls'])} paid diagnoses "
            f"at {int(m['price']) / 1e6:g} credits each over x402 ({m['endpoint']}); rated "
            f"{rep['rating']} from {rep['count']} feedbacks backed by payments; job "
            f"{m['jobs']['completed']} completed, job {m['jobs']['refunded']} refunded after expiry",
            highlight=False,
        )
    s = report.sales
    if s:
        paid = ", ".join(f"{h} {amount / 1e6:g}" for h, amount in s["royalties"].items())
        console.print(
            f"market: hospital-b sold compute access to its cohort (listing "
            f"{s['cohort']['listing']}); the federated model (listing {s['model']['listing']}) "
            f"paid royalties by score: {paid} credits; both splits verified "
            f"(neuroledger market royalties {s['model']['listing']})",
            highlight=False,
        )
    for check in report.checks:
        mark = "[green]ok[/green]  " if check["ok"] else "[red]FAIL[/red]"
        console.print(f"  {mark} {check['check']}")
    console.print(
        f"done in {report.seconds:.1f} s; demo home {report.home} "
        f"(inspect: neuroledger --home {report.home} identity list)"
    )
    console.print(
        f"see and verify it all in a browser: {report.explorer_command} "
        "(then open http://127.0.0.1:8700/)",
        highlight=False,
    )
