"""Provenance: assets, lineage, manifests, verification and standard exports.

>>> import tempfile
>>> from pathlib import Path
>>> model = Path(tempfile.mkdtemp()) / "model"
>>> model.mkdir()
>>> _ = (model / "weights.bin").write_bytes(b"weights")
>>> manifest = build_manifest(model)
>>> [(f.name, f.size) for f in manifest.files]
[('weights.bin', 7)]
>>> len(manifest.digest)
64

Registering, verifying and tracing need a chain: see :class:`Provenance` and
``docs/provenance.md``.
"""

from typing import TYPE_CHECKING

from neuroledger._lazy import lazy_exports

if TYPE_CHECKING:
    from neuroledger.provenance._documents import load_metadata_file, training_run_statement
    from neuroledger.provenance._export import to_dot, to_openlineage, to_prov_json, to_tree
    from neuroledger.provenance._hashcache import HashCache
    from neuroledger.provenance._index import AssetRecord, Attestation, Change, LineageIndex
    from neuroledger.provenance._manifest import FileEntry, Manifest, ManifestDiff, build_manifest
    from neuroledger.provenance._registry import KINDS, STATUSES, AssetRegistryClient, asset_id_for
    from neuroledger.provenance._service import Provenance
    from neuroledger.provenance._views import (
        VERIFY_EXIT_CODES,
        AssetView,
        Lineage,
        Registration,
        Verification,
    )

__getattr__, __dir__ = lazy_exports(__name__, __file__)

__all__ = [
    "KINDS",
    "STATUSES",
    "VERIFY_EXIT_CODES",
    "AssetRecord",
    "AssetRegistryClient",
    "AssetView",
    "Attestation",
    "Change",
    "FileEntry",
    "HashCache",
    "Lineage",
    "LineageIndex",
    "Manifest",
    "ManifestDiff",
    "Provenance",
    "Registration",
    "Verification",
    "asset_id_for",
    "build_manifest",
    "load_metadata_file",
    "to_dot",
    "to_openlineage",
    "to_prov_json",
    "to_tree",
    "training_run_statement",
]
