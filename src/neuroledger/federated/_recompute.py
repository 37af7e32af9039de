"""One function, run by the owner to aggregate a round and by every validator to check it.

Both roles compute a round's aggregate from the same inputs (the result posted on the
board, the updates in the store, under secure aggregation the revealed shares), so an
honest validator attests exactly the digest an honest owner posted.
"""

from __future__ import annotations

import numpy as np

from neuroledger.federated._aggregators import Update, make_aggregator
from neuroledger.federated._board import Board
from neuroledger.federated._protocol import RoundResult
from neuroledger.federated._secure_round import unmasked_sum
from neuroledger.federated._spec import TaskSpec
from neuroledger.federated._vectors import Vector, get_vector
from neuroledger.store import BlobStore

__all__ = ["recompute_aggregate"]


def recompute_aggregate(
    spec: TaskSpec, board: Board, store: BlobStore, result: RoundResult
) -> Vector:
    """The aggregate delta of a round from what the board and the store hold.

    The coordinator computes the aggregate with this function, and every
    validator recomputes it the same way before attesting its digest.
    """
    if spec.secure:
        return unmasked_sum(spec, board, store, result)
    vectors = {a: get_vector(store, result.updates[a], spec.size) for a in sorted(result.updates)}
    if spec.dp_noise is not None:
        return np.asarray(sum(vectors.values()) / float(result.denominator), dtype=np.float64)
    rule = make_aggregator(spec.aggregator, len(vectors))
    return rule.aggregate([Update(a, v, float(result.weights[a])) for a, v in vectors.items()])
