"""What the detail pages show beyond an entity's fields: an asset's lineage and what the
browser needs to check a file against it, a task's rounds, an agent's reputation over
time, and the governance queue. Charts are drawn here as SVG coordinates, so a page needs
no script to show them."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import Any

from neuroledger.explorer._documents import trusted_rounds
from neuroledger.explorer._index import ExplorerIndex
from neuroledger.explorer._lineage import lineage

__all__ = ["chart", "extras", "governance"]

_W, _H, _PAD = 520, 180, 36


def chart(
    series: dict[str, list[tuple[float, float]]], *, x_label: str, y_label: str
) -> dict[str, Any]:
    """A line chart of ``series`` (name -> points) scaled into a fixed SVG box."""
    points = [p for pts in series.values() for p in pts]
    if not points:
        return {"empty": True}
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    y0, y1 = min(0.0, min(ys)), max(ys) if max(ys) > min(0.0, min(ys)) else min(0.0, min(ys)) + 1

    def at(x: float, y: float) -> tuple[float, float]:
        return (round(_PAD + (x - x0) / (x1 - x0) * (_W - 2 * _PAD), 1),
                round(_H - _PAD - (y - y0) / (y1 - y0) * (_H - 2 * _PAD), 1))  # fmt: skip

    lines = []
    for i, (name, pts) in enumerate(series.items()):
        placed = [at(x, y) for x, y in pts]
        lines.append({"name": name, "n": i, "path": " ".join(f"{x},{y}" for x, y in placed),
                      "dots": [{"x": x, "y": y, "label": f"{name}: {v[1]:g} at {v[0]:g}"}
                               for (x, y), v in zip(placed, pts, strict=True)]})  # fmt: skip
    return {"empty": False, "width": _W, "height": _H, "lines": lines, "x_label": x_label,
            "y_label": y_label, "y_max": f"{y1:g}", "y_min": f"{y0:g}", "x_min": f"{x0:g}",
            "x_max": f"{x1:g}", "pad": _PAD, "table": points}  # fmt: skip


def _asset(index: ExplorerIndex, item: dict[str, Any]) -> dict[str, Any]:
    registered = next((e for e in item["events"] if e["name"] == "AssetRegistered"), None)
    registry = next((a for a, n in index.catalog.addresses.items() if n == "AssetRegistry"), "")
    return {
        "lineage": lineage(index.db, item["key"]),
        "registrant": registered["args"]["owner"] if registered else "",
        "registry": registry,
    }


def _task(index: ExplorerIndex, item: dict[str, Any]) -> dict[str, Any]:
    rounds: dict[int, dict[str, Any]] = {}
    for e in item["events"]:
        if e["name"] in ("RoundRecorded", "RoundAttested", "RoundFinalized"):
            r = rounds.setdefault(int(e["args"]["round"]), {"attestations": 0, "tx": {}})
            r["tx"][e["name"]] = e["tx"]
            if e["name"] == "RoundRecorded":
                r.update(root=e["args"]["commitmentsRoot"], contributors=int(e["args"]["contributors"]),
                         aggregate=e["args"]["aggregateDigest"])  # fmt: skip
            elif e["name"] == "RoundAttested":
                r["attestations"] += 1
            else:
                r["final"] = True
    series = {
        "contributors": [
            (float(k), float(v.get("contributors", 0))) for k, v in sorted(rounds.items())
        ],
        "attestations": [(float(k), float(v["attestations"])) for k, v in sorted(rounds.items())],
    }
    measured = trusted_rounds(index.db, item["key"], str(item.get("owner") or ""),
                              {r: v.get("root", "") for r, v in rounds.items()})  # fmt: skip
    for number, m in measured.items():
        rounds[number]["measured"] = m
    ordered = sorted(measured.items())
    accuracy = {"accuracy": [(float(r), m["accuracy"]) for r, m in ordered if "accuracy" in m]}
    epsilon = {"ε spent": [(float(r), m["epsilon"]) for r, m in ordered if "epsilon" in m]}
    rewards = [e for e in item["events"] if e["name"] in ("RewardPaid", "TaskFinished")]
    contract = next((a for a, n in index.catalog.addresses.items() if n == "FederatedTask"), "")
    roots = {str(r): v.get("root", "") for r, v in rounds.items()}
    return {"rounds": sorted(rounds.items()), "rewards": rewards, "contract": contract,
            "roots_json": json.dumps(roots),
            "chart": chart(series, x_label="round", y_label="count"), "measured": bool(measured),
            "accuracy_chart": chart(accuracy, x_label="round", y_label="accuracy"),
            "epsilon_chart": chart(epsilon, x_label="round", y_label="ε")}  # fmt: skip


def _agent(item: dict[str, Any]) -> dict[str, Any]:
    feedback, deals, total, count = [], [], 0.0, 0
    for e in item["events"]:
        if e["name"] == "NewFeedback":
            value = int(e["args"]["value"]) / 10 ** int(e["args"]["valueDecimals"])
            total, count = total + value, count + 1
            feedback.append((float(e["block"]), round(total / count, 4)))
        elif e["name"] == "DealRecorded":
            deals.append(e)
    series = {"average feedback": feedback} if feedback else {}
    uris = [e["args"].get("agentURI") or e["args"].get("newURI") for e in item["events"]
            if e["name"] in ("Registered", "URIUpdated")]  # fmt: skip
    return {"deals": deals, "chart": chart(series, x_label="block", y_label="average value"),
            "card": _card(str(uris[-1])) if uris else None, "card_uri": uris[-1] if uris else ""}  # fmt: skip


_MAX_CARD = 16 * 1024


def _card(uri: str) -> dict[str, Any] | None:
    """The ERC-8004 registration file when the agent's URI carries it inline (a base64
    ``data:`` URI, at most 16 KiB), for display; None otherwise. It says what the agent
    claims; ``neuroledger market agent show`` checks those claims against the chain."""
    prefix = "data:application/json;base64,"
    if not uri.startswith(prefix) or len(uri) > _MAX_CARD * 4 // 3 + len(prefix) + 4:
        return None
    try:
        doc = json.loads(base64.b64decode(uri[len(prefix) :], validate=True))
    except (ValueError, RecursionError):
        return None
    if not isinstance(doc, dict):
        return None
    listed = doc.get("services", doc.get("endpoints"))
    trust = doc.get("supportedTrust")
    services = [s for s in (listed if isinstance(listed, list) else []) if isinstance(s, dict)]
    trust = trust if isinstance(trust, list) else []
    return {"name": str(doc.get("name", ""))[:200], "description": str(doc.get("description", ""))[:1000],
            "services": [{"name": str(s.get("name", ""))[:64], "endpoint": str(s.get("endpoint", ""))[:300]}
                         for s in services[:32]],
            "trust": [str(t)[:64] for t in trust[:16] if isinstance(t, str)],
            "active": doc.get("active")}  # fmt: skip


def _log(item: dict[str, Any]) -> dict[str, Any]:
    anchors = [{"size": int(e["args"]["treeSize"]), "root": str(e["args"]["rootHash"]),
                "block": e["block"], "tx": e["tx"], "when": e.get("when", "")}
               for e in item["events"] if e["name"] == "Anchored"]  # fmt: skip
    return {"anchors": anchors,
            "anchors_json": json.dumps([[a["size"], a["root"]] for a in anchors])}  # fmt: skip


def _text(value: str) -> str:
    """A bytes32 or bytes argument as text when it is printable ASCII, else as hex."""
    raw = bytes.fromhex(value.removeprefix("0x")) if value.startswith("0x") else value.encode()
    raw = raw.rstrip(b"\0")
    return (
        raw.decode()
        if raw and all(32 <= b < 127 for b in raw)
        else value[:42] + "…" * (len(value) > 42)
    )


def _identity(index: ExplorerIndex, item: dict[str, Any]) -> dict[str, Any]:
    """The identity's DID and what its document holds now (delegates and attributes
    still valid), from its ERC-1056 events."""
    now = time.time()
    delegates: dict[tuple[str, str], dict[str, Any]] = {}
    attributes: dict[tuple[str, str], dict[str, Any]] = {}
    for e in item["events"]:
        a = e["args"]
        if e["name"] == "DIDDelegateChanged":
            delegates[(a["delegateType"], a["delegate"])] = {
                "type": _text(a["delegateType"]), "delegate": a["delegate"],
                "valid_to": int(a["validTo"]), "tx": e["tx"]}  # fmt: skip
        elif e["name"] == "DIDAttributeChanged":
            attributes[(a["name"], a["value"])] = {
                "name": _text(a["name"]), "value": _text(a["value"]),
                "valid_to": int(a["validTo"]), "tx": e["tx"]}  # fmt: skip
    return {
        "did": f"did:ethr:{index.chain_id:#x}:{item['key']}",
        "controller": item.get("owner") or item["key"],
        "delegates": [d for d in delegates.values() if d["valid_to"] > now],
        "attributes": [a for a in attributes.values() if a["valid_to"] > now],
    }


_JOB_STEPS = {"JobCreated": "open", "JobFunded": "funded", "JobSubmitted": "submitted",
              "JobCompleted": "completed", "JobRejected": "rejected", "JobExpired": "expired",
              "PaymentReleased": "paid", "Refunded": "refunded"}  # fmt: skip


def _job(item: dict[str, Any]) -> dict[str, Any]:
    """The job's state machine as it ran: each transition and its transaction."""
    return {"steps": [{"state": _JOB_STEPS[e["name"]], "tx": e["tx"], "block": e["block"],
                       "when": e.get("when", "")}
                      for e in item["events"] if e["name"] in _JOB_STEPS]}  # fmt: skip


def _validation(item: dict[str, Any]) -> dict[str, Any]:
    """Each validator's commit, reveal and settlement."""
    rows: dict[str, dict[str, Any]] = {}
    for e in item["events"]:
        who = str(e["args"].get("validatorAddress", "")).lower()
        if not who:
            continue
        row = rows.setdefault(who, {"validator": who})
        if e["name"] == "ValidationCommitted":
            row.update(commitment=e["args"]["commitment"], commit_tx=e["tx"])
        elif e["name"] == "ValidationResponse":
            row.update(response=e["args"]["response"], reveal_tx=e["tx"])
        elif e["name"] == "ValidatorSettled":
            row.update(outcome=e["args"]["outcome"], amount=e["args"]["amount"], settle_tx=e["tx"])
    return {"validators": list(rows.values())}


def _sale(item: dict[str, Any]) -> dict[str, Any]:
    """Who was paid what when the sale was released."""
    return {"royalties": [{"payee": e["args"]["payee"], "source": e["args"]["source"],
                           "amount": e["args"]["amount"], "tx": e["tx"]}
                          for e in item["events"] if e["name"] == "RoyaltyPaid"]}  # fmt: skip


_EXTRAS: dict[str, Callable[[ExplorerIndex, dict[str, Any]], dict[str, Any]]] = {
    "asset": _asset,
    "task": _task,
    "agent": lambda _, item: _agent(item),
    "log": lambda _, item: _log(item),
    "identity": _identity,
    "job": lambda _, item: _job(item),
    "validation": lambda _, item: _validation(item),
    "sale": lambda _, item: _sale(item),
}


def extras(index: ExplorerIndex, item: dict[str, Any]) -> dict[str, Any]:
    """The parts of a detail page particular to the entity's kind."""
    view = _EXTRAS.get(item["kind"])
    return view(index, item) if view is not None else {}


def governance(index: ExplorerIndex, now: float | None = None) -> dict[str, Any]:
    """Each contract's pause state and guardian, and the timelock's queue with countdowns."""
    now = time.time() if now is None else now
    contracts: dict[str, dict[str, Any]] = {}
    for e in index.db.execute(
        "SELECT contract, name, args, block, tx FROM events WHERE name IN "
        "('Paused', 'Unpaused', 'GuardianChanged') ORDER BY block, log_index"
    ).fetchall():
        state = contracts.setdefault(e[0], {"paused": False, "guardian": "", "since": None})
        if e[1] == "GuardianChanged":
            state["guardian"] = json.loads(e[2])["newGuardian"]
        else:
            state.update(paused=e[1] == "Paused", since=e[3], tx=e[4])
    queue = []
    for op in index.entities("operation", limit=500):
        ready_at = int(op["time"]) + int(op["data"].get("delay", 0))
        status = op["status"]
        if status == "scheduled" and ready_at <= now:
            status = "ready"
        target = index.catalog.addresses.get(str(op["data"].get("target", "")).lower(), "")
        queue.append({**op, "ready_at": ready_at, "state": status, "target": target,
                      "wait": max(0, int(ready_at - now)) if status == "scheduled" else 0})  # fmt: skip
    return {"contracts": sorted(contracts.items()), "queue": queue, "now": int(now)}
