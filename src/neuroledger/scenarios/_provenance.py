"""The provenance part of the demo: data, code, a training run, a model, an audit, a deployment.

Each hospital registers a dataset (a cohort CSV generated from a seed), hospital
A registers the training code, trains a nearest-centroid classifier on the
three cohorts and registers the run (a SLSA v1 statement) and the model. The
auditor evaluates the model and attests the result; hospital A registers a
deployment served by the triage agent. Then one byte of the model's weights
is changed on disk and verification catches it.
"""

from __future__ import annotations

import io
import json
import random
import struct
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from neuroledger.provenance import Provenance, to_tree

__all__ = ["run_provenance"]

FEATURES = ("age", "tumour_radius", "texture", "smoothness")
HOSPITALS = ("hospital-a", "hospital-b", "hospital-c")

TRAIN_CODE = '''\
"""Nearest-centroid classifier: one mean vector per label, predict the closest."""
import csv, struct, sys

def fit(paths):
    sums, counts = {}, {}
    for path in paths:
        for row in csv.DictReader(open(path)):
            label = int(row.pop("label"))
            values = [float(v) for v in row.values()]
            acc = sums.setdefault(label, [0.0] * len(values))
            sums[label] = [a + v for a, v in zip(acc, values)]
            counts[label] = counts.get(label, 0) + 1
    return {k: [s / counts[k] for s in v] for k, v in sums.items()}
'''


def _cohort(path: Path, seed: int, rows: int = 200) -> list[tuple[list[float], int]]:
    """A synthetic cohort: malignant cases (label 1) have larger, rougher tumours."""
    rng = random.Random(seed)
    data = []
    for _ in range(rows):
        label = int(rng.random() < 0.4)
        features = [
            rng.gauss(58 if label else 52, 9),
            rng.gauss(17 if label else 12, 2.5),
            rng.gauss(21 if label else 18, 3.5),
            rng.gauss(0.103 if label else 0.092, 0.012),
        ]
        data.append((features, label))
    lines = [",".join([*FEATURES, "label"])]
    lines += [",".join(f"{v:.4f}" for v in f) + f",{label}" for f, label in data]
    path.write_text("\n".join(lines) + "\n")
    return data


def _train(cohorts: list[list[tuple[list[float], int]]]) -> dict[int, list[float]]:
    sums: dict[int, list[float]] = {}
    counts: dict[int, int] = {}
    for cohort in cohorts:
        for features, label in cohort:
            acc = sums.setdefault(label, [0.0] * len(features))
            sums[label] = [a + v for a, v in zip(acc, features, strict=True)]
            counts[label] = counts.get(label, 0) + 1
    return {k: [s / counts[k] for s in v] for k, v in sums.items()}


def _predict(centroids: dict[int, list[float]], features: list[float]) -> int:
    """The label of the nearest centroid (features scaled by the centroids' spread)."""
    scale = [max(abs(centroids[0][i] - centroids[1][i]), 1e-9) for i in range(len(FEATURES))]
    return min(
        centroids,
        key=lambda k: sum(
            ((f - c) / s) ** 2 for f, c, s in zip(features, centroids[k], scale, strict=True)
        ),
    )


def _accuracy(centroids: dict[int, list[float]], data: list[tuple[list[float], int]]) -> float:
    return sum(_predict(centroids, f) == label for f, label in data) / len(data)


def run_provenance(
    prov: Provenance, workdir: Path, step: Callable[[str], None]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Run the provenance scenario; return (summary, checks)."""
    workdir.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {"datasets": {}}
    checks: list[dict[str, Any]] = []
    cohorts = []
    for i, hospital in enumerate(HOSPITALS):
        step(f"{hospital} registers its cohort dataset")
        path = workdir / f"{hospital}-cohort.csv"
        cohorts.append(_cohort(path, seed=1000 + i))
        reg = prov.register(
            path, kind="dataset", owner=hospital, license="LicenseRef-consortium-only"
        )
        summary["datasets"][hospital] = reg.asset_id

    step("hospital-a registers the training code")
    code_path = workdir / "train.py"
    code_path.write_text(TRAIN_CODE)
    code = prov.register(code_path, kind="code", owner="hospital-a", license="Apache-2.0")
    summary["code"] = code.asset_id

    step("hospital-a trains the model and registers the training run (SLSA v1) and the model")
    started = datetime.now(UTC)
    centroids = _train(cohorts)
    model_dir = workdir / "triage-model"
    model_dir.mkdir(exist_ok=True)
    weights = b"".join(struct.pack("<d", v) for k in sorted(centroids) for v in centroids[k])
    (model_dir / "weights.bin").write_bytes(weights)
    (model_dir / "config.json").write_text(
        json.dumps({"type": "nearest-centroid", "features": FEATURES, "labels": [0, 1]}, indent=1)
    )
    run, model = prov.register_training_run(
        model_dir, owner="hospital-a",
        inputs=[*summary["datasets"].values(), code.asset_id],
        started=started, finished=datetime.now(UTC),
        parameters={"algorithm": "nearest-centroid", "features": list(FEATURES)},
    )  # fmt: skip
    summary["training_run"], summary["model"] = run.asset_id, model.asset_id

    step("the auditor evaluates the model on a held-out cohort and attests the result")
    holdout = _cohort(workdir / "auditor-holdout.csv", seed=4242)
    accuracy = round(_accuracy(centroids, holdout), 4)
    prov.attest(
        model.asset_id, attester="auditor",
        statement={"type": "evaluation", "metric": "accuracy", "value": accuracy, "samples": len(holdout)},
    )  # fmt: skip
    summary["accuracy"] = accuracy

    step("hospital-a registers the deployment served by triage-agent")
    deployment = prov.register_document(
        {"model": model.asset_id, "endpoint": "https://triage.hospital-a.example/v1",
         "operator": prov.show(model.asset_id).to_json(prov.chain.chain_id)["owner"]},
        kind="deployment", owner="hospital-a", parents=[model.asset_id],
    )  # fmt: skip
    summary["deployment"] = deployment.asset_id

    step("verifying the model directory against the registry")
    before = prov.verify(model_dir)
    checks.append(
        {
            "check": "asset verify: the model on disk matches its active record",
            "ok": before.status == "ok",
        }
    )

    lineage = prov.lineage(deployment.asset_id)
    checks.append({
        "check": "lineage of the deployment reaches every hospital's dataset and the code",
        "ok": set(summary["datasets"].values()) | {code.asset_id} <= set(lineage.nodes),
    })  # fmt: skip
    statement = prov.show(run.asset_id).metadata or {}
    deps = statement.get("predicate", {}).get("buildDefinition", {}).get("resolvedDependencies", [])
    checks.append({
        "check": "training run is a SLSA v1 statement naming the model and its 4 inputs",
        "ok": statement.get("predicateType") == "https://slsa.dev/provenance/v1"
        and statement["subject"][0]["digest"]["sha256"] == model.digest and len(deps) == 4,
    })  # fmt: skip
    attestations = prov.show(model.asset_id).attestations
    checks.append({
        "check": "the auditor's evaluation is attested on the model",
        "ok": len(attestations) == 1
        and attestations[0].attester == prov.keystore.get("auditor").identity,
    })  # fmt: skip

    step("changing one byte of the model weights and verifying again")
    raw = bytearray((model_dir / "weights.bin").read_bytes())
    raw[len(raw) // 2] ^= 0x01
    (model_dir / "weights.bin").write_bytes(bytes(raw))
    after = prov.verify(model_dir)
    summary["tampered_verify"] = after.summary()
    checks.append({
        "check": "asset verify: one changed byte in weights.bin is caught (exit 11, file named)",
        "ok": after.status == "modified" and after.exit_code == 11
        and after.diff is not None and after.diff.changed == ("weights.bin",),
    })  # fmt: skip

    names = {r.identity.lower(): r.name for r in prov.keystore.list()}
    console = Console(width=120, record=True, file=io.StringIO())
    console.print(to_tree(lineage, owner_name=lambda a: names.get(a.lower(), a[:10])))
    summary["lineage_tree"] = console.export_text()
    return summary, checks
