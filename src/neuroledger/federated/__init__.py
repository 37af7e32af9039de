"""Federated training: aggregation rules, server optimizers, secure aggregation (a numpy core).

>>> import numpy as np
>>> updates = [Update("h1", np.array([1.0, 1.0])), Update("h2", np.array([3.0, 3.0]))]
>>> ServerOptimizer().step(np.zeros(2), FedAvg().aggregate(updates))
array([2., 2.])
"""

from typing import TYPE_CHECKING

from neuroledger._lazy import lazy_exports

if TYPE_CHECKING:
    from neuroledger.federated.adapters import (
        sklearn_to_vector,
        state_dict_to_vector,
        vector_to_sklearn,
        vector_to_state_dict,
    )
    from neuroledger.federated.aggregators import (
        RULES,
        Aggregator,
        CoordinateMedian,
        FedAvg,
        FLTrust,
        Krum,
        ServerOptimizer,
        TrimmedMean,
        Update,
        make_aggregator,
        staleness_weight,
        validate_updates,
    )
    from neuroledger.federated.board import Board
    from neuroledger.federated.contribution import exact_shapley, gtg_shapley, leave_one_out
    from neuroledger.federated.coordinator import Coordinator, RunReport
    from neuroledger.federated.data import load_dataset, split_dataset
    from neuroledger.federated.dp import DPFedAvg, PrivacyAccountant, clip_update
    from neuroledger.federated.faults import Fault
    from neuroledger.federated.flower import LedgerStrategy, aggregate_digest
    from neuroledger.federated.ledger import TaskLedger, reward_shares, vector_digest
    from neuroledger.federated.local import run_local
    from neuroledger.federated.models import LogisticModel, local_train
    from neuroledger.federated.participant import Participant
    from neuroledger.federated.protocol import RoundResult
    from neuroledger.federated.recompute import recompute_aggregate
    from neuroledger.federated.secagg import SecAggClient, dequantize, quantize, unmask_sum
    from neuroledger.federated.service import FederatedTasks
    from neuroledger.federated.simulation import SimConfig, SimResult, dirichlet_split, simulate
    from neuroledger.federated.spec import TaskSpec

__getattr__, __dir__ = lazy_exports(__name__, __file__)

__all__ = [
    "RULES",
    "Aggregator",
    "Board",
    "CoordinateMedian",
    "Coordinator",
    "DPFedAvg",
    "FLTrust",
    "Fault",
    "FedAvg",
    "FederatedTasks",
    "Krum",
    "LedgerStrategy",
    "LogisticModel",
    "Participant",
    "PrivacyAccountant",
    "RoundResult",
    "RunReport",
    "SecAggClient",
    "ServerOptimizer",
    "SimConfig",
    "SimResult",
    "TaskLedger",
    "TaskSpec",
    "TrimmedMean",
    "Update",
    "aggregate_digest",
    "clip_update",
    "dequantize",
    "dirichlet_split",
    "exact_shapley",
    "gtg_shapley",
    "leave_one_out",
    "load_dataset",
    "local_train",
    "make_aggregator",
    "quantize",
    "recompute_aggregate",
    "reward_shares",
    "run_local",
    "simulate",
    "sklearn_to_vector",
    "split_dataset",
    "staleness_weight",
    "state_dict_to_vector",
    "unmask_sum",
    "validate_updates",
    "vector_digest",
    "vector_to_sklearn",
    "vector_to_state_dict",
]
