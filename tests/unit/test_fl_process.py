"""The process protocol without a chain: board signatures, specs, data files, a threaded run."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)
from eth_account import Account

from neuroledger.errors import FederatedError
from neuroledger.federated import Fault, TaskSpec, split_dataset
from neuroledger.federated._board import Board
from neuroledger.federated._coordinator import Coordinator
from neuroledger.federated._dp import PrivacyAccountant, clip_update
from neuroledger.federated._models import LogisticModel, local_train
from neuroledger.federated._participant import Participant
from neuroledger.federated._secagg import open_sealed, seal
from neuroledger.federated._vectors import get_vector, load_party_data, put_vector
from neuroledger.store import FileStore


def test_board_accepts_only_the_signer_it_expects(tmp_path: Path) -> None:
    alice, mallory = Account.create(), Account.create()
    board = Board(tmp_path, 7)
    board.post("r1/start.json", {"round": 1}, alice)
    message = board.read("r1/start.json", signer=alice.address)
    assert message is not None and message.body == {"round": 1}
    assert board.read("r1/start.json", signer=mallory.address) is None
    # Tampering with the body breaks the signature.
    path = board.dir / "r1/start.json"
    envelope = json.loads(path.read_text())
    envelope["body"]["round"] = 2
    path.write_text(json.dumps(envelope))
    assert board.read("r1/start.json") is None
    # A forger claiming to be alice is caught.
    board.post("r1/start.json", {"round": 3}, mallory)
    forged = json.loads(path.read_text())
    forged["signer"] = alice.address
    path.write_text(json.dumps(forged))
    assert board.read("r1/start.json", signer=alice.address) is None
    path.write_text("not json")
    assert board.read("r1/start.json") is None
    assert board.read("missing.json") is None


def test_sealed_shares_open_only_for_the_recipient() -> None:
    bob = X25519PrivateKey.generate()
    eve = X25519PrivateKey.generate()
    raw = lambda k: k.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())  # noqa: E731
    public = bob.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    sealed = seal(public, b"share", b"round-1/a->b")
    assert open_sealed(raw(bob), sealed, b"round-1/a->b") == b"share"
    for key, context, blob in [(raw(eve), b"round-1/a->b", sealed),
                               (raw(bob), b"round-2/a->b", sealed),
                               (raw(bob), b"round-1/a->b", sealed[:-1] + bytes([sealed[-1] ^ 1]))]:  # fmt: skip
        with pytest.raises(FederatedError, match="does not open"):
            open_sealed(key, blob, context)
    with pytest.raises(FederatedError, match="too short"):
        open_sealed(raw(bob), sealed[:20], b"")


def _spec(**kw: object) -> TaskSpec:
    base = dict(task_id=1, owner="0x0", features=3, classes=2, rounds=2, validators=2,
                min_participants=2, initial_model="")  # fmt: skip
    return TaskSpec(**{**base, **kw})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"validators": 3}, "between 1 and --min-participants"),
        ({"aggregator": "mean"}, "unknown aggregator"),
        ({"aggregator": "median", "secure": True}, "needs every update in the clear"),
        ({"dp_noise": -1.0}, "must be positive"),
        ({"rounds": 0}, "at least 1 round"),
        ({"clip": 0.0}, "must be positive"),
    ],
)
def test_spec_names_the_setting_that_cannot_work(kw: dict[str, object], message: str) -> None:
    with pytest.raises(FederatedError, match=message):
        _spec(**kw).check()
    with pytest.raises(FederatedError, match="malformed"):
        TaskSpec.from_json({"task_id": 1})


def test_party_data_files_are_checked(tmp_path: Path) -> None:
    good = tmp_path / "good.npz"
    np.savez(good, x=np.ones((4, 3)), y=np.array([0, 1, 0, 1]))
    x, y = load_party_data(good, features=3, classes=2)
    assert x.shape == (4, 3) and y.dtype == np.int64
    cases = {
        "missing.npz": (None, "no data file"),
        "nokeys.npz": ({"a": np.ones(3)}, "not a .npz with arrays x and y"),
        "nan.npz": ({"x": np.full((2, 3), np.nan), "y": np.array([0, 1])}, "NaN"),
        "float.npz": ({"x": np.ones((2, 3)), "y": np.array([0.5, 1.0])}, "must be integers"),
        "shape.npz": ({"x": np.ones((2, 3)), "y": np.array([0, 1, 1])}, "one label per row"),
        "label.npz": ({"x": np.ones((2, 3)), "y": np.array([0, 5])}, "labels must lie in 0..1"),
    }
    for name, (arrays, message) in cases.items():
        if arrays is not None:
            np.savez(tmp_path / name, **arrays)  # type: ignore[arg-type]
        with pytest.raises(FederatedError, match=message):
            load_party_data(tmp_path / name, features=3, classes=2)
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(FederatedError, match=r"not a \.npz"):
        load_party_data(tmp_path / "text.npz")
    with pytest.raises(FederatedError, match="has 3 features, the task's model takes 5"):
        load_party_data(good, features=5)


def test_fault_syntax() -> None:
    assert Fault.parse("nan@3") == Fault("nan", 3)
    assert Fault.parse("label-flip").active("label-flip", 9)
    assert not Fault.parse("drop@2").active("drop", 1)
    for bad in ("boom", "nan@x"):
        with pytest.raises(FederatedError, match="unknown fault"):
            Fault.parse(bad)


def test_accountant_composes_rounds_at_different_noise() -> None:
    import dp_accounting
    from dp_accounting import rdp

    acc = PrivacyAccountant(noise_multiplier=1.0, sampling_probability=1.0)
    acc.step(3)
    acc.step(2, noise_multiplier=0.8)
    reference = rdp.RdpAccountant()
    reference.compose(
        dp_accounting.PoissonSampledDpEvent(1.0, dp_accounting.GaussianDpEvent(1.0)), 3
    )
    reference.compose(
        dp_accounting.PoissonSampledDpEvent(1.0, dp_accounting.GaussianDpEvent(0.8)), 2
    )
    assert acc.epsilon() == pytest.approx(reference.get_epsilon(1e-5))


def _threaded_run(tmp_path: Path, *, secure: bool, faults: dict[int, Fault] | None = None):  # type: ignore[no-untyped-def]
    store = FileStore(tmp_path / "store")
    parties, (xv, yv) = split_dataset("breast-cancer", parties=3, alpha=0.5, seed=1)
    owner = Account.create()
    board = Board(tmp_path, 1)
    model = LogisticModel(30, 2)
    spec = TaskSpec(task_id=1, owner=owner.address, features=30, classes=2, rounds=3,
                    validators=2, min_participants=3, initial_model=put_vector(store, model.init()),
                    secure=secure, phase_timeout=2.0).check()  # fmt: skip
    accounts = [Account.create() for _ in parties]
    keys = [X25519PrivateKey.generate() for _ in parties]
    public = {a.address: k.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
              for a, k in zip(accounts, keys, strict=True)}  # fmt: skip
    for a in accounts:
        board.post(f"participants/{a.address.lower()}.json", {"identity": a.address}, a)
    summaries: dict[int, dict] = {}

    def serve(i: int) -> None:
        p = Participant(board, store, spec, accounts[i], parties[i][0], parties[i][1],
                        keys[i].private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()),
                        public.__getitem__, fault=(faults or {}).get(i), timeout=30)  # fmt: skip
        summaries[i] = p.run()

    threads = [threading.Thread(target=serve, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    coordinator = Coordinator(board, store, spec, owner, validation=(xv, yv))
    report = coordinator.run(coordinator.wait_participants())
    for t in threads:
        t.join(30)
    return report, summaries, parties, accounts, store, spec


def test_secure_round_equals_the_mean_of_the_hidden_updates(tmp_path: Path) -> None:
    report, summaries, parties, accounts, store, spec = _threaded_run(tmp_path, secure=True)
    model = LogisticModel(30, 2)
    w0 = model.init()
    deltas = [clip_update(local_train(model, w0, x, y, epochs=5, lr=0.5) - w0, spec.clip)[0]
              for x, y in parties]  # fmt: skip
    aggregate = get_vector(store, report.rounds[0]["aggregate"], model.size)
    # The owner only ever saw masked vectors, yet the sum is exact up to fixed-point rounding.
    assert np.allclose(aggregate, np.mean(deltas, axis=0), atol=3 * spec.clip / 2**24)
    masked = get_vector(store, next(iter(json.loads(
        (tmp_path / "tasks/1/r1/result.json").read_text())["body"]["updates"].values())),
        model.size, dtype="<u8")  # fmt: skip
    assert not np.allclose(masked.astype(float), 0) and masked.max() > 2**31
    assert all(s["attested"] == [1, 2, 3] for s in summaries.values())
    assert report.scores == {a.address: 3.0 for a in accounts}


def test_a_label_flipper_scores_lowest(tmp_path: Path) -> None:
    report, summaries, _, accounts, _, _ = _threaded_run(
        tmp_path, secure=False, faults={2: Fault("label-flip")}
    )
    assert min(report.scores, key=report.scores.__getitem__) == accounts[2].address
    assert len(summaries) == 3
