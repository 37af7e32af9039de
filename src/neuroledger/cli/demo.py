"""``neuroledger demo``: the main job, as a scenario with a printed report."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from neuroledger.cli._context import CLIContext, console, emit
from neuroledger.errors import NeuroLedgerError
from neuroledger.scenarios.demo import DemoReport, run_demo


def demo(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Run the main scenario on a fresh embedded chain and print a report."""
    c: CLIContext = ctx.obj
    if as_json:
        report = run_demo(c.settings)
    else:
        with console.status("demo") as status:
            report = run_demo(c.settings, step=lambda msg: status.update(msg))
    if as_json:
        emit(report.to_json(), as_json=True)
    else:
        _print(report)
    if not report.ok:
        raise NeuroLedgerError("the demo ran but a check failed; see the report above")


def _print(report: DemoReport) -> None:
    console.print(f"[bold]NeuroLedger demo[/bold] — chain {report.chain_id} at {report.rpc_url}")
    table = Table("identity", "kind", "DID", "methods")
    for e in report.identities:
        table.add_row(e["name"], e["kind"], e["did"], str(e.get("verification_methods", "")))
    console.print(table)
    r = report.rotation
    console.print(f"rotated hospital-a owner {r['old_owner']} -> {r['new_owner']} (DID unchanged)")
    console.print(f"triage-agent is a sigAuth delegate of hospital-a ({report.delegation['tx']})")
    for check in report.checks:
        mark = "[green]ok[/green]  " if check["ok"] else "[red]FAIL[/red]"
        console.print(f"  {mark} {check['check']}")
    console.print(
        f"done in {report.seconds:.1f} s; demo home {report.home} "
        f"(inspect: neuroledger --home {report.home} identity list)"
    )
