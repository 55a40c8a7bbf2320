"""Response times that do not depend on the path a request took.

In a project with gold, a hand-out and an answer run the same kinds of
statements whether the task is gold or real work (:mod:`assay.engine.handout`,
:mod:`assay.engine.gold`), but a database still takes a little longer for
one than the other: on PostgreSQL a gold claim (a locking read of the gold
pool) took ~0.15 ms longer than a claim of real work, and over loopback HTTP
that alone let a classifier tell gold apart (AUC 0.6–0.7 over ~360 tasks).
A random delay added *after* the work does not hide such a shift well: a
uniform 0–4 ms delay moves the AUC by about shift / 4 ms, and the event
loop's timers wake on whole milliseconds from the moment they are set, so
the fraction of a millisecond the work took shows through any such delay.

So the response is released at a time fixed *before* the work starts:
``start + pad + jitter`` (:func:`release`), with ``pad`` above what the
work usually costs: the larger of a floor (:data:`NEXT_PAD`,
:data:`ANSWER_PAD`) and the 95th percentile of this process's recent
durations of that kind of request, gold and real alike (:class:`Pad`, at
most :data:`MAX_PAD`) — on a loaded machine the work takes longer for
both, and a fixed pad let it show through (AUC 0.71 with the machine
saturated by a benchmark). Whatever path ran, the caller sees the same
distribution of response times; only work slower than the pad shows
through. The release is
timed by one thread that sleeps precisely (:class:`_Timer`) and wakes the
event loop through its thread-safe queue: no CPU is spent waiting, and the
loop serves other requests meanwhile. Projects without gold never wait.
"""

from __future__ import annotations

import asyncio
import collections
import heapq
import itertools
import random
import threading
import time

#: a hand-out in a project with gold is released this long after it started (seconds) ...
NEXT_PAD = 0.003
#: ... an answer, a skip or an undo this long ...
ANSWER_PAD = 0.003
#: ... plus a random 0 to this much (the tail where the work itself is slower than the pad)
JITTER = 0.001
#: the most a pad grows to on a loaded server (seconds)
MAX_PAD = 0.025
#: recent durations a pad is taken from, and how often its percentile is taken again
PAD_WINDOW, PAD_EVERY = 512, 64


class Pad:
    """The pad of one kind of request: ``floor``, or the 95th percentile of
    the last :data:`PAD_WINDOW` durations :meth:`add` saw when larger (at
    most :data:`MAX_PAD`)."""

    def __init__(self, floor: float) -> None:
        self.floor = self.value = floor
        self._seen: collections.deque = collections.deque(maxlen=PAD_WINDOW)
        self._new = 0

    def add(self, seconds: float) -> float:
        """Record one request's duration; returns the pad to use now."""
        self._seen.append(seconds)
        self._new += 1
        if self._new >= PAD_EVERY:
            self._new = 0
            ranked = sorted(self._seen)
            self.value = min(MAX_PAD, max(self.floor, ranked[int(0.95 * (len(ranked) - 1))]))
        return self.value


#: the pads of hand-outs and of answers (skips and undos share the answers')
NEXT = Pad(NEXT_PAD)
ANSWER = Pad(ANSWER_PAD)

_rng = random.SystemRandom()


def deadline(start: float, pad: Pad) -> float:
    """When a response whose work began at ``start`` (:func:`time.perf_counter`)
    and has just ended is released (its duration goes into ``pad``)."""
    return start + pad.add(time.perf_counter() - start) + _rng.uniform(0.0, JITTER)


async def release(at: float) -> None:
    """Wait until ``at`` (:func:`time.perf_counter`), precisely; at once if it has passed."""
    if at <= time.perf_counter():
        return
    await _timer().wait_until(at)


class _Timer:
    """One thread that wakes waiting coroutines at their deadlines (to ~0.1 ms:
    the event loop's own timers round to whole milliseconds)."""

    def __init__(self) -> None:
        self._heap: list = []
        self._order = itertools.count()
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="assay-release", daemon=True)
        self._thread.start()

    async def wait_until(self, at: float) -> None:
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        with self._cond:
            heapq.heappush(self._heap, (at, next(self._order), loop, fut))
            if self._heap[0][2] is loop and self._heap[0][3] is fut:
                self._cond.notify()
        await fut

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap:
                    self._cond.wait()
                left = self._heap[0][0] - time.perf_counter()
                if left > 0:
                    self._cond.wait(left)
                    continue
                _, _, loop, fut = heapq.heappop(self._heap)
            try:
                loop.call_soon_threadsafe(_wake, fut)
            except RuntimeError:  # the loop has closed: nobody is waiting any more
                pass


def _wake(fut: asyncio.Future) -> None:
    if not fut.done():  # a cancelled wait (the client went away) is left alone
        fut.set_result(None)


_timers: list[_Timer] = []
_lock = threading.Lock()


def _timer() -> _Timer:
    if not _timers:
        with _lock:
            if not _timers:
                _timers.append(_Timer())
    return _timers[0]
