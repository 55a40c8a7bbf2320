"""Content-addressed blob storage in the workspace folder (``blobs/``)."""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from assay.errors import NotFound

try:  # POSIX advisory locks; Windows falls back to an age rule
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

# Bookkeeping lives beside the store (``blobs-work/`` next to ``blobs/``), so
# the store itself holds nothing but blobs.
_LOCK = "lock"        # imports hold it shared; a sweep takes it exclusive
_JOURNAL = "journal"  # one file per running import: the blob keys it wrote
_TMP = "tmp"          # half-written blobs before their rename
NO_LOCK_MIN_AGE = 3600.0  # without flock, only journals this old are swept


class Journal:
    """The blob keys one import writes, noted *before* each write, so that a
    crash at any point leaves a list of what may be orphaned."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=folder, suffix=".keys")
        self.path = Path(name)
        self._fh = os.fdopen(fd, "w", encoding="utf-8")
        self.keys: list[str] = []

    def append(self, key: str) -> None:
        self._fh.write(key + "\n")
        self._fh.flush()  # in the OS cache now: survives kill -9 of this process
        self.keys.append(key)

    def close(self) -> None:
        self._fh.close()


class BlobStore:
    """Files kept under ``root/ab/cdef….ext``, named by their SHA-256.

    Writes go to a temporary file first and are renamed into place, so a
    crash never leaves a half-written blob under a real name. Blobs are
    written before the rows that reference them commit; :meth:`session`
    records them so :meth:`sweep` can remove those an import that died left
    unreferenced.
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        self.work = self.root.parent / f"{self.root.name}-work"

    def key_for(self, digest: str, suffix: str) -> str:
        return f"{digest[:2]}/{digest[2:]}{suffix.lower()}"

    def path(self, key: str) -> Path:
        p = (self.root / key).resolve()
        if self.root.resolve() not in p.parents:
            raise NotFound(f"no blob {key!r}")
        return p

    def exists(self, key: str) -> bool:
        return (self.root / key).exists()

    def put(self, key: str, data: bytes) -> None:
        target = self.root / key
        if target.exists():
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp_dir = self.work / _TMP
        tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=tmp_dir, prefix="blob-")
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

    # -------------------------------------------------------- crash litter

    def _lock(self, exclusive: bool, wait: bool):
        """Open and flock ``.lock``; None when ``wait`` is False and it is taken."""
        self.work.mkdir(parents=True, exist_ok=True)
        fh = open(self.work / _LOCK, "a+b")  # noqa: SIM115 - closed by the caller
        if fcntl is not None:
            flags = (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | (0 if wait else fcntl.LOCK_NB)
            try:
                fcntl.flock(fh.fileno(), flags)
            except BlockingIOError:
                fh.close()
                return None
        return fh

    @contextlib.contextmanager
    def session(self) -> Iterator[Journal]:
        """Hold while writing blobs for rows that are not committed yet.

        Imports share the store; a sweep waits for none of them and runs only
        when no session is open. The caller calls :meth:`finish` once the
        rows are committed; otherwise the journal stays for :meth:`sweep`.
        """
        lock = self._lock(exclusive=False, wait=True)
        journal = Journal(self.work / _JOURNAL)
        try:
            yield journal
        finally:
            journal.close()
            lock.close()

    def finish(self, journal: Journal) -> None:
        """The rows referencing the journal's blobs are committed."""
        journal.path.unlink(missing_ok=True)

    def sweep(self, referenced: Callable[[list[str]], Iterable[str]], *,
              min_age: float | None = None) -> int:
        """Remove blobs that imports which did not finish wrote and nothing
        references, and half-written temporary files. Runs only while no
        import holds a session (it never waits for one); returns how many
        blobs it removed. ``referenced(keys)`` returns the keys rows use."""
        jdir, tdir = self.work / _JOURNAL, self.work / _TMP
        if not _has_files(jdir) and not _has_files(tdir):
            return 0
        lock = self._lock(exclusive=True, wait=False)
        if lock is None:
            return 0  # an import is running; the next sweep will do it
        if min_age is None:
            min_age = 0.0 if fcntl is not None else NO_LOCK_MIN_AGE
        removed = 0
        try:
            cutoff = time.time() - min_age
            journals = [j for j in _files(jdir) if _mtime(j) <= cutoff]
            keys: list[str] = []
            for j in journals:
                with contextlib.suppress(OSError):
                    keys.extend(k for k in j.read_text(encoding="utf-8").split("\n") if k)
            keys = sorted(set(keys))
            for start in range(0, len(keys), 500):
                chunk = keys[start:start + 500]
                used = set(referenced(chunk))
                for key in chunk:
                    if key in used:
                        continue
                    try:
                        self.path(key).unlink()
                        removed += 1
                    except (OSError, NotFound):
                        pass
            for f in journals + [t for t in _files(tdir) if _mtime(t) <= cutoff]:
                f.unlink(missing_ok=True)
        finally:
            lock.close()
        return removed


def _files(folder: Path) -> list[Path]:
    try:
        return [p for p in folder.iterdir() if p.is_file()]
    except OSError:
        return []


def _has_files(folder: Path) -> bool:
    try:
        return any(True for _ in os.scandir(folder))
    except OSError:
        return False


def _mtime(p: Path) -> float:
    try:
        return p.stat().st_mtime
    except OSError:
        return 0.0
