"""The one reader of ``NEUROLEDGER_*`` variables: the edge where a process's environment
becomes explicit :class:`~neuroledger.config.Settings`.

Library code never reads the environment; the CLI and the Flower ServerApp both call
this module, so a variable means the same thing wherever NeuroLedger runs.

>>> s = settings_from_env(environ={"NEUROLEDGER_HOME": "/tmp/nl-env", "NEUROLEDGER_BLOCK_TIME": "2"})
>>> str(s.home), s.block_time
('/tmp/nl-env', 2.0)
>>> shared_dir(s, environ={})
PosixPath('/tmp/nl-env/shared')
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from neuroledger.config import KdfParams, Settings, default_home
from neuroledger.errors import ConfigError, KeystoreError

__all__ = [
    "EXTERNAL_CONFIRMATIONS",
    "passphrase_from_env",
    "settings_from_env",
    "shared_dir",
]

#: Confirmation depth on an external chain (the embedded chain has one node and never
#: reorganises, unless ``NEUROLEDGER_CONFIRMATIONS`` says otherwise).
EXTERNAL_CONFIRMATIONS = 12


def _number(environ: Mapping[str, str], name: str, kind: type[float] | type[int]) -> float | None:
    raw = environ.get(name)
    if not raw:
        return None
    try:
        return kind(raw)
    except ValueError:
        return None if kind is float else -1


def settings_from_env(
    home: Path | None = None,
    rpc_url: str | None = None,
    port: int | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Settings from flags (``home``, ``rpc_url``, ``port``), falling back to
    ``NEUROLEDGER_HOME``, ``_RPC_URL``, ``_NODE_PORT``, ``_SCRYPT_N``,
    ``_CONFIRMATIONS``, ``_BLOCK_TIME`` and ``_ANVIL``."""
    env = os.environ if environ is None else environ
    home = home or Path(env.get("NEUROLEDGER_HOME") or default_home())
    rpc_url = rpc_url or env.get("NEUROLEDGER_RPC_URL") or None
    if port is None and env.get("NEUROLEDGER_NODE_PORT"):
        try:
            port = int(env["NEUROLEDGER_NODE_PORT"])
        except ValueError:
            raise ConfigError("NEUROLEDGER_NODE_PORT must be a port number such as 8545") from None
    kdf = KdfParams()
    if env.get("NEUROLEDGER_SCRYPT_N"):
        n = int(_number(env, "NEUROLEDGER_SCRYPT_N", int) or 0)
        if n < 2**10 or n & (n - 1):
            raise ConfigError("NEUROLEDGER_SCRYPT_N must be a power of two of at least 1024")
        kdf = KdfParams(n=n)
    confirmations = None
    if env.get("NEUROLEDGER_CONFIRMATIONS"):
        confirmations = int(_number(env, "NEUROLEDGER_CONFIRMATIONS", int) or 0)
        if confirmations < 0:
            raise ConfigError("NEUROLEDGER_CONFIRMATIONS must be a whole number of blocks, e.g. 12")
    block_time = 0.0
    if env.get("NEUROLEDGER_BLOCK_TIME"):
        value = _number(env, "NEUROLEDGER_BLOCK_TIME", float)
        block_time = -1.0 if value is None else value
        if not 0 <= block_time <= 60:
            raise ConfigError(
                "NEUROLEDGER_BLOCK_TIME must be seconds between the embedded node's blocks, "
                "0 to 60 (e.g. 2)"
            )
    anvil = env.get("NEUROLEDGER_ANVIL")
    if rpc_url is not None and not rpc_url.startswith(("http://", "https://")):
        raise ConfigError(f"RPC URL {rpc_url!r} must start with http:// or https://")
    settings = Settings(
        home=home.expanduser().resolve(),
        rpc_url=rpc_url,
        node_port=port,
        kdf=kdf,
        anvil_path=Path(anvil) if anvil else None,
        block_time=block_time,
    )
    if confirmations is not None:
        settings = settings.with_(confirmations=confirmations)
    elif rpc_url is not None:
        settings = settings.with_(confirmations=EXTERNAL_CONFIRMATIONS)
    return settings


def shared_dir(
    settings: Settings, override: Path | None = None, *, environ: Mapping[str, str] | None = None
) -> Path:
    """The folder a federated task's parties share: ``override``, else
    ``NEUROLEDGER_SHARED``, else ``<home>/shared``."""
    env = os.environ if environ is None else environ
    return override or Path(env.get("NEUROLEDGER_SHARED") or settings.home / "shared")


def passphrase_from_env(
    prompt: Callable[[], str] | None = None, *, environ: Mapping[str, str] | None = None
) -> str:
    """The keystore passphrase: the file named by ``NEUROLEDGER_PASSPHRASE_FILE`` (trailing
    line breaks dropped), else ``prompt()`` on a terminal. Never a variable holding
    the passphrase itself: the environment of a process is readable by others."""
    env = os.environ if environ is None else environ
    path = env.get("NEUROLEDGER_PASSPHRASE_FILE")
    if path:
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise KeystoreError(
                f"cannot read the passphrase file named by NEUROLEDGER_PASSPHRASE_FILE ({exc}); "
                "fix the path or unset it to be prompted"
            ) from None
        return text.rstrip("\r\n")
    if prompt is None or not sys.stdin.isatty():
        raise KeystoreError(
            "no passphrase: set NEUROLEDGER_PASSPHRASE_FILE to a file holding it, "
            "or run the command in a terminal to be prompted"
        )
    return prompt()
