"""``neuroledger init`` and ``neuroledger deploy``: a home, and the contract suite it uses."""

from __future__ import annotations

from typing import Annotated

import typer

from neuroledger.cli._context import context_of, emit
from neuroledger.errors import ContractsNotDeployedError

__all__ = ["deploy", "init"]


def init(
    ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False
) -> None:
    """Create the home (keystore, chain and deployment folders) and deploy the contracts."""
    c = context_of(ctx)
    s = c.settings
    c.create_home()
    chain = c.chain()
    next_step = None
    try:
        contracts = {k: str(v["address"]) for k, v in chain.deployment().contracts.items()}
    except ContractsNotDeployedError:
        # An external chain without the suite: the home is ready; deploying needs gas.
        contracts = {}
        next_step = (
            "the contracts are not deployed on this chain yet: create an identity "
            "(`neuroledger identity create deployer`), send gas to the owner key it prints, "
            "then run `neuroledger deploy --from deployer`"
        )
    data = {
        "home": str(s.home),
        "chain_id": chain.chain_id,
        "rpc_url": chain.url,
        "embedded": chain.is_embedded,
        "contracts": contracts,
        "next_step": next_step,
    }
    lines = [f"home {s.home} ready; chain {chain.chain_id} at {chain.url}"]
    lines += [f"  {k} at {v}" for k, v in contracts.items()]
    lines += [f"next: {next_step}"] if next_step else []
    emit(data, as_json=as_json, human="\n".join(lines))


def deploy(
    ctx: typer.Context,
    from_: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="Identity that pays for deployment and governs the new suite (proposes and "
            "executes timelocked changes; guards it unless --guardian names another).",
        ),
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Deploy a NEW suite even though one is recorded; the old record is kept "
            "aside and data written to the old contracts is no longer reachable from this home.",
        ),
    ] = False,
    guardian: Annotated[
        str | None,
        typer.Option("--guardian", help="Identity or address that may pause (default: --from)."),
    ] = None,
    delay: Annotated[
        int,
        typer.Option("--delay", help="Seconds every governance change waits in the timelock."),
    ] = 2 * 86400,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Deploy the contract suite to the chain (idempotent); record it in the home.

    With --from NAME, NAME governs the new suite: it proposes and executes timelocked
    changes, and guards it (may pause) unless --guardian names another."""
    from neuroledger.chain import GovernanceSetup

    c = context_of(ctx)
    chain = c.chain()
    deployer = c.keystore().owner_account(from_) if from_ else None
    guard: str | None = deployer.address if deployer else None
    if guardian:  # the key that will send `gov pause`: an address or an identity's owner key
        guard = guardian if guardian.startswith("0x") else c.keystore().get(guardian).owner
    setup = GovernanceSetup(deployer.address if deployer else None, guard, delay)
    store = chain.suite.store
    before = store.load(chain.chain_id) if force else None
    record = chain.deployment(deployer=deployer, force=force, governance=setup)
    contracts = {k: v["address"] for k, v in record.contracts.items()}
    lines = [f"{k} at {v} (chain {chain.chain_id})" for k, v in contracts.items()]
    replaced = None
    if before is not None:
        replaced = {k: str(v["address"]) for k, v in before.contracts.items()}
        lines.insert(
            0,
            f"--force: deployed a new suite on chain {chain.chain_id}; the previous record "
            f"({', '.join(f'{k} {v}' for k, v in replaced.items())}) is kept in "
            f"{store.directory} as *.json.replaced",
        )
    emit(
        {"chain_id": chain.chain_id, "contracts": contracts, "replaced": replaced},
        as_json=as_json,
        human="\n".join(lines),
    )
