"""``neuroledger fl …``: federated training across processes, and simulation for experiments."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from neuroledger.cli._commands import help_of
from neuroledger.cli._context import context_of, emit
from neuroledger.cli._fl_after import cancel, claim, status
from neuroledger.cli._fl_simulate import simulate_cmd
from neuroledger.cli._fl_support import (
    SharedOpt,
    duration,
    rounds_bar,
    say,
    setup_logging,
    tasks_of,
    wei,
)
from neuroledger.cli._options import JsonOpt
from neuroledger.errors import FederatedError
from neuroledger.federated import DATASETS, RULES, Fault

if TYPE_CHECKING:  # imported where used: `fl prepare` and `fl simulate` need no chain
    pass

app = typer.Typer(help=help_of("fl"))


@app.command("prepare")
def prepare(
    out: Annotated[Path, typer.Argument(help="Directory for party-N.npz and validation.npz.")],
    dataset: Annotated[str, typer.Option("--dataset", help=", ".join(DATASETS))] = "breast-cancer",
    parties: Annotated[int, typer.Option("--parties", "-n", min=1)] = 3,
    alpha: Annotated[
        float, typer.Option("--alpha", help="Dirichlet concentration (small = non-IID).")
    ] = 0.5,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Split a bundled scikit-learn data set non-IID into one file per party (for experiments)."""
    if alpha <= 0:
        raise FederatedError("--alpha must be positive (0.5 is skewed, 100 is nearly IID)")
    from neuroledger.federated import write_parties

    paths = write_parties(out, dataset, parties=parties, alpha=alpha, seed=seed)
    emit(
        [str(p) for p in paths],
        as_json=as_json,
        human=f"wrote {len(paths) - 1} party files and validation.npz to {out}",
    )


@app.command("create")
def create(
    ctx: typer.Context,
    owner: Annotated[
        str, typer.Option("--from", help="Identity that owns the task and pays the pool.")
    ],
    validation: Annotated[
        Path, typer.Option("--validation", help="Owner's validation data (.npz).")
    ],
    rounds: Annotated[int, typer.Option("--rounds", "-r", min=1)] = 10,
    validators: Annotated[
        int, typer.Option("--validators", "-k", help="Attestations per round.")
    ] = 2,
    min_participants: Annotated[int, typer.Option("--min-participants", min=1)] = 3,
    pool: Annotated[str, typer.Option("--pool", help="Reward pool in ETH, escrowed now.")] = "0.3",
    stake: Annotated[
        str,
        typer.Option("--stake", help="ETH each participant escrows to join (returned at the end)."),
    ] = "0.01",
    deadline: Annotated[
        str,
        typer.Option(
            "--deadline",
            help="Time to finish (90s, 30m, 12h, 7d); after it the pool is refunded or shared.",
        ),
    ] = "7d",
    aggregator: Annotated[str, typer.Option("--aggregator", help=", ".join(RULES))] = "fedavg",
    secure: Annotated[bool, typer.Option("--secure", help="Secure aggregation (SecAgg).")] = False,
    dp_noise: Annotated[
        float | None, typer.Option("--dp-noise", help="DP noise multiplier.")
    ] = None,
    clip: Annotated[float, typer.Option("--clip", help="L2 clipping norm (DP, SecAgg).")] = 10.0,
    local_epochs: Annotated[int, typer.Option("--local-epochs")] = 5,
    lr: Annotated[float, typer.Option("--lr")] = 0.5,
    mu: Annotated[float, typer.Option("--mu", help="FedProx proximal weight.")] = 0.0,
    phase_timeout: Annotated[
        float, typer.Option("--phase-timeout", help="Seconds to wait per phase.")
    ] = 20.0,
    shared: SharedOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a task: register code and initial model, escrow the pool, post the spec."""
    spec = tasks_of(ctx, shared).create(
        owner,
        validation,
        rounds=rounds,
        validators=validators,
        min_participants=min_participants,
        pool_wei=wei(pool),
        stake_wei=wei(stake, "--stake"),
        duration=duration(deadline),
        aggregator=aggregator,
        secure=secure,
        dp_noise=dp_noise,
        clip=clip,
        local_epochs=local_epochs,
        lr=lr,
        mu=mu,
        phase_timeout=phase_timeout,
    )
    emit(
        spec.to_json(),
        as_json=as_json,
        human=f"task {spec.task_id} created: {rounds} rounds, "
        f"{min_participants}+ participants, k={validators}, pool {pool} ETH, stake {stake} ETH, "
        f"deadline in {deadline}; join with "
        f"`neuroledger fl join {spec.task_id} --identity NAME --data FILE`",
    )


@app.command("join")
def join(
    ctx: typer.Context,
    task: Annotated[int, typer.Argument(help="Task id.")],
    identity: Annotated[str, typer.Option("--identity", help="Identity that participates.")],
    data: Annotated[Path, typer.Option("--data", help="This participant's data (.npz with x, y).")],
    fault: Annotated[
        str | None,
        typer.Option(
            "--fault",
            help="Inject a fault on purpose (testing): "
            + ", ".join(Fault.KINDS)
            + ", optionally @ROUND.",
        ),
    ] = None,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds to wait for the owner.")
    ] = 600.0,
    shared: SharedOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Join a task and take part until it ends: train, validate, attest, claim the reward."""
    setup_logging(ctx)
    parsed = Fault.parse(fault) if fault else None
    participant = tasks_of(ctx, shared).join(task, identity, data, fault=parsed, timeout=timeout)
    rounds = participant.spec.rounds
    waiting = f"joined; waiting for the owner to start round 1 (up to {timeout:.0f} s)"
    say(f"fl: task {task} as {identity}: {waiting}")
    with rounds_bar(rounds, f"task {task} as {identity}") as bar:
        progress = bar.add_task(waiting, total=rounds)

        def on_round(r: int) -> None:
            what = "done; claiming" if r >= rounds else f"waiting for round {r + 1}"
            bar.update(progress, completed=r, description=f"round {r} {what}")
            say(f"fl: task {task} as {identity}: round {r}/{rounds} {what}")

        summary = participant.run(on_round=on_round)
    reward = int(summary.get("reward_wei", 0))
    emit(
        summary,
        as_json=as_json,
        human=f"{identity}: played {summary['rounds_played']} rounds"
        + (
            " (dropped out)"
            if summary.get("dropped")
            else f", attested {len(summary['attested'])}, "
            f"reward {reward / 1e18:.6f} ETH" + (" claimed" if summary.get("claimed") else "")
        ),
    )


@app.command("run")
def run(
    ctx: typer.Context,
    task: Annotated[int, typer.Argument(help="Task id.")],
    validation: Annotated[
        Path, typer.Option("--validation", help="Owner's validation data (.npz).")
    ],
    join_timeout: Annotated[
        float, typer.Option("--join-timeout", help="Seconds to wait for participants.")
    ] = 300.0,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write the results (JSON).")
    ] = None,
    shared: SharedOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Drive a task you own: every round, then scores, the final model's lineage and rewards."""
    setup_logging(ctx)
    tasks = tasks_of(ctx, shared)
    spec = tasks.spec(task)
    with rounds_bar(spec.rounds, f"task {task}") as bar:
        progress = bar.add_task("waiting for participants", total=spec.rounds)

        def on_round(row: dict[str, Any]) -> None:
            done = row["round"] >= spec.rounds
            what = "; scoring contributions and paying rewards" if done else ""
            bar.update(
                progress,
                completed=row["round"],
                description=f"accuracy {row['accuracy']:.3f}{what}",
            )
            say(f"fl: task {task}: round {row['round']}/{spec.rounds} accuracy "
                 f"{row['accuracy']:.3f}{what}")  # fmt: skip

        report = tasks.run(
            task, validation, join_timeout=join_timeout, on_round=on_round,
            on_wait=lambda: say(f"fl: task {task}: waiting for participants (up to "
                                 f"{join_timeout:.0f} s)"),
        )  # fmt: skip
    data = report.to_json()
    if out is not None:
        out.write_text(json.dumps(data, indent=1))
    last = report.rounds[-1]
    emit(
        data,
        as_json=as_json,
        human=f"task {task}: {len(report.rounds)} rounds, accuracy "
        f"{last['accuracy']:.3f}"
        + (f", epsilon {last['epsilon']}" if last["epsilon"] else "")
        + f"; final model {report.final_model_asset}; rewards "
        + ", ".join(
            f"{context_of(ctx).name_of(a)} {v / 1e18:.4f} ETH" for a, v in report.rewards.items()
        )
        + (f"; results in {out}" if out else ""),
    )


app.command("status")(status)
app.command("cancel")(cancel)
app.command("claim")(claim)
app.command("simulate")(simulate_cmd)
