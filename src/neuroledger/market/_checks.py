"""The checks validators run on AI results, and the request documents that name them.

A request is a small JSON document put on chain as a ``data:`` URI, so every validator
reads the same bytes and checks them against the request hash:

- ``asset-integrity``: the content at ``subject.location`` is the registered, unrevoked
  asset ``subject.asset`` (its manifest digest, with the asset's on-chain owner, gives the
  asset id): response 100, else 0;
- ``model-accuracy``: the same, then the model's accuracy on a held-out ``.npz`` whose
  SHA-256 the check names: ``100 * correct // rows`` (integers, so honest validators agree
  exactly).

Anything the request gets wrong (unreadable, a digest that differs, content that is not the
asset, a check other than the one a job's client fixed) is a failed check: response 0.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from eth_utils.crypto import keccak

from neuroledger.chain import Chain
from neuroledger.errors import MarketError

__all__ = [
    "CHECKS",
    "REQUEST_TYPE",
    "CheckResult",
    "canonical",
    "check_hash",
    "model_accuracy_check",
    "request_document",
    "run_check",
]

#: The checks validators know how to run.
CHECKS = ("asset-integrity", "model-accuracy")
REQUEST_TYPE = "neuroledger/validation-request/v1"
STATUSES = {1: "pending", 2: "accepted", 3: "rejected", 4: "inconclusive"}
OUTCOMES = {0: None, 1: "paid", 2: "slashed", 3: "spared"}
#: The most bytes of a request URI (the contract's bound).
MAX_URI = 1024
#: The largest held-out set a validator downloads or reads.
MAX_HELDOUT_BYTES = 256 << 20
_PAGE = 1000


def canonical(value: Any) -> bytes:
    """The canonical JSON of ``value``: sorted keys, no spaces, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def check_hash(check: dict[str, Any]) -> bytes:
    """The keccak256 of a check's canonical JSON (what a job's terms fix on chain)."""
    return keccak(canonical(check))


def model_accuracy_check(heldout: str | Path) -> dict[str, Any]:
    """A ``model-accuracy`` check on the held-out ``.npz`` file at ``heldout`` (a path or an
    https URL the validators can read), pinned by its SHA-256."""
    path = Path(heldout)
    if str(heldout).startswith(("https://", "http://")):
        raw = _read_location(str(heldout))
    elif path.is_file():
        raw = path.read_bytes()
    else:
        raise MarketError(f"held-out set {heldout} not found; give an .npz file with x and y arrays "
                          "(e.g. validation.npz from `neuroledger fl`)")  # fmt: skip
    _load_heldout(raw)  # refuse a file the validators could not use
    location = str(heldout) if str(heldout).startswith("http") else str(path.resolve())
    return {"kind": "model-accuracy", "heldout": location,
            "heldoutDigest": "sha256:" + hashlib.sha256(raw).hexdigest()}  # fmt: skip


def request_document(check: dict[str, Any], *, asset: str, location: str | Path,
                     job: int | None = None) -> dict[str, Any]:  # fmt: skip
    """A validation request: the check, the asset to check and where its content is."""
    if check.get("kind") not in CHECKS:
        raise MarketError(f"unknown check {check.get('kind')!r}; use one of {', '.join(CHECKS)}")
    if not (isinstance(asset, str) and asset.startswith("0x") and len(asset) == 66):
        raise MarketError(f"{asset!r} is not an asset id (0x and 64 hex digits)")
    where = str(location) if str(location).startswith("http") else str(Path(location).resolve())
    return {"type": REQUEST_TYPE, "check": check, "subject": {"asset": asset.lower(), "location": where},
            "job": job, "nonce": secrets.token_hex(8)}  # fmt: skip


# -- running a check ------------------------------------------------------------------
@dataclass
class CheckResult:
    """What a validator found: its response (0-100) and the evidence behind it."""

    response: int
    evidence: dict[str, Any] = field(default_factory=dict)


def _read_location(location: str) -> bytes:
    if location.startswith(("https://", "http://")):
        from neuroledger.market._card import fetch_bounded

        return fetch_bounded(location, MAX_HELDOUT_BYTES, timeout=30.0)
    path = Path(location)
    if not path.is_file() or path.stat().st_size > MAX_HELDOUT_BYTES:
        raise MarketError(f"{location} is not a readable file of at most {MAX_HELDOUT_BYTES} bytes")
    return path.read_bytes()


def _load_heldout(raw: bytes) -> tuple[np.ndarray, np.ndarray]:
    import io

    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as data:
            x, y = np.asarray(data["x"], dtype=np.float64), np.asarray(data["y"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise MarketError(
            f"the held-out set is not an .npz file with arrays x and y: {e}"
        ) from None
    if x.ndim != 2 or y.ndim != 1 or len(x) != len(y) or len(y) == 0:
        raise MarketError(f"the held-out set has x of shape {x.shape} and y of shape {y.shape}; "
                          "x must be rows by features and y one label per row")  # fmt: skip
    if not np.all(np.isfinite(x)) or not np.issubdtype(y.dtype, np.integer):
        raise MarketError("the held-out set must hold finite features and integer labels")
    return x, y


def _verify_subject(chain: Chain, asset: str, location: str) -> tuple[bool, str]:
    """Whether the content at ``location`` is the registered, unrevoked ``asset``."""
    from neuroledger.provenance import asset_id_for, build_manifest

    owner, _kind, status = (
        chain.contract("AssetRegistry").functions.assetOf(bytes.fromhex(asset[2:])).call()
    )
    if status == 0:
        return False, f"asset {asset} is not registered"
    if status == 3:
        return False, f"asset {asset} is revoked"
    if location.startswith("http"):
        return False, "the subject must be a path the validator can read"
    try:
        digest = build_manifest(Path(location)).digest
    except (OSError, ValueError) as e:
        return False, f"cannot read {location}: {e}"
    if "0x" + asset_id_for(owner, digest) != asset.lower():
        return False, f"the content at {location} is not asset {asset} (digest {digest[:16]}…)"
    return True, digest


def run_check(chain: Chain, document: dict[str, Any], *, agreed_check: bytes | None = None,
              deliverable: str | None = None) -> CheckResult:  # fmt: skip
    """Run the check a request names. ``agreed_check`` (a job's terms) and ``deliverable``
    (the job's) bind a job's request to what its client and provider agreed."""
    check, subject = document.get("check"), document.get("subject")
    if not isinstance(check, dict) or not isinstance(subject, dict):
        return CheckResult(0, {"error": "the request names no check or subject"})
    if agreed_check is not None and check_hash(check) != agreed_check:
        return CheckResult(0, {"error": "the check is not the one the job's client fixed"})
    asset, location = subject.get("asset"), subject.get("location")
    if not isinstance(asset, str) or not isinstance(location, str) or len(asset) != 66:
        return CheckResult(0, {"error": "the subject needs an asset id and a location"})
    if deliverable is not None and asset.lower() != deliverable.lower():
        return CheckResult(0, {"error": f"the subject is not the job's deliverable {deliverable}"})
    try:
        ok, detail = _verify_subject(chain, asset.lower(), location)
    except (ValueError, TypeError) as e:
        return CheckResult(0, {"error": f"bad asset id: {e}"})
    if not ok:
        return CheckResult(0, {"error": detail})
    if check.get("kind") == "asset-integrity":
        return CheckResult(100, {"digest": detail})
    if check.get("kind") != "model-accuracy":
        return CheckResult(0, {"error": f"unknown check {check.get('kind')!r}"})
    from neuroledger.market._model import load_softmax

    try:
        raw = _read_location(str(check.get("heldout", "")))
        if "sha256:" + hashlib.sha256(raw).hexdigest() != check.get("heldoutDigest"):
            return CheckResult(0, {"error": "the held-out set differs from its digest"})
        x, y = _load_heldout(raw)
        weights, bias, config = load_softmax(Path(location))
    except MarketError as e:
        return CheckResult(0, {"error": str(e)})
    if x.shape[1] != weights.shape[0]:
        return CheckResult(0, {"error": f"the model takes {weights.shape[0]} features, the "
                                        f"held-out set has {x.shape[1]}"})  # fmt: skip
    predicted = np.argmax(x @ weights + bias, axis=1)
    correct = int(np.sum(predicted == y))
    return CheckResult(
        100 * correct // len(y),  # integers: every honest validator gets the same number
        {"accuracy": round(correct / len(y), 6), "rows": len(y), "model": config["digest"],
         "digest": detail},
    )  # fmt: skip
