"""Private data of one home: protect (encrypt + register), grant, revoke, approve, consent.

docs/privacy.md walks through it on the embedded chain.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, cast

from neuroledger._fs import ReportingReader, atomic_writer
from neuroledger.chain import Chain
from neuroledger.errors import PrivacyError
from neuroledger.identity import Keystore, format_did, parse_did, published_x25519
from neuroledger.privacy import age
from neuroledger.privacy._grants import (
    CONTRACT,
    GrantsClient,
    GrantView,
    mode_bits,
    mode_names,
    purpose_bytes,
    purpose_name,
    utc,
)
from neuroledger.privacy._requests import Domain
from neuroledger.privacy._vault import Vault
from neuroledger.provenance import Provenance, Registration

__all__ = ["GrantReceipt", "PrivateData", "parse_duration"]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> int:
    """Seconds in ``30s``, ``15m``, ``12h``, ``7d`` or ``2w``."""
    text = text.strip()
    if len(text) >= 2 and text[:-1].isdigit() and text[-1] in _UNITS and int(text[:-1]) > 0:
        return int(text[:-1]) * _UNITS[text[-1]]
    raise PrivacyError(f"duration {text!r} is not understood; write e.g. 30m, 12h, 7d or 2w")


@dataclass(frozen=True)
class GrantReceipt:
    """What a grant did."""

    asset: str
    grantee: str
    modes: list[str]
    purpose: str
    expiry: int
    tx_hash: str
    wrapped: bool
    replaced: GrantView | None = None

    def to_json(self) -> dict[str, Any]:
        """The receipt as a JSON object."""
        out = self.__dict__.copy()
        out["replaced"] = self.replaced.to_json() if self.replaced else None
        return out


class PrivateData:
    """Encrypted assets, grants and consent, seen from one home."""

    def __init__(
        self, chain: Chain, keystore: Keystore, provenance: Provenance, home: Path
    ) -> None:
        self.chain = chain
        self.keystore = keystore
        self.provenance = provenance
        self.vault = Vault(home / "vault")
        self.grants = GrantsClient(chain.contract(CONTRACT))

    @functools.cached_property
    def domain(self) -> Domain:
        """The EIP-712 domain of gateway requests, as the grants contract announces it."""
        answer = self.grants.contract.functions.eip712Domain().call()
        return Domain.from_eip5267(
            answer, chain_id=self.chain.chain_id, contract=self.grants.address
        )

    def identity(self, who: str) -> str:
        """The address of an identity given by local name, ``did:ethr`` or address."""
        if who.startswith("did:"):
            return parse_did(who).address
        if who.startswith("0x") and len(who) == 42:
            return self.chain.w3.to_checksum_address(who)
        return self.keystore.get(who).identity

    def did(self, who: str) -> str:
        """The ``did:ethr`` of an identity."""
        return format_did(self.chain.chain_id, self.identity(who))

    def recipient(self, who: str) -> bytes:
        """The X25519 key ``who`` published in the DID registry."""
        return published_x25519(self.chain, self.identity(who))

    def _send(self, actor: str, call: Any) -> str:
        return self.chain.sender(self.keystore.owner_account(actor)).send(call).tx_hash

    # -- encryption --------------------------------------------------------------------
    def protect(self, path: Path, *, owner: str, kind: str = "dataset", license: str = "",
                metadata: dict[str, Any] | None = None, per_subject: bool = True,
                progress: Callable[[int], None] | None = None) -> Registration:  # fmt: skip
        """Encrypt the file at ``path`` into the vault and register it as ``owner``'s asset.

        ``per_subject=False`` marks a dataset with no per-subject rows (aggregates,
        weights): jobs then get it whole. Otherwise a job gets it only if every row's
        subject can be read, so that withdrawn consent is honoured.

        The asset's id is derived from the owner and the file's digest, as for any
        asset; the vault keeps
        the only copy, encrypted to the owner's published X25519 key.
        Nothing stays in the vault if registration fails.
        """
        if not path.is_file():
            raise PrivacyError(f"{path} is not a file; encrypt one data file at a time")
        owner_key = self.recipient(owner)
        if owner_key != age.x25519_public(self.keystore.x25519_private(owner)):
            raise PrivacyError(
                f"the X25519 key {owner} published differs from its key in this home; run "
                f"`neuroledger identity publish {owner}`"
            )
        digest = self.provenance.manifest(path, progress=progress).digest
        asset_id = self.provenance.asset_id_for(owner, digest)
        self.provenance.check_new(asset_id)
        with open(path, "rb") as raw:
            src = cast(BinaryIO, ReportingReader(raw, progress)) if progress else raw
            self.vault.put(asset_id, src, name=path.name, owner=self.identity(owner),
                           owner_key=owner_key, per_subject=per_subject)  # fmt: skip
        try:
            user = {"encryption": "age-v1", **(metadata or {})}
            return self.provenance.register(
                path, kind=kind, owner=owner, license=license, metadata=user
            )
        except BaseException:
            self.vault.remove(asset_id)
            raise

    def decrypt(self, asset: str, *, identity: str, out: Path) -> int:
        """Decrypt a vault asset with ``identity``'s key into ``out`` (atomically)."""
        asset_id = self.provenance.resolve(asset)
        with atomic_writer(out) as dst:
            return self.vault.decrypt(
                asset_id, identity=self.identity(identity),
                private=self.keystore.x25519_private(identity), out=dst,
            )  # fmt: skip

    # -- grants ------------------------------------------------------------------------
    def grant(self, asset: str, grantee: str, *, modes: str, purpose: str, expires_in: int,
              owner: str, replace: bool = False) -> GrantReceipt:  # fmt: skip
        """Grant ``grantee`` access to ``asset`` for ``purpose`` for ``expires_in`` seconds.

        Grants for other purposes are kept. A grant that still holds for the same purpose
        is replaced only with ``replace=True``; the receipt names what it replaced.
        A download grant also wraps the file key for the grantee's published
        X25519 key (the payload is not touched); a compute-only grant gives no key.
        """
        purpose_bytes(purpose)
        bits = mode_bits(modes)
        asset_id = self.provenance.resolve(asset)
        grantee_address = self.identity(grantee)
        owner_address = self.identity(owner)
        asset_owner, _, _ = self.provenance.registry.asset_of(asset_id)
        if asset_owner.lower() != owner_address.lower():
            raise PrivacyError(
                f"{owner} does not own asset {asset_id[:12]} (its owner is "
                f"{format_did(self.chain.chain_id, asset_owner)}); grant as the owner"
            )
        now = self._now()
        expiry = now + expires_in
        old = self.grants.grant_of(asset_id, grantee_address, purpose)
        if old is not None and not (
            old.expiry > now and old.grantor.lower() == owner_address.lower()
        ):
            old = None  # expired, or given by an earlier owner: nothing holds to replace
        if old is not None and not replace:
            raise PrivacyError(
                f"{grantee} already holds a {'+'.join(old.modes)} grant on {asset_id[:12]} for "
                f"{purpose} until {utc(old.expiry)}; pass --replace to replace it, or grant "
                "under another --purpose (grants for different purposes coexist)"
            )
        wrapped = False
        if bits & 1:
            key = published_x25519(self.chain, grantee_address)
            had = grantee_address.lower() in self.vault.entry(asset_id).wraps
            self.vault.add_wrap(asset_id, owner=owner_address,
                                owner_private=self.keystore.x25519_private(owner),
                                identity=grantee_address, identity_key=key)  # fmt: skip
            wrapped = not had
        try:
            tx = self._send(
                owner, self.grants.grant(asset_id, grantee_address, bits, purpose, expiry)
            )
        except BaseException:
            if wrapped:
                self.vault.drop_wrap(asset_id, grantee_address)
            raise
        if not bits & 1:
            self._drop_key_unless_downloading(asset_id, grantee_address)
        return GrantReceipt(asset_id, grantee_address, mode_names(bits), purpose, expiry, tx,
                            bits & 1 == 1, old)  # fmt: skip

    def _now(self) -> int:
        # The later of the chain's clock (it may run ahead) and this machine's (an idle
        # chain's stands still): a grant holds only while both say so.
        return max(int(time.time()), int(self.chain.w3.eth.get_block("latest")["timestamp"]))

    def held_grants(self, asset_id: str, grantee: str) -> list[GrantView]:
        """The grants ``grantee`` now holds on ``asset_id``, one per purpose."""
        now = self._now()
        views = [
            self.grants.grant_of(asset_id, grantee, p)
            for p in self.grants.purposes(self.chain.w3, asset_id, grantee)
        ]
        return [v for v in views if v is not None and v.expiry > now]

    def _drop_key_unless_downloading(self, asset_id: str, grantee: str) -> None:
        # The key wrap stays while any purpose still grants a download.
        if self.vault.has(asset_id) and not any(
            "download" in v.modes for v in self.held_grants(asset_id, grantee)
        ):
            self.vault.drop_wrap(asset_id, grantee)

    def revoke(self, asset: str, grantee: str, *, owner: str, purpose: str | None = None) -> str:
        """Revoke ``grantee``'s grant on ``asset`` for ``purpose`` (which may be left out when
        only one grant holds); the key wrap goes when no download grant is left."""
        asset_id = self.provenance.resolve(asset)
        grantee_address = self.identity(grantee)
        held = self.held_grants(asset_id, grantee_address)
        if purpose is None:
            if len(held) > 1:
                raise PrivacyError(
                    f"{grantee} holds {len(held)} grants on {asset_id[:12]} (for "
                    f"{', '.join(v.purpose for v in held)}); name one with --purpose"
                )
            purpose = held[0].purpose if held else None
        if purpose is None or self.grants.grant_of(asset_id, grantee_address, purpose) is None:
            raise PrivacyError(
                f"{grantee} holds no grant on asset {asset_id[:12]}"
                + (f" for {purpose}" if purpose else "")
                + "; `neuroledger grant list` shows them"
            )
        tx = self._send(owner, self.grants.revoke(asset_id, grantee_address, purpose))
        self._drop_key_unless_downloading(asset_id, grantee_address)
        return tx

    def approve(self, dataset: str, algorithm: str, *, owner: str, approved: bool = True) -> str:
        """Approve (or stop approving) code asset ``algorithm`` to run on ``dataset``."""
        dataset_id = self.provenance.resolve(dataset)
        algorithm_id = self.provenance.resolve(algorithm)
        _, kind, _ = self.provenance.registry.asset_of(algorithm_id)
        if kind != 2:
            raise PrivacyError(
                f"asset {algorithm_id[:12]} is not a code asset; register the algorithm with "
                "`neuroledger asset register FILE --kind code`"
            )
        return self._send(owner, self.grants.approve_algorithm(dataset_id, algorithm_id, approved))

    def consent(self, subject: str, purpose: str, *, given: bool) -> str:
        """``subject`` gives or withdraws consent to ``purpose``."""
        return self._send(subject, self.grants.set_consent(self.identity(subject), purpose, given))

    def list_grants(self, asset: str | None = None) -> list[GrantView]:
        """Grants that hold now (unexpired, not revoked), optionally for one asset."""
        asset_id = self.provenance.resolve(asset) if asset else None
        seen: set[tuple[str, str, str]] = set()
        for event in self.grants.events(self.chain.w3):
            if event.name == "AccessGranted" and (
                asset_id is None or event.args["asset"] == asset_id
            ):
                purpose = purpose_name(bytes.fromhex(event.args["purpose"]))
                seen.add((str(event.args["asset"]), str(event.args["grantee"]), purpose))
        now = self._now()
        views = [self.grants.grant_of(a, g, p) for a, g, p in sorted(seen)]
        return [v for v in views if v is not None and v.expiry > now]

    def withdrawn(self, purpose: str) -> set[str]:
        """Subjects (lowercase addresses) who withdrew consent to ``purpose``."""
        return self.grants.withdrawn_subjects(self.chain.w3, purpose)
