"""Reading the work: answers, progress, the reports, and the export.

Relies on the core (:class:`assay.workspace.core.Core`, which lists the
caches) for ``db`` and ``_progress_cache`` (this part fills it; entries
expire); on :class:`~assay.workspace.projects.Projects` for
``get_project``.
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Iterator
from pathlib import Path

from assay import audit as _audit
from assay import kinds
from assay.engine import reports as _reports
from assay.formats import export as _export


class Reports:
    """Read-only views of a project: answers, progress, reports, exports."""

    #: tasks from which :meth:`progress` may reuse its counts (see there)
    progress_cache_min_tasks = 10_000

    # ------------------------------------------------------------ reports (assay.engine.reports)

    def quality_report(self, project: int | str, *, page_size: int = 5000) -> dict:
        """How good the labels are: per annotator accuracy (with a 95 % Wilson
        interval and what it rests on) and confusion, Krippendorff's alpha, a
        histogram of consensus confidence, items per consensus status and
        final labels by source. Single-label projects only; see
        :func:`assay.engine.reports.quality_report`."""
        return _reports.quality_report(self.db, self.get_project(project), page_size=page_size)

    def skill_map(self, project: int | str, *, min_confidence: float | None = None) -> dict:
        """Each annotator's skill per class with a 90 % interval and the class
        pairs they confuse most, scored on items whose truth is known (gold,
        reviews, confident final labels); see :func:`assay.engine.reports.skill_map`."""
        kw = {} if min_confidence is None else {"min_confidence": min_confidence}
        return _reports.skill_map(self.db, self.get_project(project), **kw)

    def model_report(self, project: int | str) -> dict:
        """The in-loop model's learning curve: one row per version (answers
        spent when it was trained, verified labels, out-of-fold and
        validation accuracy, auto-label threshold and state) plus counts of
        predictions and auto-labels."""
        return _reports.model_report(self.db, self.get_project(project))

    def suggestion_stats(self, project: int | str, *, page_size: int = 5000) -> dict:
        """How answers treated the model's pre-labels (anchoring): answers
        shown a suggestion, how many accepted it, and — where the item's true
        label is known (gold, a review, or a resolved consensus) — the
        accuracy of accepted against overridden answers and of the
        suggestions themselves."""
        return _reports.suggestion_stats(self.db, self.get_project(project), page_size=page_size)

    # ------------------------------------------------------------ reading answers

    def list_answers(self, project: int | str, *, after: int | None = None, limit: int = 100,
                     annotator_id: int | None = None) -> tuple[list[dict], int | None]:
        p = self.get_project(project)
        return _reports.answers_page(self.db, p["id"], after=after, limit=limit, annotator_id=annotator_id)

    def progress(self, project: int | str, *, cache: bool = True) -> dict:
        """Counts for a project: tasks, done (enough answers), remaining, per annotator.

        Exact on small projects. On big ones (at least
        ``progress_cache_min_tasks`` tasks, and a count that took over 50 ms)
        the result is reused for ten times what it cost (at least 2 s), so
        that annotators' screens polling it cost little whatever the size.
        """
        p = self.get_project(project)
        now = time.monotonic()
        hit = self._progress_cache.get(p["id"]) if cache else None
        if hit is not None and hit[0] > now:
            return copy.deepcopy(hit[1])
        result = self._count_progress(p)
        cost = time.monotonic() - now
        if cost > 0.05 and result["tasks"] >= self.progress_cache_min_tasks:
            self._progress_cache[p["id"]] = (now + max(2.0, 10 * cost), copy.deepcopy(result))
        return result

    def annotator_progress(self, project: int | str, user_id: int) -> dict:
        """One annotator's own counts (always exact; index lookups only)."""
        return _reports.annotator_progress(self.db, self.get_project(project)["id"], user_id)

    def _count_progress(self, p: dict) -> dict:
        return _reports.count_progress(self.db, p)

    # ------------------------------------------------------------ export

    def export_records(self, project: int | str, *, labeled_only: bool = False) -> Iterator[dict]:
        p = self.get_project(project)
        return _export.iter_records(self.db, p, labeled_only=labeled_only)

    def _audit_export(self, project: int | str, fmt: str, labeled_only: bool, path: Path | None = None) -> None:
        """Exports are reads; the record of one is written when it starts."""
        _export.check_format(fmt)
        p = self.get_project(project)
        with self.db.write() as conn:
            _audit.record(conn, "export", target_kind="project", target_id=p["id"], target=p["name"],
                          details={"format": str(fmt)[:20], "labeled_only": bool(labeled_only),
                                   **({"path": str(path)[:500]} if path is not None else {})})

    def export_chunks(self, project: int | str, fmt: str = "jsonl", *, labeled_only: bool = False) -> Iterator[bytes]:
        """The export as a stream of byte chunks (jsonl, csv or parquet; a
        Parquet file is built in an anonymous temporary file first)."""
        self._audit_export(project, fmt, labeled_only)
        p = self.get_project(project)
        return _export.chunks(self.export_records(p["id"], labeled_only=labeled_only), fmt, kinds.of(p))

    def export(self, project: int | str, path: str | os.PathLike, fmt: str | None = None, *,
               labeled_only: bool = False) -> dict:
        """Write a snapshot of the project's labels to ``path`` (jsonl, csv or parquet).

        Written to a temporary file and renamed, so a failed export leaves no
        partial file. Returns ``{"path", "format", "items"}``.
        """
        path = Path(path)
        fmt = (fmt or path.suffix.lstrip(".") or "jsonl").lower()
        _export.check_format(fmt)
        self._audit_export(project, fmt, labeled_only, path=path)
        p = self.get_project(project)
        n = _export.write_file(self.export_records(p["id"], labeled_only=labeled_only), path, fmt, kinds.of(p))
        return {"path": str(path), "format": fmt, "items": n}
