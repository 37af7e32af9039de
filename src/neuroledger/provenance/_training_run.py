"""A training run as provenance: its SLSA v1 statement and the model it produced."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from neuroledger.identity import format_did
from neuroledger.provenance._documents import RunInput, training_run_statement
from neuroledger.provenance._views import Registration

if TYPE_CHECKING:
    from neuroledger.provenance._service import Provenance

__all__ = ["register_training_run"]


def register_training_run(
    prov: Provenance,
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
    manifest = prov.manifest(model_path)
    run_inputs = []
    for ref in inputs:
        view = prov.show(ref)
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
        builder=format_did(prov.chain.chain_id, prov._identity(owner)),
        started=started,
        finished=finished,
        parameters=parameters,
    )
    prov.check_new(prov.asset_id_for(owner, manifest.digest))
    run = prov.register_document(
        statement, kind="training-run", owner=owner, parents=[i.asset_id for i in run_inputs],
        license=license, signer=signer,
    )  # fmt: skip
    model = prov.register(
        model_path, kind="model", owner=owner, parents=[run.asset_id], license=license,
        metadata={"trainingRun": run.asset_id}, signer=signer,
    )  # fmt: skip
    return run, model
