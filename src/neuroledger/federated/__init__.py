"""Federated training across organizations: tasks on chain, robust aggregation, secure
aggregation, differential privacy, contribution scores and rewards.

The face holds what users call: :class:`FederatedTasks` (a home's tasks: create, join,
run, claim), :func:`run_local` and :func:`simulate` (one process), the Flower adapter
(:class:`LedgerStrategy`), data splits, aggregation rules by name (:data:`RULES`,
:func:`make_aggregator`), the privacy accountant and contribution scores. The protocol's
parts (board, coordinator, participant, secure-aggregation client, adapters) stay in
their modules.

>>> import numpy as np
>>> median = make_aggregator("median", clients=3)  # robust to one poisoned update
>>> median.aggregate([Update("a", np.array([1.0])), Update("b", np.array([2.0])),
...                   Update("c", np.array([900.0]))])
array([2.])
"""

from typing import TYPE_CHECKING

from neuroledger._lazy import lazy_exports

if TYPE_CHECKING:
    from neuroledger.federated._aggregators import RULES, FedAvg, Update, make_aggregator
    from neuroledger.federated._contribution import gtg_shapley
    from neuroledger.federated._coordinator import RunReport
    from neuroledger.federated._data import DATASETS, load_dataset, split_dataset, write_parties
    from neuroledger.federated._dp import DPFedAvg, PrivacyAccountant
    from neuroledger.federated._faults import Fault
    from neuroledger.federated._ledger import TaskLedger, reward_shares
    from neuroledger.federated._local import run_local
    from neuroledger.federated._models import LogisticModel, local_train
    from neuroledger.federated._protocol import RoundResult
    from neuroledger.federated._service import FederatedTasks
    from neuroledger.federated._simulation import SimConfig, SimResult, dirichlet_split, simulate
    from neuroledger.federated._spec import TaskSpec
    from neuroledger.federated.flower import LedgerStrategy, aggregate_digest

__getattr__, __dir__ = lazy_exports(__name__, __file__)

__all__ = [
    "DATASETS",
    "RULES",
    "DPFedAvg",
    "Fault",
    "FedAvg",
    "FederatedTasks",
    "LedgerStrategy",
    "LogisticModel",
    "PrivacyAccountant",
    "RoundResult",
    "RunReport",
    "SimConfig",
    "SimResult",
    "TaskLedger",
    "TaskSpec",
    "Update",
    "aggregate_digest",
    "dirichlet_split",
    "gtg_shapley",
    "load_dataset",
    "local_train",
    "make_aggregator",
    "reward_shares",
    "run_local",
    "simulate",
    "split_dataset",
    "write_parties",
]
