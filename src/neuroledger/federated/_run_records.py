"""What a task owner's run records in provenance: a document per round (chained to the
previous round, the first to the model, code and datasets), then the final model with a
SLSA training run, and the rewards on chain."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from eth_account.signers.local import LocalAccount

from neuroledger._fs import atomic_write
from neuroledger.federated._protocol import RoundResult
from neuroledger.federated._spec import TaskSpec

if TYPE_CHECKING:
    from neuroledger.federated._service import FederatedTasks

__all__ = ["MAX_PARENTS", "RunRecords", "write_model"]

#: Parents an asset may list (the asset registry's limit).
MAX_PARENTS = 16


class RunRecords:
    """The provenance records of one run of task ``task_id`` by its owner."""

    def __init__(self, tasks: FederatedTasks, task_id: int, spec: TaskSpec, owner_name: str,
                 account: LocalAccount) -> None:  # fmt: skip
        self.tasks = tasks
        self.task_id = task_id
        self.spec = spec
        self.owner_name = owner_name
        self.account = account
        self.datasets: list[str] = []  # the participants' datasets, as they joined
        self.started = datetime.now(UTC)

    def register_round(self, r: int, payload: tuple[RoundResult, dict[str, Any]], root: str,
                       parent: str | None) -> str:  # fmt: skip
        """Register round ``r``'s document (``payload``: its result and report row); return
        its asset id. The document carries the round's accuracy, loss and privacy spent (ε)
        as the owner measured them on its validation data, so the explorer can chart them
        from a record whose digest is on chain."""
        result, row = payload
        spec = self.spec
        document = {
            "type": "https://neuroledger.dev/federated-round/v1",
            "task": self.task_id,
            "chain": self.tasks.chain.chain_id,
            "contract": spec.contract,
            "round": r,
            "commitmentsRoot": root,
            "aggregateDigest": result.aggregate,
            "model": result.model,
            "updates": result.updates,
            "rejected": result.rejected,
            "dropped": result.dropped,
            "metrics": {k: row.get(k) for k in ("accuracy", "loss", "epsilon")},
        }
        parents = [parent] if parent else [spec.model_asset, spec.code_asset, *self.datasets]
        return self.tasks.prov.register_document(
            document, kind="federated-round", owner=self.owner_name,
            parents=parents[:MAX_PARENTS],
        ).asset_id  # fmt: skip

    def finish(
        self, w: np.ndarray, scores: dict[str, float], rewards: dict[str, int], rounds: list[str]
    ) -> tuple[str | None, str | None]:
        """Write and register the final model with its training run, and set the rewards."""
        spec, task_id = self.spec, self.task_id
        model_dir = self.tasks.shared / "models" / f"task-{task_id}-final"
        write_model(model_dir, w, spec.features, spec.classes, {"task": task_id})
        inputs = [rounds[-1], spec.code_asset, *self.datasets][:MAX_PARENTS]
        run, model = self.tasks.prov.register_training_run(
            model_dir,
            owner=self.owner_name,
            inputs=inputs,
            started=self.started,
            finished=datetime.now(UTC),
            parameters={
                "task": task_id,
                "rounds": spec.rounds,
                "aggregator": spec.aggregator,
                "secure": spec.secure,
                "dp_noise": spec.dp_noise,
                "scores": scores,
                "rewards": {a: str(v) for a, v in rewards.items()},
            },
        )
        if rewards:
            self.tasks.ledger.finish(self.account, task_id, model.asset_id, rewards)
        return model.asset_id, run.asset_id


def write_model(
    directory: Path, w: np.ndarray, features: int, classes: int, extra: dict[str, Any]
) -> None:
    """Write a softmax-regression model: float64 weights and a JSON config."""
    directory.mkdir(parents=True, exist_ok=True)
    atomic_write(
        directory / "weights.f64", np.ascontiguousarray(w, dtype="<f8").tobytes(), mode=0o644
    )
    config = {
        "type": "softmax-regression",
        "features": features,
        "classes": classes,
        "layout": "weights (features x classes, row-major) then biases; float64 LE",
        **extra,
    }
    atomic_write(
        directory / "config.json", json.dumps(config, indent=1, sort_keys=True).encode(), mode=0o644
    )
