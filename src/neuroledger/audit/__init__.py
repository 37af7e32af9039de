"""Tamper-evident audit logs: RFC 9162 Merkle logs in the C2SP tlog-tiles format.

>>> import tempfile
>>> from pathlib import Path
>>> signer = NoteSigner.generate("example.org/agent")
>>> with AuditLog.create(Path(tempfile.mkdtemp()) / "log", signer=signer) as log:
...     receipt = log.record({"system": "agent", "event_type": "decision"})
...     text = log.checkpoint()
>>> open_checkpoint(text, signer.verifier).size
1

See ``docs/audit.md`` for checkpoints, witnesses, anchors and proof bundles.
"""

from typing import TYPE_CHECKING

from neuroledger._lazy import lazy_exports

if TYPE_CHECKING:
    from neuroledger.audit._anchor import AnchorPolicy, AnchorRecord, Anchors, check_anchors, log_id
    from neuroledger.audit._bundle import make_bundle, verify_bundle
    from neuroledger.audit._entries import (
        AI_ACT_FIELDS,
        AuditEvent,
        commit,
        decode_event,
        digest_of_value,
        encode_event,
        open_commitment,
    )
    from neuroledger.audit._log import TileLog
    from neuroledger.audit._note import (
        Checkpoint,
        NoteSigner,
        NoteVerifier,
        add_cosignature,
        open_checkpoint,
        open_note,
        sign_note,
    )
    from neuroledger.audit._sdk import AuditLog, Receipt
    from neuroledger.audit._serve import serve_tiles
    from neuroledger.audit._service import AuditLogs
    from neuroledger.audit._tiles import MAX_ENTRY_SIZE
    from neuroledger.audit._verify import LogReport, verify_log

__getattr__, __dir__ = lazy_exports(__name__, __file__)

__all__ = [
    "AI_ACT_FIELDS",
    "MAX_ENTRY_SIZE",
    "AnchorPolicy",
    "AnchorRecord",
    "Anchors",
    "AuditEvent",
    "AuditLog",
    "AuditLogs",
    "Checkpoint",
    "LogReport",
    "NoteSigner",
    "NoteVerifier",
    "Receipt",
    "TileLog",
    "add_cosignature",
    "check_anchors",
    "commit",
    "decode_event",
    "digest_of_value",
    "encode_event",
    "log_id",
    "make_bundle",
    "open_checkpoint",
    "open_commitment",
    "open_note",
    "serve_tiles",
    "sign_note",
    "verify_bundle",
    "verify_log",
]
