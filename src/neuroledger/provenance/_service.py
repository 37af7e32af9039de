"""Provenance of one home on one chain: register, attest, revoke, show, trace, verify."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from neuroledger._json import loads_bounded
from neuroledger.chain import Chain
from neuroledger.core import canonical
from neuroledger.errors import AssetNotFoundError, ManifestError, NeuroLedgerError, ProvenanceError
from neuroledger.identity import Keystore, format_did, parse_did
from neuroledger.provenance import _training_run, _verify
from neuroledger.provenance._documents import (
    blob_uri,
    check_size,
)
from neuroledger.provenance._hashcache import HashCache
from neuroledger.provenance._index import AssetRecord, LineageIndex
from neuroledger.provenance._manifest import Manifest, build_manifest
from neuroledger.provenance._registry import (
    STATUSES,
    AssetRegistryClient,
    asset_id_for,
    kind_code,
)
from neuroledger.provenance._views import (
    AssetView,
    Lineage,
    Registration,
)
from neuroledger.store import BlobStore

__all__ = ["Provenance"]

REGISTRY = "AssetRegistry"


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
            confirmations=self.chain.confirmations,
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

    register_training_run = _training_run.register_training_run

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

    stored_manifest = _verify.stored_manifest
    verify = _verify.verify
