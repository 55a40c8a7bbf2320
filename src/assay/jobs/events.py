"""In-process domain events: ``emit(name, payload)``, ``subscribe(name, fn)``.

The library emits an event AFTER the transaction that made it true has
committed, so a subscriber never sees a change that could still roll back.
Events of today:

``answer.created``
    ``{"workspace": Workspace, "answer": dict}`` — an answer was stored
    (:meth:`assay.Workspace.submit`, from Python, the CLI or HTTP alike);
    ``answer`` is what ``submit`` returned.

``answer.deleted``
    ``{"workspace": Workspace, "answer": dict}`` — an annotator took back
    their answer (:meth:`assay.Workspace.undo`); ``answer`` has its ``id``,
    ``task_id``, ``project_id``, ``item_id`` and ``annotator_id``.

Subscribers run synchronously in the emitting thread, in the order they
subscribed: they must be quick and must not raise (one that raises is logged
and the others still run; the emitter never sees the error). Slow work —
an HTTP call, a database write — goes on a queue (see
:mod:`assay.jobs.webhooks`). Emitting an event nobody subscribed to costs a
dict lookup; an emitter that would build an expensive payload asks
:func:`wanted` first.

Events stay in this process: a server with several worker processes has one
set of subscribers per process, each seeing the events its own process emits.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger("assay.jobs")

Subscriber = Callable[[dict[str, Any]], None]

#: event name -> subscribers; replaced (never mutated) under _lock, so emit reads it without a lock
_subscribers: dict[str, tuple[Subscriber, ...]] = {}
_lock = threading.Lock()


def subscribe(name: str, fn: Subscriber) -> Subscriber:
    """Call ``fn(payload)`` after each ``name`` event. Subscribing the same
    function twice keeps one subscription. Returns ``fn`` (usable as a decorator)."""
    if not isinstance(name, str) or not name:
        raise ValueError("an event name is a non-empty string such as 'answer.created'")
    global _subscribers
    with _lock:
        have = _subscribers.get(name, ())
        if fn not in have:
            _subscribers = {**_subscribers, name: have + (fn,)}
    return fn


def unsubscribe(name: str, fn: Subscriber) -> None:
    """Stop calling ``fn`` for ``name`` (nothing happens if it was not subscribed)."""
    global _subscribers
    with _lock:
        rest = tuple(f for f in _subscribers.get(name, ()) if f != fn)
        subs = dict(_subscribers)
        if rest:
            subs[name] = rest
        else:
            subs.pop(name, None)
        _subscribers = subs


def wanted(name: str) -> bool:
    """Whether anything subscribed to ``name`` (so the payload is worth building)."""
    return name in _subscribers


def emit(name: str, payload: dict[str, Any]) -> int:
    """Hand ``payload`` to every subscriber of ``name``; how many were called.
    A subscriber that raises is logged; the others still run."""
    subs = _subscribers.get(name)
    if not subs:
        return 0
    for fn in subs:
        try:
            fn(payload)
        except Exception:  # noqa: BLE001 - the event already happened; a subscriber cannot undo it
            log.exception("subscriber %r of event %r failed", getattr(fn, "__qualname__", fn), name)
    return len(subs)
