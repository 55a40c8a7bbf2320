"""The annotator's hot path: next task, answer, skip, undo.

These handlers are ``async`` and call the workspace directly: each call is a
short transaction, cheaper than a hop to the thread pool.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from pydantic import BaseModel

from assay.errors import InvalidInput
from assay.server.deps import WS, User, json

router = APIRouter(tags=["tasks"])


class NextIn(BaseModel):
    exclude: list[int] = []


class AnswerIn(BaseModel):
    label: str | list[str]


async def _optional_body(request: Request) -> dict:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidInput("the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise InvalidInput("the request body must be a JSON object")
    return body


@router.post("/projects/{project_id}/tasks/next", openapi_extra={
    "requestBody": {"required": False, "content": {"application/json": {"schema": NextIn.model_json_schema()}}}
})
async def next_task(project_id: int, request: Request, ws: WS, user: User):
    """Lease the next task to the caller; ``{"task": null}`` when none is left.

    Optional body ``{"exclude": [task ids]}`` (e.g. the task on screen) so a
    client can prefetch the next one.
    """
    body = await _optional_body(request)
    exclude = body.get("exclude") or []
    if not isinstance(exclude, list) or not all(isinstance(x, int) for x in exclude):
        raise InvalidInput("exclude must be a list of task ids (integers)")
    ws.require_access(project_id, user)
    return json({"task": ws.next_task(project_id, user, exclude=exclude)})


@router.post("/tasks/{task_id}/answers", status_code=201)
async def submit(task_id: int, body: AnswerIn, ws: WS, user: User):
    """Answer a task you hold: ``{"label": "cat"}`` or ``{"label": ["a", "b"]}``."""
    return json({"answer": ws.submit(task_id, user, body.label)}, 201)


@router.post("/tasks/{task_id}/skip")
async def skip(task_id: int, ws: WS, user: User):
    ws.skip(task_id, user)
    return json({"ok": True})


@router.delete("/answers/{answer_id}")
async def undo(answer_id: int, ws: WS, user: User):
    """Take back your own answer; its task is leased back to you."""
    return json({"task": ws.undo(answer_id, user)})
