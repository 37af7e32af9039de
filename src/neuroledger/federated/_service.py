"""Federated tasks of one home: create, join, run and inspect, with the chain and provenance.

This glues the protocol (:mod:`~neuroledger.federated._coordinator`,
:mod:`~neuroledger.federated._participant`) to the rest of NeuroLedger:
the task contract (escrow, rounds, attestations, rewards), the identity
registry (participants' X25519 keys for secure aggregation) and the asset
registry (datasets, code, the initial model, every round and the final model,
with a SLSA training run).
"""

from __future__ import annotations

import base64
import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import neuroledger.federated as federated_pkg
from neuroledger._fs import atomic_write
from neuroledger.chain import Chain
from neuroledger.errors import AssetNotFoundError, FederatedError, NeuroLedgerError
from neuroledger.federated import _settlement
from neuroledger.federated._board import Board, Message
from neuroledger.federated._coordinator import Coordinator, RunReport
from neuroledger.federated._faults import Fault
from neuroledger.federated._ledger import (
    DEFAULT_DURATION,
    DEFAULT_STAKE_WEI,
    TaskLedger,
)
from neuroledger.federated._models import LogisticModel
from neuroledger.federated._participant import Participant
from neuroledger.federated._protocol import DONE, RoundPaths, participant_path
from neuroledger.federated._run_records import MAX_PARENTS, RunRecords, write_model
from neuroledger.federated._spec import TaskSpec
from neuroledger.federated._vectors import load_party_data, put_vector
from neuroledger.identity import Keystore, RegistryClient, format_did, published_x25519
from neuroledger.provenance import Provenance
from neuroledger.store import FileStore

__all__ = ["FederatedTasks", "adopt_deployment"]

log = logging.getLogger("neuroledger.federated")


def adopt_deployment(chain: Chain, shared: Path) -> None:
    """Use the suite deployment the task owner left in ``shared`` when this home has none.

    The record is checked against the chain's code before use, so a wrong one is refused.
    """
    store = chain.suite.store
    if chain.is_embedded or store.load(chain.chain_id) is not None:
        return
    source = shared / "deployments" / f"{chain.chain_id}.json"
    if source.is_file():
        store.directory.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, store.path(chain.chain_id))


class FederatedTasks:
    """Federated tasks seen from one home, sharing ``shared`` (store + boards) with the others."""

    def __init__(
        self, chain: Chain, keystore: Keystore, provenance: Provenance, shared: Path
    ) -> None:
        self.chain = chain
        self.keystore = keystore
        self.prov = provenance
        self.shared = shared
        self.store = provenance.store
        self.ledger = TaskLedger(chain, self.store)
        self._keys: dict[str, bytes] = {}
        self.identities = RegistryClient(chain.contract("DIDRegistry"))

    @classmethod
    def open(
        cls,
        chain: Chain,
        keystore: Keystore,
        shared: Path,
        make_provenance: Callable[[FileStore], Provenance],
    ) -> FederatedTasks:
        """Open the shared directory (created if missing) and adopt its deployment record."""
        shared.mkdir(parents=True, exist_ok=True)
        adopt_deployment(chain, shared)
        return cls(chain, keystore, make_provenance(FileStore(shared / "store")), shared)

    def board(self, task_id: int) -> Board:
        """The board of task ``task_id``."""
        return Board(self.shared, task_id)

    def spec(self, task_id: int) -> TaskSpec:
        """The task's spec, checked against the chain's record of its owner."""
        on_chain = self.ledger.task(task_id)
        if on_chain.status == 0 or on_chain.rounds == 0:
            raise FederatedError(f"task {task_id} does not exist on this chain; see `fl status`")
        message = self.board(task_id).read("task.json", signer=on_chain.owner)
        if message is None:
            raise FederatedError(
                f"task {task_id} has no spec signed by its owner in {self.shared}; "
                "check the --shared directory"
            )
        spec = TaskSpec.from_json(message.body)
        if spec.task_id != task_id or spec.rounds != on_chain.rounds:
            raise FederatedError(
                f"the spec of task {task_id} on the board does not match the chain"
            )
        return spec

    # -- helpers ---------------------------------------------------------------------
    def _reuse_or_register(self, path: Path, *, kind: str, owner: str, **kw: Any) -> str:
        ignore = kw.pop("ignore", ())
        digest = self.prov.manifest(path, ignore=ignore).digest
        try:
            return self.prov.show(self.prov.asset_id_for(owner, digest)).record.id
        except AssetNotFoundError:
            return self.prov.register(path, kind=kind, owner=owner, ignore=ignore, **kw).asset_id

    def keys_of(self, task_id: int) -> Callable[[str], bytes]:
        """Address -> X25519 key that the participant's identity published on chain."""

        def key(address: str) -> bytes:
            if address not in self._keys:
                identity = str(self.join_message(task_id, address)["identity"])
                self._keys[address] = published_x25519(self.chain, identity)
            return self._keys[address]

        return key

    def join_message(self, task_id: int, address: str) -> dict[str, Any]:
        """What a participant signed when it joined: its ``identity`` and ``dataset`` asset."""
        message = self.board(task_id).read(participant_path(address), signer=address)
        if message is None:
            raise FederatedError(f"participant {address} has no join message on the board")
        return dict(message.body)

    # -- owner -----------------------------------------------------------------------
    def create(
        self,
        owner: str,
        validation: Path,
        *,
        rounds: int,
        validators: int,
        min_participants: int,
        pool_wei: int,
        stake_wei: int = DEFAULT_STAKE_WEI,
        duration: float = DEFAULT_DURATION,
        **settings: Any,
    ) -> TaskSpec:
        """Register the code and initial model, escrow the pool, post the spec; return it.

        Participants escrow ``stake_wei`` each to join; the task must finish within
        ``duration`` seconds, or its pool is refunded (before round 1) or shared out.
        """
        xv, yv = load_party_data(validation)
        features, classes = xv.shape[1], int(yv.max()) + 1
        draft = TaskSpec(
            task_id=0,
            owner="",
            features=features,
            classes=classes,
            rounds=rounds,
            validators=validators,
            min_participants=min_participants,
            initial_model="",
            **settings,
        ).check()
        account = self.keystore.owner_account(owner)
        model = LogisticModel(features, classes)
        initial = model.init()
        model_dir = self.shared / "models" / f"initial-{features}x{classes}"
        write_model(model_dir, initial, features, classes, {"init": "zeros"})
        model_asset = self._reuse_or_register(model_dir, kind="model", owner=owner)
        code_dir = Path(federated_pkg.__file__).parent
        code_asset = self._reuse_or_register(
            code_dir, kind="code", owner=owner, license="Apache-2.0", ignore=["__pycache__"]
        )
        task_id = self.ledger.create_task(
            account,
            model_asset=model_asset,
            code_asset=code_asset,
            rounds=rounds,
            validators=validators,
            pool_wei=pool_wei,
            stake_wei=stake_wei,
            duration=duration,
        )
        spec = TaskSpec(
            **{
                **draft.to_json(),
                "task_id": task_id,
                "owner": str(account.address),
                "initial_model": put_vector(self.store, initial),
                "model_asset": model_asset,
                "code_asset": code_asset,
                "chain_id": self.chain.chain_id,
                "contract": str(self.ledger.contract.address),
            }
        ).check()
        self.board(task_id).post("task.json", spec.to_json(), account)
        record = self.chain.deployment().to_json()
        atomic_write(
            self.shared / "deployments" / f"{self.chain.chain_id}.json",
            json.dumps(record, indent=2, sort_keys=True).encode(),
            mode=0o644,
        )
        return spec

    def _check_join(self, message: Message) -> str | None:
        body = message.body
        try:
            identity = str(body["identity"])
            if self.identities.identity_owner(identity).lower() != message.signer.lower():
                return f"signer is not the owner of identity {identity}"
            dataset = self.prov.show(str(body["dataset"]))
            if dataset.record.kind != "dataset" or dataset.record.status != "active":
                return f"dataset {str(body['dataset'])[:12]} is not an active dataset asset"
            if published_x25519(self.chain, identity) != base64.b64decode(str(body["x25519"])):
                return "its X25519 key differs from the one its identity published"
        except (KeyError, ValueError, NeuroLedgerError) as exc:
            return f"join message rejected: {exc}"
        return None

    def run(
        self,
        task_id: int,
        validation: Path,
        *,
        join_timeout: float = 300.0,
        on_round: Callable[[dict[str, Any]], None] | None = None,
        on_wait: Callable[[], None] | None = None,
    ) -> RunReport:
        """Drive every round of a task this home owns, then score, register and pay.

        ``on_wait`` is called once every input is checked, when waiting for participants
        begins."""
        spec = self.spec(task_id)
        # The task belongs to the key that created it (the contract checks the sender), which
        # may since have been rotated out of its identity: find the identity by any of its keys.
        owner_record = self.keystore.find_by_key(spec.owner)
        if owner_record is None:
            raise FederatedError(
                f"task {task_id} is owned by {spec.owner}, which is not a key of this home; "
                "run `fl run` in the owner's home"
            )
        owner_name = owner_record.name
        account = self.keystore.account_for(spec.owner, what=f"identity {owner_name!r}")
        xv, yv = load_party_data(validation, features=spec.features, classes=spec.classes)
        board = self.board(task_id)
        records = RunRecords(self, task_id, spec, owner_name, account)
        coordinator = Coordinator(
            board,
            self.store,
            spec,
            account,
            validation=(xv, yv),
            ledger=self.ledger,
            join_timeout=join_timeout,
            register_round=records.register_round,
        )
        if on_wait is not None:
            on_wait()
        participants = coordinator.wait_participants(self._check_join)
        for address in participants:
            dataset = str(self.join_message(task_id, address)["dataset"])
            if dataset not in records.datasets:
                records.datasets.append(dataset)
        if len(records.datasets) > MAX_PARENTS - 2:
            log.warning(
                "only %d of %d datasets fit in round 1's parents; the rest are named in "
                "the round documents",
                MAX_PARENTS - 2,
                len(records.datasets),
            )

        pool = self.ledger.task(task_id).pool
        return coordinator.run(
            participants, on_round=on_round, finish=records.finish, pool_wei=pool
        )

    # -- participant -----------------------------------------------------------------
    def join(
        self,
        task_id: int,
        identity: str,
        data: Path,
        *,
        fault: Fault | None = None,
        timeout: float = 600.0,
    ) -> Participant:
        """Check the data, register it as a dataset, join on chain, post the join message."""
        spec = self.spec(task_id)
        x, y = load_party_data(data, features=spec.features, classes=spec.classes)
        record = self.keystore.get(identity)
        account = self.keystore.owner_account(identity)
        if self.ledger.is_participant(task_id, str(account.address)):
            raise FederatedError(
                f"identity {identity!r} already joined task {task_id}; a participant joins once "
                "(see `neuroledger fl status`)"
            )
        on_chain = self.ledger.task(task_id)
        if on_chain.owner.lower() == str(account.address).lower():
            raise FederatedError(
                f"identity {identity!r} owns task {task_id}, and an owner never participates "
                "(it would validate and pay itself); join with another identity"
            )
        if on_chain.status != 1 or on_chain.deadline <= self.ledger.now():
            raise FederatedError(
                f"task {task_id} has ended or passed its deadline; it takes no participants "
                "(see `neuroledger fl status`)"
            )
        if on_chain.current_round > 0:
            raise FederatedError(
                f"task {task_id} has started training; it takes no new participants"
            )
        dataset = self._reuse_or_register(
            data, kind="dataset", owner=identity, license="LicenseRef-consortium-only"
        )
        self.ledger.join(account, task_id)
        self.board(task_id).post(
            participant_path(str(account.address)),
            {
                "identity": record.identity,
                "did": format_did(self.chain.chain_id, record.identity),
                "x25519": record.x25519_public,
                "dataset": dataset,
                "examples": len(y),
            },
            account,
        )
        return Participant(
            self.board(task_id),
            self.store,
            spec,
            account,
            x,
            y,
            self.keystore.x25519_private(identity),
            self.keys_of(task_id),
            ledger=self.ledger,
            fault=fault,
            timeout=timeout,
        )

    # -- ending ----------------------------------------------------------------------
    cancel = _settlement.cancel
    claim = _settlement.claim

    # -- reads -----------------------------------------------------------------------
    def status(self, task_id: int) -> dict[str, Any]:
        """The task on chain and on the board."""
        on_chain = self.ledger.task(task_id)
        if on_chain.rounds == 0:
            raise FederatedError(f"task {task_id} does not exist on chain {self.chain.chain_id}")
        board = self.board(task_id)
        done = board.read(DONE, signer=on_chain.owner)
        rounds = []
        for r in range(1, on_chain.rounds + 1):
            result = board.read(RoundPaths(r).result, signer=on_chain.owner)
            if result is None:
                break
            rounds.append(
                {
                    "round": r,
                    "aggregate": result.body["aggregate"],
                    "updates": len(result.body["updates"]),
                    "rejected": result.body["rejected"],
                    "dropped": result.body["dropped"],
                }
            )
        status = on_chain.status_name
        if status == "open" and on_chain.deadline <= self.ledger.now():
            status = "past deadline"
        return {
            "task": task_id,
            "owner": on_chain.owner,
            "status": status,
            "rounds": on_chain.rounds,
            "recorded_round": on_chain.current_round,
            "final_round": on_chain.finalized_round,
            "participants": on_chain.participants,
            "validators": on_chain.validators,
            "pool_wei": str(on_chain.pool),
            "stake_wei": str(on_chain.stake),
            "deadline": on_chain.deadline,
            "board_rounds": rounds,
            "final_model_asset": done.body.get("final_model_asset") if done else None,
            "rewards": done.body.get("rewards") if done else None,
        }
