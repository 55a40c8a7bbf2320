"""Teaching by nuance (:mod:`assay.engine.teach`): teaching items in the
hand-out, their answers with immediate feedback, the detection round and
the before/after report.

Relies on the core (:class:`assay.workspace.core.Core`) for ``db``; on
:class:`~assay.workspace.projects.Projects` for ``get_project`` and
``is_member``; on :class:`~assay.workspace.accounts.Accounts` for
``get_user``; on :class:`~assay.workspace.labeling.Labeling` for
``_task_view`` and ``_in_exam``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import text

from assay import kinds
from assay.engine import handout
from assay.engine import teach as _teach
from assay.errors import Conflict, NotFound

_TEACHING_PROJECTS = text("SELECT id FROM projects WHERE teach_bar IS NOT NULL ORDER BY id")


class Teaching:
    """Teaching items, their feedback, detection and measurement."""

    def _teaching_task(self, p: dict, u: dict, exclude: Sequence[int]) -> dict | None:
        """A teaching item for ``u`` now (a task view flagged ``teach``), or
        None. Called by :meth:`next_task` in projects with teaching only."""
        with self.db.fast_read() as conn:  # the common case: nothing to learn, one indexed read
            if not _teach.open_needs(conn, p["id"], u["id"]):
                return None
        with self.db.write() as conn:
            got = _teach.serve(conn, p, u["id"], p["lease_seconds"], set(exclude))
        if got is None:
            return None
        view = self._task_view(p, *got)
        # no pre-label: practice is the annotator's own answer; the feedback comes with the answer
        return {**view, "suggestion": None, "teach": {"practice": True}}

    def submit_practice(self, task_id: int, user: int | str | dict, label: Any) -> dict:
        """Answer the teaching item ``user`` holds; the reply carries the
        feedback (right or wrong, the right label, the explanation, reference
        items). Only for a teaching item handed to them: any other task is
        refused alike (409) and gets no feedback."""
        u = user if isinstance(user, dict) else self.get_user(user)
        t = handout.task_row(self.db, task_id)
        p = self.get_project(t.project_id)
        if u["role"] != "admin" and not self.is_member(p["id"], u["id"]):
            raise NotFound(f"task {task_id} does not exist")
        label = kinds.of(p).validate(label, p["schema"])
        if not _teach.is_on(p) or self._in_exam(p, u):
            raise Conflict(f"task {task_id} is not a teaching item handed to you; teaching answers are taken only "
                           "for the teaching item tasks/next gave you")
        with self.db.write() as conn:
            return _teach.answer(conn, p, u["id"], task_id, t.item_id, label)

    def teaching_report(self, project: int | str) -> dict:
        """Teaching's settings and, per annotator × nuance taught, the skill
        before vs after with 90 % intervals and the change; pooled per nuance
        and for the project (:func:`assay.engine.teach.report`; staff only)."""
        p = self.get_project(project)
        with self.db.read() as conn:
            return {"project_id": p["id"], **_teach.report(conn, p)}

    def refresh_teaching(self, project: int | str) -> dict:
        """Run a detection round for one project now (the server runs it in
        the background for every project with teaching): needs opened, needs
        measured (:func:`assay.engine.teach.detect`)."""
        p = self.get_project(project)
        with self.db.write() as conn:
            out = _teach.detect(conn, p)
        return {"project_id": p["id"], "opened": [{"user_id": u, "nuance": n} for u, n in out["opened"]],
                "measured": [{"user_id": u, "nuance": n} for u, n in out["measured"]]}

    def teaching_projects(self) -> list[int]:
        """The projects with teaching on (what the background round visits)."""
        with self.db.read() as conn:
            return [r.id for r in conn.execute(_TEACHING_PROJECTS)]
