"""Gold questions, reviewers' decisions, paused annotators and the qualification exam."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from starlette.responses import Response

from assay.server.deps import WS, Admin, Staff, json

router = APIRouter(tags=["quality"])


class GoldIn(BaseModel):
    items: list[dict[str, Any]] = Field(min_length=1, max_length=100_000)
    key: str | None = None


class DecisionIn(BaseModel):
    label: str | list[str]


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
