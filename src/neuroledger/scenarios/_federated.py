"""The federated part of the demo: three hospitals train one classifier without pooling data.

A consortium identity owns two tasks on scikit-learn's breast-cancer data,
split non-IID (Dirichlet 0.5) across hospitals A, B and C:

1. a private task: secure aggregation (the owner only ever sees masked
   updates) and differential privacy (epsilon reported per round);
2. a robust task: hospital C poisons its updates (-10x); the coordinate
   median keeps the model good where FedAvg, run on the same data without a
   chain as the baseline, is wrecked. Contributions are scored with
   GTG-Shapley; hospital C scores lowest and the pool is paid out by score,
   every hospital claiming its share on chain.

Each round is final on chain after two hospitals recompute the aggregate and
attest its digest; the final model's lineage reaches every hospital's
dataset, every round and the training code. Last, a simulation on the
digits data with log-normal stragglers compares synchronous and
asynchronous (FedBuff) training, plotted as a PNG.

The hospitals run as threads of the demo process here; ``neuroledger fl
join`` runs each as its own process (see docs/federated.md).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from neuroledger.chain import Chain
from neuroledger.federated import (
    Fault,
    FederatedTasks,
    RunReport,
    SimConfig,
    TaskSpec,
    load_dataset,
    run_local,
    simulate,
    split_dataset,
    write_parties,
)
from neuroledger.identity import Identities, Keystore
from neuroledger.provenance import Provenance
from neuroledger.store import FileStore

__all__ = ["run_federated"]

HOSPITALS = ("hospital-a", "hospital-b", "hospital-c")
POOL_WEI = 3 * 10**17
ROUNDS = 8
SEED = 7


def _task(
    tasks: FederatedTasks,
    data: Path,
    faults: dict[str, Fault],
    **settings: Any,
) -> tuple[RunReport, list[dict[str, Any]]]:
    spec = tasks.create(
        "consortium",
        data / "validation.npz",
        rounds=ROUNDS,
        validators=2,
        min_participants=len(HOSPITALS),
        pool_wei=POOL_WEI,
        phase_timeout=20.0,
        **settings,
    )
    participants = [
        tasks.join(spec.task_id, h, data / f"party-{i + 1}.npz", fault=faults.get(h), timeout=120)
        for i, h in enumerate(HOSPITALS)
    ]
    summaries: list[dict[str, Any]] = [{} for _ in participants]

    def serve(i: int) -> None:
        summaries[i] = participants[i].run()

    threads = [threading.Thread(target=serve, args=(i,)) for i in range(len(participants))]
    for t in threads:
        t.start()
    try:
        report = tasks.run(spec.task_id, data / "validation.npz", join_timeout=60)
    finally:
        for t in threads:
            t.join(180)
    return report, summaries


def _plot(path: Path) -> dict[str, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # Digits with one local epoch per round: slow enough to converge that the curves show it.
    x, y = load_dataset("digits")
    runs = {}
    for mode, rounds in (("sync", 40), ("async", 460)):
        config = SimConfig(
            clients=10,
            rounds=rounds,
            mode=mode,
            alpha=0.5,
            local_epochs=1,
            lr=0.1,
            delay_sigma=1.0,
            seed=SEED,
        )
        runs[mode] = simulate(x, y, config)
    fig, ax = plt.subplots(figsize=(7, 4))
    labels = {"sync": "synchronous (wait for all)", "async": "asynchronous (FedBuff, K=3)"}
    for mode, result in runs.items():
        ax.plot(
            [r.time for r in result.rounds], [r.accuracy for r in result.rounds], label=labels[mode]
        )
    ax.set_xlim(0, min(r.rounds[-1].time for r in runs.values()))
    ax.set_xlabel("time (s; 10 clients, log-normal delays: median 1 s, sigma 1)")
    ax.set_ylabel("validation accuracy")
    ax.set_title("Digits, non-IID (Dirichlet 0.5): accuracy over time")
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    target = 0.9
    return {
        "file": str(path),
        "target": target,
        "sync_time_to_target": runs["sync"].time_to(target),
        "async_time_to_target": runs["async"].time_to(target),
    }


def run_federated(
    chain: Chain,
    keystore: Keystore,
    home: Path,
    make_provenance: Callable[[FileStore], Provenance],
    step: Callable[[str], None],
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Run the federated scenario; return (summary, checks)."""
    summary: dict[str, Any] = {}
    checks: list[dict[str, Any]] = []
    work = home / "work" / "federated"
    step("the consortium creates its identity; the breast-cancer data is split non-IID")
    Identities(chain, keystore).create("consortium", "org")
    write_parties(work / "data", "breast-cancer", parties=len(HOSPITALS), alpha=0.5, seed=SEED)
    tasks = FederatedTasks.open(chain, keystore, home / "shared", make_provenance)
    data = work / "data"

    step("private task: 3 hospitals train with secure aggregation and differential privacy")
    private, _ = _task(tasks, data, {}, secure=True, dp_noise=1.0, clip=0.5)
    last = private.rounds[-1]
    summary["private"] = {
        "task": private.task_id,
        "accuracy": last["accuracy"],
        "epsilon": last["epsilon"],
        "final_model": private.final_model_asset,
    }
    state = tasks.ledger.task(private.task_id)
    checks.append(
        {
            "check": f"federated (SecAgg + DP): all {ROUNDS} rounds final on chain, each "
            "attested by 2 hospitals that recomputed the aggregate",
            "ok": state.finalized_round == ROUNDS and state.status == 2,
        }
    )
    checks.append(
        {
            "check": f"federated (SecAgg + DP): accuracy {last['accuracy']:.3f} (>= 0.88; DP noise varies by run) at "
            f"epsilon {last['epsilon']} (delta 1e-5)",
            "ok": last["accuracy"] >= 0.88 and (last["epsilon"] or 0) > 0,
        }
    )

    step("robust task: hospital-c poisons its updates; the coordinate median aggregates")
    robust, summaries = _task(tasks, data, {"hospital-c": Fault("scale")}, aggregator="median")
    parties, validation = split_dataset(
        "breast-cancer", parties=len(HOSPITALS), alpha=0.5, seed=SEED
    )
    template = TaskSpec(
        task_id=1,
        owner="",
        features=30,
        classes=2,
        rounds=ROUNDS,
        validators=2,
        min_participants=len(HOSPITALS),
        initial_model="",
        phase_timeout=20.0,
    )
    fedavg = run_local(work / "baseline", template, parties, validation, faults={2: Fault("scale")})
    acc_median, acc_fedavg = robust.rounds[-1]["accuracy"], fedavg.rounds[-1]["accuracy"]
    addresses = {h: str(keystore.owner_account(h).address) for h in HOSPITALS}
    scores = {h: robust.scores[addresses[h]] for h in HOSPITALS}
    rewards = {h: robust.rewards.get(addresses[h], 0) for h in HOSPITALS}
    summary["robust"] = {
        "task": robust.task_id,
        "accuracy_median": acc_median,
        "accuracy_fedavg_baseline": acc_fedavg,
        "scores": scores,
        "rewards_wei": {h: str(v) for h, v in rewards.items()},
        "final_model": robust.final_model_asset,
    }
    checks.append(
        {
            "check": f"federated (robust): median holds accuracy {acc_median:.3f} >= 0.90 with "
            f"a poisoner; FedAvg on the same data gets {acc_fedavg:.3f}",
            "ok": acc_median >= 0.90 and acc_fedavg < acc_median,
        }
    )
    worst = min(scores, key=scores.__getitem__)
    checks.append(
        {
            "check": "federated: the poisoner (hospital-c) has the lowest GTG-Shapley score "
            "and the smallest reward",
            "ok": worst == "hospital-c" and rewards["hospital-c"] == min(rewards.values()),
        }
    )
    claimed = sum(int(s.get("reward_wei", 0)) for s in summaries if s.get("claimed"))
    left = sum(tasks.ledger.reward_of(robust.task_id, a) for a in addresses.values())
    checks.append(
        {
            "check": "federated: rewards add up to the pool and every reward was claimed once",
            "ok": sum(rewards.values()) == POOL_WEI
            and claimed == sum(rewards.values())
            and left == 0,
        }
    )

    lineage = tasks.prov.lineage(robust.final_model_asset or "")
    kinds = [record.kind for record in lineage.nodes.values()]
    datasets = {tasks.join_message(robust.task_id, a)["dataset"] for a in addresses.values()}
    summary["lineage"] = {"nodes": len(lineage.nodes), "rounds": kinds.count("federated-round")}
    checks.append(
        {
            "check": "federated: the final model's lineage holds every hospital's dataset, "
            f"all {ROUNDS} rounds and the training code",
            "ok": datasets <= set(lineage.nodes)
            and kinds.count("federated-round") == ROUNDS
            and "code" in kinds,
        }
    )

    step("simulating 10 clients with stragglers: synchronous vs asynchronous, plotted")
    plot = _plot(home / "fl-sync-vs-async.png")
    summary["plot"] = plot
    png = Path(plot["file"]).read_bytes()[:8]
    speedup = (plot["sync_time_to_target"] or np.inf) / (plot["async_time_to_target"] or np.inf)
    checks.append(
        {
            "check": f"federated: accuracy-per-round plot written ({Path(plot['file']).name}); "
            f"async reaches {plot['target']} {speedup:.1f}x sooner than sync",
            "ok": png == b"\x89PNG\r\n\x1a\n" and speedup > 1,
        }
    )
    return summary, checks
