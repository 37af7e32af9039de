"""Manifests of files and model directories, compatible with OpenSSF model-signing v1.0.

A manifest lists every file of a model with its SHA-256, under its path
relative to the model root (a single file is named ``"."``), sorted by path
components, exactly as model-signing v1.0 does.

Two digests are derived from it. :attr:`Manifest.subject_digest` is
model-signing's subject digest: SHA-256 over the raw per-file digests in
order. It does not cover the file names (model-signing protects those with
the signature over the whole statement), so renaming a file without changing
the order leaves it unchanged. The asset's content digest,
:attr:`Manifest.digest`, therefore hashes the RFC 8785 canonical form of the
resource list itself: names, algorithms and digests.

Files are hashed in parallel threads (hashlib releases the GIL), two per core
so that reads overlap hashing, largest first so that the threads finish
together, each one streamed through a fixed buffer.
A :class:`~neuroledger.provenance._hashcache.HashCache` skips files whose size,
mtime, ctime and inode are unchanged since they were last hashed.
"""

from __future__ import annotations

import hashlib
import os
import stat
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from neuroledger.core import canonical
from neuroledger.errors import ManifestError
from neuroledger.provenance._hashcache import FileKey, HashCache

__all__ = [
    "DEFAULT_IGNORE",
    "PREDICATE_TYPE",
    "FileEntry",
    "Manifest",
    "ManifestDiff",
    "build_manifest",
    "hash_file",
]

#: The model-signing v1.0 predicate type.
PREDICATE_TYPE = "https://model_signing/signature/v1.0"

#: Paths model-signing ignores by default (git metadata), relative to the model root.
DEFAULT_IGNORE = (".git", ".gitattributes", ".github", ".gitignore")

_BUFFER = 1 << 20  # 1 MiB per thread


@dataclass(frozen=True)
class FileEntry:
    """One file of a manifest: its relative POSIX path, SHA-256 (hex) and size."""

    name: str
    digest: str
    size: int


@dataclass(frozen=True)
class ManifestDiff:
    """How a directory differs from a manifest."""

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)

    def describe(self) -> str:
        """One line naming what differs."""
        parts = [
            f"{label}: {', '.join(names[:5])}{' …' if len(names) > 5 else ''}"
            for label, names in (
                ("changed", self.changed),
                ("added", self.added),
                ("removed", self.removed),
            )
            if names
        ]
        return "; ".join(parts) or "no difference"


@dataclass(frozen=True)
class Manifest:
    """The files of a model and their digests, in model-signing order."""

    model_name: str
    files: tuple[FileEntry, ...]
    allow_symlinks: bool = False
    ignore_paths: tuple[str, ...] = DEFAULT_IGNORE
    stats: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    @property
    def resources(self) -> list[dict[str, str]]:
        """The model-signing resource descriptors, in order."""
        return [{"name": e.name, "algorithm": "sha256", "digest": e.digest} for e in self.files]

    @property
    def digest(self) -> str:
        """The asset's content digest: SHA-256 of the canonical resource list (names included)."""
        return hashlib.sha256(canonical(self.resources)).hexdigest()

    @property
    def subject_digest(self) -> str:
        """model-signing's subject digest: SHA-256 over the raw file digests in order."""
        h = hashlib.sha256()
        for entry in self.files:
            h.update(bytes.fromhex(entry.digest))
        return h.hexdigest()

    @property
    def size(self) -> int:
        """Total bytes of all files."""
        return sum(e.size for e in self.files)

    def to_statement(self) -> dict[str, Any]:
        """The in-toto statement model-signing v1.0 signs (resources and serialization)."""
        serialization: dict[str, Any] = {
            "method": "files",
            "hash_type": "sha256",
            "allow_symlinks": self.allow_symlinks,
        }
        if self.ignore_paths:
            serialization["ignore_paths"] = list(self.ignore_paths)
        return {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": self.model_name, "digest": {"sha256": self.subject_digest}}],
            "predicateType": PREDICATE_TYPE,
            "predicate": {"serialization": serialization, "resources": self.resources},
        }

    @classmethod
    def from_statement(cls, data: dict[str, Any]) -> Manifest:
        """Rebuild a manifest from :meth:`to_statement` output; checks the subject digest."""
        try:
            predicate = data["predicate"]
            serialization = predicate["serialization"]
            files = tuple(
                FileEntry(name=str(r["name"]), digest=str(r["digest"]), size=-1)
                for r in predicate["resources"]
            )
            subject = data["subject"][0]
            manifest = cls(
                model_name=str(subject["name"]),
                files=tuple(sorted(files, key=lambda e: _sort_key(e.name))),
                allow_symlinks=bool(serialization.get("allow_symlinks", False)),
                ignore_paths=tuple(serialization.get("ignore_paths", ())),
            )
            expected = subject["digest"]["sha256"]
        except (KeyError, IndexError, TypeError) as exc:
            raise ManifestError(
                f"not a model-signing v1.0 manifest statement: missing {exc}"
            ) from None
        if manifest.subject_digest != expected:
            raise ManifestError(
                f"manifest statement is inconsistent: its resources hash to {manifest.subject_digest}, "
                f"its subject says {expected}"
            )
        return manifest

    def diff(self, other: Manifest) -> ManifestDiff:
        """What ``other`` (the files on disk) changed relative to this manifest."""
        mine = {e.name: e.digest for e in self.files}
        theirs = {e.name: e.digest for e in other.files}
        return ManifestDiff(
            added=tuple(sorted(set(theirs) - set(mine))),
            removed=tuple(sorted(set(mine) - set(theirs))),
            changed=tuple(sorted(n for n in mine.keys() & theirs.keys() if mine[n] != theirs[n])),
        )


def _sort_key(name: str) -> tuple[str, ...]:
    # model-signing sorts pathlib.PurePosixPath objects, which compare by components.
    return PurePosixPath(name).parts or (".",)


def hash_file(path: Path | str, *, progress: Callable[[int], None] | None = None) -> str:
    """SHA-256 (hex) of one file, streamed through a 1 MiB buffer."""
    h = hashlib.sha256()
    buf = bytearray(_BUFFER)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as fh:
        if hasattr(os, "posix_fadvise"):
            os.posix_fadvise(fh.fileno(), 0, 0, os.POSIX_FADV_SEQUENTIAL)
        while n := fh.readinto(buf):
            h.update(view[:n])
            if progress is not None:
                progress(n)
    return h.hexdigest()


@dataclass(frozen=True)
class _Found:
    name: str
    path: str
    key: FileKey


def _walk(root: Path, ignore: Iterable[str], allow_symlinks: bool) -> list[_Found]:
    """Every file model-signing would hash under ``root``, with its stat key."""
    ignored = [PurePosixPath(p) for p in ignore]
    found: list[_Found] = []

    def visit(path: str, rel: PurePosixPath, depth: int) -> None:
        try:
            st_link = os.lstat(path)
        except FileNotFoundError:
            raise ManifestError(f"{path} does not exist; check the path") from None
        except PermissionError:
            raise ManifestError(f"{path} cannot be read: permission denied") from None
        if stat.S_ISLNK(st_link.st_mode):
            if not allow_symlinks:
                raise ManifestError(
                    f"{path} is a symbolic link; pass --allow-symlinks to hash what it points to, "
                    "or --ignore it"
                )
            try:
                st = os.stat(path)
            except OSError as exc:
                kind = "a symlink loop" if exc.errno == 40 else "a broken symlink"
                raise ManifestError(f"{path} is {kind}; remove it or --ignore it") from None
            if stat.S_ISDIR(st.st_mode):
                return  # as model-signing: symlinked directories are not followed
        else:
            st = st_link
        if stat.S_ISDIR(st.st_mode):
            try:
                names = sorted(os.listdir(path))
            except PermissionError:
                raise ManifestError(
                    f"directory {path} cannot be listed: permission denied"
                ) from None
            for name in names:
                child = rel / name
                if any(child.is_relative_to(i) for i in ignored):
                    continue
                visit(os.path.join(path, name), child, depth + 1)
        elif stat.S_ISREG(st.st_mode):
            if not os.access(path, os.R_OK):
                raise ManifestError(f"{path} cannot be read: permission denied; fix its mode")
            found.append(
                _Found(
                    name=str(rel) if depth else ".",
                    path=path,
                    key=FileKey(
                        path=os.path.abspath(path),
                        size=st.st_size,
                        mtime_ns=st.st_mtime_ns,
                        ctime_ns=st.st_ctime_ns,
                        inode=st.st_ino,
                        device=st.st_dev,
                    ),
                )
            )
        else:
            raise ManifestError(
                f"{path} is neither a file nor a directory (a socket, pipe or device); --ignore it"
            )

    visit(str(root), PurePosixPath("."), 0)
    return found


def build_manifest(
    path: Path | str,
    *,
    ignore: Iterable[str] = (),
    allow_symlinks: bool = False,
    cache: HashCache | None = None,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> Manifest:
    """Hash the file or directory at ``path`` into a model-signing compatible manifest.

    ``ignore`` adds paths (relative to ``path``) to model-signing's default git
    ignores. With ``cache``, unchanged files are not re-hashed. ``progress`` is
    called with byte counts as hashing advances (from worker threads).
    """
    root = Path(path)
    ignore_paths = tuple(dict.fromkeys([*DEFAULT_IGNORE, *(str(PurePosixPath(i)) for i in ignore)]))
    found = _walk(root, ignore_paths, allow_symlinks)
    started_ns = time.time_ns()
    known = cache.lookup([f.key for f in found]) if cache is not None else {}
    todo = [f for f in found if f.key not in known]
    if progress is not None:
        progress(sum(f.key.size for f in found if f.key in known))
    todo.sort(key=lambda f: f.key.size, reverse=True)  # largest first: cores finish together
    # Two threads per core: one can wait on the disk while the other hashes.
    threads = max(1, min(workers or 2 * (os.cpu_count() or 1), len(todo)))
    try:
        if threads == 1:
            hashed = [hash_file(f.path, progress=progress) for f in todo]
        else:
            with ThreadPoolExecutor(max_workers=threads) as pool:
                hashed = list(pool.map(lambda f: hash_file(f.path, progress=progress), todo))
    except PermissionError as exc:
        raise ManifestError(f"{exc.filename} cannot be read: permission denied") from None
    except FileNotFoundError as exc:
        raise ManifestError(
            f"{exc.filename} disappeared while it was being hashed; retry"
        ) from None
    digests = dict(known)
    digests.update(zip((f.key for f in todo), hashed, strict=True))
    if cache is not None and todo:
        cache.store([(f.key, d) for f, d in zip(todo, hashed, strict=True)], now_ns=started_ns)
    entries = tuple(
        sorted(
            (FileEntry(name=f.name, digest=digests[f.key], size=f.key.size) for f in found),
            key=lambda e: _sort_key(e.name),
        )
    )
    name = root.name or os.path.basename(root.resolve())
    return Manifest(
        model_name=name,
        files=entries,
        allow_symlinks=allow_symlinks,
        ignore_paths=ignore_paths,
        stats={"files": len(found), "hashed": len(todo), "cached": len(found) - len(todo)},
    )
