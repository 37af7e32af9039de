"""Content-addressed blobs: stored by SHA-256, checked on every read.

>>> import tempfile
>>> from pathlib import Path
>>> store = FileStore(Path(tempfile.mkdtemp()))
>>> digest = store.put(b"hello")
>>> digest
'2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824'
>>> store.get(digest)
b'hello'

Callers depend on the :class:`BlobStore` protocol only, so another backend (an
S3-compatible bucket, an HTTP gateway) can be added without touching them.
"""

from typing import TYPE_CHECKING

from neuroledger._lazy import lazy_exports

if TYPE_CHECKING:
    from neuroledger.store._base import BlobStore, is_digest
    from neuroledger.store._files import FileStore

__getattr__, __dir__ = lazy_exports(__name__, __file__)

__all__ = ["BlobStore", "FileStore", "is_digest"]
