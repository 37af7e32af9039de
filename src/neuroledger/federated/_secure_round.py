"""Secure aggregation (Bonawitz et al.) over the board: both halves of a round, and the
unmasking both roles run. Flower keeps SecAgg+ the same way, as a server workflow and a
client mod around an otherwise plain round.

A secure round: participants post round keys; the owner fixes the roster and threshold;
participants deal Shamir shares of their self-mask seed and round key, each sealed to the
recipient's X25519 key published in the DID registry; the owner lists who dealt;
participants post masked updates; the owner lists the survivors; survivors reveal the
shares that unmask the sum (self masks of survivors, pair keys of dropped clients).
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from neuroledger._json import loads_bounded
from neuroledger.errors import FederatedError
from neuroledger.federated._board import Board
from neuroledger.federated._protocol import Outcome, RoundPaths, RoundResult, owner_message
from neuroledger.federated._secagg import (
    SecAggClient,
    dequantize,
    open_sealed,
    quantize,
    seal,
    unmask_sum,
)
from neuroledger.federated._spec import MAX_SECURE_CLIENTS, TaskSpec
from neuroledger.federated._vectors import Vector, get_vector
from neuroledger.store import BlobStore

if TYPE_CHECKING:
    from neuroledger.federated._coordinator import Coordinator
    from neuroledger.federated._models import LogisticModel
    from neuroledger.federated._participant import Participant

__all__ = ["coordinator_round", "participant_round", "unmasked_sum"]

log = logging.getLogger("neuroledger.federated")


def _share(raw: Any) -> tuple[int, int]:
    return int(raw[0]), int(raw[1], 16)


def _context(spec: TaskSpec, r: int, sender: str, recipient: str) -> bytes:
    return f"{spec.round_id(r).decode()}/{sender.lower()}->{recipient.lower()}".encode()


def unmasked_sum(spec: TaskSpec, board: Board, store: BlobStore, result: RoundResult) -> Vector:
    """The round's aggregate: the masked updates summed, their masks removed with the
    revealed shares, dequantised and divided by the result's denominator."""
    paths = RoundPaths(result.round)
    roster = owner_message(board, spec, paths.roster)
    dealt = owner_message(board, spec, paths.dealers)["members"]
    members: list[str] = roster["members"]
    index = {a: i + 1 for i, a in enumerate(members)}
    keys = {index[a]: bytes.fromhex(roster["keys"][a]) for a in dealt}
    masked = {
        index[a]: get_vector(store, result.updates[a], spec.size, dtype="<u8")
        for a in sorted(result.updates)
    }
    seed_shares: dict[int, list[tuple[int, int]]] = {}
    key_shares: dict[int, list[tuple[int, int]]] = {}
    for message in board.from_each(paths.unmask, list(result.revealers or ())).values():
        for target, share in message.body["seed"].items():
            seed_shares.setdefault(index[target], []).append(_share(share))
        for target, share in message.body["key"].items():
            key_shares.setdefault(index[target], []).append(_share(share))
    total = unmask_sum(
        masked, keys, seed_shares, key_shares,
        threshold=int(roster["threshold"]), round_id=spec.round_id(result.round),
    )  # fmt: skip
    return np.asarray(
        dequantize(total, scale=spec.quant_scale) / float(result.denominator), dtype=np.float64
    )


# -- the participant's half -------------------------------------------------------------
def participant_round(
    p: Participant,
    r: int,
    start: Mapping[str, Any],
    model: LogisticModel,
    rng: np.random.Generator,
) -> Outcome:
    """Play round ``r`` under secure aggregation: keys, shares, masked update, reveal."""
    me, spec, paths = p.address, p.spec, RoundPaths(r)
    client = SecAggClient(index=0, n=0, threshold=0, round_id=spec.round_id(r))
    p.board.post(
        paths.member(paths.keys, me), {"round": r, "public_key": client.public_key.hex()},
        p.account,
    )  # fmt: skip
    roster = p.wait_owner(paths.roster, f"round {r}'s roster")
    if roster is None or me not in roster["members"]:
        return "skipped"
    members: list[str] = roster["members"]
    client.index, client.n = members.index(me) + 1, len(members)
    client.threshold = int(roster["threshold"])
    own: dict[str, Any] = {}
    sealed: dict[str, str] = {}
    for x, (seed_share, key_share) in client.deal_shares().items():
        member = members[x - 1]
        payload = {
            "seed": [seed_share[0], hex(seed_share[1])],
            "key": [key_share[0], hex(key_share[1])],
        }
        if member == me:
            own = payload
            continue
        blob = seal(p.keys_of(member), json.dumps(payload).encode(), _context(spec, r, me, member))
        sealed[member] = base64.b64encode(blob).decode()
    p.board.post(paths.member(paths.shares, me), {"round": r, "to": sealed}, p.account)
    if p.fault is not None and p.fault.active("drop", r):
        return "dropped"
    dealt_body = p.wait_owner(paths.dealers, f"round {r}'s list of dealers")
    if dealt_body is None or me not in dealt_body["members"]:
        return "skipped"
    dealt: list[str] = dealt_body["members"]
    received = {me: own}
    for sender, message in p.board.from_each(paths.shares, [a for a in dealt if a != me]).items():
        raw = open_sealed(
            p.x25519_private, base64.b64decode(message.body["to"][me]),
            _context(spec, r, sender, me),
        )  # fmt: skip
        received[sender] = loads_bounded(raw)
    base, delta = p.delta(r, start, model, rng, len(members))
    if delta.shape != (spec.size,) or not np.all(np.isfinite(delta)):
        # Under secure aggregation nobody could reject it later: fail loudly here.
        log.error("%s: round %d: my update is malformed; sending it as is (fault)", p.label, r)
        delta = np.nan_to_num(delta)
    q = quantize(delta, clip=spec.clip, scale=spec.quant_scale)
    masked = client.masked_input(
        q, {members.index(a) + 1: bytes.fromhex(roster["keys"][a]) for a in dealt}
    )
    digest = p.store.put(np.ascontiguousarray(masked, dtype="<u8").tobytes())
    p.board.post(
        paths.member(paths.update, me),
        {"round": r, "base": base, "update": digest, "examples": len(p.y)},
        p.account,
    )
    survivors_body = p.wait_owner(paths.survivors, f"round {r}'s survivors")
    if survivors_body is None:
        return "skipped"
    survivors: list[str] = survivors_body["members"]
    if me not in survivors:
        log.warning("%s: round %d: the owner left my update out", p.label, r)
        return "skipped"
    if len(survivors) < client.threshold or not set(survivors) <= set(dealt):
        log.error("%s: round %d: refusing to reveal shares for an unsafe survivor list", p.label, r)
        return "skipped"
    reveal = {
        "round": r,
        "seed": {a: received[a]["seed"] for a in survivors if a in received},
        "key": {a: received[a]["key"] for a in dealt if a not in survivors and a in received},
    }
    p.board.post(paths.member(paths.unmask, me), reveal, p.account)
    return "played"


# -- the owner's half -------------------------------------------------------------------
def coordinator_round(c: Coordinator, r: int, base: str, active: list[str]) -> RoundResult:
    """Run round ``r``'s phases as the owner; the result names who revealed."""
    paths = RoundPaths(r)
    keys = c.gather(paths.keys, active, r, need=2)
    members = sorted(keys)
    if len(members) > MAX_SECURE_CLIENTS:
        raise FederatedError(
            f"secure aggregation takes at most {MAX_SECURE_CLIENTS} clients a round"
        )
    threshold = max(2, len(members) // 2 + 1)
    roster = {
        "round": r,
        "members": members,
        "threshold": threshold,
        "keys": {a: str(keys[a].body["public_key"]) for a in members},
    }
    c.board.post(paths.roster, roster, c.account)
    shares = c.gather(paths.shares, members, r, need=threshold)
    dealt = [
        a for a in members
        if a in shares and set(shares[a].body.get("to", {})) >= set(members) - {a}
    ]  # fmt: skip
    c.board.post(paths.dealers, {"round": r, "members": dealt}, c.account)
    got = c.gather(paths.update, dealt, r, need=threshold)
    updates, weights, rejected = c.accept(
        r, base, got, "<u8", " (its masks are removed with the dropped clients' shares)"
    )
    survivors = sorted(updates)
    if len(survivors) < threshold:
        raise FederatedError(
            f"round {r}: {len(survivors)} usable masked updates, the threshold is {threshold}"
        )
    c.board.post(paths.survivors, {"round": r, "members": survivors}, c.account)
    reveals = c.gather(paths.unmask, survivors, r, need=threshold)
    dropped = sorted(set(active) - set(survivors) - set(rejected))
    if dropped:
        log.warning(
            "round %d: %d dropped out (%s); their pairwise masks are removed with %d "
            "revealed shares", r, len(dropped), ", ".join(dropped), len(reveals),
        )  # fmt: skip
    return RoundResult(
        round=r, base=base, updates=updates, weights=weights, rejected=rejected,
        dropped=dropped, revealers=sorted(reveals),
        denominator=len(members) if c.spec.dp_noise is not None else len(survivors),
    )  # fmt: skip
