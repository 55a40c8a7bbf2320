"""Projects, their settings and members, and who may act on a project.

Relies on the core (:class:`assay.workspace.core.Core`, which lists the
caches and who drops them) for ``db``, ``vectors``, ``_projects`` and
``_member_cache`` (this part fills both) and ``_backends_seen`` (reset by
``update_project``); on :class:`~assay.workspace.accounts.Accounts` for
``get_user`` and :class:`~assay.workspace.data.Data` for ``dataset``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy.exc import IntegrityError

from assay import kinds
from assay.engine import accounts as _accounts
from assay.engine import datasets as _datasets
from assay.engine import projects as _proj
from assay.engine import settings as _settings
from assay.errors import Conflict, Forbidden, InvalidInput, NotFound

ROLES = _accounts.ROLES


class Projects:
    """Labeling projects over datasets: settings, members, access checks."""

    def create_project(self, name: str, dataset: int | str, classes: Sequence[str | dict], *,
                       kind: str = "single", instructions: str = "", overlap: int = 1,
                       lease_seconds: int = 600, show_fields: Sequence[str] = (),
                       target_confidence: float | None = None, max_answers: int | None = None,
                       gold_rate: float | None = None, gold_min_accuracy: float | None = None,
                       gold_min_answers: int | None = None, exam_size: int | None = None,
                       exam_pass: float | None = None, exam_retries: int | None = None,
                       kind_options: dict | None = None, **settings: Any) -> dict:
        """Create a labeling project over a dataset; every item becomes a task.

        ``target_confidence`` (e.g. 0.95) turns on adaptive redundancy: each
        item starts with ``overlap`` answers and gets one more, from another
        annotator, while its posterior is below the target, up to
        ``max_answers`` (default max(overlap, 5)); see :mod:`assay.engine.redundancy`.

        Gold questions (:mod:`assay.engine.gold`): ``gold_rate`` is the share of each
        annotator's tasks that are gold once gold is imported (default 0.05);
        ``gold_min_accuracy`` pauses an annotator whose gold accuracy falls
        below it after ``gold_min_answers`` (default 5) gold answers.

        Qualification exam (:mod:`assay.engine.exam`): ``exam_size`` exam items
        per attempt before any real work, ``exam_pass`` (default 0.8) right to
        pass, ``exam_retries`` (default 1) attempts after a fail.

        ``kind_options``: the kind's own schema options, beside its classes
        (``spans``: ``{"overlap": True}`` lets spans share characters).

        ``settings``: any other setting of
        :class:`~assay.engine.settings.ProjectSettings` (e.g. ``routing="skill"``,
        ``teach_bar=0.7``), checked with the rest; ``ml_space`` and
        ``ml_backend_url`` are set with :meth:`update_project`, which checks
        the space and the backend.
        """
        needs_context = sorted(set(settings) & {"ml_space", "ml_backend_url"})
        if needs_context:
            raise InvalidInput(f"set {', '.join(needs_context)} with update_project after creating the project "
                               "(it checks the embedding space / the backend)")
        s = _settings.validate_new(**settings,
            kind=kind, instructions=instructions, overlap=overlap, lease_seconds=lease_seconds,
            show_fields=show_fields,
            target_confidence=target_confidence, max_answers=max_answers, gold_rate=gold_rate,
            gold_min_accuracy=gold_min_accuracy, gold_min_answers=gold_min_answers, exam_size=exam_size,
            exam_pass=exam_pass, exam_retries=exam_retries)
        name = _proj.check_name(name)
        if kind_options is not None and not isinstance(kind_options, dict):
            raise InvalidInput("kind_options must be an object of the kind's schema options")
        extra = {k: v for k, v in (kind_options or {}).items() if k not in ("kind", "classes", "instructions")}
        spec = kinds.get(kind).normalize_schema({**extra, "classes": list(classes), "instructions": s.instructions})
        unknown = sorted(set(extra) - set(spec))
        if unknown:
            raise InvalidInput(f"{kinds.get(kind).title} projects have no schema option {', '.join(unknown)}")
        ds = self.dataset(dataset)
        takes = kinds.get(kind).item_kinds
        if takes is not None:
            with self.db.read() as conn:
                other = sorted(set(_datasets.item_kinds(conn, ds["id"])) - set(takes))
            if other:
                raise InvalidInput(f"{kinds.get(kind).title} projects label {' or '.join(takes)} items; "
                                   f"dataset {ds['name']!r} holds {' and '.join(other)} items")
        try:
            with self.db.write() as conn:
                pid = _proj.create(conn, name, ds["id"], spec, s)
        except IntegrityError:
            raise Conflict(f"project {name!r} already exists") from None
        return self.get_project(pid)

    #: seconds a project's settings are reused before they are read again
    #: (settings changed by another process show up within this time)
    project_cache_seconds = 5.0

    def get_project(self, project: int | str) -> dict:
        if isinstance(project, int):
            hit = self._projects.get(project)
            if hit is not None and hit[0] > time.monotonic():
                return hit[1]
        with self.db.read() as conn:
            p = _proj.load(conn, project)
        if p is None:
            raise NotFound(f"project {project!r} does not exist")
        self._projects[p["id"]] = (time.monotonic() + self.project_cache_seconds, p)
        return p

    #: what an annotator sees of a project: what labeling needs, nothing of
    #: gold, pauses, the model or its backend
    ANNOTATOR_PROJECT_KEYS = _proj.ANNOTATOR_KEYS

    def project_view(self, project: dict, user: dict) -> dict:
        """``project`` as ``user`` may see it: all of it for admins and
        reviewers, :data:`ANNOTATOR_PROJECT_KEYS` for annotators."""
        return _proj.view(project, user["role"])

    def forget_project(self, project_id: int) -> None:
        """Drop the cached settings of a project changed behind this
        workspace's back (the ML loop moving its target): read them again."""
        self._projects.pop(project_id, None)

    def update_project(self, project: int | str, **settings: Any) -> dict:
        """Change a project's settings: any of
        :data:`assay.engine.settings.CHANGEABLE` (described in
        :class:`~assay.engine.settings.ProjectSettings`), checked together
        with the unchanged ones; a bad value changes nothing. ``ml_backend_url``
        is a Label Studio compatible ML backend or ``python:<name>`` (see
        :meth:`connect_backend`, which also checks it answers)."""
        p = self.get_project(project)
        with self.db.write() as conn:
            _proj.update(conn, p, settings, vectors=self.vectors)
        self._projects.pop(p["id"], None)
        self._backends_seen = (0.0, True)
        return self.get_project(p["id"])

    def project_settings(self, project: int | str) -> _settings.ProjectSettings:
        """The project's settings as the typed model (``get_project`` gives
        them as a dict, the backend URL without its password)."""
        pid = self.get_project(project)["id"]
        with self.db.read() as conn:
            return _proj.settings_of(conn, pid)

    def list_projects(self, user: dict | None = None) -> list[dict]:
        with self.db.read() as conn:
            ids = _proj.project_ids(conn, user)
        got = [self.get_project(i) for i in ids]
        return got if user is None else [self.project_view(p, user) for p in got]

    # ------------------------------------------------------------ members

    def add_member(self, project: int | str, user: int | str) -> None:
        p, u = self.get_project(project), self.get_user(user)
        try:
            with self.db.write() as conn:
                _proj.add_member(conn, p, u)
        except IntegrityError:
            pass  # already a member: adding twice is harmless
        self._member_cache_clear()

    def remove_member(self, project: int | str, user: int | str) -> None:
        p, u = self.get_project(project), self.get_user(user)
        with self.db.write() as conn:
            _proj.remove_member(conn, p, u)
        self._member_cache_clear()

    def list_members(self, project: int | str) -> list[dict]:
        p = self.get_project(project)
        with self.db.read() as conn:
            return _proj.list_members(conn, p["id"])

    def _member_cache_clear(self) -> None:
        self._member_cache = {}

    def is_member(self, project_id: int, user_id: int) -> bool:
        cache = self._member_cache
        key = (project_id, user_id)
        hit = cache.get(key)
        now = time.monotonic()
        if hit is not None and hit[0] > now:
            return hit[1]
        with self.db.read() as conn:
            ok = _proj.is_member(conn, project_id, user_id)
        cache[key] = (now + 5.0, ok)
        return ok

    def require_access(self, project_id: int, user: dict, *, roles: Sequence[str] = ROLES) -> dict:
        """The project, if ``user`` may act on it with one of ``roles``.

        Admins may act on every project; others must be members. A project a
        user may not see is reported as missing, so ids don't leak.
        """
        p = self.get_project(project_id)
        if user["role"] == "admin":
            return p
        if not self.is_member(p["id"], user["id"]):
            raise NotFound(f"project {project_id} does not exist")
        if user["role"] not in roles:
            raise Forbidden(f"a {user['role']} may not do this in project {project_id}")
        return p
