"""``neuroledger fl …``: federated training across processes, and simulation for experiments."""

from __future__ import annotations

import json
import logging
import re
import time
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from neuroledger.cli._commands import help_of
from neuroledger.cli._context import console, context_of, emit, err_console
from neuroledger.cli._options import JsonOpt
from neuroledger.environment import shared_dir
from neuroledger.errors import FederatedError
from neuroledger.federated.aggregators import RULES
from neuroledger.federated.data import DATASETS
from neuroledger.federated.faults import Fault

if TYPE_CHECKING:  # imported where used: `fl prepare` and `fl simulate` need no chain
    from neuroledger.federated.service import FederatedTasks

app = typer.Typer(help=help_of("fl"))

_AGGREGATORS = RULES
_DATASETS = DATASETS

SharedOpt = Annotated[
    Path | None,
    typer.Option(
        "--shared",
        help="Directory shared by the task's processes: content store and message board "
        "(env NEUROLEDGER_SHARED; default HOME/shared).",
    ),
]


def _tasks(ctx: typer.Context, shared: Path | None) -> FederatedTasks:
    from neuroledger.federated.service import FederatedTasks
    from neuroledger.provenance import HashCache, Provenance
    from neuroledger.store import FileStore

    c = context_of(ctx)
    where = shared_dir(c.settings, shared)

    def provenance(store: FileStore) -> Provenance:
        return Provenance(
            c.chain(),
            c.keystore(),
            store=store,
            index_path=c.settings.index_path,
            hash_cache=HashCache(c.settings.hash_cache_path),
        )

    return FederatedTasks.open(c.chain(), c.keystore(), where.expanduser().resolve(), provenance)


_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


class _NamesIdentities(logging.Formatter):
    """Writes an address this home holds as its identity's name (others stay addresses)."""

    def __init__(self, names: dict[str, str]) -> None:
        super().__init__("fl %(levelname)s: %(message)s")
        self.names = names

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        return _ADDRESS.sub(lambda m: self.names.get(m.group(0).lower(), m.group(0)), text)


def _logging(ctx: typer.Context) -> None:
    """Round events (rejections, dropouts, attestations) as one line each on stderr."""
    logger = logging.getLogger("neuroledger.federated")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(_NamesIdentities(context_of(ctx).names()))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


def _say(line: str) -> None:
    """Off a terminal (no bar), one line on stderr per step of a long command."""
    if not err_console.is_terminal:
        err_console.print(line, highlight=False)


def _rounds_bar(total: int, what: str) -> Progress:
    return Progress(
        TextColumn(what),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        console=err_console,
        transient=True,
        disable=not err_console.is_terminal,
    )


def _wei(eth: str, option: str = "--pool") -> int:
    try:
        value = Decimal(eth)
    except InvalidOperation:
        raise FederatedError(f"{option} {eth!r} is not an amount of ETH such as 0.5") from None
    if not value.is_finite() or value < 0:
        raise FederatedError(f"{option} must be a finite amount of ETH, not negative")
    return int(value * 10**18)


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _duration(text: str) -> int:
    """``90s``, ``30m``, ``12h`` or ``7d`` in seconds."""
    number, unit = text.strip()[:-1], text.strip()[-1:].lower()
    if unit not in _UNITS or not number.isdigit() or int(number) == 0:
        raise FederatedError(f"--deadline {text!r} is not a duration such as 90s, 30m, 12h or 7d")
    seconds = int(number) * _UNITS[unit]
    if seconds > 366 * 86400:
        raise FederatedError(f"--deadline {text!r} is over the contract's limit of 366 days")
    return seconds


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
    from neuroledger.federated.data import write_parties

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
    spec = _tasks(ctx, shared).create(
        owner,
        validation,
        rounds=rounds,
        validators=validators,
        min_participants=min_participants,
        pool_wei=_wei(pool),
        stake_wei=_wei(stake, "--stake"),
        duration=_duration(deadline),
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
    _logging(ctx)
    parsed = Fault.parse(fault) if fault else None
    participant = _tasks(ctx, shared).join(task, identity, data, fault=parsed, timeout=timeout)
    rounds = participant.spec.rounds
    waiting = f"joined; waiting for the owner to start round 1 (up to {timeout:.0f} s)"
    _say(f"fl: task {task} as {identity}: {waiting}")
    with _rounds_bar(rounds, f"task {task} as {identity}") as bar:
        progress = bar.add_task(waiting, total=rounds)

        def on_round(r: int) -> None:
            what = "done; claiming" if r >= rounds else f"waiting for round {r + 1}"
            bar.update(progress, completed=r, description=f"round {r} {what}")
            _say(f"fl: task {task} as {identity}: round {r}/{rounds} {what}")

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
    _logging(ctx)
    tasks = _tasks(ctx, shared)
    spec = tasks.spec(task)
    with _rounds_bar(spec.rounds, f"task {task}") as bar:
        progress = bar.add_task("waiting for participants", total=spec.rounds)

        def on_round(row: dict[str, Any]) -> None:
            done = row["round"] >= spec.rounds
            what = "; scoring contributions and paying rewards" if done else ""
            bar.update(
                progress,
                completed=row["round"],
                description=f"accuracy {row['accuracy']:.3f}{what}",
            )
            _say(f"fl: task {task}: round {row['round']}/{spec.rounds} accuracy "
                 f"{row['accuracy']:.3f}{what}")  # fmt: skip

        report = tasks.run(
            task, validation, join_timeout=join_timeout, on_round=on_round,
            on_wait=lambda: _say(f"fl: task {task}: waiting for participants (up to "
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


@app.command("status")
def status(
    ctx: typer.Context,
    task: Annotated[int, typer.Argument(help="Task id.")],
    shared: SharedOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A task's state on chain and on the board."""
    info = _tasks(ctx, shared).status(task)
    human = (
        f"task {task}: {info['status']} (deadline "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(info['deadline']))}), "
        f"{info['participants']} participants, rounds "
        f"recorded {info['recorded_round']}/{info['rounds']}, final {info['final_round']}"
        + (f", final model {info['final_model_asset']}" if info["final_model_asset"] else "")
    )
    emit(info, as_json=as_json, human=human)


@app.command("cancel")
def cancel(
    ctx: typer.Context,
    task: Annotated[int, typer.Argument(help="Task id.")],
    owner: Annotated[str, typer.Option("--from", help="Identity that owns the task.")],
    shared: SharedOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """End a task you own before its first round; then `fl claim` returns the pool."""
    _tasks(ctx, shared).cancel(task, owner)
    emit(
        {"task": task, "status": "refunded"},
        as_json=as_json,
        human=f"task {task} cancelled; `neuroledger fl claim {task} --identity {owner}` "
        "returns the pool, and each participant's claim returns its stake",
    )


@app.command("claim")
def claim(
    ctx: typer.Context,
    task: Annotated[int, typer.Argument(help="Task id.")],
    identity: Annotated[str, typer.Option("--identity", help="Identity that claims.")],
    shared: SharedOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Withdraw what an ended task owes you (a task past its deadline is ended first)."""
    info = _tasks(ctx, shared).claim(task, identity)
    emit(
        info,
        as_json=as_json,
        human=f"task {task} ({info['status']}): {identity} received "
        f"{int(info['received_wei']) / 1e18:.6f} ETH",
    )


@app.command("simulate")
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
        str, typer.Option("--aggregator", help=", ".join(_AGGREGATORS))
    ] = "fedavg",
    dataset: Annotated[str, typer.Option("--dataset", help=", ".join(_DATASETS))] = "breast-cancer",
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

    if dataset not in _DATASETS:
        raise FederatedError(f"unknown data set {dataset!r}; use {' or '.join(_DATASETS)}")
    if aggregator not in _AGGREGATORS:
        raise FederatedError(
            f"unknown aggregator {aggregator!r}; use one of {', '.join(_AGGREGATORS)}"
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
