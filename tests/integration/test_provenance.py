"""Provenance on a real anvil: register, lineage, training runs, attest, revoke, verify."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from neuroledger.errors import (
    AssetNotFoundError,
    ManifestError,
    MetadataError,
    NotAuthorizedError,
    ProvenanceError,
)
from neuroledger.provenance import Provenance
from neuroledger.provenance._documents import MAX_METADATA_BYTES
from tests import security_figures
from tests.conftest import make_model

pytestmark = pytest.mark.anvil


def test_register_show_and_lineage(prov: Provenance, tmp_path: Path) -> None:
    data = tmp_path / "cohort.csv"
    data.write_text("age,label\n40,1\n")
    code = tmp_path / "train.py"
    code.write_text("print('train')\n")
    d = prov.register(data, kind="dataset", owner="hospital-a", license="CC-BY-4.0")
    c = prov.register(code, kind="code", owner="hospital-a", metadata={"repo": "git+https://x"})
    model = make_model(tmp_path)
    start = datetime(2026, 11, 1, tzinfo=UTC)
    run, m = prov.register_training_run(
        model, owner="hospital-a", inputs=[d.asset_id, c.asset_id[:10]],
        started=start, finished=start + timedelta(hours=2), parameters={"epochs": 3},
    )  # fmt: skip

    view = prov.show(m.asset_id[:8])
    assert view.record.kind == "model"
    assert view.record.parents == (run.asset_id,)
    assert view.metadata is not None and view.metadata["user"] == {"trainingRun": run.asset_id}
    assert prov.show(c.asset_id).metadata["user"] == {"repo": "git+https://x"}

    run_doc = prov.show(run.asset_id).metadata
    assert run_doc["predicateType"] == "https://slsa.dev/provenance/v1"
    assert run_doc["subject"][0]["digest"]["sha256"] == m.digest  # the content, not the id
    deps = run_doc["predicate"]["buildDefinition"]["resolvedDependencies"]
    assert [x["digest"]["sha256"] for x in deps] == [d.digest, c.digest]
    assert [x["uri"] for x in deps] == [f"neuroledger:asset:{a.asset_id}" for a in (d, c)]
    assert (
        run_doc["predicate"]["runDetails"]["builder"]["id"]
        == prov.show(d.asset_id).to_json(prov.chain.chain_id)["owner"]
    )

    lineage = prov.lineage(m.asset_id)
    assert lineage.depth == {m.asset_id: 0, run.asset_id: 1, d.asset_id: 2, c.asset_id: 2}
    assert set(lineage.edges) == {
        (m.asset_id, run.asset_id), (run.asset_id, d.asset_id), (run.asset_id, c.asset_id),
    }  # fmt: skip
    down = prov.lineage(d.asset_id, direction="descendants")
    assert set(down.depth) == {d.asset_id, run.asset_id, m.asset_id}
    assert prov.index.paths(m.asset_id, d.asset_id) == [[m.asset_id, run.asset_id, d.asset_id]]


def test_verify_ok_modified_unknown_revoked(prov: Provenance, tmp_path: Path) -> None:
    model = make_model(tmp_path)
    reg = prov.register(model, kind="model", owner="hospital-a")
    result = prov.verify(model)
    assert (result.status, result.exit_code) == ("ok", 0)
    assert result.asset is not None and result.asset.record.id == reg.asset_id

    shard = model / "shards" / "01.bin"
    raw = bytearray(shard.read_bytes())
    raw[100] ^= 0x01
    shard.write_bytes(bytes(raw))
    result = prov.verify(model)
    assert (result.status, result.exit_code) == ("modified", 11)
    assert result.expected == reg.asset_id
    assert result.diff is not None and result.diff.changed == ("shards/01.bin",)
    raw[100] ^= 0x01
    shard.write_bytes(bytes(raw))
    assert prov.verify(model).status == "ok"

    other = tmp_path / "other.bin"
    other.write_bytes(os.urandom(100))
    assert prov.verify(other).status == "unknown"
    assert prov.verify(other).exit_code == 10

    prov.revoke(reg.asset_id, actor="hospital-a", reason="trained on withdrawn data")
    result = prov.verify(model)
    assert (result.status, result.exit_code) == ("revoked", 12)
    assert prov.show(reg.asset_id).changes[0].reason == "trained on withdrawn data"


@pytest.mark.parametrize("tamper", ["change", "add", "remove", "rename", "truncate", "touch-back"])
def test_every_tampering_is_caught(prov: Provenance, tmp_path: Path, tamper: str) -> None:
    model = make_model(tmp_path)
    reg = prov.register(model, kind="model", owner="hospital-a")
    assert prov.verify(model).status == "ok"  # the cache is warm now
    target = model / "tokenizer.txt"
    before = target.stat()
    if tamper == "change":
        target.write_text("a b d")
    elif tamper == "add":
        (model / "shards" / "02.bin").write_bytes(b"extra")
    elif tamper == "remove":
        target.unlink()
    elif tamper == "rename":
        target.rename(model / "tokenizer2.txt")
    elif tamper == "truncate":
        target.write_bytes(target.read_bytes()[:-1])
    elif tamper == "touch-back":  # same size, mtime restored: only ctime gives it away
        data = bytearray(target.read_bytes())
        data[0] ^= 0x20
        target.write_bytes(bytes(data))
        os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
    result = prov.verify(model)
    assert result.status == "modified", tamper
    assert result.expected == reg.asset_id
    assert result.diff


def test_attestation_by_third_party(prov: Provenance, tmp_path: Path) -> None:
    model = make_model(tmp_path)
    reg = prov.register(model, kind="model", owner="hospital-a")
    digest, _ = prov.attest(reg.asset_id, attester="auditor", statement={"accuracy": 0.95})
    (att,) = prov.show(reg.asset_id).attestations
    assert att.statement_digest == digest
    assert att.attester == prov.keystore.get("auditor").identity
    stored = json.loads(prov.store.get(digest))
    assert stored == {"asset": reg.asset_id, "accuracy": 0.95}


def test_bad_input_writes_nothing(prov: Provenance, tmp_path: Path) -> None:
    data = tmp_path / "d.csv"
    data.write_text("x\n")
    block = prov.chain.w3.eth.block_number
    with pytest.raises(AssetNotFoundError, match="no registered asset"):
        prov.register(data, kind="dataset", owner="hospital-a", parents=["abcdef12"])
    with pytest.raises(ManifestError, match="does not exist"):
        prov.register(tmp_path / "missing", kind="dataset", owner="hospital-a")
    with pytest.raises(ProvenanceError, match="unknown asset kind"):
        prov.register(data, kind="weights", owner="hospital-a")
    with pytest.raises(MetadataError, match="over the"):
        prov.register(
            data, kind="dataset", owner="hospital-a", metadata={"x": "y" * MAX_METADATA_BYTES}
        )
    assert prov.chain.w3.eth.block_number == block
    assert not list((prov.store.root / "sha256").rglob("*"))  # nothing stored either
    first = prov.register(data, kind="dataset", owner="hospital-a")
    block = prov.chain.w3.eth.block_number
    with pytest.raises(ProvenanceError, match="already registered this content"):
        prov.register(data, kind="dataset", owner="hospital-a")
    with pytest.raises(NotAuthorizedError, match="not the identity owner"):
        prov.revoke(first.asset_id, actor="auditor", reason="not mine")
    assert prov.chain.w3.eth.block_number == block
    assert prov.show(first.asset_id).record.status == "active"


def test_symlinks_and_special_files(prov: Provenance, tmp_path: Path) -> None:
    model = make_model(tmp_path)
    (model / "link").symlink_to(model / "config.json")
    with pytest.raises(ManifestError, match="symbolic link"):
        prov.register(model, kind="model", owner="hospital-a")
    (model / "link").unlink()
    (model / "loop").symlink_to(model / "loop")
    with pytest.raises(ManifestError, match="symlink loop"):
        prov.manifest(model, allow_symlinks=True)
    (model / "loop").unlink()
    os.mkfifo(model / "pipe")
    with pytest.raises(ManifestError, match="neither a file nor a directory"):
        prov.manifest(model)
    assert prov.manifest(model, ignore=["pipe"]).files


def test_a_verikey_delegate_registers_for_its_organization(
    prov: Provenance, identities, tmp_path: Path
) -> None:
    identities.create("triage-agent", "agent", publish=False)
    data = tmp_path / "d.csv"
    data.write_text("x\n")
    with pytest.raises(NotAuthorizedError):
        prov.register(data, kind="dataset", owner="hospital-a", signer="triage-agent")
    identities.add_delegate("hospital-a", "triage-agent", "veriKey", 3600)
    reg = prov.register(data, kind="dataset", owner="hospital-a", signer="triage-agent")
    record = prov.show(reg.asset_id).record
    assert record.owner == prov.keystore.get("hospital-a").identity
    assert record.sender == prov.keystore.get("triage-agent").owner


def test_m5_nobody_can_take_over_another_identitys_content(
    prov: Provenance, tmp_path: Path
) -> None:
    """A squatter who registers public content first (or front-runs a pending registration)
    gets an asset of its own; the real owner still registers the same content under its id."""
    weights = tmp_path / "published-weights.bin"
    weights.write_bytes(b"weights the whole world has seen")
    squat = prov.register(weights, kind="model", owner="auditor")
    mine = prov.register(weights, kind="model", owner="hospital-a")
    assert mine.digest == squat.digest and mine.asset_id != squat.asset_id
    assert mine.asset_id == prov.asset_id_for("hospital-a", mine.digest)
    assert prov.show(mine.asset_id).record.owner.lower() == prov._identity("hospital-a").lower()
    with pytest.raises(NotAuthorizedError, match="not the identity owner"):
        prov.revoke(mine.asset_id, actor="auditor", reason="squatter")
    # Verification names the registrations of this content; `expected` picks one.
    assert prov.verify(weights, expected=mine.asset_id).asset.record.id == mine.asset_id
    assert prov.verify(weights).status == "ok"
    with pytest.raises(ProvenanceError, match="2 identities registered content"):
        prov.resolve(mine.digest)
    security_figures.record(
        "provenance",
        "M5 squatting or front-running another party's asset",
        tried=2,
        through=int(
            prov.registry.asset_of(mine.asset_id)[0].lower() != prov._identity("hospital-a").lower()
        )
        + int(squat.asset_id == mine.asset_id),
        what="another identity registers the same content first; it must get its own asset "
        "id and no control over the real owner's asset.",
        test="tests/integration/test_provenance.py::test_m5_nobody_can_take_over_another_identitys_content",
    )
