"""What the `fl` commands share: the service of a home, log lines that name identities, progress bars, amounts and durations."""

from __future__ import annotations

import logging
import re
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from neuroledger.cli._context import context_of, err_console
from neuroledger.environment import shared_dir
from neuroledger.errors import FederatedError
from neuroledger.federated import DATASETS, RULES

if TYPE_CHECKING:  # imported where used: `fl prepare` and `fl simulate` need no chain
    from neuroledger.federated import FederatedTasks

__all__ = [
    "ADDRESS",
    "AGGREGATORS",
    "DATASET_NAMES",
    "UNITS",
    "NamesIdentities",
    "SharedOpt",
    "duration",
    "rounds_bar",
    "say",
    "setup_logging",
    "tasks_of",
    "wei",
]


AGGREGATORS = RULES


DATASET_NAMES = DATASETS


SharedOpt = Annotated[
    Path | None,
    typer.Option(
        "--shared",
        help="Directory shared by the task's processes: content store and message board "
        "(env NEUROLEDGER_SHARED; default HOME/shared).",
    ),
]


def tasks_of(ctx: typer.Context, shared: Path | None) -> FederatedTasks:
    from neuroledger.federated import FederatedTasks
    from neuroledger.provenance import HashCache, Provenance
    from neuroledger.store import FileStore

    c = context_of(ctx)
    where = shared_dir(c.settings, shared)

    def provenance(store: FileStore) -> Provenance:
        return Provenance(
            c.chain(),
            c.keystore(),
            store=store,
            index_path=c.settings.index_path,
            hash_cache=HashCache(c.settings.hash_cache_path),
        )

    return FederatedTasks.open(c.chain(), c.keystore(), where.expanduser().resolve(), provenance)


ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


class NamesIdentities(logging.Formatter):
    """Writes an address this home holds as its identity's name (others stay addresses)."""

    def __init__(self, names: dict[str, str]) -> None:
        super().__init__("fl %(levelname)s: %(message)s")
        self.names = names

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        return ADDRESS.sub(lambda m: self.names.get(m.group(0).lower(), m.group(0)), text)


def setup_logging(ctx: typer.Context) -> None:
    """Round events (rejections, dropouts, attestations) as one line each on stderr."""
    logger = logging.getLogger("neuroledger.federated")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(NamesIdentities(context_of(ctx).names()))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


def say(line: str) -> None:
    """Off a terminal (no bar), one line on stderr per step of a long command."""
    if not err_console.is_terminal:
        err_console.print(line, highlight=False)


def rounds_bar(total: int, what: str) -> Progress:
    return Progress(
        TextColumn(what),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        console=err_console,
        transient=True,
        disable=not err_console.is_terminal,
    )


def wei(eth: str, option: str = "--pool") -> int:
    try:
        value = Decimal(eth)
    except InvalidOperation:
        raise FederatedError(f"{option} {eth!r} is not an amount of ETH such as 0.5") from None
    if not value.is_finite() or value < 0:
        raise FederatedError(f"{option} must be a finite amount of ETH, not negative")
    return int(value * 10**18)


UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration(text: str) -> int:
    """``90s``, ``30m``, ``12h`` or ``7d`` in seconds."""
    number, unit = text.strip()[:-1], text.strip()[-1:].lower()
    if unit not in UNITS or not number.isdigit() or int(number) == 0:
        raise FederatedError(f"--deadline {text!r} is not a duration such as 90s, 30m, 12h or 7d")
    seconds = int(number) * UNITS[unit]
    if seconds > 366 * 86400:
        raise FederatedError(f"--deadline {text!r} is over the contract's limit of 366 days")
    return seconds
