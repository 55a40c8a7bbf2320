"""Projects, members, progress, answers and exports."""

from __future__ import annotations

import itertools
from typing import Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from assay import kinds
from assay.engine import instructions
from assay.engine import settings as project_settings
from assay.errors import InvalidInput
from assay.formats.export import FORMATS, KIND_FORMATS, MEDIA, SUFFIX, content_disposition
from assay.server.deps import WS, Admin, Staff, User, json

router = APIRouter(tags=["projects"])


class ClassIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    key: str | None = Field(None, max_length=8, description=(
        "the class's keyboard key on the labeling screen: one printable character, unique in the project, "
        "not one the screen keeps (a, s, z, n, f, + = - _); none: the screen's default (digits)"))


class InstructionsIn(BaseModel):
    text: str = Field("", max_length=100_000, description="instructions in Markdown")


class SchemaIn(BaseModel):
    """A project's schema: its kind, classes and instructions, and any of the
    kind's own options beside them (``spans``: ``overlap``, true or false)."""

    model_config = ConfigDict(extra="allow")

    kind: str = Field("single", description="a registered label kind (assay.kinds): single, multi, …",
                      examples=["single", "multi"], max_length=30)
    classes: list[ClassIn | str] = Field(min_length=1)
    instructions: str = ""

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, v: str) -> str:
        if v not in kinds.names():
            raise ValueError(f"unknown label kind {v!r}: use one of {', '.join(kinds.names())}")
        return v


class _ProjectBase(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    dataset_id: int
    schema_: SchemaIn = Field(alias="schema")


#: a new project: name, dataset, schema and the settings of
#: :data:`assay.engine.settings.CREATE_FIELDS`, typed and described by the settings model
ProjectIn = create_model("ProjectIn", __base__=_ProjectBase, **project_settings.create_fields())

#: every export format (a kind's own ones are checked against the project's kind)
ExportFormat = Literal[FORMATS + tuple(KIND_FORMATS) + ("coco", "labelstudio")]  # type: ignore[valid-type]

#: the settings route's body: every changeable setting, described by the settings model
SettingsPatch = project_settings.patch_model()


class MemberIn(BaseModel):
    username: str | None = None
    user_id: int | None = None


@router.get("/projects")
def list_projects(ws: WS, user: User):
    return json({"projects": ws.list_projects(user)})


@router.post("/projects", status_code=201)
def create_project(body: ProjectIn, ws: WS, _: Admin):
    classes = [c if isinstance(c, str) else c.model_dump() for c in body.schema_.classes]
    p = ws.create_project(body.name, body.dataset_id, classes, kind=body.schema_.kind,
                          instructions=body.schema_.instructions, kind_options=body.schema_.model_extra or None,
                          **{k: getattr(body, k) for k in project_settings.CREATE_FIELDS})
    return json(p, 201)


@router.get("/kinds")
def list_kinds(_: Admin):
    """Every registered label kind with its description and the items it needs (:func:`assay.kinds.describe`)."""
    return json(kinds.describe())


@router.post("/instructions/preview")
def preview_instructions(body: InstructionsIn, _: Admin):
    """Instructions (Markdown) as annotators will see them: safe HTML (raw HTML
    shown as text, no ``javascript:`` links; :mod:`assay.engine.instructions`)."""
    return json({"html": instructions.to_html(body.text)})


@router.get("/settings/schema")
def settings_schema(_: Admin):
    """Every project setting with its type, bounds, default, description and
    whether it is changeable (:func:`assay.engine.settings.schema`)."""
    return json(project_settings.schema())


@router.patch("/projects/{project_id}/settings")
def update_settings(project_id: int, body: SettingsPatch, ws: WS, _: Admin):  # type: ignore[valid-type]
    """Change a project's settings (:class:`assay.engine.settings.ProjectSettings`):
    only the keys sent change; ``null`` turns an optional setting off (or back
    to its default). A bad value is a 400 that names the setting and changes
    nothing. Returns the project."""
    return json(ws.update_project(project_id, **body.model_dump(exclude_unset=True)))


@router.get("/projects/{project_id}")
async def get_project(project_id: int, ws: WS, user: User):
    """The project's settings (annotators: its name, classes, instructions and
    shown fields only)."""
    return json(ws.project_view(ws.require_access(project_id, user), user))


@router.get("/projects/{project_id}/progress")
def progress(project_id: int, ws: WS, user: User):
    """Counts for the project. Annotators see their own counts only: a
    project total that moves with their answers would tell gold tasks apart."""
    ws.require_access(project_id, user)
    mine = {"user_id": user["id"], "username": user["username"],
            **ws.annotator_progress(project_id, user["id"])}
    if user["role"] == "annotator":
        return json({"project_id": project_id, "me": mine, "annotators": [mine]})
    prog = ws.progress(project_id)
    prog["me"] = mine
    return json(prog)


@router.get("/projects/{project_id}/progress/series")
def progress_series(project_id: int, ws: WS, user: Staff,
                    bucket: Literal["minute", "hour", "day"] = Query("hour", description="the time bucket"),
                    buckets: int = Query(48, ge=1, le=200, description="how many buckets, the open one last"),
                    series_of: str = Query("all", max_length=20,
                                           description="whose per-bucket series the annotators carry: all, none or a user id")):
    """Live progress over time (admins and reviewers): per bucket and per
    annotator, answers per hour, mean seconds per item (the answers' lead
    time) and agreement with the final label (one-class kinds); the model's
    accuracy per version trained in the window. Aggregated in the database."""
    ws.require_access(project_id, user, roles=("admin", "reviewer"))
    return json(ws.progress_series(project_id, bucket=bucket, buckets=buckets, series_of=series_of))


@router.get("/projects/{project_id}/members")
def list_members(project_id: int, ws: WS, _: Admin):
    return json({"members": ws.list_members(project_id)})


@router.post("/projects/{project_id}/members", status_code=201)
def add_member(project_id: int, body: MemberIn, ws: WS, _: Admin):
    who = body.user_id if body.user_id is not None else body.username
    if who is None:
        raise InvalidInput("give the member as {'username': …} or {'user_id': …}")
    ws.add_member(project_id, who)
    return json({"members": ws.list_members(project_id)}, 201)


@router.delete("/projects/{project_id}/members/{user_id}", status_code=204)
def remove_member(project_id: int, user_id: int, ws: WS, _: Admin):
    ws.remove_member(project_id, user_id)
    return Response(status_code=204)


@router.get("/projects/{project_id}/answers")
def list_answers(project_id: int, ws: WS, user: Staff,
                 after: int | None = Query(None, ge=0, le=2**62, description="the next page's cursor (next_after)"),
                 limit: int = Query(100, ge=1, le=1000),
                 user_id: int | None = Query(None, ge=1, le=2**62, description="only this annotator's answers"),
                 order: Literal["asc", "desc"] = Query("asc", description="desc: newest first")):
    """The project's answers in keyset pages (admins and reviewers): oldest
    first, or newest first with ``order=desc``; one annotator's with ``user_id``."""
    ws.require_access(project_id, user, roles=("admin", "reviewer"))
    rows, nxt = ws.list_answers(project_id, after=after, limit=limit, annotator_id=user_id,
                                newest_first=order == "desc")
    return json({"answers": rows, "next_after": nxt})


@router.get("/projects/{project_id}/export", response_class=Response, responses={200: {
    "description": "the labels as a file", "content": {
        "application/x-ndjson": {}, "text/csv": {}, "application/vnd.apache.parquet": {}, "text/plain": {},
        "application/json": {}}}})
async def export(project_id: int, ws: WS, user: Staff,
                 format: ExportFormat = Query("jsonl", description=(  # type: ignore[valid-type]
                     "jsonl, csv or parquet; span projects also spacy (spaCy-compatible JSON lines) "
                     "and conll (BIO tags); boxes and polygons also coco (COCO detection JSON); "
                     "every kind labelstudio (Label Studio's JSON export)")),
                 labeled_only: bool = False,
                 slice: str | None = Query(None, max_length=200, description=(
                     "only the items of this slice of the project's dataset (jsonl, csv, parquet)")),
                 tag: str | None = Query(None, max_length=64,
                                         description="only items with this tag (jsonl, csv, parquet)"),
                 sources: str | None = Query(None, max_length=100, description=(
                     "only items whose final label comes from these, comma-separated: gold, review, consensus, "
                     "auto, majority (jsonl, csv, parquet)"))):
    """A snapshot of the project's labels, streamed (constant memory; a
    Parquet file is built first in an anonymous temporary file). The file
    name is the project's, in any script (``filename*``, RFC 5987)."""
    p = ws.require_access(project_id, user, roles=("admin", "reviewer"))
    suffix = SUFFIX.get(format, f".{format}")
    # export_chunks checks the format
    chunks = ws.export_chunks(project_id, format, labeled_only=labeled_only, slice=slice, tag=tag, sources=sources)
    headers = {"Content-Disposition": content_disposition(f"{p['name']}-labels", suffix)}
    # The first chunk is made before the answer starts, so an export that
    # fails early (a Parquet file fails before its first byte) is an error
    # status, not a cut connection; a generator closed here leaves no file.
    first = await run_in_threadpool(next, chunks, None)
    media = MEDIA[format]
    body = itertools.chain(() if first is None else (first,), chunks)
    return StreamingResponse(body, media_type=media, headers=headers)


@router.post("/projects/{project_id}/quality/refit", status_code=202)
def refit_quality(project_id: int, ws: WS, _: Admin):
    """Re-fit annotator skills and item posteriors (adaptive redundancy) in the
    background; answers go on meanwhile. 202 at once."""
    ws.get_project(project_id)
    resp = json({"project_id": project_id, "refit": "started"}, 202)
    resp.background = BackgroundTask(ws.refit_quality, project_id)
    return resp


@router.get("/projects/{project_id}/consensus")
def item_consensus(project_id: int, ws: WS, user: Staff,
                   status: Literal["open", "resolved", "review"] | None = None,
                   after: int | None = Query(None, ge=0), limit: int = Query(100, ge=1, le=1000)):
    """Items' running consensus; ``status=review`` is the reviewer queue."""
    ws.require_access(project_id, user, roles=("admin", "reviewer"))
    rows, nxt = ws.item_consensus(project_id, status=status, after=after, limit=limit)
    return json({"items": rows, "next_after": nxt})


@router.get("/projects/{project_id}/labels")
def final_labels(project_id: int, ws: WS, user: Staff,
                 after: int | None = Query(None, ge=0), limit: int = Query(100, ge=1, le=1000)):
    """Items' final labels in task order, as an export holds them: gold >
    reviewer's decision > consensus > auto-label > majority vote, with the
    ``source`` and ``confidence``; ``next_after`` pages on (null: the last page)."""
    ws.require_access(project_id, user, roles=("admin", "reviewer"))
    rows, nxt = ws.final_labels(project_id, after=after, limit=limit)
    return json({"labels": rows, "next_after": nxt})


@router.get("/projects/{project_id}/quality")
def quality_report(project_id: int, ws: WS, user: Staff):
    """Annotator accuracy and confusion, Krippendorff's alpha, the consensus
    confidence histogram and status counts (single-label projects). Kept
    between requests; on a big project whose answers moved on, the last
    report is answered with ``stale: true`` while a fresh one is computed."""
    ws.require_access(project_id, user, roles=("admin", "reviewer"))
    return json(ws.quality_report(project_id, stale_ok=True))


@router.get("/projects/{project_id}/report")
def project_report(project_id: int, ws: WS, user: Staff,
                   slice: str | None = Query(None, max_length=200,
                                             description="only the items of this slice of the project's dataset")):
    """Progress, agreement, final labels by source and class, and answers' accuracy
    against gold and reviews: over the project, or only a slice's items."""
    ws.require_access(project_id, user, roles=("admin", "reviewer"))
    return json(ws.project_report(project_id, slice=slice))


@router.get("/projects/{project_id}/label-errors")
def label_errors(project_id: int, ws: WS, user: Staff,
                 method: str = Query("auto", description="auto, crowd (consensus of several answers with the "
                                                         "model) or model (one answer against the model)"),
                 limit: int = Query(100, ge=1, le=10_000, description="items, most probably wrong first")):
    """Answered items ranked by how likely their label is wrong, with a quality
    score in [0, 1] and a flag (single-label projects; reviewed and gold items
    are left out)."""
    ws.require_access(project_id, user, roles=("admin", "reviewer"))
    return json(ws.label_errors(project_id, method=method, limit=limit, stale_ok=True))


@router.get("/projects/{project_id}/skills")
def skill_map(project_id: int, ws: WS, user: Staff,
              min_confidence: float = Query(0.95, ge=0.5, le=1.0,
                                            description="final labels from answers count as truth from this confidence"),
              after: int | None = Query(None, ge=0, le=2**62,
                                        description="annotators with a user id above this (next_after)"),
              limit: int = Query(100, ge=1, le=1000, description="annotators per page")):
    """Each annotator's skill per class (with a 90 % interval) and the class pairs
    they confuse most, scored on gold, reviews and confident final labels: a page
    of annotators by user id (``next_after``: the next page's cursor, None on the
    last), each nuance's rows for the same annotators."""
    ws.require_access(project_id, user, roles=("admin", "reviewer"))
    return json(ws.skill_map(project_id, min_confidence=min_confidence, after=after, limit=limit))


@router.get("/projects/{project_id}/skills/known")
def known_skills(project_id: int, ws: WS, user: Staff):
    """Spans, boxes and polygons projects: each annotator's precision, recall,
    F1 and localisation (mean IoU of matched shapes) or per entity type
    scores, on gold and reviewed items (admins and reviewers only)."""
    ws.require_access(project_id, user, roles=("admin", "reviewer"))
    return json(ws.known_skills(project_id))


@router.get("/projects/{project_id}/model")
def model_report(project_id: int, ws: WS, user: Staff):
    """The in-loop model's versions (its learning curve), predictions and auto-labels."""
    ws.require_access(project_id, user, roles=("admin", "reviewer"))
    return json(ws.model_report(project_id))
