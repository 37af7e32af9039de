"""Lineage exports checked with the reference libraries: prov and openlineage-python."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.serde import Serde
from prov.model import ProvDocument
from rich.console import Console

from neuroledger.provenance import Provenance, to_dot, to_openlineage, to_prov_json, to_tree
from tests.conftest import make_model

pytestmark = pytest.mark.anvil


def strip_empty(value):
    if isinstance(value, dict):
        return {k: strip_empty(v) for k, v in value.items() if v != {}}
    if isinstance(value, list):
        return [strip_empty(v) for v in value]
    return value


@pytest.fixture
def lineage_ids(prov: Provenance, tmp_path: Path) -> dict[str, str]:
    data = tmp_path / "cohort.csv"
    data.write_text("age,label\n40,1\n")
    code = tmp_path / "train.py"
    code.write_text("print('train')\n")
    d = prov.register(data, kind="dataset", owner="hospital-a", license="CC-BY-4.0")
    c = prov.register(code, kind="code", owner="hospital-a")
    start = datetime(2026, 11, 1, 8, tzinfo=UTC)
    run, m = prov.register_training_run(
        make_model(tmp_path), owner="hospital-a", inputs=[d.asset_id, c.asset_id],
        started=start, finished=start + timedelta(hours=1),
    )  # fmt: skip
    dep = prov.register_document(
        {"endpoint": "https://triage.example/v1", "model": m.asset_id},
        kind="deployment", owner="hospital-a", parents=[m.asset_id],
    )  # fmt: skip
    return {"data": d.asset_id, "code": c.asset_id, "run": run.asset_id, "model": m.asset_id,
            "deploy": dep.asset_id}  # fmt: skip


def test_prov_json_loads_and_round_trips_with_prov(prov: Provenance, lineage_ids) -> None:
    lineage = prov.lineage(lineage_ids["deploy"])
    text = json.dumps(to_prov_json(lineage, chain_id=prov.chain.chain_id))
    doc = ProvDocument.deserialize(content=text, format="json")
    again = ProvDocument.deserialize(content=doc.serialize(format="json"), format="json")
    assert doc == again
    records = {type(r).__name__: 0 for r in doc.get_records()}
    for r in doc.get_records():
        records[type(r).__name__] += 1
    assert records["ProvEntity"] == 4  # dataset, code, model, deployment
    assert records["ProvActivity"] == 1  # the training run
    assert records["ProvUsage"] == 2
    assert records["ProvGeneration"] == 1
    assert records["ProvDerivation"] == 1
    assert records["ProvAttribution"] == 4
    assert records["ProvAssociation"] == 1
    run = doc.get_record(f"asset:{lineage_ids['run']}")[0]
    assert run.get_startTime() == datetime(2026, 11, 1, 8, tzinfo=UTC)


def test_openlineage_events_match_the_client_model(prov: Provenance, lineage_ids) -> None:
    lineage = prov.lineage(lineage_ids["deploy"])
    events = to_openlineage(lineage, chain_id=prov.chain.chain_id)
    assert [e["job"]["name"].split("/")[0] for e in events] == [
        "training-run",
        "register-deployment",
    ]
    for event in events:
        model = RunEvent(
            eventType=RunState(event["eventType"]),
            eventTime=event["eventTime"],
            run=Run(runId=event["run"]["runId"]),
            job=Job(namespace=event["job"]["namespace"], name=event["job"]["name"]),
            inputs=[
                InputDataset(namespace=i["namespace"], name=i["name"]) for i in event["inputs"]
            ],
            outputs=[
                OutputDataset(namespace=o["namespace"], name=o["name"]) for o in event["outputs"]
            ],
            producer=event["producer"],
        )  # the client's validators accept it
        # Same content as the client's own serialisation (which adds empty facet maps).
        assert strip_empty(Serde.to_dict(model)) | {"schemaURL": event["schemaURL"]} == event
    run_event = events[0]
    assert {i["name"].split("/")[1] for i in run_event["inputs"]} == {
        lineage_ids["data"],
        lineage_ids["code"],
    }
    assert run_event["outputs"][0]["name"] == f"model/{lineage_ids['model']}"
    assert run_event["eventTime"] == "2026-11-01T09:00:00Z"


def test_dot_and_tree(prov: Provenance, lineage_ids) -> None:
    lineage = prov.lineage(lineage_ids["deploy"])
    dot = to_dot(lineage)
    assert dot.startswith("digraph lineage {")
    for child, parent in lineage.edges:
        assert f'"{child}" -> "{parent}";' in dot
    console = Console(width=200, record=True)
    console.print(to_tree(lineage))
    text = console.export_text()
    for key in ("deploy", "model", "run", "data", "code"):
        assert lineage_ids[key][:12] in text
    assert "cohort.csv" in text
