"""Verification: is this content a registered asset, or a modified copy of one?"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from neuroledger._json import loads_bounded
from neuroledger.errors import NeuroLedgerError
from neuroledger.provenance._index import AssetRecord
from neuroledger.provenance._manifest import Manifest
from neuroledger.provenance._registry import STATUSES
from neuroledger.provenance._views import Verification

if TYPE_CHECKING:
    from neuroledger.provenance._service import Provenance

__all__ = ["learn_known_manifests", "stored_manifest", "verify"]


def stored_manifest(prov: Provenance, record: AssetRecord) -> Manifest | None:
    """The manifest of a file asset, when this home's store holds it."""
    meta = prov.metadata(record)
    uri = (meta or {}).get("manifest")
    if not isinstance(uri, str):
        return None
    try:
        statement = loads_bounded(
            prov.store.get(uri.removeprefix("sha256:"), max_size=64 << 20), max_bytes=64 << 20
        )
        return Manifest.from_statement(statement)
    except (NeuroLedgerError, ValueError):
        return None


def verify(
    prov: Provenance,
    path: Path | str,
    *,
    expected: str | None = None,
    use_cache: bool = True,
    ignore: Iterable[str] = (),
    allow_symlinks: bool = False,
    progress: Callable[[int], None] | None = None,
) -> Verification:
    """Check the content at ``path`` against the registry.

    ``ok`` only when its digest is a registered, active asset (and, with
    ``expected``, that very asset). Otherwise ``modified`` when it resembles
    a registered asset (shares files or its name), or ``unknown``.
    """
    manifest = prov.manifest(
        path, ignore=ignore, allow_symlinks=allow_symlinks, use_cache=use_cache,
        progress=progress,
    )  # fmt: skip
    prov.sync()
    target = prov.resolve(expected) if expected else None
    digest = manifest.digest
    # Several identities may have registered the same content, each under its own id.
    candidates = prov.index.by_digest(digest)
    matches = candidates if target is None else [t for t in candidates if t == target]
    if matches:
        statuses = {m: prov.registry.asset_of(m)[2] for m in matches}  # the chain decides
        best = next((m for m in matches if statuses[m] == 1), matches[0])
        if statuses[best] != 0:
            view = prov._view(best)
            status = {"active": "ok"}.get(STATUSES[statuses[best]], STATUSES[statuses[best]])
            return Verification(
                status=status, path=str(path), digest=digest, asset=view,
                expected=best, lineage=prov._lineage(best),
            )  # fmt: skip
    if target is None:
        learn_known_manifests(prov)
        target = prov.index.closest(
            manifest.model_name, [(f.name, f.digest) for f in manifest.files]
        )
    if target is None:
        return Verification(status="unknown", path=str(path), digest=digest)
    view = prov._view(target)
    reference = stored_manifest(prov, view.record)
    diff = reference.diff(manifest) if reference is not None else None
    return Verification(
        status="modified", path=str(path), digest=digest, asset=view, expected=target,
        diff=diff, lineage=prov._lineage(target),
    )  # fmt: skip


def learn_known_manifests(prov: Provenance) -> None:
    for record in prov.index.all():
        if record.kind in ("training-run", "deployment", "evaluation"):
            continue
        if prov.index.knows_files(record.id):
            continue
        manifest = stored_manifest(prov, record)
        if manifest is not None:
            prov.index.learn_files(
                record.id, manifest.model_name, [(f.name, f.digest) for f in manifest.files]
            )
