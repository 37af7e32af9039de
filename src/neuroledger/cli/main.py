"""The ``neuroledger`` command line: one line per error, ``--json`` on read commands."""

from __future__ import annotations

import difflib
import importlib
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated, Any

import click
import typer
from typer.core import TyperGroup

from neuroledger._fs import is_disk_full
from neuroledger.cli._commands import COMMANDS
from neuroledger.cli._context import CLIContext, err_console
from neuroledger.environment import settings_from_env
from neuroledger.errors import DiskFullError, NeuroLedgerError


def load_command(name: str) -> click.Command:
    """The click command of group (or command) ``name``, importing its module now."""
    target, help_text = COMMANDS[name]
    module, attribute = target.split(":")
    obj = getattr(importlib.import_module(module), attribute)
    holder = typer.Typer()
    if isinstance(obj, typer.Typer):
        holder.add_typer(obj, name=name)  # a group even when it holds one command
    else:
        holder.command(name, help=help_text)(obj)
    holder.command("_")(lambda: None)  # two entries: Typer then always builds a group
    command: click.Command = typer.main.get_command(holder).commands[name]  # type: ignore[attr-defined]
    return command


class LazyGroup(TyperGroup):
    """The top-level group: lists every command from :data:`COMMANDS` without importing it,
    and imports only the one that runs."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*super().list_commands(ctx), *COMMANDS]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        found = super().get_command(ctx, cmd_name)
        if found is not None or cmd_name not in COMMANDS:
            return found
        # A stand-in with the one-line help, for the listing; running it loads the real one.
        return _Placeholder(cmd_name, help=COMMANDS[cmd_name][1])

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        if args and args[0] in COMMANDS:
            return args[0], load_command(args[0]), args[1:]
        if args and not args[0].startswith("-") and args[0] not in self.commands:
            known = self.list_commands(ctx)
            close = difflib.get_close_matches(args[0], known, n=2)
            hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            ctx.fail(f"No such command {args[0]!r}.{hint}")
        return super().resolve_command(ctx, args)


class _Placeholder(click.Command):
    def invoke(self, ctx: click.Context) -> Any:  # not reached: resolve_command loads the real one
        return load_command(str(self.name)).invoke(ctx)


app = typer.Typer(
    name="neuroledger",
    cls=LazyGroup,
    help="NeuroLedger: a trust layer for the AI lifecycle on an EVM blockchain.",
    epilog="Keys in the home are encrypted with one passphrase: commands read it from the "
    "file named by NEUROLEDGER_PASSPHRASE_FILE, or ask for it on a terminal.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def main(
    ctx: typer.Context,
    home: Annotated[
        Path | None,
        typer.Option(
            "--home", help="Home directory (env NEUROLEDGER_HOME; default ~/.neuroledger)."
        ),
    ] = None,
    rpc_url: Annotated[
        str | None,
        typer.Option(
            "--rpc-url",
            help="External EVM JSON-RPC URL (env NEUROLEDGER_RPC_URL); unset = embedded.",
        ),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(
            "--port",
            help="Port of the embedded node (env NEUROLEDGER_NODE_PORT).",
            min=1,
            max=65535,
        ),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
    energy: Annotated[
        bool,
        typer.Option(
            "--energy", help="Print the gas and estimated energy of what the command sent."
        ),
    ] = False,
) -> None:
    """Global options; see each command's --help."""
    del debug, energy  # read by run() before parsing
    ctx.obj = CLIContext(settings_from_env(home, rpc_url, port))


#: The exit code of a command stopped by Ctrl-C (128 + SIGINT), as shells use.
_INTERRUPTED = 130


_INTERRUPTED_LINE = "interrupted; confirmed writes are saved"
#: Seconds a Ctrl-C may take to unwind before the process ends anyway.
_UNWIND_SECONDS = 10.0


def _on_interrupt(signum: int, frame: Any) -> None:
    """Ctrl-C: unwind as KeyboardInterrupt, and end the process anyway if that is lost.

    Python drops a KeyboardInterrupt raised inside a finalizer or a callback from C
    ("Exception ignored in …"), and a long loop would then run on. Every confirmed
    write is already durable, so a hard exit after a grace period loses nothing.
    """

    def hard_exit() -> None:
        sys.stderr.write(_INTERRUPTED_LINE + "\n")
        sys.stderr.flush()
        os._exit(_INTERRUPTED)

    timer = threading.Timer(_UNWIND_SECONDS, hard_exit)
    timer.daemon = True
    timer.start()
    raise KeyboardInterrupt


def run(argv: list[str] | None = None) -> int:
    """Run the CLI; map NeuroLedger errors to one line on stderr and an exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    if "--energy" in args[: args.index("--") if "--" in args else len(args)]:
        import atexit

        atexit.register(_print_energy)
    if argv is None and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _on_interrupt)
    try:
        # Without standalone mode, click returns the code of a `typer.Exit(code)`.
        code = app(args=args, prog_name="neuroledger", standalone_mode=False)
        if code == _INTERRUPTED:  # Typer turns Ctrl-C into Exit(130), silently
            err_console.print(_INTERRUPTED_LINE)
        if isinstance(code, int) and code:
            return _exit(code, argv)
    except NeuroLedgerError as exc:
        if debug:
            raise
        err_console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        return _exit(exc.exit_code, argv)
    except click.exceptions.Abort as exc:
        # click turns Ctrl-C (and end of input at a prompt) into Abort.
        if isinstance(exc.__cause__, KeyboardInterrupt):
            err_console.print(_INTERRUPTED_LINE)
        else:
            err_console.print("aborted")
        return _exit(_INTERRUPTED, argv)
    except click.ClickException as exc:
        exc.show()
        return _exit(exc.exit_code, argv)
    except click.exceptions.Exit as exc:
        return _exit(exc.exit_code, argv)
    except KeyboardInterrupt:
        err_console.print(_INTERRUPTED_LINE)
        return _exit(130, argv)
    except OSError as exc:
        if debug or not (is_disk_full(exc) or exc.filename):
            raise
        if not is_disk_full(exc):  # a path the command cannot create, read or write
            err_console.print(
                f"[red]error:[/red] cannot use {exc.filename}: {exc.strerror or exc}; give a "
                "path whose directory exists (or can be created) and that you may write",
                highlight=False, soft_wrap=True,
            )  # fmt: skip
            return _exit(DiskFullError.exit_code, argv)
        err_console.print(
            f"[red]error:[/red] no space left on the device ({exc.filename or 'a write'}); "
            "free some space and check what the command did before running it again "
            "(a transaction it sent may have been applied)",
            highlight=False, soft_wrap=True,
        )  # fmt: skip
        return _exit(DiskFullError.exit_code, argv)
    return _exit(0, argv)


def _print_energy() -> None:
    """``--energy``: the gas of the transactions this command sent, and its energy."""
    from neuroledger.chain import GAS_SENT, WH_PER_GAS_POS, WH_PER_GAS_POW

    gas = sum(GAS_SENT)
    err_console.print(
        f"energy: {len(GAS_SENT)} transaction(s), {gas:,} gas; about {gas * WH_PER_GAS_POS:.3g} Wh "
        f"on a proof-of-stake network ({gas * WH_PER_GAS_POW / 1000:.3g} kWh on proof of work); see "
        "`neuroledger report energy`",
        highlight=False, soft_wrap=True,
    )  # fmt: skip


def _exit(code: int, argv: list[str] | None) -> int:
    if argv is None:
        sys.exit(code)
    return code


if __name__ == "__main__":
    run()
