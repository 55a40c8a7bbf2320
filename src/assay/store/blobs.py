"""Content-addressed blob storage in the workspace folder (``blobs/``)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from assay.errors import NotFound


class BlobStore:
    """Files kept under ``root/ab/cdef….ext``, named by their SHA-256.

    Writes go to a temporary file first and are renamed into place, so a
    crash never leaves a half-written blob under a real name.
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    def key_for(self, digest: str, suffix: str) -> str:
        return f"{digest[:2]}/{digest[2:]}{suffix.lower()}"

    def path(self, key: str) -> Path:
        p = (self.root / key).resolve()
        if self.root.resolve() not in p.parents:
            raise NotFound(f"no blob {key!r}")
        return p

    def put(self, key: str, data: bytes) -> None:
        target = self.root / key
        if target.exists():
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def get(self, key: str) -> bytes:
        p = self.path(key)
        if not p.is_file():
            raise NotFound(f"no blob {key!r}")
        return p.read_bytes()

