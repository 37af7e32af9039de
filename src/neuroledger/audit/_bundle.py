"""Offline proof bundles in the C2SP tlog-proof format, carrying the on-chain anchor.

A bundle is ``c2sp.org/tlog-proof@v1``, an ``extra`` line, the entry's index,
its inclusion proof, a blank line and the signed checkpoint verbatim. Our
``extra`` data (base64 of canonical JSON) carries the entry itself, the log's
verifier key and the anchor transaction (chain id, contract, transaction).
Nothing in ``extra`` is trusted: :func:`verify_bundle` checks that the anchor
transaction on the chain names the log id that is the SHA-256 of that key, with
the checkpoint's size and root, before it trusts the key for the signature.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any

from web3 import Web3

from neuroledger._json import loads_bounded
from neuroledger.audit._anchor import AnchorRecord, log_id, read_anchor
from neuroledger.audit._log import TileLog
from neuroledger.audit._note import NoteVerifier, open_checkpoint
from neuroledger.core import canonical, leaf_hash, verify_inclusion
from neuroledger.errors import AuditError

__all__ = ["HEADER", "BundleResult", "make_bundle", "verify_bundle"]

HEADER = "c2sp.org/tlog-proof@v1"


def make_bundle(log: TileLog, index: int, anchor: AnchorRecord, checkpoint_text: str) -> str:
    """A proof bundle for entry ``index`` against the anchored checkpoint ``checkpoint_text``."""
    if log.signer is None:
        raise AuditError("open the log with its key (its verifier goes into the bundle)")
    verifier = log.signer.verifier
    checkpoint = open_checkpoint(checkpoint_text, verifier)
    if (checkpoint.size, checkpoint.root.hex()) != (anchor.size, anchor.root):
        raise AuditError("the checkpoint is not the anchored one; use the anchored checkpoint")
    if not 0 <= index < checkpoint.size:
        raise AuditError(
            f"entry {index} is not covered by the anchored checkpoint (size {checkpoint.size}); "
            "checkpoint and anchor the log first"
        )
    extra = {
        "entry": base64.b64encode(log.entry(index)).decode(),
        "vkey": verifier.vkey,
        "anchor": {"chain_id": anchor.chain_id, "contract": anchor.contract, "tx": anchor.tx},
    }
    proof = log.inclusion_proof(index, checkpoint.size)
    lines = [
        HEADER,
        "extra " + base64.b64encode(canonical(extra)).decode(),
        f"index {index}",
        *(base64.b64encode(p).decode() for p in proof),
        "",
    ]
    return "\n".join(lines) + "\n" + checkpoint_text


@dataclass(frozen=True)
class BundleResult:
    """A verified bundle: the entry, where it is, and the anchor that vouches for the log."""

    entry: bytes
    index: int
    origin: str
    size: int
    chain_id: int
    tx: str
    block: int
    anchored_by: str = ""  # the account whose namespace holds the anchor (the log's operator)


def _parse(text: str) -> tuple[dict[str, Any], int, list[bytes], str]:
    head, sep, checkpoint_text = text.partition("\n\n")
    if not sep:
        raise AuditError("malformed bundle: no blank line before the checkpoint")
    lines = head.split("\n")
    if not lines or lines[0] != HEADER:
        raise AuditError(f"not a proof bundle: the first line must be {HEADER}")
    if len(lines) < 3 or not lines[1].startswith("extra "):
        raise AuditError("malformed bundle: missing the extra line with the entry and its anchor")
    try:
        extra = loads_bounded(base64.b64decode(lines[1][6:], validate=True))
    except (binascii.Error, ValueError):
        raise AuditError("malformed bundle: the extra line is not base64 JSON") from None
    match = re.fullmatch(r"index (0|[1-9][0-9]*)", lines[2])
    if match is None:
        raise AuditError("malformed bundle: the third line must be 'index N'")
    try:
        proof = [base64.b64decode(x, validate=True) for x in lines[3:]]
    except binascii.Error:
        raise AuditError("malformed bundle: a proof line is not base64") from None
    return extra, int(match.group(1)), proof, checkpoint_text


def verify_bundle(text: str, w3: Web3) -> BundleResult:
    """Verify a bundle with nothing but a chain connection; raise what is wrong."""
    extra, index, proof, checkpoint_text = _parse(text)
    try:
        entry = base64.b64decode(extra["entry"])
        verifier = NoteVerifier.from_vkey(extra["vkey"])
        anchor_ref = extra["anchor"]
        chain_id, contract, tx = (
            int(anchor_ref["chain_id"]),
            str(anchor_ref["contract"]),
            str(anchor_ref["tx"]),
        )
    except (KeyError, TypeError, ValueError, binascii.Error):
        raise AuditError("malformed bundle: extra lacks entry, vkey or anchor") from None
    if int(w3.eth.chain_id) != chain_id:
        raise AuditError(
            f"the bundle's anchor is on chain {chain_id}, but the RPC URL serves chain "
            f"{w3.eth.chain_id}; give an RPC URL of chain {chain_id}"
        )
    checkpoint = open_checkpoint(checkpoint_text, verifier)
    lid = log_id(verifier).hex()
    record = AnchorRecord(
        chain_id=chain_id, contract=contract, log_id=lid, size=checkpoint.size,
        root=checkpoint.root.hex(), tx=tx, block=0,
    )  # fmt: skip
    try:
        size, root, owner = read_anchor(w3, record)
    except AuditError:
        raise AuditError(
            f"transaction {tx} on chain {chain_id} does not anchor log {verifier.name} "
            "(its key does not match the anchored log id)"
        ) from None
    except Exception as exc:
        raise AuditError(
            f"the anchor transaction {tx} cannot be read from the chain: {exc}"
        ) from None
    if (size, root) != (checkpoint.size, checkpoint.root):
        raise AuditError(
            f"the chain anchors size {size} with another root than the bundle's checkpoint "
            f"(size {checkpoint.size}): the checkpoint is not the anchored one"
        )
    verify_inclusion(leaf_hash(entry), index, checkpoint.size, proof, checkpoint.root)
    receipt = w3.eth.get_transaction_receipt(tx)  # type: ignore[arg-type]
    return BundleResult(
        entry=entry, index=index, origin=checkpoint.origin, size=checkpoint.size,
        chain_id=chain_id, tx=tx, block=int(receipt["blockNumber"]), anchored_by=owner,
    )  # fmt: skip
