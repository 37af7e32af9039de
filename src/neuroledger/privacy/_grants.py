"""Calls to, reads of, and events from the deployed AccessGrants contract."""

from __future__ import annotations

import functools
import re
import time
from dataclasses import dataclass
from typing import Any

from eth_utils.address import to_checksum_address
from web3 import Web3

from neuroledger.chain import Call, ContractClient
from neuroledger.errors import PrivacyError

__all__ = [
    "MODES",
    "PURPOSE_PATTERN",
    "GrantEvent",
    "GrantView",
    "GrantsClient",
    "mode_bits",
    "mode_names",
    "purpose_bytes",
    "purpose_name",
]

CONTRACT = "AccessGrants"

#: Access modes and their bits on chain.
MODES: dict[str, int] = {"download": 1, "compute": 2}

#: What a purpose name may be: it is stored as ASCII in 32 bytes.
PURPOSE_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,31}")


def purpose_bytes(purpose: str) -> bytes:
    """The on-chain form of a purpose name: its ASCII, left-aligned in 32 bytes."""
    if not PURPOSE_PATTERN.fullmatch(purpose):
        raise PrivacyError(
            f"purpose {purpose!r} is not allowed; use 1-32 lowercase letters, digits, '.', '_' "
            "or '-', starting with a letter or digit (e.g. research)"
        )
    return purpose.encode().ljust(32, b"\0")


def purpose_name(raw: bytes) -> str:
    """The name of an on-chain purpose."""
    return bytes(raw).rstrip(b"\0").decode("ascii", "replace")


def utc(ts: int) -> str:
    """A unix time for people: ``2026-11-27 18:54 UTC``."""
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ts))


def mode_bits(modes: str) -> int:
    """Bits of ``download``, ``compute`` or ``both`` (or ``download,compute``)."""
    names = ["download", "compute"] if modes == "both" else modes.split(",")
    bits = 0
    for name in names:
        if name.strip() not in MODES:
            raise PrivacyError(f"unknown access mode {name!r}; use download, compute or both")
        bits |= MODES[name.strip()]
    return bits


def mode_names(bits: int) -> list[str]:
    """The names of the modes in ``bits``."""
    return [name for name, bit in MODES.items() if bits & bit]


def _b32(hex_id: str) -> bytes:
    return bytes.fromhex(hex_id.removeprefix("0x"))


@dataclass(frozen=True)
class GrantView:
    """A grant as stored on chain."""

    asset: str
    grantee: str
    modes: list[str]
    purpose: str
    expiry: int
    grantor: str

    def to_json(self) -> dict[str, Any]:
        """The grant as a JSON object."""
        return self.__dict__.copy()


@dataclass(frozen=True)
class GrantEvent:
    """One decoded event of the contract."""

    name: str
    block: int
    tx: str
    args: dict[str, Any]


def _plain(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return bytes(value).hex()
    return value


class GrantsClient(ContractClient):
    """Builds transactions for, and reads, one deployed AccessGrants contract."""

    # -- writes ----------------------------------------------------------------------
    def grant(self, asset: str, grantee: str, modes: int, purpose: str, expiry: int) -> Call:
        """Grant ``grantee`` access to ``asset``."""
        return self._call(
            "grant",
            [_b32(asset), to_checksum_address(grantee), modes, purpose_bytes(purpose), expiry],
            f"grant {mode_names(modes)} on {asset[:12]} to {grantee[:10]}",
        )

    def revoke(self, asset: str, grantee: str, purpose: str) -> Call:
        """Revoke ``grantee``'s grant on ``asset`` for ``purpose``."""
        return self._call(
            "revoke",
            [_b32(asset), to_checksum_address(grantee), purpose_bytes(purpose)],
            f"revoke {purpose} on {asset[:12]}",
        )

    def approve_algorithm(self, dataset: str, algorithm: str, approved: bool) -> Call:
        """Approve (or stop approving) ``algorithm`` for ``dataset``."""
        return self._call(
            "approveAlgorithm",
            [_b32(dataset), _b32(algorithm), approved],
            f"approve {algorithm[:12]} for {dataset[:12]}",
        )

    def set_consent(self, subject: str, purpose: str, given: bool) -> Call:
        """Give or withdraw ``subject``'s consent to ``purpose``."""
        return self._call(
            "setConsent",
            [to_checksum_address(subject), purpose_bytes(purpose), given],
            f"consent {'given' if given else 'withdrawn'} for {purpose}",
        )

    # -- reads -----------------------------------------------------------------------
    def has_access(self, asset: str, grantee: str, mode: int, purpose: str) -> bool:
        """Whether ``grantee`` may now use ``asset`` in ``mode`` for ``purpose``: by the
        contract (the chain's clock) and by this machine's clock (an idle chain's stands still)."""
        fn = self.contract.functions.hasAccess(
            _b32(asset), to_checksum_address(grantee), mode, purpose_bytes(purpose)
        )
        if not fn.call():
            return False
        grant = self.grant_of(asset, grantee, purpose)
        return grant is not None and grant.expiry > time.time()

    def grant_of(self, asset: str, grantee: str, purpose: str) -> GrantView | None:
        """The stored grant of ``grantee`` on ``asset`` for ``purpose``, or None."""
        modes, expiry, grantor = self.contract.functions.grantOf(
            _b32(asset), to_checksum_address(grantee), purpose_bytes(purpose)
        ).call()
        if not modes:
            return None
        return GrantView(
            asset=asset, grantee=to_checksum_address(grantee), modes=mode_names(int(modes)),
            purpose=purpose, expiry=int(expiry), grantor=str(grantor),
        )  # fmt: skip

    def purposes(self, w3: Web3, asset: str, grantee: str) -> list[str]:
        """Every purpose ``grantee`` was ever granted ``asset`` for (held or not), in order."""
        seen: dict[str, None] = {}
        for event in self.events(w3):
            if (
                event.name == "AccessGranted"
                and event.args["asset"] == asset.removeprefix("0x")
                and str(event.args["grantee"]).lower() == grantee.lower()
            ):
                seen[purpose_name(bytes.fromhex(event.args["purpose"]))] = None
        return list(seen)

    def is_approved(self, dataset: str, algorithm: str) -> bool:
        """Whether ``algorithm`` is approved for ``dataset``."""
        return bool(self.contract.functions.isApproved(_b32(dataset), _b32(algorithm)).call())

    def has_withdrawn(self, subject: str, purpose: str) -> bool:
        """Whether ``subject`` withdrew consent to ``purpose``."""
        fn = self.contract.functions.hasWithdrawn(
            to_checksum_address(subject), purpose_bytes(purpose)
        )
        return bool(fn.call())

    def events(self, w3: Web3, *, from_block: int = 0, to_block: int | None = None
               ) -> list[GrantEvent]:  # fmt: skip
        """Every event of the contract in the block range, in chain order."""
        logs = w3.eth.get_logs(
            {
                "address": self.address,
                "fromBlock": from_block,
                "toBlock": "latest" if to_block is None else to_block,
            }
        )
        out = []
        for log in logs:
            name = self._by_topic.get(bytes(log["topics"][0])) if log["topics"] else None
            if name is None:
                continue
            decoded = getattr(self.contract.events, name)().process_log(log)
            out.append(
                GrantEvent(
                    name=name,
                    block=int(log["blockNumber"]),
                    tx="0x" + bytes(log["transactionHash"]).hex(),
                    args={k: _plain(v) for k, v in decoded["args"].items()},
                )
            )
        return out

    @functools.cached_property
    def _by_topic(self) -> dict[bytes, str]:
        names = ("AccessGranted", "AccessRevoked", "AlgorithmApproval", "ConsentChanged")
        return {
            bytes.fromhex(str(getattr(self.contract.events, n)().topic).removeprefix("0x")): n
            for n in names
        }

    def withdrawn_subjects(self, w3: Web3, purpose: str, *, from_block: int = 0) -> set[str]:
        """Subjects (lowercase addresses) whose consent to ``purpose`` is now withdrawn."""
        state: dict[str, bool] = {}
        wanted = purpose_bytes(purpose).hex()
        for event in self.events(w3, from_block=from_block):
            if event.name == "ConsentChanged" and event.args["purpose"] == wanted:
                state[str(event.args["subject"]).lower()] = not event.args["given"]
        return {subject for subject, withdrawn in state.items() if withdrawn}
