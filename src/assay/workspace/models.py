"""Bring your own model: a Label Studio compatible ML backend or a
registered Python model pre-labels a project's items;
:mod:`assay.learn.ml_backend` speaks the protocol, :mod:`assay.learn.predict`
runs it over the items and stores the predictions.

Relies on the core (:class:`assay.workspace.core.Core`, which lists the
caches and who drops them) for ``db``, ``blobs``, ``_lock``,
``_backends_seen`` (this part fills it) and ``_backend_notifier_obj`` (made
here on first use, flushed by ``close``); on
:class:`~assay.workspace.projects.Projects` for ``get_project``,
``update_project`` and ``project_cache_seconds``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from assay.jobs import webhooks as _webhooks
from assay.learn import ml_backend as _ml_backend
from assay.learn import predict as _predict


class Models:
    """A project's model: connect, check, set up, predict, notify."""

    _backends_seen: tuple[float, bool] = (0.0, True)
    #: this server's address for content URLs in webhooks (set by the server;
    #: ``ASSAY_PUBLIC_URL`` wins)
    public_base_url: str | None = None

    def backends_in_use(self) -> bool:
        """Whether any project has an ML backend (re-read at most every
        :attr:`project_cache_seconds`; at once after a change through this
        workspace), so that the answer hook costs nothing without one."""
        until, used = self._backends_seen
        now = time.monotonic()
        if now < until:
            return used
        used = _predict.any_backend(self.db)
        self._backends_seen = (now + self.project_cache_seconds, used)
        return used

    def _backend_url(self, project_id: int) -> str | None:
        """The stored URL, password included (get_project shows it redacted)."""
        return _predict.stored_url(self.db, project_id)

    def _backend(self, p: dict):
        """A client for the project's backend; InvalidInput when it has none."""
        return _predict.backend(self.db, p)

    def connect_backend(self, project: int | str, url: str | None, *, base_url: str | None = None,
                        access_token: str | None = None) -> dict:
        """Point a project at a model: ``http(s)://…`` (a Label Studio
        compatible ML backend) or ``python:<name>`` (see
        :func:`assay.learn.ml_backend.register_model`); None disconnects. The
        backend must answer ``/health`` with ``UP`` and accept ``/setup``
        before it is stored. Returns ``{"project_id", "url", "health",
        "model_version"}``."""
        p = self.get_project(project)
        url = _ml_backend.check_url(url)
        if url is None:
            self.update_project(p["id"], ml_backend_url=None)
            return {"project_id": p["id"], "url": None, "health": None, "model_version": None}
        client = _ml_backend.connect(url)
        health = client.health()
        setup = _predict.setup(self.db, p, client, base_url=base_url, access_token=access_token)
        self.update_project(p["id"], ml_backend_url=url)
        return {"project_id": p["id"], "url": _ml_backend.redact(url), "health": health,
                "model_version": setup["model_version"]}

    def backend_health(self, project: int | str) -> dict:
        """The backend's ``/health`` answer (``{"status": "UP", …}``);
        :class:`~assay.learn.ml_backend.BackendUnreachable` or
        :class:`~assay.learn.ml_backend.BackendProtocolError` otherwise."""
        p = self.get_project(project)
        client = self._backend(p)
        return {"project_id": p["id"], "url": p["ml_backend_url"], "health": client.health()}

    def backend_setup(self, project: int | str, *, base_url: str | None = None,
                      access_token: str | None = None, extra_params: dict | None = None) -> dict:
        """Send the project's label config to the backend (``/setup``);
        returns ``{"project_id", "model_version", "response"}``. ``base_url``
        (this server's address) goes as ``hostname``; ``access_token`` lets
        the backend fetch image content (sent back as a Bearer token)."""
        p = self.get_project(project)
        return _predict.setup(self.db, p, self._backend(p), base_url=base_url, access_token=access_token,
                              extra_params=extra_params)

    def backend_predict(self, project: int | str, item_ids: Sequence[int] | None = None, batch: int = 64,
                        base_url: str | None = None) -> dict:
        """Ask the project's model for a label for each item (all, or
        ``item_ids``), ``batch`` items per call, and store them in
        ``predictions`` (one row per item: label, confidence = the backend's
        score — 1.0 when it gives none — and ``model_version``).

        All or nothing: an unreachable backend or a malformed answer raises
        and stores nothing. Choices the project does not have are skipped
        and counted. ``model_version`` is an integer: each distinct (backend
        URL, backend version string) gets an ``ml_models`` row (``metrics``
        ``{"source": "backend", "backend_version", "url"}``, numbered after
        the project's existing versions, carrying over the in-loop model's
        threshold and auto-label state) and keeps that number.

        Returns counts: ``tasks`` (sent), ``stored``, ``no_prediction``,
        ``skipped_unknown`` (tasks with no known class), ``unknown_choices``,
        ``without_score``, ``model_versions`` ({backend version: int}) and
        ``seconds`` (:func:`assay.learn.predict.predict`).
        """
        return _predict.predict(self.db, self.blobs, self.get_project(project), item_ids, batch, base_url)

    def notify_backend(self, answer: dict, *, base_url: str | None = None) -> bool:
        """Queue a new answer for the project's backend (``/webhook``, as Label
        Studio's ``ANNOTATION_CREATED``). Returns at once; a background thread
        sends it, and a failing backend only logs a warning. False when the
        project has no backend (or the queue is full)."""
        p = self.get_project(answer["project_id"])
        if not p.get("ml_backend_url"):
            return False
        return self._backend_notifier().put((answer, base_url))

    def _backend_notifier(self) -> _webhooks.DeliveryQueue:
        n = self.__dict__.get("_backend_notifier_obj")
        if n is None:
            with self._lock:
                n = self.__dict__.get("_backend_notifier_obj")
                if n is None:
                    n = self._backend_notifier_obj = _webhooks.DeliveryQueue(
                        lambda job: _webhooks.send_answer(self, job))
        return n

    def backend_notifications(self) -> dict:
        """Counts of webhook notifications: queued, sent, failed, dropped."""
        return dict(self._backend_notifier().stats)

    def wait_backend_notifications(self, timeout: float = 10.0) -> bool:
        """Block until queued webhook notifications were sent (tests, scripts)."""
        return self._backend_notifier().wait(timeout)
