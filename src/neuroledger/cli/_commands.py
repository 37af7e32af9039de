"""The command groups of the CLI: where each lives and its one-line help.

Kept apart from the groups themselves so that `neuroledger --help` lists them without
importing them (see :class:`neuroledger.cli.main.LazyGroup`); each group takes its help
from here, so the listing and the group's own help are one text.
"""

from __future__ import annotations

__all__ = ["COMMANDS", "help_of"]

#: name -> ("module:attribute" of its Typer app or command function, one-line help).
COMMANDS: dict[str, tuple[str, str]] = {
    "init": (
        "neuroledger.cli.home:init",
        "Create the home (keystore, chain and deployment folders) and deploy the contracts.",
    ),
    "deploy": (
        "neuroledger.cli.home:deploy",
        "Deploy the contract suite to the chain (idempotent); record it in the home.",
    ),
    "node": ("neuroledger.cli.node:app", "The embedded chain node (anvil) of this home."),
    "identity": (
        "neuroledger.cli.identity:app",
        "Identities (did:ethr) of organizations, people, AI agents and devices.",
    ),
    "asset": (
        "neuroledger.cli.asset:app",
        "Assets: datasets, code, models, training runs, deployments — and their lineage.",
    ),
    "audit": (
        "neuroledger.cli.audit:app",
        "Tamper-evident audit logs (RFC 9162, C2SP tlog-tiles), anchored on chain.",
    ),
    "fl": (
        "neuroledger.cli.fl:app",
        "Federated training across organizations: create, join, run, status, simulate.",
    ),
    "data": (
        "neuroledger.cli.data:app",
        "Encrypt, decrypt and fetch private data (age format, DID-published keys).",
    ),
    "grant": (
        "neuroledger.cli.grant:app",
        "Grant, revoke and list access to private assets; approve algorithms.",
    ),
    "consent": (
        "neuroledger.cli.consent:app",
        "Data subjects give or withdraw consent to a purpose.",
    ),
    "job": (
        "neuroledger.cli.job:app",
        "Compute-to-data: run an approved algorithm on data you cannot see.",
    ),
    "gateway": (
        "neuroledger.cli.gateway:app",
        "The access gateway: serve grants over HTTP, audited.",
    ),
    "gov": (
        "neuroledger.cli.gov:app",
        "Governance: pause, propose and execute timelocked changes, and see the queue.",
    ),
    "market": (
        "neuroledger.cli.market:app",
        "The market: agents (ERC-8004), jobs in escrow (ERC-8183), payments, validation, listings.",
    ),
    "validator": (
        "neuroledger.cli.validator:app",
        "Validators: stake, and run the loop that checks AI results (k-of-n, commit-reveal).",
    ),
    "credits": (
        "neuroledger.cli.credits:app",
        "Credits, the market's payment token: faucet, balance, send.",
    ),
    "report": (
        "neuroledger.cli.report:app",
        "Reports from the chain: the energy and cost bill per capability.",
    ),
    "explorer": (
        "neuroledger.cli.explorer:app",
        "The explorer: index every contract's events and serve them read-only over HTTP.",
    ),
    "demo": (
        "neuroledger.cli.demo:demo",
        "Run the main scenario on a fresh embedded chain and print a report.",
    ),
}


def help_of(name: str) -> str:
    """The one-line help of command group ``name``."""
    return COMMANDS[name][1]
