"""Contribution scoring: how much each participant's data added, on the task owner's validation set.

A *utility* maps a coalition of clients to a score (for example, the
validation accuracy of the global model updated with only those clients'
deltas of a round, which needs no retraining). Three estimators:

- :func:`leave_one_out`: ``U(all) - U(all without i)``;
- :func:`exact_shapley`: the Shapley value by enumerating every coalition
  (2^n utility calls; the reference for small n);
- :func:`gtg_shapley`: GTG-Shapley (Liu et al., ACM TIST 2022): Monte-Carlo
  permutations, each client leading some of them, truncated once the
  remaining marginal gain is negligible, stopped when the estimates converge.

>>> values = exact_shapley(["a", "b"], lambda s: float(len(s)))
>>> values
{'a': 1.0, 'b': 1.0}
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from functools import lru_cache

import numpy as np

from neuroledger.errors import FederatedError

__all__ = ["EXACT_UP_TO", "Utility", "exact_shapley", "gtg_shapley", "leave_one_out", "shapley"]

#: Up to this many players, enumerating every coalition is cheaper than sampling
#: permutations (bench_fl: GTG-Shapley overtakes exact enumeration at about 9).
EXACT_UP_TO = 8

Utility = Callable[[frozenset[str]], float]


def _cached(utility: Utility) -> Utility:
    return lru_cache(maxsize=None)(utility)


def leave_one_out(players: Sequence[str], utility: Utility) -> dict[str, float]:
    """Each player's value: the utility lost when it alone is left out."""
    u = _cached(utility)
    everyone = frozenset(players)
    return {p: u(everyone) - u(everyone - {p}) for p in players}


def exact_shapley(players: Sequence[str], utility: Utility) -> dict[str, float]:
    """Shapley values by enumeration of all coalitions (use for n up to about 12)."""
    n = len(players)
    if n > 16:
        raise FederatedError(
            f"exact Shapley over {n} players is 2^{n} evaluations; use gtg_shapley"
        )
    u = _cached(utility)
    values = dict.fromkeys(players, 0.0)
    for p in players:
        others = [q for q in players if q != p]
        for size in range(n):
            weight = math.factorial(size) * math.factorial(n - size - 1) / math.factorial(n)
            for coalition in itertools.combinations(others, size):
                s = frozenset(coalition)
                values[p] += weight * (u(s | {p}) - u(s))
    return values


def gtg_shapley(
    players: Sequence[str],
    utility: Utility,
    *,
    truncation: float = 1e-3,
    convergence: float = 0.02,
    max_permutations: int = 500,
    min_permutations: int | None = None,
    rng: np.random.Generator | None = None,
) -> dict[str, float]:
    """GTG-Shapley estimates.

    Permutations are drawn so that every player leads equally often (the
    "guided" part); within a permutation, once the utility of the prefix is
    within ``truncation`` of the full coalition's, the remaining players get a
    zero marginal (the "truncated" part). Sampling stops after
    ``max_permutations``, or when the running means moved by less than
    ``convergence`` (relative) over the last round of n permutations.
    """
    rng = rng or np.random.default_rng()
    n = len(players)
    if n == 0:
        return {}
    u = _cached(utility)
    everyone = frozenset(players)
    full, empty = u(everyone), u(frozenset())
    if abs(full - empty) <= truncation:
        return dict.fromkeys(players, 0.0)  # the round added nothing worth sharing out
    totals = np.zeros(n)
    count = 0
    previous: np.ndarray | None = None
    minimum = min_permutations if min_permutations is not None else 2 * n
    while count < max_permutations:
        for lead in range(n):  # one permutation led by each player
            rest = [i for i in range(n) if i != lead]
            order = [lead, *rng.permutation(rest).tolist()]
            prefix: set[str] = set()
            last = empty
            for i in order:
                if abs(full - last) <= truncation:
                    break  # what is left adds (almost) nothing
                prefix.add(players[i])
                value = u(frozenset(prefix))
                totals[i] += value - last
                last = value
            count += 1
        means = totals / count
        if previous is not None and count >= minimum:
            scale = np.maximum(np.abs(means), 1e-12)
            if float(np.max(np.abs(means - previous) / scale)) < convergence:
                break
        previous = means.copy()
    return {p: float(totals[i] / count) for i, p in enumerate(players)}


def shapley(
    players: Sequence[str], utility: Utility, *, rng: np.random.Generator | None = None
) -> dict[str, float]:
    """Shapley values: exact up to :data:`EXACT_UP_TO` players, GTG-Shapley estimates beyond."""
    if len(players) <= EXACT_UP_TO:
        return exact_shapley(players, utility)
    return gtg_shapley(players, utility, rng=rng)
