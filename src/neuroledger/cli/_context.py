"""What every CLI command shares: settings from flags and environment, output helpers."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

from neuroledger.config import Settings
from neuroledger.environment import passphrase_from_env
from neuroledger.errors import KeystoreError

if TYPE_CHECKING:  # imported where used: a command that needs no chain starts fast
    from neuroledger.chain import Chain
    from neuroledger.identity import Identities, Keystore
    from neuroledger.provenance import Provenance

__all__ = ["CLIContext", "byte_progress", "context_of", "emit"]


def _console(*, stderr: bool) -> Console:
    # Off a terminal (a pipe, a file, CI logs) lines are never wrapped at 80 columns:
    # paths, ids and commands to copy stay whole. On a terminal Rich fits its width.
    stream = sys.stderr if stderr else sys.stdout
    if stream.isatty():
        return Console(stderr=stderr)
    return Console(stderr=stderr, soft_wrap=True, width=1000)


console = _console(stderr=False)
err_console = _console(stderr=True)


def _passphrase_source(confirm: bool) -> str:
    def ask() -> str:
        value: str = typer.prompt(
            "Keystore passphrase", hide_input=True, confirmation_prompt=confirm
        )
        return value

    return passphrase_from_env(ask)


@dataclass
class CLIContext:
    """Lazily built chain, keystore and identities for one CLI invocation."""

    settings: Settings
    _chain: Chain | None = field(default=None, init=False)
    _keystore: Keystore | None = field(default=None, init=False)
    _home_checked: bool = field(default=False, init=False)
    _names: dict[str, str] | None = field(default=None, init=False)

    def home(self) -> Path:
        """The home directory. Only `neuroledger init` creates one: a mistyped
        ``NEUROLEDGER_HOME`` must not grow a new home, node and contract suite."""
        if not self._home_checked:
            self.settings.check_home()
            self._home_checked = True
        return self.settings.home

    def create_home(self) -> Path:
        """Create the home's folders (owner-only); for `neuroledger init`."""
        self._home_checked = True
        return self.settings.create_home()

    def chain(self) -> Chain:
        """The chain connection (starts the embedded node if needed)."""
        if self._chain is None:
            from neuroledger.chain import Chain

            self.home()
            self._chain = Chain.connect(self.settings)
        return self._chain

    def keystore(self, *, new_passphrase: bool = False) -> Keystore:
        """The home's keystore; asks for the passphrase only when a key is opened."""
        if self._keystore is None:
            from neuroledger.identity import Keystore

            self.home()
            confirm = new_passphrase and not self.settings.keystore_dir.joinpath("keys").exists()
            self._keystore = Keystore(
                self.settings.keystore_dir,
                passphrase=lambda: _passphrase_source(confirm),
                kdf=self.settings.kdf,
            )
        return self._keystore

    def name_of(self, address: str) -> str:
        """What people read for an identity: its local name when this home holds it, else
        its address (shortened)."""
        return self.names().get(address.lower(), address[:10] + "…")

    def names(self) -> dict[str, str]:
        """Local names of the identities this home holds, by identity and owner address
        (lowercase); read once per command."""
        if self._names is None:
            self._names = {}
            with contextlib.suppress(OSError, KeystoreError):
                for r in self.keystore().list():
                    self._names[r.identity.lower()] = self._names[r.owner.lower()] = r.name
        return self._names

    def identities(self, *, new_passphrase: bool = False) -> Identities:
        """Identities service on the configured chain."""
        from neuroledger.identity import Identities

        return Identities(self.chain(), self.keystore(new_passphrase=new_passphrase))

    def provenance(self) -> Provenance:
        """Provenance service on the configured chain, with the home's store and index."""
        from neuroledger.provenance import HashCache, Provenance
        from neuroledger.store import FileStore

        return Provenance(
            self.chain(),
            self.keystore(),
            store=FileStore(self.settings.store_dir),
            index_path=self.settings.index_path,
            hash_cache=HashCache(self.settings.hash_cache_path),
        )


def context_of(ctx: typer.Context) -> CLIContext:
    """The invocation's :class:`CLIContext`, made by the root callback."""
    obj: CLIContext = ctx.obj
    return obj


def emit(data: Any, *, as_json: bool, human: str | None = None) -> None:
    """Print ``data`` as JSON (``--json``) or the human text."""
    if as_json:
        typer.echo(json.dumps(data, indent=2, sort_keys=True, default=str))
    elif human is not None:
        console.print(human, highlight=False, soft_wrap=True)


@contextlib.contextmanager
def byte_progress(
    description: str | Sequence[str], total: int, enabled: bool, *, to: Console | None = None
) -> Iterator[Callable[[int], None] | None]:
    """A byte progress bar on stderr for long work (terminals only); yields its advance function.

    Several descriptions are passes over the same ``total`` bytes (hash, then encrypt): the
    bar shows each pass from 0 to ``total`` under its own name, never a doubled total.
    """
    out = to or err_console
    if not enabled or not out.is_terminal:
        yield None
        return
    phases = [description] if isinstance(description, str) else list(description)
    with Progress(
        "[progress.description]{task.description}", BarColumn(), DownloadColumn(),
        TransferSpeedColumn(), console=out, transient=True,
    ) as bar:  # fmt: skip
        task = bar.add_task(phases[0], total=total)
        done, phase = 0, 0

        def advance(n: int) -> None:
            nonlocal done, phase
            done += n
            while done > total and phase + 1 < len(phases):  # the next pass has begun
                done -= total
                phase += 1
                bar.reset(task, total=total, description=phases[phase])
            bar.update(task, completed=min(done, total))

        yield advance
