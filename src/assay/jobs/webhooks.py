"""Answers to bring-your-own ML backends' ``/webhook``, from domain events.

:func:`install` subscribes :func:`on_answer_created` to ``answer.created``
(:mod:`assay.jobs.events`), so every stored answer — submitted over HTTP,
from Python or from the CLI — is queued for its project's backend as Label
Studio's ``ANNOTATION_CREATED``, and :func:`on_answer_deleted` to
``answer.deleted`` (an undo), sent as ``ANNOTATIONS_DELETED``. Queuing costs the answer path a cached
look-up (nothing at all while no project has a backend); a
:class:`DeliveryQueue` thread of the emitting process sends it, so a slow or
failing backend never delays or fails an answer.

Delivery is not a leader job: the queue lives in the memory of the process
that stored the answer. A process that ends flushes its queue first (for a
few seconds at most: :data:`FLUSH_SECONDS`), so a short script's answers
reach the backend too.
"""

from __future__ import annotations

import atexit
import logging
import queue
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from assay.jobs import events

log = logging.getLogger("assay.learn.ml_backend")

#: how long a closing workspace or an ending process waits for queued webhooks
FLUSH_SECONDS = 5.0


class DeliveryQueue:
    """Sends queued jobs with ``send(job)`` from one background thread.

    The queue is bounded (``maxsize``); when it is full, new jobs are
    dropped and counted. The thread starts on demand and ends after
    ``idle_seconds`` with nothing to do. ``stats`` counts queued, sent,
    failed and dropped jobs.
    """

    def __init__(self, send: Callable[[Any], None], *, maxsize: int = 10_000, idle_seconds: float = 30.0) -> None:
        self._send = send
        self._q: queue.Queue = queue.Queue(maxsize)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._flush_at_exit = False
        self.idle_seconds = idle_seconds
        self.stats = {"queued": 0, "sent": 0, "failed": 0, "dropped": 0}

    def put(self, job: Any) -> bool:
        """Queue ``job``; False (and counted as dropped) when the queue is full. Never blocks."""
        try:
            self._q.put_nowait(job)
        except queue.Full:
            self.stats["dropped"] += 1
            log.warning("ML backend webhook queue is full: dropped a notification")
            return False
        self.stats["queued"] += 1
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="assay-backend-webhooks", daemon=True)
                self._thread.start()
            if not self._flush_at_exit:
                self._flush_at_exit = True
                ref = weakref.ref(self)
                atexit.register(lambda: (q := ref()) is not None and q.wait(FLUSH_SECONDS))
        return True

    def _run(self) -> None:
        while True:
            try:
                job = self._q.get(timeout=self.idle_seconds)
            except queue.Empty:
                with self._lock:
                    if self._q.empty():
                        self._thread = None
                        return
                continue
            try:
                self._send(job)
                self.stats["sent"] += 1
            except Exception as e:  # noqa: BLE001 - a backend's failure must never stop the queue
                self.stats["failed"] += 1
                log.warning("ML backend webhook failed: %s", getattr(e, "message", None) or e)
            finally:
                self._q.task_done()

    def pending(self) -> int:
        return self._q.unfinished_tasks

    def wait(self, timeout: float = 10.0) -> bool:
        """Wait until every queued job was handled; False on timeout."""
        q = self._q
        end = time.monotonic() + timeout
        with q.all_tasks_done:
            while q.unfinished_tasks:
                left = end - time.monotonic()
                if left <= 0:
                    return False
                q.all_tasks_done.wait(left)
        return True


def on_answer_created(event: dict) -> None:
    """``answer.created`` → the project's backend, when it has one."""
    ws = event["workspace"]
    if ws.backends_in_use():  # cached: no query per answer
        ws.notify_backend(event["answer"])


def on_answer_deleted(event: dict) -> None:
    """``answer.deleted`` → the project's backend, when it has one."""
    ws = event["workspace"]
    if ws.backends_in_use():
        ws.notify_backend({**event["answer"], "deleted": True})


def send_answer(ws, job: tuple[dict, str | None]) -> None:
    """Deliver one queued answer (runs in the queue's thread): the webhook
    body as Label Studio sends it, to the URL stored now (a backend changed
    or removed since the answer was queued gets the answer, or nothing)."""
    from sqlalchemy import text

    from assay.learn import ml_backend

    answer, base_url = job
    p = ws.get_project(answer["project_id"])
    url = ws._backend_url(p["id"])  # noqa: SLF001 - the stored URL, password included
    if not url:
        return
    if answer.get("deleted"):  # an undo: the annotation is gone
        ml_backend.connect(url).webhook(ml_backend.deletion_payload(answer, p))
        return
    with ws.db.read() as conn:
        item = conn.execute(text("SELECT id, kind, text, blob FROM items WHERE id = :i"),
                            {"i": answer["item_id"]}).first()
    if item is None:
        return
    where = ml_backend.public_url(base_url) or ws.public_base_url
    found = {"id": item.id, "kind": item.kind, "text": item.text}
    if item.kind == "image" and item.blob and p["schema"]["kind"] in ("boxes", "polygons"):
        from PIL import Image  # percent coordinates need the image's size

        with Image.open(ws.blobs.path(item.blob)) as im:
            found["size"] = im.size
    body = ml_backend.annotation_payload(answer, p, found, where)
    ml_backend.connect(url).webhook(body)


def install() -> None:
    """Subscribe the webhook sender to answer events (idempotent)."""
    events.subscribe("answer.created", on_answer_created)
    events.subscribe("answer.deleted", on_answer_deleted)
