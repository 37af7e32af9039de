from __future__ import annotations

import json
import stat

import pytest

from neuroledger.config import KdfParams
from neuroledger.errors import IdentityNotFoundError, KeystoreError, WrongPassphraseError
from neuroledger.identity._keystore import Keystore


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


# -- one passphrase per home (issue 12, M9) ---------------------------------------------


def test_a_mistyped_passphrase_writes_no_new_key(tmp_path) -> None:
    from neuroledger.config import KdfParams
    from neuroledger.errors import WrongPassphraseError
    from neuroledger.identity._keystore import Keystore

    light = KdfParams.light()
    Keystore(tmp_path, passphrase=lambda: "right one", kdf=light).create("first", "org")
    before = sorted(p.name for p in (tmp_path / "keys").iterdir())
    typo = Keystore(tmp_path, passphrase=lambda: "rihgt one", kdf=light)
    with pytest.raises(WrongPassphraseError, match="one passphrase") as info:
        typo.create("second", "org")
    assert "\n" not in str(info.value)
    assert sorted(p.name for p in (tmp_path / "keys").iterdir()) == before
    assert typo.names() == ["first"]
    Keystore(tmp_path, passphrase=lambda: "right one", kdf=light).create("second", "org")


def test_change_passphrase_re_encrypts_every_key_all_or_nothing(tmp_path) -> None:
    from neuroledger.config import KdfParams
    from neuroledger.errors import WrongPassphraseError
    from neuroledger.identity._keystore import Keystore

    light = KdfParams.light()
    ks = Keystore(tmp_path / "ks", passphrase=lambda: "old", kdf=light)
    ks.create("a", "org")
    ks.create("b", "agent")
    log_key = tmp_path / "audit" / "log" / "ed25519-log.json"
    ks.store_secret(log_key, b"\7" * 32)
    account = ks.owner_account("a").address
    assert ks.change_passphrase("new", extra=[log_key]) == 5  # 2 owners, 2 X25519, 1 log key
    fresh = Keystore(tmp_path / "ks", passphrase=lambda: "new", kdf=light)
    assert fresh.owner_account("a").address == account
    assert fresh.x25519_private("b")
    assert fresh.load_secret(log_key, what="log") == b"\7" * 32
    with pytest.raises(WrongPassphraseError):
        Keystore(tmp_path / "ks", passphrase=lambda: "old", kdf=light).owner_account("b")

    # A crash after staging but before the commit: the old passphrase still opens everything.
    keys = sorted((tmp_path / "ks" / "keys").glob("*.json"))
    for path in keys:
        path.with_name(path.name + ".new").write_text("{}")
    (tmp_path / "ks" / "passphrase-change.json").write_text(
        json.dumps({"commit": False, "paths": [str(p) for p in keys]})
    )
    again = Keystore(tmp_path / "ks", passphrase=lambda: "new", kdf=light)
    assert again.owner_account("a").address == account
    assert not list((tmp_path / "ks" / "keys").glob("*.new"))
