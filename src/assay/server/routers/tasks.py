"""The annotator's hot path: next task, answer, skip, undo.

These handlers are ``async`` and call the workspace directly: each call is a
short transaction, cheaper than a hop to the thread pool.

:class:`HotPaths` serves the two busiest requests (``tasks/next`` and
answers) before FastAPI's routing and dependency machinery, with the same
code, the same checks and the same responses; anything it is not sure about
(an odd body, content type or path) goes on to the FastAPI routes below.
"""

from __future__ import annotations

import re
import time

import orjson
from fastapi import APIRouter, Request
from pydantic import BaseModel, JsonValue

from assay.errors import AssayError, InvalidInput
from assay.server import blinding
from assay.server.deps import WS, Staff, User, json
from assay.server.errors import error_response

router = APIRouter(tags=["tasks"])


class NextIn(BaseModel):
    exclude: list[int] = []


class AnswerIn(BaseModel):
    label: str | list[JsonValue]  # a class, classes, or shapes/spans: the project's kind validates
    #: the model's pre-label shown with the task (the task's ``suggestion.label``), if any
    suggestion: str | list[JsonValue] | None = None


def _parse_optional_body(raw: bytes) -> dict:
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
    raw = await request.body()
    start = time.perf_counter()
    response = _next(ws, user, project_id, raw)
    await blind(ws, project_id, start, blinding.NEXT)
    return response


async def blind(ws, project_id: int, start: float, pad: blinding.Pad) -> None:
    """In a project with gold, release the response at a time set before the
    work began (:mod:`assay.server.blinding`): gold and real work take the
    same time as the caller sees it. Never waits in a project without gold."""
    try:
        has_gold = ws.get_project(project_id)["has_gold"]
    except AssayError:
        return
    if has_gold:
        await blinding.release(blinding.deadline(start, pad))


def _next(ws, user: dict, project_id: int, raw: bytes):
    body = _parse_optional_body(raw)
    exclude = body.get("exclude") or []
    if not isinstance(exclude, list) or not all(isinstance(x, int) for x in exclude):
        raise InvalidInput("exclude must be a list of task ids (integers)")
    ws.require_access(project_id, user)
    return json({"task": ws.next_task(project_id, user, exclude=exclude)})


@router.post("/tasks/{task_id}/answers", status_code=201)
async def submit(task_id: int, body: AnswerIn, ws: WS, user: User):
    """Answer a task you hold: ``{"label": "cat"}`` or ``{"label": ["a", "b"]}``;
    add ``"suggestion"`` (the model's pre-label that was shown) so the answer
    records whether it was accepted."""
    start = time.perf_counter()
    got = ws.submit(task_id, user, body.label, suggestion=body.suggestion)
    await blind(ws, got["project_id"], start, blinding.ANSWER)
    return json({"answer": got}, 201)


@router.post("/tasks/{task_id}/skip")
async def skip(task_id: int, ws: WS, user: User):
    start = time.perf_counter()
    project_id = ws.skip(task_id, user)
    await blind(ws, project_id, start, blinding.ANSWER)
    return json({"ok": True})


@router.delete("/answers/{answer_id}")
async def undo(answer_id: int, ws: WS, user: User):
    """Take back your own answer; its task is leased back to you."""
    start = time.perf_counter()
    task = ws.undo(answer_id, user)
    await blind(ws, task["project_id"], start, blinding.ANSWER)
    return json({"task": task})


@router.get("/projects/{project_id}/suggestions")
def suggestion_stats(project_id: int, ws: WS, user: Staff):
    """Pre-labels and anchoring: how often answers accepted the model's
    suggestion, and accepted vs overridden accuracy where the truth is known."""
    ws.require_access(project_id, user, roles=("admin", "reviewer"))
    return json(ws.suggestion_stats(project_id))


# ---------------------------------------------------------------- fast lane

_NEXT_PATH = re.compile(r"/api/projects/([0-9]{1,18})/tasks/next")
_ANSWER_PATH = re.compile(r"/api/tasks/([0-9]{1,18})/answers")
_MAX_HOT_BODY = 1 << 16


class HotPaths:
    """ASGI middleware: ``POST /api/projects/{id}/tasks/next`` and ``POST
    /api/tasks/{id}/answers`` without FastAPI's per-request routing,
    dependency and validation work (about 0.2 ms of CPU a request).

    It runs the same code as the routes (:func:`_next`, ``ws.submit``) and
    answers errors with the same shape. It takes a request only when the
    outcome cannot differ from the route's: an answer body must be a JSON
    object whose ``label`` is a string or a list of strings (and whose
    ``suggestion``, if any, is null, a string or a list of strings), sent as JSON;
    everything else (and every other path) is passed on untouched, with the
    body it has already read.
    """

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        path = scope["path"]
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root):]
        if path.endswith("/tasks/next"):
            m, kind = _NEXT_PATH.fullmatch(path), "next"
        elif path.endswith("/answers"):
            m, kind = _ANSWER_PATH.fullmatch(path), "answer"
        else:
            m = None
        if m is None:
            return await self.app(scope, receive, send)

        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # disconnected
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            chunks.append(chunk)
            more = message.get("more_body", False)
            if size > _MAX_HOT_BODY:
                break
        raw = b"".join(chunks)
        if size > _MAX_HOT_BODY or (kind == "answer" and (answer := _plain_answer(scope, raw)) is None):
            return await self.app(scope, _replay(raw, more, receive), send)

        token = None
        for k, v in scope["headers"]:
            if k == b"authorization":
                v = v.decode("latin-1")
                token = v[7:].strip() if v[:7].lower() == "bearer " else None
                break
        ws = scope["app"].state.workspace
        start = time.perf_counter()
        try:
            user = ws.authenticate(token)
            if kind == "next":
                response = _next(ws, user, int(m.group(1)), raw)
                await blind(ws, int(m.group(1)), start, blinding.NEXT)
            else:
                label, suggestion = answer
                got = ws.submit(int(m.group(1)), user, label, suggestion=suggestion)
                await blind(ws, got["project_id"], start, blinding.ANSWER)
                response = json({"answer": got}, 201)
        except AssayError as exc:
            response = error_response(exc.status, exc.code, exc.message, exc.details)
        await response(scope, receive, send)


def _is_label(v) -> bool:
    return isinstance(v, str) or (isinstance(v, list) and all(isinstance(x, str) for x in v))


def _plain_answer(scope, raw: bytes):
    """``(label, suggestion)`` of an answer body the route would accept as is, else None."""
    ctype = None
    for k, v in scope["headers"]:
        if k == b"content-type":
            ctype = v
            break
    if ctype is not None:
        base, _, rest = ctype.partition(b";")
        if base.strip().lower() != b"application/json" or rest.strip() not in (b"", b"charset=utf-8"):
            return None
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(body, dict):
        return None
    label, suggestion = body.get("label"), body.get("suggestion")
    if _is_label(label) and (suggestion is None or _is_label(suggestion)):
        return label, suggestion
    return None


def _replay(raw: bytes, more: bool, receive):
    """A ``receive`` that hands back the body already read, then the rest."""
    sent = False

    async def replay():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": raw, "more_body": more}
        return await receive()

    return replay
