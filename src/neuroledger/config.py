"""Settings: where NeuroLedger keeps its state and which chain it talks to.

Settings are passed explicitly; library code never reads the environment.
The CLI maps ``NEUROLEDGER_*`` variables onto a :class:`Settings` object.

>>> from pathlib import Path
>>> s = Settings(home=Path("/tmp/nl-home"))
>>> s.chain_dir
PosixPath('/tmp/nl-home/chain')
>>> s.embedded
True
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass
from pathlib import Path

from neuroledger.errors import ConfigError

__all__ = ["EMBEDDED_CHAIN_ID", "KdfParams", "Settings", "default_home"]

#: Chain id of the embedded anvil chain ("NL" = 0x4e4c), distinct from anvil's
#: default 31337 so that records for the embedded chain never mix with those
#: of an external development node.
EMBEDDED_CHAIN_ID = 20044


def default_home() -> Path:
    """Return the default home directory, ``~/.neuroledger``."""
    return Path.home() / ".neuroledger"


@dataclass(frozen=True, kw_only=True)
class KdfParams:
    """Scrypt cost of the Web3 Secret Storage keystore files NeuroLedger writes.

    The default is the cost geth and eth-account use (n = 2**18), about a
    second and 256 MiB per key on a laptop. :meth:`light` (n = 2**14) is for
    tests and throw-away demo homes only.
    """

    n: int = 2**18

    @classmethod
    def standard(cls) -> KdfParams:
        """Return the interactive-login cost used by geth (n = 2**18)."""
        return cls(n=2**18)

    @classmethod
    def light(cls) -> KdfParams:
        """Return a cheap cost (n = 2**14) for tests and demo homes."""
        return cls(n=2**14)


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything NeuroLedger needs to know about where it runs.

    ``rpc_url`` of ``None`` means the embedded anvil node under ``home``.
    """

    home: Path = dataclasses.field(default_factory=default_home)
    rpc_url: str | None = None
    anvil_path: Path | None = None
    node_port: int | None = None
    #: Seconds between the embedded node's blocks; 0 mines each write at once. A real
    #: network has seconds between blocks: tests and the demo run with 2 as well.
    block_time: float = 0.0
    kdf: KdfParams = dataclasses.field(default_factory=KdfParams)
    receipt_timeout: float = 120.0
    min_priority_fee_wei: int = 1_000_000_000  # 1 gwei floor on the tip
    min_max_fee_wei: int = 1_000_000_000  # floor on maxFeePerGas
    confirmations: int = 0  # blocks after which the index treats a block as final

    @property
    def embedded(self) -> bool:
        """True when NeuroLedger runs its own anvil node."""
        return self.rpc_url is None

    @property
    def chain_dir(self) -> Path:
        """Directory of the embedded node: state dumps, lock, logs."""
        return self.home / "chain"

    @property
    def keystore_dir(self) -> Path:
        """Directory of the encrypted keystore."""
        return self.home / "keystore"

    @property
    def deployments_dir(self) -> Path:
        """Directory of per-chain deployment records."""
        return self.home / "deployments"

    @property
    def store_dir(self) -> Path:
        """Directory of the content-addressed blob store."""
        return self.home / "store"

    @property
    def index_path(self) -> Path:
        """SQLite file of the local index of on-chain records."""
        return self.home / "index.sqlite"

    @property
    def hash_cache_path(self) -> Path:
        """SQLite file caching file digests by (size, mtime, ctime, inode)."""
        return self.home / "hash-cache.sqlite"

    def create_home(self) -> Path:
        """Create the home's folders, readable by the owner only (``neuroledger init``)."""
        for folder in (self.home, self.keystore_dir, self.chain_dir, self.deployments_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self.home.chmod(0o700)
        self.keystore_dir.chmod(0o700)
        return self.home

    def check_home(self) -> Path:
        """The home, if one exists here; only ``create_home`` makes one, so a mistyped
        ``NEUROLEDGER_HOME`` never grows a new home, node and contract suite."""
        if not any(p.is_dir() for p in (self.keystore_dir, self.chain_dir, self.deployments_dir)):
            raise ConfigError(
                f"there is no NeuroLedger home at {self.home}; create one with "
                "`neuroledger init`, or point --home / NEUROLEDGER_HOME at an existing home"
            )
        with contextlib.suppress(OSError):  # a home made by an older version may be open
            if self.home.stat().st_mode & 0o077:
                self.home.chmod(0o700)
        return self.home

    def with_(self, **changes: object) -> Settings:
        """Return a copy with some fields changed."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]
