"""`neuroledger fl simulate`: federated training in one process, for experiments."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from neuroledger.cli._context import console, emit
from neuroledger.cli._fl_support import (
    AGGREGATORS,
    DATASET_NAMES,
)
from neuroledger.errors import FederatedError

if TYPE_CHECKING:  # imported where used: `fl prepare` and `fl simulate` need no chain
    pass

__all__ = ["simulate_cmd"]


def simulate_cmd(
    clients: Annotated[
        int, typer.Option("--clients", "-n", help="Number of simulated participants.")
    ] = 10,
    rounds: Annotated[int, typer.Option("--rounds", "-r")] = 20,
    mode: Annotated[
        str, typer.Option("--mode", help="sync, deadline or async (FedBuff).")
    ] = "sync",
    alpha: Annotated[
        float, typer.Option("--alpha", help="Dirichlet non-IID concentration (small = skewed).")
    ] = 1.0,
    deadline: Annotated[
        float | None, typer.Option("--deadline", help="Seconds, for --mode deadline.")
    ] = None,
    attackers: Annotated[
        int, typer.Option("--attackers", help="How many participants attack.")
    ] = 0,
    attack: Annotated[str, typer.Option("--attack", help="label-flip or scale.")] = "label-flip",
    aggregator: Annotated[
        str, typer.Option("--aggregator", help=", ".join(AGGREGATORS))
    ] = "fedavg",
    dataset: Annotated[
        str, typer.Option("--dataset", help=", ".join(DATASET_NAMES))
    ] = "breast-cancer",
    dp_noise: Annotated[
        float | None, typer.Option("--dp-noise", help="DP noise multiplier (enables DP).")
    ] = None,
    dp_clip: Annotated[float, typer.Option("--dp-clip", help="DP clipping norm.")] = 1.0,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write the per-round results (JSON).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Simulate a federated run: non-IID data, stragglers, attackers; per-round accuracy, loss, epsilon."""
    import numpy as np
    from sklearn.datasets import load_breast_cancer, load_digits

    from neuroledger.federated import (
        DPFedAvg,
        PrivacyAccountant,
        SimConfig,
        make_aggregator,
        simulate,
    )

    if dataset not in DATASET_NAMES:
        raise FederatedError(f"unknown data set {dataset!r}; use {' or '.join(DATASET_NAMES)}")
    if aggregator not in AGGREGATORS:
        raise FederatedError(
            f"unknown aggregator {aggregator!r}; use one of {', '.join(AGGREGATORS)}"
        )
    if clients < 2 or rounds < 1:
        raise FederatedError("use at least 2 clients and 1 round")
    data = load_breast_cancer() if dataset == "breast-cancer" else load_digits()
    rule: Any = make_aggregator(aggregator, clients, attackers)
    accountant = None
    if dp_noise is not None:
        rule = DPFedAvg(
            clip_norm=dp_clip,
            noise_multiplier=dp_noise,
            expected_clients=clients,
            rng=np.random.default_rng(seed),
        )
        accountant = PrivacyAccountant(noise_multiplier=dp_noise, sampling_probability=1.0)
        aggregator = "dp-fedavg"  # DP replaces the chosen rule: clipped, noised FedAvg
    config = SimConfig(
        clients=clients,
        rounds=rounds,
        mode=mode,
        alpha=alpha,
        deadline=deadline,
        attackers=attackers,
        attack=attack,
        aggregator=rule,
        seed=seed,
    )
    with console.status(f"simulating {rounds} rounds of {clients} clients ({mode})"):
        result = simulate(data.data, data.target, config)
    rows = []
    for r in result.rounds:
        epsilon = None
        if accountant is not None:
            accountant.rounds = r.round
            epsilon = round(accountant.epsilon(), 4)
        rows.append(
            {
                "round": r.round,
                "time": round(r.time, 3),
                "accuracy": round(r.accuracy, 4),
                "loss": round(r.loss, 4),
                "epsilon": epsilon,
                "updates": r.updates,
                "rejected": r.rejected,
            }
        )
    report = {
        "dataset": dataset,
        "clients": clients,
        "mode": mode,
        "aggregator": aggregator,
        "attackers": attackers,
        "dp_noise": dp_noise,
        "rounds": rows,
    }
    if out is not None:
        out.write_text(json.dumps(report, indent=1))
    last = rows[-1]
    human = (
        f"{dataset}: {clients} clients, {mode}, {aggregator}: accuracy {last['accuracy']:.3f} after "
        f"{last['round']} rounds ({last['time']:.1f} virtual s)"
        + (f", epsilon {last['epsilon']}" if last["epsilon"] is not None else "")
        + (f"; results in {out}" if out else "")
    )
    emit(report, as_json=as_json, human=human)
