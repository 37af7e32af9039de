from __future__ import annotations

import json
import stat

import pytest

from neuroledger.config import KdfParams
from neuroledger.errors import IdentityNotFoundError, KeystoreError, WrongPassphraseError
from neuroledger.identity.keystore import Keystore


def make(tmp_path, passphrase="pw"):
    return Keystore(tmp_path / "ks", passphrase=lambda: passphrase, kdf=KdfParams.light())


def test_create_writes_standard_v3_files_only_encrypted(tmp_path) -> None:
    ks = make(tmp_path)
    record = ks.create("hospital-a", "org")
    key_file = tmp_path / "ks" / "keys" / f"{record.owner.lower()[2:]}.json"
    data = json.loads(key_file.read_text())
    assert data["version"] == 3 and data["crypto"]["kdf"] == "scrypt"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    account = ks.owner_account("hospital-a")
    for path in (tmp_path / "ks").rglob("*.json"):
        assert bytes(account.key).hex() not in path.read_text()


def test_geth_compatible_decrypt(tmp_path) -> None:
    from eth_account import Account

    ks = make(tmp_path)
    record = ks.create("a", "person")
    key_file = tmp_path / "ks" / "keys" / f"{record.owner.lower()[2:]}.json"
    assert Account.from_key(Account.decrypt(key_file.read_text(), "pw")).address == record.owner


def test_wrong_passphrase(tmp_path) -> None:
    make(tmp_path).create("a", "org")
    with pytest.raises(WrongPassphraseError, match="wrong passphrase"):
        make(tmp_path, "nope").owner_account("a")


def test_unknown_identity_suggests_near_name(tmp_path) -> None:
    ks = make(tmp_path)
    ks.create("hospital-a", "org")
    with pytest.raises(IdentityNotFoundError, match="did you mean 'hospital-a'"):
        ks.get("hospital-b")


def test_missing_key_file(tmp_path) -> None:
    ks = make(tmp_path)
    record = ks.create("a", "org")
    (tmp_path / "ks" / "keys" / f"{record.owner.lower()[2:]}.json").unlink()
    with pytest.raises(KeystoreError, match="missing; restore it"):
        make(tmp_path).owner_account("a")


@pytest.mark.parametrize("name", ["", "Upper", "has space", "-lead", "x" * 65, "../evil"])
def test_bad_names_rejected(tmp_path, name) -> None:
    with pytest.raises(KeystoreError, match="not allowed"):
        make(tmp_path).create(name, "org")


def test_bad_kind_and_duplicate(tmp_path) -> None:
    ks = make(tmp_path)
    with pytest.raises(KeystoreError, match="unknown identity kind"):
        ks.create("a", "robot")
    ks.create("a", "device")
    with pytest.raises(KeystoreError, match="already exists"):
        ks.create("a", "device")


def test_x25519_key_roundtrip(tmp_path) -> None:
    import base64

    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    ks = make(tmp_path)
    record = ks.create("a", "agent")
    priv = X25519PrivateKey.from_private_bytes(ks.x25519_private("a"))
    assert base64.b64encode(priv.public_key().public_bytes_raw()).decode() == record.x25519_public


def _snapshot(root):
    return {p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_wrong_passphrase_on_rotation_writes_nothing(tmp_path) -> None:
    make(tmp_path).create("a", "org")
    before = _snapshot(tmp_path / "ks")
    with pytest.raises(WrongPassphraseError):
        make(tmp_path, "nope").new_owner_key("a")
    assert _snapshot(tmp_path / "ks") == before
    make(tmp_path).owner_account("a")  # the right passphrase still opens it
