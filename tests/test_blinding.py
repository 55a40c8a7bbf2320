"""The release timer behind response blinding (:mod:`assay.server.blinding`):
a response is released at its deadline, not before and not long after, in
deadline order, whatever the work before it cost."""

from __future__ import annotations

import asyncio
import time

from assay.server import blinding


def test_release_waits_until_the_deadline_and_no_longer():
    async def one(at):
        await blinding.release(at)
        return time.perf_counter() - at

    async def main():
        base = time.perf_counter() + 0.01
        ats = [base + i * 0.0007 for i in range(20)][::-1]  # set in reverse order
        return await asyncio.gather(*(one(at) for at in ats))

    late = asyncio.run(main())
    assert min(late) >= 0.0  # never before its time
    # the event loop's own timers round to whole milliseconds; this one does not
    # (a loaded 2-core box may wake a thread late now and then: the median must be tight)
    assert sorted(late)[len(late) // 2] < 0.0005, late


def test_the_release_time_does_not_depend_on_the_work_before_it():
    async def request(work):
        start = time.perf_counter()
        time.sleep(work)  # the path's own cost, e.g. a slower statement
        await blinding.release(start + 0.004)
        return time.perf_counter() - start

    async def main():
        return [await request(w) for w in [0.0, 0.0015] * 15]

    took = asyncio.run(main())
    fast, slow = took[0::2], took[1::2]
    med = [sorted(x)[len(x) // 2] for x in (fast, slow)]
    assert all(t >= 0.004 for t in took)
    assert abs(med[0] - med[1]) < 0.0004, med  # the 1.5 ms of work do not show


def test_a_passed_deadline_returns_at_once_and_a_cancelled_wait_harms_no_one():
    async def main():
        t0 = time.perf_counter()
        await blinding.release(t0 - 1.0)
        immediate = time.perf_counter() - t0
        waiter = asyncio.ensure_future(blinding.release(time.perf_counter() + 0.005))
        await asyncio.sleep(0)
        waiter.cancel()
        t1 = time.perf_counter()
        await blinding.release(t1 + 0.008)
        return immediate, time.perf_counter() - t1

    immediate, after = asyncio.run(main())
    assert immediate < 0.001
    assert 0.008 <= after < 0.05


def test_the_pad_follows_the_recent_work_when_it_is_slower_than_the_floor():
    pad = blinding.Pad(0.003)
    for _ in range(blinding.PAD_WINDOW):
        got = pad.add(0.0005)  # quick work: the floor
    assert got == 0.003
    for i in range(blinding.PAD_WINDOW):  # a loaded server: 5-9 ms, for gold and real work alike
        got = pad.add(0.005 + 0.004 * (i % 100) / 100)
    assert 0.0085 <= got <= 0.009
    for _ in range(blinding.PAD_WINDOW):  # never past the cap
        got = pad.add(1.0)
    assert got == blinding.MAX_PAD
    # the deadline records the duration and releases after the pad
    start = time.perf_counter() - 0.001
    at = blinding.deadline(start, blinding.Pad(0.004))
    assert start + 0.004 <= at <= start + 0.004 + blinding.JITTER
