"""Background curation runs: long computations over a dataset's item
embeddings (the embedding map's projection now; duplicates and outliers
can run through the same registry) started on request, one worker thread
per run, with their result cached in a file.

A run is named by a key — ``(kind, dataset id, space, variant)``, e.g.
``("map", 3, "text", "umap")`` — and a *version*: a string that changes
whenever the input changes (the caller derives it from the space's shard
list and the dataset's items). :meth:`Registry.start` answers at once:

- the cached file holds this version: ``done`` (nothing runs);
- a run of this key and version is queued or running: its status;
- otherwise a new worker thread starts (``queued`` → ``running`` →
  ``done``, or ``failed`` with the error's message); a run of an older
  version still going keeps going, but its result is stored under its own
  version and is not served for the new one.

Status is a dict: ``state``, ``message``, ``progress`` (0..1 as the
computation reports it), ``version``, ``started``/``finished`` (unix
seconds). The registry is per process (in memory): another process sees
the cached file once it is written, never another process's running run.
The file is written to a temporary name and renamed, so a reader sees a
whole file or none.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("assay.jobs.curation")

STATES = ("queued", "running", "done", "failed")


def _done(version: str) -> dict:
    return {"state": "done", "message": "", "progress": 1.0, "version": version,
            "started": None, "finished": None}


class Run:
    def __init__(self, version: str):
        self.version = version
        self.state = "queued"
        self.message = ""
        self.progress = 0.0
        self.started = time.time()
        self.finished: float | None = None
        self.thread: threading.Thread | None = None

    def status(self) -> dict:
        return {"state": self.state, "message": self.message, "progress": round(self.progress, 3),
                "version": self.version, "started": self.started, "finished": self.finished}


class Registry:
    """Runs by key, in this process."""

    def __init__(self):
        self._lock = threading.Lock()
        self._runs: dict[tuple, Run] = {}

    def status(self, key: tuple, version: str, cached: Callable[[], str | None]) -> dict:
        """The run's status without starting anything: ``done`` when the
        cache holds ``version``; ``missing`` when nothing was started."""
        with self._lock:
            run = self._runs.get(key)
            if run is not None and run.version == version and run.state != "done":
                return run.status()
        if cached() == version:
            return _done(version)
        return {"state": "missing", "message": "", "progress": 0.0, "version": version,
                "started": None, "finished": None}

    def start(self, key: tuple, version: str, cached: Callable[[], str | None],
              compute: Callable[[Callable[[float], None]], Any], store: Callable[[Any], None]) -> dict:
        """Start the run (see the module docstring). ``cached()`` is the
        version in the cache file (None without one); ``compute(progress)``
        does the work, calling ``progress(fraction)`` now and then;
        ``store(result)`` writes the cache file."""
        with self._lock:
            run = self._runs.get(key)
            if run is not None and run.version == version and run.state in ("queued", "running"):
                return run.status()
            # asked again after a failure: try again, even if an older file exists
            retry = run is not None and run.version == version and run.state == "failed"
            if not retry and cached() == version:
                return _done(version)
            run = Run(version)
            self._runs[key] = run
            run.thread = threading.Thread(target=self._work, args=(run, compute, store),
                                          name=f"curation-{'-'.join(map(str, key))}", daemon=True)
            run.thread.start()
            return run.status()

    def request(self, key: tuple, version: str, cached: Callable[[], str | None],
                compute: Callable[[Callable[[float], None]], Any], store: Callable[[Any], None], *,
                start: bool = True, wait: bool = False) -> dict:
        """What a caller asks for: :meth:`start` (``start``) or only
        :meth:`status`; with ``wait`` block until the run ends, then its status."""
        if not start:
            return self.status(key, version, cached)
        st = self.start(key, version, cached, compute, store)
        if wait:
            self.wait(key)
            st = self.status(key, version, cached)
        return st

    def wait(self, key: tuple, timeout: float | None = None) -> None:
        """Block until the key's current run ends (tests, the CLI)."""
        with self._lock:
            run = self._runs.get(key)
        if run is not None and run.thread is not None:
            run.thread.join(timeout)

    @staticmethod
    def _work(run: Run, compute, store) -> None:
        run.state = "running"

        def progress(f: float) -> None:
            run.progress = max(0.0, min(1.0, float(f)))

        try:
            store(compute(progress))
            run.progress, run.state = 1.0, "done"
        except Exception as e:  # noqa: BLE001 - reported in the status, not lost in a thread
            log.exception("curation run failed")
            run.state, run.message = "failed", str(e) or type(e).__name__
        run.finished = time.time()


REGISTRY = Registry()


def atomic_save(path: Path, write: Callable[[Any], None]) -> None:
    """``write(file)`` into a temporary file beside ``path``, then rename it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with open(tmp, "wb") as f:
        write(f)
    os.replace(tmp, path)


def with_vectors(dataset_ids: np.ndarray, stored_ids: np.ndarray) -> np.ndarray:
    """The dataset's ids (sorted, unique) that have a stored vector
    (``stored_ids`` sorted, unique): a binary search each, no sort — what
    ``np.intersect1d`` costs (~1 s at 1M) would dominate reading a cache."""
    dataset_ids = np.asarray(dataset_ids, dtype=np.int64)
    if stored_ids.size == 0 or dataset_ids.size == 0:
        return dataset_ids[:0]
    pos = np.minimum(np.searchsorted(stored_ids, dataset_ids), stored_ids.size - 1)
    return dataset_ids[stored_ids[pos] == dataset_ids]


def input_version(signature: list, ids: np.ndarray) -> str:
    """The version of a run's input: a digest of the space's shard list
    (:meth:`assay.store.index.SpaceIndex._signature`) and the dataset's item
    ids with a vector there; adding items or embedding again changes it."""
    h = hashlib.sha256(json.dumps(signature).encode())
    h.update(np.asarray(ids, dtype=np.int64).tobytes())
    return h.hexdigest()[:32]


def cached_version(path: Path) -> str | None:
    """The ``version`` stored in a cached ``.npz`` (None without a readable one)."""
    try:
        with np.load(path) as z:
            return str(z["version"])
    except (OSError, KeyError, ValueError):
        return None
