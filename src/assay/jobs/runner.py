"""How background jobs run: a :class:`Job` is a named round repeated every
``interval`` seconds; a :class:`Runner` runs jobs and stops them.

:class:`ThreadRunner` runs each job in its own daemon thread. Before each
round it asks its :class:`~assay.jobs.leader.Leadership` whether this
process leads the job (so across server processes one runs it); a round
that raises is logged and the next round comes as usual. A runner built on
another engine (a task queue, a scheduler) implements the same two methods.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from assay.jobs.leader import Always, Leadership

log = logging.getLogger("assay.jobs")


@dataclass(frozen=True)
class Job:
    """One background job.

    ``run()``: one round (it does its own error handling per project; what
    escapes it is logged). ``interval``: seconds from the end of a round to
    the start of the next, each wait drawn from ``interval × (1 ± jitter)``
    so that processes do not fall into step. ``run_first``: the first round
    at once (else after one wait). ``lead``: run by one process across all
    that share the database (else by every process that starts it).
    """

    name: str
    run: Callable[[], Any]
    interval: float
    jitter: float = 0.1
    run_first: bool = False
    lead: bool = True

    def __post_init__(self) -> None:
        if not self.name or not isinstance(self.name, str):
            raise ValueError("a job needs a name")
        if not self.interval > 0:
            raise ValueError(f"job {self.name!r}: interval must be > 0 seconds, got {self.interval!r}")
        if not 0 <= self.jitter < 1:
            raise ValueError(f"job {self.name!r}: jitter must be in [0, 1), got {self.jitter!r}")

    def next_wait(self, rng: random.Random) -> float:
        return self.interval * (1 + self.jitter * (2 * rng.random() - 1))


class Runner(Protocol):
    """Runs jobs: ``start(job)`` (returns at once), ``stop()`` (no new round
    starts; returns when running rounds ended or the runner gave up waiting)."""

    def start(self, job: Job) -> None: ...

    def stop(self) -> bool: ...


class ThreadRunner:
    """Each job in its own daemon thread; ``leadership`` (default: this
    process always leads) decides, round by round, whether this process runs
    a job. ``stats()`` says, per job, rounds run, failures, whether this
    process led the last round, whether a round is running now, when the
    last one started and how long it took."""

    def __init__(self, leadership: Leadership | None = None, *, stop_timeout: float = 30.0) -> None:
        self.leadership = leadership if leadership is not None else Always()
        self.stop_timeout = stop_timeout
        self._stop = threading.Event()
        self._threads: dict[str, threading.Thread] = {}
        self._stats: dict[str, dict] = {}
        self._lock = threading.Lock()
        self._rng = random.Random()

    def start(self, job: Job) -> None:
        with self._lock:
            if self._stop.is_set():
                raise RuntimeError("this runner was stopped; make a new one")
            if job.name in self._threads:
                raise ValueError(f"job {job.name!r} is already running")
            self._stats[job.name] = {"rounds": 0, "failures": 0, "leading": False, "running": False,
                                     "last_started": None, "last_seconds": None}
            t = threading.Thread(target=self._loop, args=(job,), name=f"assay-job-{job.name}", daemon=True)
            self._threads[job.name] = t
        t.start()

    def stop(self, timeout: float | None = None) -> bool:
        """Stop every job: True when all threads ended within ``timeout``
        (default ``stop_timeout``). A round still running when it gives up
        finishes in its daemon thread and then resigns its leadership."""
        self._stop.set()
        end = time.monotonic() + (self.stop_timeout if timeout is None else timeout)
        with self._lock:
            threads = list(self._threads.values())
        for t in threads:
            t.join(max(end - time.monotonic(), 0))
        done = not any(t.is_alive() for t in threads)
        if done:
            self.leadership.close()
        else:
            log.warning("background jobs still running at shutdown: %s",
                        ", ".join(t.name for t in threads if t.is_alive()))
        return done

    def stats(self) -> dict[str, dict]:
        with self._lock:
            return {name: dict(s) for name, s in self._stats.items()}

    def _loop(self, job: Job) -> None:
        wait = 0.0 if job.run_first else job.next_wait(self._rng)
        try:
            while not self._stop.wait(wait):
                leading = not job.lead or self.leadership.lead(job.name)
                self._stats[job.name]["leading"] = leading
                if leading:
                    self._round(job)
                wait = job.next_wait(self._rng)
        finally:
            if job.lead:
                self.leadership.resign(job.name)

    def _round(self, job: Job) -> None:
        s = self._stats[job.name]
        s["last_started"], s["running"] = time.time(), True
        t0 = time.perf_counter()
        try:
            job.run()
        except Exception:  # noqa: BLE001 - the next round may succeed
            s["failures"] += 1
            log.exception("background job %r failed", job.name)
        finally:
            s["rounds"] += 1
            s["last_seconds"], s["running"] = time.perf_counter() - t0, False
