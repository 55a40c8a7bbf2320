"""Labeling: the hand-out (next task, submit, skip, undo, expired leases),
the ledger's doctor, adaptive redundancy and final labels, gold and reviews.

Relies on the core (:class:`assay.workspace.core.Core`, which lists the
caches) for ``db`` (its fast lane for the hand-out and answers) and
``_projects`` (gold and reviews drop the project: its known labels
changed); on :class:`~assay.workspace.projects.Projects` for
``get_project`` and ``is_member`` and
:class:`~assay.workspace.accounts.Accounts` for ``get_user``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, text

from assay import audit as _audit
from assay import kinds
from assay.config import SCHEDULE
from assay.engine import datasets as _datasets
from assay.engine import exam as _exam
from assay.engine import gold as _gold
from assay.engine import handout, ledger, redundancy
from assay.engine import region_review as _region_review
from assay.engine import resolver as _resolver
from assay.errors import Conflict, ExamFailed, Forbidden, InvalidInput, NotFound
from assay.formats import gold as _gold_file
from assay.formats import shapes as _shape_formats
from assay.jobs import events as _events

# The item and the model's prediction for it (pre-label), one indexed lookup each side.
_TASK_ITEM_PREDICTION = text(
    "SELECT i.id, i.kind, i.text, i.meta, pr.label AS s_label, pr.confidence AS s_confidence, "
    "pr.model_version AS s_version FROM items i "
    "LEFT JOIN predictions pr ON pr.project_id = :p AND pr.item_id = i.id WHERE i.id = :i"
).columns(meta=JSON, s_label=JSON)
_ANSWER_PROJECT = text("SELECT project_id FROM answers WHERE id = :a")
_EXAM_PASSED_MAX = 100_000


class Labeling:
    """Answers and what they decide: tasks, consensus, gold, reviews."""

    # ------------------------------------------------------------ hand-out

    def next_task(self, project: int | str, user: int | str | dict, *, exclude: Sequence[int] = (),
                  restrict: Sequence[int] | None = None) -> dict | None:
        """Lease the next task of ``project`` to ``user`` (an annotator who is a member).

        Returns a task dict with the item to show, or None when nothing is left
        for this user. ``restrict``: only among these task ids (no gold then;
        e.g. a simulation's worker gets only items they really answered).
        A routed project's random share draws from ``self.routing_rng`` when
        set (a seeded numpy generator), else from the process's.
        """
        p = self.get_project(project)
        u = user if isinstance(user, dict) else self.get_user(user)
        if u["role"] != "admin" and not self.is_member(p["id"], u["id"]):
            raise Forbidden(f"{u['username']} is not a member of project {p['name']!r}")
        if self._in_exam(p, u):  # qualification first: exam questions instead of real work
            with self.db.write() as conn:
                got = _exam.current(conn, p, u["id"], p["lease_seconds"])
            if got is not None:
                task_id, item_id, exp, question, of = got
                view = self._task_view(p, task_id, item_id, exp)
                # no pre-label: a model that learned from gold could give the right answer away
                return {**view, "suggestion": None, "exam": {"question": question, "of": of}}
            self._exam_passed.add((p["id"], u["id"]))
        if p.get("teach_bar") is not None:  # teaching items for nuances they get wrong (workspace.teaching)
            got = self._teaching_task(p, u, exclude)
            if got is not None:
                return got
        for attempt in range(2):
            # db.fast: the hand-out's text() statements go straight to the
            # driver, and the lease and the item it shows are one transaction.
            with self.db.fast_write():
                got = handout.next_task(self.db.fast, p["id"], u["id"], p["lease_seconds"], exclude, project=p,
                                        restrict=restrict, rng=getattr(self, "routing_rng", None))
                if got is not None:
                    return self._task_view(p, *got)
            # Expired leases may be holding the last tasks: give them back and retry once.
            if attempt or not handout.reclaim_expired(self.db):
                return None

    def _in_exam(self, p: dict, u: dict) -> bool:
        """Whether ``u`` must take ``p``'s qualification exam before real work
        (admins never do). Costs a dict look-up for a project without an exam
        and a set look-up once they passed (``_exam_passed``: a pass is final)."""
        if p.get("exam_size") is None or u["role"] == "admin" or (p["id"], u["id"]) in self._exam_passed:
            return False
        with self.db.fast_read() as conn:
            st = _exam.status(conn, p["id"], u["id"])
        if st == "passed":
            if len(self._exam_passed) > _EXAM_PASSED_MAX:
                self._exam_passed.clear()
            self._exam_passed.add((p["id"], u["id"]))
            return False
        return True

    def _task_view(self, p: dict, task_id: int, item_id: int, exp: float) -> dict:
        with self.db.fast_read() as conn:
            r = conn.execute(_TASK_ITEM_PREDICTION, {"p": p["id"], "i": item_id}).one()
        meta = r.meta or {}
        return {
            "id": task_id, "project_id": p["id"], "lease_expires_at": exp,
            "item": {
                "id": r.id, "kind": r.kind, "text": r.text,
                "content_url": f"/api/items/{r.id}/content" if r.kind == "image" else None,
                "fields": {k: meta.get(k) for k in p["show_fields"] if k in meta},
            },
            # the model's pre-label (same for every task, gold included), or None
            "suggestion": None if r.s_version is None else {
                "label": r.s_label, "confidence": float(r.s_confidence), "model_version": int(r.s_version)},
        }

    def submit(self, task_id: int, user: int | str | dict, label: Any, *, suggestion: Any = None) -> dict:
        """Store ``user``'s answer to a task they hold on a live lease (from
        :meth:`next_task` or :meth:`undo`); a paused annotator is refused.

        ``suggestion``: the model's pre-label shown with the task (a class
        name; multi-label: a list), validated like a label; the answer
        records it and whether the label accepted it (same class / set)."""
        u = user if isinstance(user, dict) else self.get_user(user)
        with self.db.fast_write():  # the task lookup and the answer: one transaction
            t = handout.task_row(self.db.fast, task_id)
            p = self.get_project(t.project_id)
            if u["role"] != "admin" and not self.is_member(p["id"], u["id"]):
                raise NotFound(f"task {task_id} does not exist")
            label_kind = kinds.of(p)
            label = label_kind.validate(label, p["schema"])
            if label_kind.checks_item:  # e.g. spans inside the text: one lookup, only for such kinds
                with self.db.fast_write() as conn:
                    _datasets.check_fits(conn, label_kind, label, t.item_id)
            in_exam = self._in_exam(p, u)
            if in_exam:
                suggestion = None
            elif suggestion is not None:
                try:
                    suggestion = label_kind.validate(suggestion, p["schema"])
                except InvalidInput as e:
                    raise InvalidInput(f"suggestion: {e.message}") from None
            if not in_exam:
                got = self._submit_real(task_id, t.item_id, p, u, label, suggestion)
        if in_exam:  # the exam's own record, never an answer (no consensus, no gold score, no export)
            with self.db.write() as conn:
                return _exam.answer(conn, p, u["id"], task_id, t.item_id, label)
        if _events.wanted("answer.created"):  # committed: tell subscribers (webhooks, …)
            _events.emit("answer.created", {"workspace": self, "answer": got})
        return got

    def _submit_real(self, task_id: int, item_id: int, p: dict, u: dict, label: Any, suggestion: Any) -> dict:
        """The answer and what it decides, in the caller's fast transaction."""
        got = handout.submit(self.db.fast, task_id, p["id"], item_id, u["id"], label,
                             suggestion=suggestion, project=p)
        with self.db.fast_write() as conn:  # same transaction
            # every answer goes through the same steps, gold or not
            known = _gold.score_answer(conn, p, item_id, u["id"], label, got["created_at"])
            if p["target_confidence"] is not None:  # adaptive redundancy (a known label stays)
                redundancy.after_answer(conn, p, task_id, item_id, u["id"], label, got["created_at"],
                                        known=known)
            _gold.maybe_pause(conn, p, u["id"], got["created_at"])
        return got

    def skip(self, task_id: int, user: int | str | dict) -> int:
        """Give back a task one holds without answering it; returns its project's id."""
        u = user if isinstance(user, dict) else self.get_user(user)
        t = handout.task_row(self.db, task_id)
        if u["role"] != "admin" and not self.is_member(t.project_id, u["id"]):
            raise NotFound(f"task {task_id} does not exist")
        p = self.get_project(t.project_id)
        if self._in_exam(p, u):
            self._exam_refusal(p, u)
            raise Conflict("exam questions cannot be skipped: answer this one (ask tasks/next for it)")
        handout.skip(self.db, task_id, t.project_id, u["id"], project=p)
        return t.project_id

    def undo(self, answer_id: int, user: int | str | dict) -> dict:
        """Take back one's own answer; the task is leased back to relabel."""
        u = user if isinstance(user, dict) else self.get_user(user)
        with self.db.read() as conn:
            pid = conn.execute(_ANSWER_PROJECT, {"a": answer_id}).scalar()
        if pid is None:
            raise NotFound(f"answer {answer_id} does not exist")
        p = self.get_project(pid)
        if u["role"] != "admin" and not self.is_member(p["id"], u["id"]):
            raise NotFound(f"answer {answer_id} does not exist")
        if self._in_exam(p, u):
            self._exam_refusal(p, u)
            raise Conflict("finish the qualification exam first (ask tasks/next for its next question)")
        # the gold record keeps the undone answer: undo never changes it
        task_id, _, item_id, exp = handout.undo(self.db, answer_id, u["id"], p["lease_seconds"], project=p)
        if _events.wanted("answer.deleted"):  # committed: tell subscribers (webhooks, …)
            _events.emit("answer.deleted", {"workspace": self, "answer": {
                "id": answer_id, "task_id": task_id, "project_id": p["id"], "item_id": item_id,
                "annotator_id": u["id"]}})
        return self._task_view(p, task_id, item_id, exp)

    def reclaim_expired(self, now: float | None = None) -> int:
        """Return the slots of expired leases to the pool; how many were freed."""
        return handout.reclaim_expired(self.db, now)

    def doctor(self, project: int | str | None = None, *, fix: bool = False) -> dict:
        """Recount task counters and consensus rows (of one project, or all)
        from answers and leases: ``{"drift": [{project_id, task_id, item_id,
        column, stored, expected}, …], "fixed": fix}``; with ``fix`` the drift
        is repaired in one transaction and recorded in the audit log
        (:mod:`assay.engine.ledger`)."""
        pid = None if project is None else self.get_project(project)["id"]
        found = (ledger.fix if fix else ledger.check)(self.db, pid)
        return {"project_id": pid, "drift": [d.as_dict() for d in found], "fixed": bool(fix and found)}

    # ------------------------------------------------------------ adaptive redundancy

    def refit_quality(self, project: int | str) -> dict:
        """Re-estimate annotator skills (Dawid-Skene over all answers) and every
        item's posterior and status. Slow on big projects: the server runs it
        in the background; the fit itself holds no transaction open."""
        return redundancy.refit(self.db, self.get_project(project))

    def refits_due(self, *, growth: float = SCHEDULE.refit_growth, min_new: int = SCHEDULE.refit_min_new) -> list[int]:
        """Projects of an aggregatable kind (adaptive or fixed overlap) whose
        answers grew by ``growth`` (25 %) and at least ``min_new`` answers
        since their last re-fit (or that have ``min_new`` answers and were
        never fitted): what the server's background re-fitter runs next. A
        fixed-overlap project is fitted too: its final labels are its
        aggregation (:mod:`assay.engine.resolver`), not a plain vote. Spans,
        boxes and polygons projects are due with adaptive redundancy on
        (:mod:`assay.engine.merged_redundancy`)."""
        return redundancy.refits_due(self.db, kinds.aggregatable(), growth=growth, min_new=min_new,
                                     merging=kinds.merging())

    def item_consensus(self, project: int | str, *, status: str | None = None, after: int | None = None,
                       limit: int = 100) -> tuple[list[dict], int | None]:
        """A keyset page of items' running consensus: label, confidence, answers, status."""
        p = self.get_project(project)
        if status not in (None, "open", "resolved", "review"):
            raise InvalidInput("status must be one of open, resolved, review")
        return redundancy.consensus(self.db, p["id"], status=status, after=after, limit=limit)

    def final_labels(self, project: int | str, *, after: int | None = None,
                     limit: int = 100) -> tuple[list[dict], int | None]:
        """A keyset page of the items' final labels, in task order: ``{item_id,
        label, source, confidence}`` (:mod:`assay.engine.resolver`, what an
        export holds) and the ``after`` of the next page (None: the last)."""
        return _resolver.labels_page(self.db, self.get_project(project), after=after, limit=limit)

    def review_queue(self, project: int | str, *, after: int | None = None, limit: int = 100):
        """Items that reached ``max_answers`` below the target confidence."""
        return self.item_consensus(project, status="review", after=after, limit=limit)

    def mark_review_queue(self, project: int | str, *, after: int | None = None, limit: int = 20):
        """Spans, boxes, polygons: the unsure items (low pairwise agreement,
        :mod:`assay.engine.region_review`), each with every answer and the
        kind's majority; ``(entries, next_after)``."""
        p = self.get_project(project)
        if p["schema"]["kind"] not in kinds.merging():
            raise InvalidInput(f"this review queue is for {', '.join(kinds.merging())} projects; "
                               "class projects use the consensus queue (status=review)")
        return _region_review.queue(self.db, p, after=after, limit=max(1, min(int(limit), 200)))

    # ------------------------------------------------------------ gold and reviews

    def import_gold(self, project: int | str, rows: Sequence[dict], *, key: str | None = None,
                    user: int | str | dict | None = None) -> dict:
        """Known labels for items of the project, as dicts ``{"item_id": …,
        "label": …}`` — or, with ``key``, ``{key: …, "label": …}`` where ``key``
        names an item metadata field (a column of the imported file, e.g. your
        own id). Their tasks become gold questions. All or nothing: a bad label
        or an unknown item stores none of them."""
        p = self.get_project(project)
        u = None if user is None else (user if isinstance(user, dict) else self.get_user(user))
        pairs = _gold.match_rows(self.db, p, rows, key)
        with self.db.write() as conn:
            out = _gold.add(conn, p, pairs, None if u is None else u["id"])
            _audit.record(conn, "gold.import", target_kind="project", target_id=p["id"], target=p["name"],
                          details={"rows": len(pairs), "key": key,
                                   **{k: v for k, v in out.items() if isinstance(v, int)}})
            warning = _gold.clustered(conn, p["id"])
        self._projects.pop(p["id"], None)
        return {**out, "warnings": [warning] if warning else []}

    def import_gold_file(self, project: int | str, path: str | os.PathLike, *, key: str | None = None,
                         user: int | str | dict | None = None) -> dict:
        """Gold from a CSV or JSONL file with ``item_id`` (or the ``key``
        column) and ``label``. Multi-label CSV cells list classes joined by
        ``|``; JSONL may give a list (:mod:`assay.formats.gold`). Span
        projects also take spaCy-compatible JSON lines, whose items are found
        by ``item_id`` or by their text, and CoNLL BIO (``.conll``,
        :meth:`import_conll`); boxes and polygons projects a COCO ``.json``
        file (:meth:`import_coco`) or a YOLO or VOC folder
        (:meth:`import_shapes_folder`), also zipped (``.zip``)."""
        if str(path).lower().endswith(".json") and key is None:
            return self.import_json_gold(project, path, user=user)  # COCO, or Label Studio's export
        if Path(path).is_dir() and key is None:  # a YOLO or Pascal VOC folder
            return self.import_shapes_folder(project, path, user=user)
        if Path(path).suffix.lower() == ".zip" and key is None:  # the same folder, zipped (an upload)
            with tempfile.TemporaryDirectory(prefix="assay-gold-") as tmp:
                folder = _shape_formats.unpack_label_zip(Path(path), Path(tmp))
                return self.import_shapes_folder(project, folder, user=user)
        if Path(path).suffix.lower() in (".conll", ".bio", ".iob") and key is None:
            return self.import_conll(project, path, user=user)
        p = self.get_project(project)
        rows = _gold_file.read_rows(path, kinds.of(p), key)
        texts = [r["text"] for r in rows if "text" in r and "item_id" not in r]
        if texts and key is None:
            with self.db.read() as conn:
                found = _datasets.items_by_text(conn, p["dataset_id"], texts)
            for n, r in enumerate(rows, 1):
                if "item_id" not in r:
                    if r["text"] not in found:
                        raise InvalidInput(f"gold row {n}: no text item of the dataset has this text "
                                           f"({r['text'][:40]!r}); nothing was stored")
                    r["item_id"] = found[r.pop("text")]
        return self.import_gold(project, rows, key=key, user=user)

    def list_gold(self, project: int | str, *, after: int | None = None, limit: int = 100):
        """A keyset page of the project's known labels (imported gold and reviews)."""
        p = self.get_project(project)
        with self.db.read() as conn:
            return _gold.list_gold(conn, p["id"], after=after, limit=max(1, min(int(limit), 1000)))

    def remove_gold(self, project: int | str, item_id: int) -> None:
        p = self.get_project(project)
        with self.db.write() as conn:
            _gold.remove(conn, p, item_id)
            _audit.record(conn, "gold.remove", target_kind="project", target_id=p["id"], target=p["name"],
                          details={"item_id": item_id})
        self._projects.pop(p["id"], None)

    def review(self, project: int | str, item_id: int, label: Any, user: int | str | dict) -> dict:
        """A reviewer's (or admin's) final label for an item: it becomes the
        item's consensus (confidence 1, method ``review``), the item gets no
        more answers, and it counts like gold (re-fits clamp it; it scores the
        annotators who answered it)."""
        p = self.get_project(project)
        u = user if isinstance(user, dict) else self.get_user(user)
        if u["role"] not in ("admin", "reviewer"):
            raise Forbidden("only reviewers and admins decide items")
        label = kinds.of(p).validate(label, p["schema"])
        with self.db.write() as conn:
            out = _gold.decide(conn, p, item_id, label, u["id"])
            _datasets.check_fits(conn, kinds.of(p), label, item_id)  # a refusal rolls the decision back
            _audit.record(conn, "review.decide", target_kind="project", target_id=p["id"], target=p["name"],
                          details={"item_id": item_id, "label": label})
        self._projects.pop(p["id"], None)  # has_known may have changed
        return out

    # ------------------------------------------------------------ qualification exam

    def _exam_refusal(self, p: dict, u: dict) -> None:
        """Raise ExamFailed when ``u`` failed ``p``'s exam with no attempt left."""
        with self.db.read() as conn:
            failed = _exam.status(conn, p["id"], u["id"]) == "failed"
        if failed:
            raise ExamFailed(_exam.refusal(p))

    def exam_report(self, project: int | str) -> dict:
        """The qualification exam's settings and, per annotator who started it,
        status ('open', 'passed', 'failed'), attempts with scores and times,
        best score and attempts left (staff only)."""
        p = self.get_project(project)
        with self.db.read() as conn:
            pool = _exam.pool_size(conn, p["id"])
            rows = _exam.report(conn, p)
        return {"exam_size": p.get("exam_size"), "exam_pass": _exam.pass_bar(p), "exam_retries": _exam.retries(p),
                "exam_items": pool, "annotators": rows}

    def reset_exam(self, project: int | str, user: int | str, *, by: int | str | dict | None = None) -> dict:
        """Grant one more exam attempt to an annotator refused after failing."""
        p = self.get_project(project)
        u = self.get_user(user)
        with self.db.write() as conn:
            try:
                out = _exam.reset(conn, p, u["id"])
            except NotFound:
                raise NotFound(f"{u['username']!r} has not failed the exam of project {p['name']!r}") from None
            _audit.record(conn, "exam.reset", target_kind="project", target_id=p["id"], target=p["name"],
                          details={"user_id": u["id"], "username": u["username"], "granted": out["granted"]})
        return {**out, "username": u["username"]}

    def gold_stats(self, project: int | str) -> list[dict]:
        """Per annotator: gold answers, correct, accuracy, the window since the
        last lifted pause, and whether they are paused."""
        p = self.get_project(project)
        with self.db.read() as conn:
            return _gold.stats(conn, p["id"])

    def lift_pause(self, project: int | str, user: int | str, *, by: int | str | dict | None = None) -> dict:
        """Let a paused annotator work again; their gold record starts a fresh window."""
        p = self.get_project(project)
        u = self.get_user(user)
        a = None if by is None else (by if isinstance(by, dict) else self.get_user(by))
        with self.db.write() as conn:
            try:
                out = _gold.lift_pause(conn, p, u["id"], None if a is None else a["id"])
            except NotFound:
                raise NotFound(f"{u['username']!r} is not paused in project {p['name']!r}") from None
            _audit.record(conn, "pause.lift", target_kind="project", target_id=p["id"], target=p["name"],
                          details={"user_id": u["id"], "username": u["username"]})
        return {**out, "username": u["username"]}
