"""Gold questions, reviewers' decisions, paused annotators, the qualification
exam and teaching by nuance."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from pydantic import BaseModel, Field, JsonValue
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from assay.server.deps import WS, Admin, Staff, User, json

router = APIRouter(tags=["quality"])


class GoldIn(BaseModel):
    items: list[dict[str, Any]] = Field(min_length=1, max_length=100_000)
    key: str | None = None


class DecisionIn(BaseModel):
    label: str | list[JsonValue]  # a class, classes, or shapes/spans: the project's kind validates


class PracticeIn(BaseModel):
    label: str | list[JsonValue]  # a class, classes, or shapes/spans: the project's kind validates


@router.post("/projects/{project_id}/gold", status_code=201)
def import_gold(project_id: int, body: GoldIn, ws: WS, admin: Admin):
    """Known labels: ``{"items": [{"item_id": 7, "label": "cat"}, …]}``, or with
    ``"key": "my_id"`` rows ``{"my_id": …, "label": …}`` matched on an item
    metadata field. Their tasks become gold questions. All or nothing."""
    return json(ws.import_gold(project_id, body.items, key=body.key, user=admin), 201)


@router.get("/projects/{project_id}/gold")
def list_gold(project_id: int, ws: WS, user: Staff,
              after: int | None = Query(None, ge=0), limit: int = Query(100, ge=1, le=1000)):
    ws.require_access(project_id, user, roles=("admin", "reviewer"))
    rows, nxt = ws.list_gold(project_id, after=after, limit=limit)
    return json({"gold": rows, "next_after": nxt})


@router.delete("/projects/{project_id}/gold/{item_id}", status_code=204)
def remove_gold(project_id: int, item_id: int, ws: WS, _: Admin):
    ws.remove_gold(project_id, item_id)
    return Response(status_code=204)


@router.post("/projects/{project_id}/items/{item_id}/review")
def review(project_id: int, item_id: int, body: DecisionIn, ws: WS, user: Staff):
    """A reviewer's final label for an item (e.g. from the review queue)."""
    ws.require_access(project_id, user, roles=("admin", "reviewer"))
    return json(ws.review(project_id, item_id, body.label, user))


@router.get("/projects/{project_id}/review/marks")
def mark_review_queue(project_id: int, ws: WS, user: Staff,
                      after: int | None = Query(None, ge=0), limit: int = Query(20, ge=1, le=200)):
    """Spans, boxes, polygons: unsure items (low agreement between the
    answers) with every answer and the kind's majority, for a decision."""
    ws.require_access(project_id, user, roles=("admin", "reviewer"))
    rows, nxt = ws.mark_review_queue(project_id, after=after, limit=limit)
    return json({"items": rows, "next_after": nxt})


@router.get("/projects/{project_id}/annotators/gold")
def gold_stats(project_id: int, ws: WS, user: Staff):
    """Each annotator's record on gold and whether they are paused."""
    ws.require_access(project_id, user, roles=("admin", "reviewer"))
    return json({"annotators": ws.gold_stats(project_id)})


@router.post("/projects/{project_id}/annotators/{user_id}/unpause")
def lift_pause(project_id: int, user_id: int, ws: WS, admin: Admin):
    """Let a paused annotator work again (a fresh gold window starts)."""
    return json(ws.lift_pause(project_id, user_id, by=admin))


@router.get("/projects/{project_id}/exam")
def exam_report(project_id: int, ws: WS, user: Staff):
    """The qualification exam: its settings, how many exam items there are
    and, per annotator who started it, status (open, passed, failed),
    attempts (score, passed, times), best score and attempts left."""
    ws.require_access(project_id, user, roles=("admin", "reviewer"))
    return json(ws.exam_report(project_id))


@router.post("/projects/{project_id}/annotators/{user_id}/exam/reset")
def reset_exam(project_id: int, user_id: int, ws: WS, admin: Admin):
    """Grant one more exam attempt to an annotator refused after failing it."""
    return json(ws.reset_exam(project_id, user_id, by=admin))


@router.post("/tasks/{task_id}/practice")
def practice(task_id: int, body: PracticeIn, ws: WS, user: User):
    """Answer the teaching item you hold (a task that tasks/next gave with
    ``"teach"``): ``{"label": "cat"}``. The reply is the feedback at once:
    ``{"practice": {…, "teach": {correct, right_label, nuance, explanation,
    reference_items}}}``. Any other task (real work, a hidden check, one not
    handed to you as teaching) is refused with 409 and no feedback; teaching
    answers are never answers (no consensus, no gold score, no export)."""
    return json({"practice": ws.submit_practice(task_id, user, body.label)})


@router.get("/projects/{project_id}/teaching")
def teaching_report(project_id: int, ws: WS, user: Staff):
    """Teaching by nuance: its settings, how many teaching items each nuance
    has and, per annotator × nuance taught, the skill on the nuance's hidden
    checks before vs after teaching (90 % intervals) and the change; pooled
    per nuance and for the project."""
    ws.require_access(project_id, user, roles=("admin", "reviewer"))
    return json(ws.teaching_report(project_id))


@router.post("/projects/{project_id}/teaching/refresh")
def refresh_teaching(project_id: int, ws: WS, admin: Admin):
    """Run the detection round of teaching now (the server runs it in the
    background): the needs opened and the needs measured."""
    return json(ws.refresh_teaching(project_id))


GOLD_FILE_SUFFIXES = (".json", ".jsonl", ".ndjson", ".csv", ".conll", ".bio", ".iob", ".zip")


@router.post("/projects/{project_id}/gold/file", status_code=201)
async def import_gold_upload(project_id: int, request: Request, ws: WS, admin: Admin,
                             file: UploadFile = File(..., description=(
                                 "a gold file: .csv/.jsonl (item_id, label), spaCy .jsonl, CoNLL .conll, "
                                 "COCO or Label Studio export .json, a zipped YOLO or Pascal VOC folder")),
                             key: str | None = Form(None, max_length=200, description=(
                                 "match CSV/JSONL rows on this item metadata field instead of item_id"))):
    """Gold from an uploaded file, read as ``assay project gold`` reads it
    (by its suffix; a ``.json`` list is a Label Studio export, an object a
    COCO file; a ``.zip`` a YOLO or Pascal VOC folder, of which only the
    label files are unpacked). All or nothing; 400 names the first bad row, task or token."""
    from assay.server.routers.datasets import check_upload_name, spool, upload_dir

    ws.require_access(project_id, admin, roles=("admin",))
    name = check_upload_name(file.filename, GOLD_FILE_SUFFIXES)
    with upload_dir() as tmp:
        path = tmp / name
        await spool(file, path, request.app.state.max_upload_bytes)
        out = await run_in_threadpool(ws.import_gold_file, project_id, path, key=key or None, user=admin)
    return json(out, 201)
