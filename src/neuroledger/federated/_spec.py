"""What a federated task trains and how: the :class:`TaskSpec` the owner signs onto the board.

>>> spec = TaskSpec(task_id=1, owner="0xabc", features=4, classes=3, rounds=2, validators=1,
...                 min_participants=2, initial_model="00" * 32).check()
>>> spec.size
15
>>> TaskSpec.from_json(spec.to_json()) == spec
True
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from neuroledger.errors import FederatedError
from neuroledger.federated._aggregators import RULES
from neuroledger.federated._models import LogisticModel

__all__ = ["MAX_SECURE_CLIENTS", "QUANT_STEPS", "TaskSpec"]

#: Fixed-point resolution of secure aggregation: values in [-clip, clip] map to
#: +-2^24 steps, so up to 127 clients sum without wrapping around Z_(2^32).
QUANT_STEPS = float(1 << 24)
MAX_SECURE_CLIENTS = 127


@dataclass(frozen=True)
class TaskSpec:
    """What a task trains and how; the owner posts it on the board, signed."""

    task_id: int
    owner: str
    features: int
    classes: int
    rounds: int
    validators: int
    min_participants: int
    initial_model: str  # store digest of the initial parameters
    model_asset: str = ""
    code_asset: str = ""
    chain_id: int = 0
    contract: str = ""
    aggregator: str = "fedavg"
    secure: bool = False
    dp_noise: float | None = None
    clip: float = 10.0
    local_epochs: int = 5
    lr: float = 0.5
    mu: float = 0.0
    phase_timeout: float = 20.0

    @property
    def size(self) -> int:
        """Number of model parameters."""
        return LogisticModel(self.features, self.classes).size

    @property
    def quant_scale(self) -> float:
        """Fixed-point steps per unit under secure aggregation."""
        return QUANT_STEPS / self.clip

    def round_id(self, r: int) -> bytes:
        """What binds secure aggregation's masks and sealed shares to this task's round ``r``."""
        return f"task-{self.chain_id}-{self.contract.lower()}-{self.task_id}/round-{r}".encode()

    def check(self) -> TaskSpec:
        """Raise ``FederatedError`` naming the first setting that cannot work."""
        if self.rounds < 1 or self.features < 1 or self.classes < 2:
            raise FederatedError("a task needs at least 1 round, 1 feature and 2 classes")
        if not 1 <= self.validators <= self.min_participants:
            raise FederatedError(
                f"--validators {self.validators} must be between 1 and --min-participants "
                f"{self.min_participants} (validators are participants)"
            )
        if self.aggregator not in RULES:
            raise FederatedError(f"unknown aggregator {self.aggregator!r}; use {', '.join(RULES)}")
        if (self.secure or self.dp_noise is not None) and self.aggregator != "fedavg":
            raise FederatedError(
                f"{self.aggregator} needs every update in the clear; secure aggregation and DP "
                "work with --aggregator fedavg (robust rules: run without --secure/--dp-noise)"
            )
        if self.dp_noise is not None and self.dp_noise <= 0:
            raise FederatedError("--dp-noise must be positive (try 1.0)")
        if self.clip <= 0 or self.lr <= 0 or self.local_epochs < 1 or self.phase_timeout <= 0:
            raise FederatedError(
                "--clip, --lr, --local-epochs and --phase-timeout must be positive"
            )
        return self

    def to_json(self) -> dict[str, Any]:
        """The spec as a JSON object."""
        return asdict(self)

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> TaskSpec:
        """Parse and check a spec read from the board."""
        known = {f.name for f in fields(cls)}
        try:
            return cls(**{k: v for k, v in body.items() if k in known}).check()
        except TypeError as exc:
            raise FederatedError(f"the task spec on the board is malformed: {exc}") from None
