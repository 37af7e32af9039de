"""Governance of the suite: the guardian's pause, timelocked changes, their queue.

The contracts that hold value or gate access (``FederatedTask``,
``AccessGrants``) are owned by the suite's ``Timelock``. The guardian pauses
and unpauses them at once; every parameter change (a new guardian, the longest
task duration, an ownership transfer, the timelock's own delay) is proposed
to the timelock, visible on chain as a ``CallScheduled`` event, and executed
only after the delay. :meth:`Governance.status` reads all of it from the chain.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from eth_utils.address import is_address, to_checksum_address
from web3.contract import Contract

from neuroledger.chain import Chain, Receipt, contract_call
from neuroledger.errors import ConfigError
from neuroledger.identity import Keystore

__all__ = ["CHANGES", "GOVERNED", "ContractState", "Governance", "GovernanceStatus", "Operation"]

#: The contracts a guardian pauses and the timelock owns.
GOVERNED = ("FederatedTask", "AccessGrants", "JobEscrow", "ValidationRegistry", "Marketplace")

#: What may be proposed: contract -> function -> its argument types.
CHANGES: dict[str, dict[str, tuple[str, ...]]] = {
    "FederatedTask": {
        "setMaxDuration": ("uint256",),
        "setGuardian": ("address",),
        "transfer_ownership": ("address",),
    },
    "AccessGrants": {"setGuardian": ("address",), "transfer_ownership": ("address",)},
    "JobEscrow": {
        "setFee": ("uint256", "address"),
        "setGuardian": ("address",),
        "transfer_ownership": ("address",),
    },
    "ValidationRegistry": {
        "setParameters": ("uint256", "uint256", "uint256", "uint256", "uint256", "address"),
        "setGuardian": ("address",),
        "transfer_ownership": ("address",),
    },
    "Marketplace": {
        "setParameters": ("uint256", "uint256"),
        "setGuardian": ("address",),
        "transfer_ownership": ("address",),
    },
    "Timelock": {"update_delay": ("uint256",)},
}

#: Blocks read per eth_getLogs request when scanning the timelock's events.
_LOG_CHUNK = 50_000
_ZERO_HASH = b"\0" * 32


@dataclass(frozen=True)
class ContractState:
    """One governed contract: who owns and guards it, whether it is paused."""

    name: str
    address: str
    owner: str
    pending_owner: str | None
    guardian: str | None
    paused: bool
    parameters: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Operation:
    """One call scheduled on the timelock, and where it stands."""

    id: str
    contract: str
    call: str
    state: str  # waiting, ready, done or cancelled
    ready_at: int
    scheduled_block: int
    tx: str


@dataclass(frozen=True)
class GovernanceStatus:
    """Everything governance holds on one chain, read from the chain."""

    chain_id: int
    chain_time: int
    governor: str | None
    timelock: str
    minimum_delay: int
    contracts: list[ContractState]
    operations: list[Operation]

    def to_json(self) -> dict[str, Any]:
        """The status as a JSON object."""
        return asdict(self)


class Governance:
    """Pause, propose, execute and inspect on one chain, acting as local identities."""

    def __init__(self, chain: Chain, keystore: Keystore) -> None:
        self.chain = chain
        self.keystore = keystore

    # -- reads ---------------------------------------------------------------------
    def status(self) -> GovernanceStatus:
        """The pause state of each governed contract and the timelock's queue."""
        record = self.chain.deployment()
        timelock = self.chain.contract("Timelock")
        contracts = [self._state(name) for name in GOVERNED]
        latest = self.chain.w3.eth.get_block("latest")
        governance = record.governance
        return GovernanceStatus(
            chain_id=self.chain.chain_id,
            chain_time=int(latest["timestamp"]),
            governor=governance.governor if governance else None,
            timelock=timelock.address,
            minimum_delay=int(timelock.functions.get_minimum_delay().call()),
            contracts=contracts,
            operations=self.operations(),
        )

    def _state(self, name: str) -> ContractState:
        c = self.chain.contract(name)
        pending = c.functions.pending_owner().call()
        guardian = c.functions.guardian().call()
        parameters = {}
        if name == "FederatedTask":
            parameters["maxDuration"] = int(c.functions.maxDuration().call())
        if name == "JobEscrow":
            parameters["feeBps"] = int(c.functions.feeBps().call())
        if name == "ValidationRegistry":
            for key in ("minStake", "slashBps", "tolerance", "challengeWindow", "withdrawalDelay"):
                parameters[key] = int(getattr(c.functions, key)().call())
        if name == "Marketplace":
            for key in ("royaltyBps", "holdSeconds"):
                parameters[key] = int(getattr(c.functions, key)().call())
        return ContractState(
            name=name,
            address=c.address,
            owner=c.functions.owner().call(),
            pending_owner=None if int(pending, 16) == 0 else pending,
            guardian=None if int(guardian, 16) == 0 else guardian,
            paused=bool(c.functions.paused().call()),
            parameters=parameters,
        )

    def operations(self) -> list[Operation]:
        """Every call scheduled on the timelock, oldest first, with its state now."""
        return [op for op, _ in self._queue()]

    def _queue(self, only: str | None = None) -> list[tuple[Operation, dict[str, Any]]]:
        """The scheduled calls (only the one with id ``only``, if given) with their
        ``CallScheduled`` events, from one scan of the timelock's logs."""
        timelock = self.chain.contract("Timelock")
        names = {entry["address"].lower(): name
                 for name, entry in self.chain.deployment().contracts.items()}  # fmt: skip
        cancelled = {bytes(e["args"]["id"]) for e in self._events(timelock, "Cancelled")}
        out = []
        for event in self._events(timelock, "CallScheduled"):
            op_id, args = bytes(event["args"]["id"]), event["args"]
            if only is not None and "0x" + op_id.hex() != only.lower():
                continue
            target = names.get(str(args["target"]).lower(), str(args["target"]))
            if timelock.functions.is_operation_done(op_id).call():
                state = "done"
            elif op_id in cancelled and not timelock.functions.is_operation(op_id).call():
                state = "cancelled"
            elif timelock.functions.is_operation_ready(op_id).call():
                state = "ready"
            else:
                state = "waiting"
            op = Operation(
                id="0x" + op_id.hex(),
                contract=target,
                call=self._describe(target, bytes(args["payload"])),
                state=state,
                ready_at=int(event["ready_at"]),
                scheduled_block=int(event["blockNumber"]),
                tx="0x" + bytes(event["transactionHash"]).hex(),
            )
            out.append((op, event))
        return out

    def _describe(self, target: str, payload: bytes) -> str:
        if target not in CHANGES:
            return "0x" + payload.hex()
        try:
            fn, args = self.chain.contract(target).decode_function_input(payload)
        except ValueError:
            return "0x" + payload.hex()
        values = ", ".join(str(v) for v in args.values())
        return f"{fn.fn_name}({values})"

    def _events(self, timelock: Contract, name: str) -> list[dict[str, Any]]:
        """The timelock's events ``name`` since its deployment, with ``ready_at`` for
        ``CallScheduled`` (the block's time plus the delay)."""
        start = int(self.chain.deployment().contracts["Timelock"].get("block") or 0)
        end = int(self.chain.w3.eth.block_number)
        event = getattr(timelock.events, name)
        out: list[dict[str, Any]] = []
        for first in range(start, end + 1, _LOG_CHUNK):
            last = min(end, first + _LOG_CHUNK - 1)
            for log in event().get_logs(from_block=first, to_block=last):
                entry = dict(log)
                if name == "CallScheduled":
                    block = self.chain.w3.eth.get_block(log["blockNumber"])
                    entry["ready_at"] = int(block["timestamp"]) + int(log["args"]["delay"])
                out.append(entry)
        return out

    # -- writes --------------------------------------------------------------------
    def pause(self, contract: str, *, by: str) -> Receipt:
        """The guardian ``by`` pauses ``contract``: new work stops, exits go on."""
        return self._send(by, self._governed(contract), "pause", [], f"pause {contract}")

    def unpause(self, contract: str, *, by: str) -> Receipt:
        """The guardian ``by`` lifts the pause of ``contract``."""
        return self._send(by, self._governed(contract), "unpause", [], f"unpause {contract}")

    def propose(
        self,
        contract: str,
        function: str,
        args: Sequence[str],
        *,
        by: str,
        delay: int | None = None,
        salt: bytes | None = None,
    ) -> Operation:
        """Schedule ``contract.function(*args)`` on the timelock; it runs after ``delay``
        (default: the timelock's minimum) once someone executes it."""
        types = self._change(contract, function)
        if len(args) != len(types):
            raise ConfigError(
                f"{contract}.{function} takes {len(types)} argument(s) ({', '.join(types)}), "
                f"got {len(args)}"
            )
        values = [self._value(t, a) for t, a in zip(types, args, strict=True)]
        target = self.chain.contract(contract)
        payload = bytes.fromhex(target.encode_abi(function, args=values).removeprefix("0x"))
        timelock = self.chain.contract("Timelock")
        minimum = int(timelock.functions.get_minimum_delay().call())
        wait = minimum if delay is None else int(delay)
        if wait < minimum:
            raise ConfigError(
                f"a delay of {wait} s is below the timelock's minimum of {minimum} s; "
                f"give --delay {minimum} or more"
            )
        salt = salt or os.urandom(32)  # so the same change may be proposed again later
        schedule = [target.address, 0, payload, _ZERO_HASH, salt, wait]
        receipt = self._send(by, timelock, "schedule", schedule, f"propose {contract}.{function}")
        op_id = bytes(
            timelock.functions.hash_operation(target.address, 0, payload, _ZERO_HASH, salt).call()
        )
        block = self.chain.w3.eth.get_block(receipt.block_number)
        return Operation(
            id="0x" + op_id.hex(),
            contract=contract,
            call=self._describe(contract, payload),
            state="waiting",
            ready_at=int(block["timestamp"]) + wait,
            scheduled_block=receipt.block_number,
            tx=receipt.tx_hash,
        )

    def execute(self, op_id: str, *, by: str) -> Receipt:
        """Run a ready operation (the executor ``by`` sends it)."""
        op, scheduled = self._scheduled(op_id)
        if op.state != "ready":
            raise ConfigError(
                f"operation {op.id} is {op.state}"
                + (f"; it is ready at unix time {op.ready_at}" if op.state == "waiting" else "")
            )
        args = scheduled["args"]
        salt = self._salt(op_id)
        call = [args["target"], 0, bytes(args["payload"]), bytes(args["predecessor"]), salt]
        timelock = self.chain.contract("Timelock")
        return self._send(by, timelock, "execute", call, f"execute {op.call}")

    def cancel(self, op_id: str, *, by: str) -> Receipt:
        """Cancel a waiting or ready operation (a proposer ``by`` sends it)."""
        op, _ = self._scheduled(op_id)
        if op.state in ("done", "cancelled"):
            raise ConfigError(f"operation {op.id} is {op.state}: there is nothing to cancel")
        timelock = self.chain.contract("Timelock")
        return self._send(by, timelock, "cancel", [bytes.fromhex(op.id[2:])], f"cancel {op.call}")

    # -- helpers -------------------------------------------------------------------
    def _scheduled(self, op_id: str) -> tuple[Operation, dict[str, Any]]:
        for found in self._queue(only=op_id):
            return found
        raise ConfigError(
            f"no operation {op_id} was scheduled on this chain's timelock; "
            "`neuroledger gov status` lists them"
        )

    def _salt(self, op_id: str) -> bytes:
        timelock = self.chain.contract("Timelock")
        for event in self._events(timelock, "CallSalt"):
            if "0x" + bytes(event["args"]["id"]).hex() == op_id.lower():
                return bytes(event["args"]["salt"])
        return _ZERO_HASH

    def _governed(self, contract: str) -> Contract:
        if contract not in GOVERNED:
            raise ConfigError(_unknown(contract, GOVERNED, "governed contract"))
        return self.chain.contract(contract)

    def _change(self, contract: str, function: str) -> tuple[str, ...]:
        if contract not in CHANGES:
            raise ConfigError(_unknown(contract, CHANGES, "contract with parameters"))
        if function not in CHANGES[contract]:
            raise ConfigError(_unknown(function, CHANGES[contract], f"change of {contract}"))
        return CHANGES[contract][function]

    def _value(self, kind: str, text: str) -> Any:
        if kind == "uint256":
            try:
                value = int(text, 0)
            except ValueError:
                raise ConfigError(f"{text!r} is not a whole number; give e.g. 86400") from None
            if value < 0:
                raise ConfigError(f"{text} is negative; give a whole number of 0 or more")
            return value
        if is_address(text):
            return to_checksum_address(text)
        # A local identity's current owner key: the key that will pause or accept ownership.
        return self.keystore.get(text).owner

    def _send(self, by: str, contract: Contract, fn: str, args: list[Any], label: str) -> Receipt:
        account = self.keystore.owner_account(by)
        return self.chain.sender(account).send(contract_call(contract, fn, args, label=label))


def _unknown(name: str, known: Sequence[str] | dict[str, Any], what: str) -> str:
    choices = sorted(known)
    close = difflib.get_close_matches(name, choices, n=1)
    hint = f"; did you mean {close[0]}?" if close else ""
    return f"{name!r} is not a {what} (one of {', '.join(choices)}){hint}"
