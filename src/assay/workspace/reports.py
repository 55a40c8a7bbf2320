"""Reading the work: answers, progress, the reports, and the export.

Relies on the core (:class:`assay.workspace.core.Core`, which lists the
caches) for ``db``, ``_progress_cache``, ``_skill_cache`` and
``_quality_cache`` (this part
fills them); on :class:`~assay.workspace.projects.Projects` for
``get_project``.
"""

from __future__ import annotations

import copy
import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from assay import audit as _audit
from assay import kinds
from assay.engine import known_skills as _known_skills
from assay.engine import overview as _overview
from assay.engine import progress_series as _series
from assay.engine import reports as _reports
from assay.engine import resolver as _resolver
from assay.engine import skillmap as _skillmap
from assay.engine import tags as _tags
from assay.errors import InvalidInput
from assay.formats import export as _export
from assay.formats import shapes as _shapes

_log = logging.getLogger(__name__)

#: skill maps kept (per project and min_confidence, with their inputs: ~24 bytes an answer); emptied past this
_SKILL_CACHE_MAX = 16
#: kept reports (quality, label errors per method and limit); emptied past this
_QUALITY_CACHE_MAX = 64


class Reports:
    """Read-only views of a project: answers, progress, reports, exports."""

    #: tasks from which :meth:`progress` may reuse its counts (see there)
    progress_cache_min_tasks = 10_000

    # ------------------------------------------------------------ reports (assay.engine.reports)

    #: seconds a kept report (quality, label errors) may take to compute in the request; one that
    #: took longer is served as it was (``stale``) while a fresh one is computed in the background
    quality_inline_seconds = 0.5
    #: seconds after which a kept report is computed again even if its key still matches
    quality_cache_seconds = 300.0

    def quality_report(self, project: int | str, *, page_size: int = 5000, stale_ok: bool = False) -> dict:
        """How good the labels are: per annotator accuracy (with a 95 % Wilson
        interval and what it rests on) and confusion, Krippendorff's alpha, a
        histogram of consensus confidence, items per consensus status and
        final labels by source. Single-label projects only; see
        :func:`assay.engine.reports.quality_report`. Kept between requests
        (:meth:`_kept_report`): ``stale``, ``computed_at``, ``stale_ok``."""
        p = self.get_project(project)
        return self._kept_report(p, ("quality",), lambda: _reports.quality_report(self.db, p, page_size=page_size),
                                 stale_ok)

    def _kept_report(self, p: dict, slot: tuple, compute, stale_ok: bool) -> dict:
        """A report of ``p`` kept in ``_quality_cache`` under ``slot``, keyed
        on :func:`assay.engine.reports.quality_key` (answers, gold and
        reviews, the last re-fit, the model, pauses, the settings; read
        first, a few index look-ups): asking again with nothing new costs the
        key. A changed key computes the report again — but with ``stale_ok``
        (what the server's routes ask), when the kept report took over
        ``quality_inline_seconds`` to compute (a big project), it is answered
        with ``stale: true`` and a fresh one is computed in the background
        (one at a time per project).
        ``computed_at``: when the answered report was computed."""
        slot = (p["id"], *slot)
        key = _reports.quality_key(self.db, p)
        hit = self._quality_cache.get(slot)
        if hit is not None and hit[0] == key and time.time() - hit[2] < self.quality_cache_seconds:
            return {**copy.deepcopy(hit[1]), "stale": False}
        if hit is None or not stale_ok or hit[3] < self.quality_inline_seconds:
            return {**copy.deepcopy(self._compute_kept(p, slot, compute)), "stale": False}
        lock = self._quality_locks.setdefault(p["id"], threading.Lock())
        if not lock.locked():
            threading.Thread(target=self._compute_kept, args=(p, slot, compute, True),
                             name=f"report-{p['id']}", daemon=True).start()
        return {**copy.deepcopy(hit[1]), "stale": True}

    def _compute_kept(self, p: dict, slot: tuple, compute, background: bool = False) -> dict | None:
        """Compute a kept report and keep it under the key read before it (a
        change during the reads shows as a new key); one computation per
        project at a time, a second asker waits for it and takes it. In the
        background a failure is logged and the last report stays."""
        try:
            with self._quality_locks.setdefault(p["id"], threading.Lock()):
                key = _reports.quality_key(self.db, p)
                hit = self._quality_cache.get(slot)
                if hit is not None and hit[0] == key and time.time() - hit[2] < self.quality_cache_seconds:
                    return hit[1]
                t0 = time.monotonic()
                report = {**compute(), "computed_at": time.time()}
                if len(self._quality_cache) >= _QUALITY_CACHE_MAX and slot not in self._quality_cache:
                    self._quality_cache.clear()
                self._quality_cache[slot] = (key, report, report["computed_at"], time.monotonic() - t0)
            return report
        except Exception:
            if not background:
                raise
            _log.exception("report %s of project %s", slot[1:], p["id"])
            return None

    #: seconds a skill map's inputs are kept in ``_skill_cache`` from a whole read: a
    #: backstop for a change :func:`assay.engine.skillmap.inputs` does not see
    skill_cache_seconds = 300.0

    def skill_map(self, project: int | str, *, min_confidence: float | None = None, after: int | None = None,
                  limit: int | None = None) -> dict:
        """Each annotator's skill per class with a 90 % interval and the class
        pairs they confuse most, scored on items whose truth is known (gold,
        reviews, confident final labels); see :func:`assay.engine.reports.skill_map`.

        A page of annotators by user id (``after``, ``limit``; None: all) with
        ``annotators_total`` and ``next_after``. Kept between requests
        (``_skill_cache``, :mod:`assay.engine.skillmap`): asking again with
        nothing new costs one read of counts; after new answers only those
        answers and their items are read; after an undo, a gold row, a review,
        a re-fit or a model step everything is read again."""
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise InvalidInput("limit must be a whole number of annotators, at least 1")
        p = self.get_project(project)
        mc = _skillmap.SKILL_TRUTH_CONFIDENCE if min_confidence is None else float(min_confidence)
        key = _skillmap.inputs(self.db, p, mc)
        full = self._cached_skill_map(p, key)
        return copy.deepcopy(_skillmap.page(full, after=after, limit=limit))

    def _cached_skill_map(self, p: dict, key) -> dict:
        def fresh(hit) -> bool:
            return hit is not None and time.monotonic() - hit[1] < self.skill_cache_seconds

        slot = (p["id"], key.min_confidence)
        hit = self._skill_cache.get(slot)
        if fresh(hit) and hit[0] == key:
            return hit[3]
        with self._skill_lock:  # one computation at a time: pages polled together wait for it, then hit
            hit = self._skill_cache.get(slot)
            if fresh(hit) and hit[0] == key:
                return hit[3]
            data = None
            if fresh(hit) and _skillmap.grown_by_answers(hit[0], key):
                data = _skillmap.update(self.db, p, hit[2], key)
            at = hit[1] if data is not None else time.monotonic()  # the backstop counts from a whole read
            if data is None:
                data = _skillmap.read(self.db, p, key.min_confidence, upto=key.last_answer or 0)
            full = _reports.skill_map(self.db, p, min_confidence=key.min_confidence, data=data)
            if len(self._skill_cache) >= _SKILL_CACHE_MAX and slot not in self._skill_cache:
                self._skill_cache.clear()
            # the key was read first: a change during the reads shows as a new key (or a count that does not add up)
            self._skill_cache[slot] = (key, at, data, full)
        return full

    def label_errors(self, project: int | str, *, method: str = "auto", limit: int | None = 100,
                     stale_ok: bool = False) -> dict:
        """Answered items ranked by how likely their label is wrong, most
        likely first, with a quality score in [0, 1] and a flag: from the
        crowd's answers and the in-loop model's stored predictions
        (``method="crowd"``) or, with one answer per item, each answer against
        the model's prediction by confident learning (``"model"``); ``"auto"``
        picks. Items with gold or a reviewer's label are left out. See
        :func:`assay.engine.label_errors.label_errors`. Kept between requests
        like the quality report (:meth:`_kept_report`)."""
        from assay.engine.label_errors import label_errors

        p = self.get_project(project)
        return self._kept_report(p, ("label_errors", method, limit),
                                 lambda: label_errors(self.db, p, method=method, limit=limit), stale_ok)

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

    def known_skills(self, project: int | str) -> dict:
        """Annotators' skills in a spans, boxes or polygons project, on gold and
        reviewed items: precision, recall, F1 and (shapes) the mean IoU of
        matched shapes, or (spans) the same per entity type; see
        :func:`assay.engine.known_skills.known_skills`. Gold-derived: not for annotators."""
        return _known_skills.known_skills(self.db, self.get_project(project))

    def project_report(self, project: int | str, *, slice: str | None = None) -> dict:
        """Progress, agreement, the final labels' distribution and accuracy
        against gold and reviews, over the project's items or, with ``slice``,
        only that slice's (of the project's dataset); see
        :func:`assay.engine.overview.overview`. Any kind of project."""
        p = self.get_project(project)
        ids = None if slice is None else self.slice_items(p["dataset_id"], slice)
        return {**_overview.overview(self.db, p, ids), "slice": slice}

    # ------------------------------------------------------------ reading answers

    def list_answers(self, project: int | str, *, after: int | None = None, limit: int = 100,
                     annotator_id: int | None = None, newest_first: bool = False) -> tuple[list[dict], int | None]:
        p = self.get_project(project)
        return _reports.answers_page(self.db, p["id"], after=after, limit=limit, annotator_id=annotator_id,
                                     newest_first=newest_first)

    def progress(self, project: int | str, *, cache: bool = True) -> dict:
        """Counts for a project: tasks, done (enough answers), remaining, per annotator.

        Exact on small projects. On big ones (at least
        ``progress_cache_min_tasks`` tasks, and a count that took over 50 ms)
        the result is reused for ten times what it cost (at least 2 s), so
        that annotators' screens polling it cost little whatever the size.
        Once that time is up the kept counts are still answered for up to
        ``progress_stale_seconds`` more while they are counted again in a
        background thread (one at a time per project), so no request waits
        for the count.
        """
        p = self.get_project(project)
        now = time.monotonic()
        hit = self._progress_cache.get(p["id"]) if cache else None
        if hit is not None and hit[0] > now:
            return copy.deepcopy(hit[1])
        if hit is not None and hit[0] + self.progress_stale_seconds > now:
            with self._lock:
                start = p["id"] not in self._progress_counting
                self._progress_counting.add(p["id"])
            if start:
                threading.Thread(target=self._recount_progress, args=(p,), name=f"progress-{p['id']}",
                                 daemon=True).start()
            return copy.deepcopy(hit[1])
        return self._recount_progress(p)

    #: seconds past their time that kept progress counts are still answered while a recount runs
    progress_stale_seconds = 60.0

    def _recount_progress(self, p: dict) -> dict:
        """Count the project's progress and keep it if it was slow on a big project."""
        try:
            now = time.monotonic()
            result = self._count_progress(p)
            cost = time.monotonic() - now
            if cost > 0.05 and result["tasks"] >= self.progress_cache_min_tasks:
                self._progress_cache[p["id"]] = (now + max(2.0, 10 * cost), copy.deepcopy(result))
            return result
        finally:
            with self._lock:
                self._progress_counting.discard(p["id"])

    def progress_series(self, project: int | str, *, bucket: str = "hour", buckets: int = 48,
                        now: float | None = None, series_of: str | int = "all") -> dict:
        """The project's live progress over time, per time bucket (``minute``,
        ``hour``, ``day``; the last ``buckets`` of them, the open one last) and
        per annotator: answers per hour, seconds per item, agreement with the
        final label; and the model's accuracy per version; ``series_of``: whose
        per-bucket series the annotators carry ("all", "none", a user id). Aggregated by the
        database; closed buckets are kept in ``_series_cache`` (see
        :mod:`assay.engine.progress_series`)."""
        return _series.series(self.db, self.get_project(project), bucket=bucket, buckets=buckets, now=now,
                              cache=self._series_cache, series_of=series_of)

    def annotator_progress(self, project: int | str, user_id: int) -> dict:
        """One annotator's own counts (always exact; index lookups only)."""
        return _reports.annotator_progress(self.db, self.get_project(project)["id"], user_id)

    def _count_progress(self, p: dict) -> dict:
        return _reports.count_progress(self.db, p)

    # ------------------------------------------------------------ export

    def export_records(self, project: int | str, *, labeled_only: bool = False,
                       slice: str | None = None, tag: str | None = None, sources=None) -> Iterator[dict]:
        """The export's records, streamed; ``slice``: only the items of that
        slice of the project's dataset (an explicit slice is joined in SQL; a
        query slice is evaluated once, when this starts); ``tag``: only items
        with that tag (in SQL); ``sources``: only items whose final label
        comes from one of these (:data:`assay.engine.resolver.SOURCES`, e.g.
        ``["gold", "review"]``: the labels people verified)."""
        p = self.get_project(project)
        tag = None if tag is None else _tags.check_tag(tag)
        keep_sources = _resolver.check_sources(sources)
        s = None if slice is None else self.get_slice(p["dataset_id"], slice)
        explicit = s is not None and s["kind"] == "items"
        records = _export.iter_records(self.db, p, labeled_only=labeled_only, tag=tag,
                                       slice_id=s["id"] if explicit else None)
        if keep_sources is not None:
            records = (r for r in records if _resolver.source_family(r["label_source"]) in keep_sources)
        if s is None or explicit:
            return records
        keep = set(self.slice_items(p["dataset_id"], slice))
        return (r for r in records if r["item_id"] in keep)

    def _audit_export(self, project: int | str, fmt: str, labeled_only: bool, path: Path | None = None,
                      slice: str | None = None, tag: str | None = None, sources=None) -> None:
        """Exports are reads; the record of one is written when it starts."""
        p = self.get_project(project)
        _export.check_format(fmt, kinds.of(p))
        if slice is not None:
            self.get_slice(p["dataset_id"], slice)  # NotFound before anything is written
        if tag is not None:
            tag = _tags.check_tag(tag)
        sources = _resolver.check_sources(sources)
        with self.db.write() as conn:
            _audit.record(conn, "export", target_kind="project", target_id=p["id"], target=p["name"],
                          details={"format": str(fmt)[:20], "labeled_only": bool(labeled_only),
                                   **({"path": str(path)[:500]} if path is not None else {}),
                                   **({"slice": str(slice)[:200]} if slice is not None else {}),
                                   **({"tag": tag} if tag is not None else {}),
                                   **({"sources": sorted(sources)} if sources is not None else {})})

    @staticmethod
    def _no_slice(slice: str | None, fmt: str, tag: str | None = None, sources=None) -> None:
        for what, given in (("a slice", slice), ("a tag", tag), ("a choice of label sources", sources)):
            if given is not None:
                raise InvalidInput(f"{what} limits jsonl, csv and parquet exports, not {fmt}")

    def export_chunks(self, project: int | str, fmt: str = "jsonl", *, labeled_only: bool = False,
                      slice: str | None = None, tag: str | None = None, sources=None) -> Iterator[bytes]:
        """The export as a stream of byte chunks (jsonl, csv or parquet; a
        Parquet file is built in an anonymous temporary file first; boxes and
        polygons: ``coco`` too, :meth:`coco_chunks`). ``slice``, ``tag``,
        ``sources``: only their items (:meth:`export_records`)."""
        if fmt in ("coco", "labelstudio"):
            self._no_slice(slice, fmt, tag, sources)
        if fmt == "coco":
            return self.coco_chunks(project)
        if fmt == "labelstudio":  # every kind (:meth:`labelstudio_chunks`)
            return self.labelstudio_chunks(project)
        self._audit_export(project, fmt, labeled_only, slice=slice, tag=tag, sources=sources)
        p = self.get_project(project)
        return _export.chunks(self.export_records(p["id"], labeled_only=labeled_only, slice=slice, tag=tag,
                                                  sources=sources), fmt, kinds.of(p))

    def export(self, project: int | str, path: str | os.PathLike, fmt: str | None = None, *,
               labeled_only: bool = False, slice: str | None = None, tag: str | None = None,
               sources=None) -> dict:
        """Write a snapshot of the project's labels to ``path`` (jsonl, csv or
        parquet; a kind may add its own: spans ``spacy`` and ``conll``; boxes
        and polygons ``coco``, ``yolo`` and ``voc``, see :meth:`export_shapes`).

        Written to a temporary file and renamed, so a failed export leaves no
        partial file. ``slice``: only the items of that slice of the project's
        dataset (jsonl, csv, parquet); ``tag``: only items with that tag (the
        same formats); ``sources``: only items whose final label comes from
        one of these (the same formats). Returns ``{"path", "format", "items"}``.
        """
        path = Path(path)
        fmt = (fmt or {".json": "coco"}.get(path.suffix.lower()) or path.suffix.lstrip(".") or "jsonl").lower()
        if fmt in ("labelstudio", "hf") or fmt in _shapes.FORMATS:
            self._no_slice(slice, fmt, tag, sources)
        if fmt == "labelstudio":  # Label Studio's JSON export, every kind
            return self.export_labelstudio(project, path)
        if fmt == "hf":  # a Hugging Face datasets folder (the hf extra)
            return self.export_hf(project, path)
        if fmt in _shapes.FORMATS:  # boxes and polygons: coco, yolo, voc (:meth:`export_shapes`)
            out = self.export_shapes(project, path, fmt)
            return {**out, "items": out["images"]}
        self._audit_export(project, fmt, labeled_only, path=path, slice=slice, tag=tag, sources=sources)
        p = self.get_project(project)
        n = _export.write_file(self.export_records(p["id"], labeled_only=labeled_only, slice=slice, tag=tag,
                                                  sources=sources), path, fmt, kinds.of(p))
        return {"path": str(path), "format": fmt, "items": n}
