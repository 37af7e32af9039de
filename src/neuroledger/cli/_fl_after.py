"""The `fl` commands after training: status, cancel, claim."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated

import typer

from neuroledger.cli._context import emit
from neuroledger.cli._fl_support import (
    SharedOpt,
    tasks_of,
)
from neuroledger.cli._options import JsonOpt

if TYPE_CHECKING:  # imported where used: `fl prepare` and `fl simulate` need no chain
    pass

__all__ = ["cancel", "claim", "status"]


def status(
    ctx: typer.Context,
    task: Annotated[int, typer.Argument(help="Task id.")],
    shared: SharedOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A task's state on chain and on the board."""
    info = tasks_of(ctx, shared).status(task)
    human = (
        f"task {task}: {info['status']} (deadline "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(info['deadline']))}), "
        f"{info['participants']} participants, rounds "
        f"recorded {info['recorded_round']}/{info['rounds']}, final {info['final_round']}"
        + (f", final model {info['final_model_asset']}" if info["final_model_asset"] else "")
    )
    emit(info, as_json=as_json, human=human)


def cancel(
    ctx: typer.Context,
    task: Annotated[int, typer.Argument(help="Task id.")],
    owner: Annotated[str, typer.Option("--from", help="Identity that owns the task.")],
    shared: SharedOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """End a task you own before its first round; then `fl claim` returns the pool."""
    tasks_of(ctx, shared).cancel(task, owner)
    emit(
        {"task": task, "status": "refunded"},
        as_json=as_json,
        human=f"task {task} cancelled; `neuroledger fl claim {task} --identity {owner}` "
        "returns the pool, and each participant's claim returns its stake",
    )


def claim(
    ctx: typer.Context,
    task: Annotated[int, typer.Argument(help="Task id.")],
    identity: Annotated[str, typer.Option("--identity", help="Identity that claims.")],
    shared: SharedOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Withdraw what an ended task owes you (a task past its deadline is ended first)."""
    info = tasks_of(ctx, shared).claim(task, identity)
    emit(
        info,
        as_json=as_json,
        human=f"task {task} ({info['status']}): {identity} received "
        f"{int(info['received_wei']) / 1e18:.6f} ETH",
    )
