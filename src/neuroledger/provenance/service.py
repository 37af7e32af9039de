"""Provenance of one home on one chain: register, attest, revoke, show, trace, verify."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from neuroledger._json import loads_bounded
from neuroledger.chain import Chain
from neuroledger.core import canonical
from neuroledger.errors import AssetNotFoundError, ManifestError, NeuroLedgerError, ProvenanceError
from neuroledger.identity import Keystore, format_did, parse_did
from neuroledger.provenance.documents import (
    RunInput,
    blob_uri,
    check_size,
    training_run_statement,
)
from neuroledger.provenance.hashcache import HashCache
from neuroledger.provenance.index import AssetRecord, Attestation, Change, LineageIndex
from neuroledger.provenance.manifest import Manifest, ManifestDiff, build_manifest
from neuroledger.provenance.registry import (
    STATUSES,
    AssetRegistryClient,
    asset_id_for,
    kind_code,
)
from neuroledger.store import BlobStore

__all__ = ["AssetView", "Lineage", "Provenance", "Registration", "Verification"]

REGISTRY = "AssetRegistry"

#: Verification outcomes and the CLI exit code of each.
VERIFY_EXIT_CODES = {"ok": 0, "unknown": 10, "modified": 11, "revoked": 12, "deprecated": 13}


@dataclass(frozen=True)
class Registration:
    """A confirmed registration."""

    asset_id: str
    kind: str
    owner: str
    tx_hash: str
    metadata_digest: str
    manifest: Manifest | None = None
    digest: str = ""  # the content digest; the id is asset_id_for(owner identity, digest)


@dataclass(frozen=True)
class AssetView:
    """Everything known about one asset."""

    record: AssetRecord
    attestations: list[Attestation]
    changes: list[Change]
    metadata: dict[str, Any] | None

    def to_json(self, chain_id: int) -> dict[str, Any]:
        """A JSON-ready description."""
        r = self.record
        return {
            "id": r.id,
            "kind": r.kind,
            "status": r.status,
            "owner": format_did(chain_id, r.owner),
            "registered_by": r.sender,
            "license": r.license,
            "parents": list(r.parents),
            "metadata_digest": r.metadata_digest,
            "metadata_uri": r.metadata_uri,
            "block": r.block,
            "tx": r.tx,
            "metadata": self.metadata,
            "attestations": [
                {
                    "attester": format_did(chain_id, a.attester),
                    "statement_digest": a.statement_digest,
                    "statement_uri": a.statement_uri,
                    "block": a.block,
                    "tx": a.tx,
                }
                for a in self.attestations
            ],
            "changes": [
                {"type": c.type, "owner": c.owner, "reason": c.reason, "block": c.block, "tx": c.tx}
                for c in self.changes
            ],
        }


@dataclass(frozen=True)
class Lineage:
    """An asset and everything it derives from (or that derives from it)."""

    root: str
    nodes: dict[str, AssetRecord]
    edges: list[tuple[str, str]]  # (child, parent)
    depth: dict[str, int]
    direction: str = "ancestors"
    names: dict[str, str] = field(default_factory=dict)
    run_times: dict[str, tuple[str, str]] = field(default_factory=dict)  # run -> (start, end)
    registered: dict[str, str] = field(default_factory=dict)  # id -> ISO time of its block

    def label(self, asset_id: str) -> str:
        """Short human label: kind, name (when known) and id prefix."""
        record = self.nodes[asset_id]
        name = self.names.get(asset_id)
        return f"{record.kind} {name + ' ' if name else ''}{asset_id[:12]}"


@dataclass(frozen=True)
class Verification:
    """The outcome of checking content on disk against the registry."""

    status: str  # ok | unknown | modified | revoked | deprecated
    path: str
    digest: str
    asset: AssetView | None = None
    expected: str | None = None
    diff: ManifestDiff | None = None
    lineage: Lineage | None = None

    @property
    def exit_code(self) -> int:
        """0 only for content matching an active record."""
        return VERIFY_EXIT_CODES[self.status]

    def summary(self) -> str:
        """One line saying what was found."""
        asset = self.asset.record.id if self.asset else self.digest
        owner = f" of {self.asset.record.owner}" if self.asset else ""
        if self.status == "ok":
            return f"OK: {self.path} matches active asset {asset}{owner}"
        if self.status in ("revoked", "deprecated"):
            return f"{self.status.upper()}: {self.path} matches asset {asset}{owner}, which is {self.status}"
        if self.status == "modified":
            detail = f" ({self.diff.describe()})" if self.diff else ""
            return f"MODIFIED: {self.path} differs from asset {self.expected}{detail}"
        return f"UNKNOWN: no asset is registered with the digest of {self.path} ({self.digest})"


def _looks_like_path(ref: str) -> bool:
    """An asset reference that names a file or directory rather than an id (hex)."""
    return not all(c in "0123456789abcdefABCDEFx" for c in ref) and Path(ref).exists()


class Provenance:
    """Assets of one home, on one chain.

    ``store`` holds manifests, metadata and statements; ``index_path`` is the
    SQLite lineage index; ``hash_cache`` (optional) skips unchanged files.
    """

    def __init__(
        self,
        chain: Chain,
        keystore: Keystore,
        *,
        store: BlobStore,
        index_path: Path,
        hash_cache: HashCache | None = None,
    ) -> None:
        self.chain = chain
        self.keystore = keystore
        self.store = store
        self.hash_cache = hash_cache
        entry = chain.deployment().contracts[REGISTRY]
        self.registry = AssetRegistryClient(chain.contract(REGISTRY))
        self.index = LineageIndex(
            index_path,
            chain_id=chain.chain_id,
            contract=self.registry.address,
            start_block=int(entry.get("block", 0)),
        )

    # -- helpers ---------------------------------------------------------------------
    def sync(self, progress: Callable[[int, int], None] | None = None) -> int:
        """Bring the index up to the chain head; return the number of new events."""
        return self.index.sync(
            self.chain.w3,
            self.registry.address,
            confirmations=self.chain.settings.confirmations,
            progress=progress,
        )

    def resolve(self, ref: str) -> str:
        """The full id of an asset given by id or unique prefix, by its content digest, or
        by a path to its content (a file or directory), when one identity alone registered
        that content."""
        self.sync()
        if _looks_like_path(ref):
            digest = self.manifest(ref).digest
            try:
                return self.index.resolve(digest)
            except AssetNotFoundError:
                raise ProvenanceError(
                    f"{ref} (content {digest[:12]}) is not a registered asset; register it with "
                    "`neuroledger asset register`, or give the asset's id"
                ) from None
        return self.index.resolve(ref)

    def asset_id_for(self, owner: str, digest: str) -> str:
        """The id content ``digest`` has, or would get, when identity ``owner`` registers it."""
        return asset_id_for(self._identity(owner), digest)

    def _identity(self, who: str) -> str:
        if who.startswith("did:"):
            return parse_did(who).address
        return self.keystore.get(who).identity

    def _put_document(self, document: Any) -> str:
        return self.store.put(check_size(document))

    def _check_parents(self, parents: Sequence[str]) -> list[str]:
        resolved = []
        for ref in parents:
            asset_id = self.resolve(ref)
            _, _, status = self.registry.asset_of(asset_id)
            if status == 0:
                raise AssetNotFoundError(ref)
            if STATUSES[status] == "revoked":
                raise ProvenanceError(
                    f"parent {asset_id[:12]} is revoked; an asset cannot derive from revoked content"
                )
            resolved.append(asset_id)
        if len(set(resolved)) != len(resolved):
            raise ProvenanceError("a parent is listed twice; list each parent once")
        return resolved

    def check_new(self, asset_id: str) -> None:
        """Raise unless ``asset_id`` is still unregistered (the message names the existing asset)."""
        owner, _, status = self.registry.asset_of(asset_id)
        if status != 0:
            raise ProvenanceError(
                f"this identity already registered this content as asset {asset_id} "
                f"({STATUSES[status]}, owner {format_did(self.chain.chain_id, owner)}); "
                f"`neuroledger asset show {asset_id[:12]}` shows it"
            )

    def manifest(
        self,
        path: Path | str,
        *,
        ignore: Iterable[str] = (),
        allow_symlinks: bool = False,
        use_cache: bool = True,
        progress: Callable[[int], None] | None = None,
    ) -> Manifest:
        """The manifest of the file or directory at ``path``."""
        if not Path(path).exists() and not Path(path).is_symlink():
            raise ManifestError(f"{path} does not exist; check the path")
        return build_manifest(
            path,
            ignore=ignore,
            allow_symlinks=allow_symlinks,
            cache=self.hash_cache if use_cache else None,
            progress=progress,
        )

    # -- writes ----------------------------------------------------------------------
    def register(
        self,
        path: Path | str,
        *,
        kind: str,
        owner: str,
        parents: Sequence[str] = (),
        license: str = "",
        metadata: dict[str, Any] | None = None,
        ignore: Iterable[str] = (),
        allow_symlinks: bool = False,
        signer: str | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> Registration:
        """Register the file or directory at ``path`` as an asset owned by identity ``owner``.

        ``signer`` is the identity whose owner key sends the transaction when it is
        not ``owner`` itself (a ``veriKey`` delegate of ``owner``).
        """
        code = kind_code(kind)
        manifest = self.manifest(
            path, ignore=ignore, allow_symlinks=allow_symlinks, progress=progress
        )
        if not manifest.files:
            raise ManifestError(f"{path} holds no files to register (all ignored or empty)")
        statement = canonical(manifest.to_statement())
        document = {
            "name": manifest.model_name,
            "kind": kind,
            "files": len(manifest.files),
            "size": manifest.size,
            "manifest": blob_uri(hashlib.sha256(statement).hexdigest()),
            "user": metadata or {},
        }
        return self._register(
            manifest.digest, document, kind=kind, code=code, owner=owner, parents=parents,
            license=license, signer=signer, manifest=manifest, blobs=[statement],
        )  # fmt: skip

    def register_document(
        self,
        document: dict[str, Any],
        *,
        kind: str,
        owner: str,
        parents: Sequence[str] = (),
        license: str = "",
        signer: str | None = None,
    ) -> Registration:
        """Register a JSON document (a deployment, an evaluation report) as an asset.

        The asset's content digest is the SHA-256 of the document's canonical form.
        """
        code = kind_code(kind)
        digest = hashlib.sha256(check_size(document)).hexdigest()
        return self._register(
            digest, document, kind=kind, code=code, owner=owner, parents=parents,
            license=license, signer=signer, manifest=None,
        )  # fmt: skip

    def _register(
        self,
        digest: str,
        document: dict[str, Any],
        *,
        kind: str,
        code: int,
        owner: str,
        parents: Sequence[str],
        license: str,
        signer: str | None,
        manifest: Manifest | None,
        blobs: Sequence[bytes] = (),
    ) -> Registration:
        # Every check first: bad input leaves nothing in the store and nothing on chain,
        # and an index built on another chain history is found before the transaction.
        self.sync()
        identity = self._identity(owner)
        account = self.keystore.owner_account(signer or owner)
        parent_ids = self._check_parents(parents)
        asset_id = asset_id_for(identity, digest)
        self.check_new(asset_id)
        raw = check_size(document)
        for blob in blobs:
            self.store.put(blob)
        metadata_digest = self.store.put(raw)
        call = self.registry.register(
            identity,
            digest,
            code,
            metadata_digest,
            blob_uri(metadata_digest),
            parent_ids,
            license,
        )
        receipt = self.chain.sender(account).send(call)
        if manifest is not None:
            self.index.learn_files(
                asset_id, manifest.model_name, [(f.name, f.digest) for f in manifest.files]
            )
        self.sync()
        return Registration(
            asset_id=asset_id, kind=kind, owner=format_did(self.chain.chain_id, identity),
            tx_hash=receipt.tx_hash, metadata_digest=metadata_digest, manifest=manifest,
            digest=digest,
        )  # fmt: skip

    def register_training_run(
        self,
        model_path: Path | str,
        *,
        owner: str,
        inputs: Sequence[str],
        started: datetime,
        finished: datetime,
        parameters: dict[str, Any] | None = None,
        license: str = "",
        signer: str | None = None,
    ) -> tuple[Registration, Registration]:
        """Register a training run (a SLSA v1 statement) and the model it produced.

        The run derives from ``inputs`` (dataset and code assets); the model
        derives from the run. Returns (run, model).
        """
        manifest = self.manifest(model_path)
        run_inputs = []
        for ref in inputs:
            view = self.show(ref)
            name = (view.metadata or {}).get("name", view.record.id[:12])
            run_inputs.append(
                RunInput(
                    asset_id=view.record.id,
                    kind=view.record.kind,
                    name=str(name),
                    digest=view.record.digest,
                )
            )
        statement = training_run_statement(
            model_name=manifest.model_name,
            model_digest=manifest.digest,
            inputs=run_inputs,
            builder=format_did(self.chain.chain_id, self._identity(owner)),
            started=started,
            finished=finished,
            parameters=parameters,
        )
        self.check_new(self.asset_id_for(owner, manifest.digest))
        run = self.register_document(
            statement, kind="training-run", owner=owner, parents=[i.asset_id for i in run_inputs],
            license=license, signer=signer,
        )  # fmt: skip
        model = self.register(
            model_path, kind="model", owner=owner, parents=[run.asset_id], license=license,
            metadata={"trainingRun": run.asset_id}, signer=signer,
        )  # fmt: skip
        return run, model

    def attest(self, ref: str, *, attester: str, statement: dict[str, Any]) -> tuple[str, str]:
        """Record ``attester``'s statement about asset ``ref``; return (statement digest, tx)."""
        asset_id = self.resolve(ref)
        identity = self._identity(attester)
        digest = self._put_document({"asset": asset_id, **statement})
        call = self.registry.attest(asset_id, identity, digest, blob_uri(digest))
        receipt = self.chain.sender(self.keystore.owner_account(attester)).send(call)
        self.sync()
        return digest, receipt.tx_hash

    def _change(self, ref: str, actor: str, build: Callable[[str], Any]) -> str:
        asset_id = self.resolve(ref)
        receipt = self.chain.sender(self.keystore.owner_account(actor)).send(build(asset_id))
        self.sync()
        return receipt.tx_hash

    def revoke(self, ref: str, *, actor: str, reason: str) -> str:
        """Revoke asset ``ref`` for good, acting as identity ``actor``; return the tx hash."""
        return self._change(ref, actor, lambda a: self.registry.revoke(a, reason))

    def deprecate(self, ref: str, *, actor: str, reason: str) -> str:
        """Deprecate asset ``ref``, acting as identity ``actor``; return the tx hash."""
        return self._change(ref, actor, lambda a: self.registry.deprecate(a, reason))

    def transfer(self, ref: str, *, actor: str, to: str) -> str:
        """Pass asset ``ref`` to identity ``to``; return the tx hash."""
        return self._change(ref, actor, lambda a: self.registry.transfer(a, self._identity(to)))

    # -- reads -----------------------------------------------------------------------
    def metadata(self, record: AssetRecord) -> dict[str, Any] | None:
        """The asset's metadata document, when this home's store holds it."""
        digest = record.metadata_uri.removeprefix("sha256:")
        try:
            data = loads_bounded(self.store.get(digest, max_size=1 << 20))
        except (NeuroLedgerError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def show(self, ref: str) -> AssetView:
        """Everything known about asset ``ref``."""
        return self._view(self.resolve(ref))

    def _view(self, asset_id: str) -> AssetView:
        """The view of an indexed asset (no sync: the caller synced)."""
        record = self.index.get(asset_id)
        assert record is not None
        return AssetView(
            record=record,
            attestations=self.index.attestations(asset_id),
            changes=self.index.changes(asset_id),
            metadata=self.metadata(record),
        )

    def lineage(self, ref: str, *, direction: str = "ancestors") -> Lineage:
        """The asset and its ancestors (or descendants)."""
        return self._lineage(self.resolve(ref), direction)

    def _lineage(self, root: str, direction: str = "ancestors") -> Lineage:
        """The lineage of an indexed asset (no sync: the caller synced)."""
        depth = (
            self.index.ancestors(root) if direction == "ancestors" else self.index.descendants(root)
        )
        ids = [root, *depth]
        nodes = {i: r for i in ids if (r := self.index.get(i)) is not None}
        names: dict[str, str] = {}
        run_times: dict[str, tuple[str, str]] = {}
        registered: dict[str, str] = {}
        for i, r in nodes.items():
            stamp = int(self.chain.w3.eth.get_block(r.block)["timestamp"])
            registered[i] = datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            meta = self.metadata(r) or {}
            if isinstance(meta.get("name"), str):
                names[i] = meta["name"]
            times = meta.get("predicate", {}).get("runDetails", {}).get("metadata", {})
            if r.kind == "training-run" and "startedOn" in times:
                run_times[i] = (str(times["startedOn"]), str(times.get("finishedOn", "")))
                names[i] = str(meta["subject"][0]["name"]) + " run"
        return Lineage(
            root=root,
            nodes=nodes,
            edges=self.index.edges(ids),
            depth={root: 0, **depth},
            direction=direction,
            names=names,
            run_times=run_times,
            registered=registered,
        )

    def stored_manifest(self, record: AssetRecord) -> Manifest | None:
        """The manifest of a file asset, when this home's store holds it."""
        meta = self.metadata(record)
        uri = (meta or {}).get("manifest")
        if not isinstance(uri, str):
            return None
        try:
            statement = loads_bounded(
                self.store.get(uri.removeprefix("sha256:"), max_size=64 << 20), max_bytes=64 << 20
            )
            return Manifest.from_statement(statement)
        except (NeuroLedgerError, ValueError):
            return None

    def verify(
        self,
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
        manifest = self.manifest(
            path, ignore=ignore, allow_symlinks=allow_symlinks, use_cache=use_cache,
            progress=progress,
        )  # fmt: skip
        self.sync()
        target = self.resolve(expected) if expected else None
        digest = manifest.digest
        # Several identities may have registered the same content, each under its own id.
        candidates = self.index.by_digest(digest)
        matches = candidates if target is None else [t for t in candidates if t == target]
        if matches:
            statuses = {m: self.registry.asset_of(m)[2] for m in matches}  # the chain decides
            best = next((m for m in matches if statuses[m] == 1), matches[0])
            if statuses[best] != 0:
                view = self._view(best)
                status = {"active": "ok"}.get(STATUSES[statuses[best]], STATUSES[statuses[best]])
                return Verification(
                    status=status, path=str(path), digest=digest, asset=view,
                    expected=best, lineage=self._lineage(best),
                )  # fmt: skip
        if target is None:
            self._learn_known_manifests()
            target = self.index.closest(
                manifest.model_name, [(f.name, f.digest) for f in manifest.files]
            )
        if target is None:
            return Verification(status="unknown", path=str(path), digest=digest)
        view = self._view(target)
        reference = self.stored_manifest(view.record)
        diff = reference.diff(manifest) if reference is not None else None
        return Verification(
            status="modified", path=str(path), digest=digest, asset=view, expected=target,
            diff=diff, lineage=self._lineage(target),
        )  # fmt: skip

    def _learn_known_manifests(self) -> None:
        for record in self.index.all():
            if record.kind in ("training-run", "deployment", "evaluation"):
                continue
            if self.index.knows_files(record.id):
                continue
            manifest = self.stored_manifest(record)
            if manifest is not None:
                self.index.learn_files(
                    record.id, manifest.model_name, [(f.name, f.digest) for f in manifest.files]
                )
