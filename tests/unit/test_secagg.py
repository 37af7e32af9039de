"""Secure aggregation: exact sums after dropouts, uniform masked inputs, Shamir sharing."""

from __future__ import annotations

import numpy as np
import pytest

from neuroledger.errors import FederatedError
from neuroledger.federated._secagg import (
    MODULUS,
    SecAggClient,
    dequantize,
    quantize,
    shamir_reconstruct,
    shamir_split,
    unmask_sum,
)

CLIP, SCALE = 10.0, 2.0**16


def run_round(n: int, t: int, updates: list[np.ndarray], dropped: set[int]):
    clients = {i: SecAggClient(index=i, n=n, threshold=t, round_id=b"r7") for i in range(1, n + 1)}
    public = {i: c.public_key for i, c in clients.items()}
    dealt = {i: c.deal_shares() for i, c in clients.items()}  # dealt[i][x]: i's shares for client x
    survivors = [i for i in clients if i not in dropped]
    masked = {
        i: clients[i].masked_input(quantize(updates[i - 1], clip=CLIP, scale=SCALE), public)
        for i in survivors
    }
    # Survivors reveal: self-mask seed shares of survivors, key shares of the dropped.
    seed_shares = {i: [dealt[i][x][0] for x in survivors] for i in survivors}
    key_shares = {d: [dealt[d][x][1] for x in survivors] for d in dropped}
    return unmask_sum(masked, public, seed_shares, key_shares, threshold=t, round_id=b"r7"), masked


@pytest.mark.parametrize("dropped", [set(), {3}, {1, 8}, {2, 5, 7}])
def test_sum_is_exact_after_dropouts_up_to_the_threshold(dropped: set[int]) -> None:
    rng = np.random.default_rng(1)
    n, t = 8, 5
    updates = [rng.normal(0, 1, 1000) for _ in range(n)]
    total, _ = run_round(n, t, updates, dropped)
    survivors = [i for i in range(1, n + 1) if i not in dropped]
    expected_q = (
        sum(quantize(updates[i - 1], clip=CLIP, scale=SCALE).astype(np.int64) for i in survivors)
        % MODULUS
    )
    assert np.array_equal(total, expected_q.astype(np.uint64))  # exact in the ring
    expected = sum(updates[i - 1] for i in survivors)
    assert np.max(np.abs(dequantize(total, scale=SCALE) - expected)) <= len(survivors) / SCALE


def test_too_many_dropouts_is_an_error() -> None:
    rng = np.random.default_rng(2)
    updates = [rng.normal(0, 1, 10) for _ in range(5)]
    with pytest.raises(FederatedError, match="survived"):
        run_round(5, 4, updates, {1, 2})


def test_a_masked_input_is_uniform_whatever_the_update() -> None:
    n, t = 3, 2
    size = 200_000
    zeros = [np.zeros(size), np.zeros(size), np.zeros(size)]
    extreme = [np.full(size, CLIP), np.zeros(size), np.zeros(size)]
    for updates in (zeros, extreme):
        _, masked = run_round(n, t, updates, set())
        values = masked[1]
        counts = np.bincount((values >> np.uint64(28)).astype(np.int64), minlength=16)  # top 4 bits
        expected = size / 16
        chi2 = float(((counts - expected) ** 2 / expected).sum())
        assert chi2 < 50.0, chi2  # 15 degrees of freedom: p < 1e-5 beyond 50
        low = np.bincount((values & np.uint64(15)).astype(np.int64), minlength=16)
        assert float(((low - expected) ** 2 / expected).sum()) < 50.0


def test_shamir_any_t_shares_recover_the_secret() -> None:
    secret = int.from_bytes(b"\x42" * 32, "big")
    shares = shamir_split(secret, 7, 4)
    assert shamir_reconstruct(shares[:4]) == secret
    assert shamir_reconstruct([shares[6], shares[1], shares[3], shares[5]]) == secret
    assert shamir_reconstruct(shares[:3]) != secret
    with pytest.raises(FederatedError):
        shamir_split(secret, 3, 4)


def test_quantization_round_trip_and_clipping() -> None:
    values = np.array([-20.0, -1.5, 0.0, 0.25, 3.0, 20.0])
    back = dequantize(quantize(values, clip=CLIP, scale=SCALE), scale=SCALE)
    assert back.tolist() == [-10.0, -1.5, 0.0, 0.25, 3.0, 10.0]
