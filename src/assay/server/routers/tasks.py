"""The annotator's hot path: next task, answer, skip, undo.

These handlers are ``async`` and call the workspace directly: each call is a
short transaction, cheaper than a hop to the thread pool.

:class:`HotPaths` serves the two busiest requests (``tasks/next`` and
answers) before FastAPI's routing and dependency machinery, with the same
code, the same checks and the same responses; anything it is not sure about
(an odd body, content type or path) goes on to the FastAPI routes below.
"""

from __future__ import annotations

import asyncio
import random
import re

import orjson
from fastapi import APIRouter, Request
from pydantic import BaseModel

from assay.errors import AssayError, InvalidInput
from assay.server.deps import WS, Staff, User, json
from assay.server.errors import error_response

router = APIRouter(tags=["tasks"])


class NextIn(BaseModel):
    exclude: list[int] = []


class AnswerIn(BaseModel):
    label: str | list[str]
    #: the model's pre-label shown with the task (the task's ``suggestion.label``), if any
    suggestion: str | list[str] | None = None


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
    response = _next(ws, user, project_id, await request.body())
    await blind(ws, project_id)
    return response


#: the most a task hand-out waits at random in a project with gold (seconds)
BLINDING_SECONDS = 0.004


async def blind(ws, project_id: int) -> None:
    """In a project with gold, wait a random 0–4 ms before a hand-out answers.
    Gold and real work run the same kinds of statements, but a database
    still takes a little longer for one or the other (on PostgreSQL a claim
    from the pool writes more than a gold lease): a random delay several
    times that difference keeps the timing from telling them apart. It costs
    no CPU (the event loop serves others meanwhile) and is never spent in a
    project without gold."""
    try:
        has_gold = ws.get_project(project_id)["has_gold"]
    except AssayError:
        return
    if has_gold:
        await asyncio.sleep(_rng.uniform(0.0, BLINDING_SECONDS))


_rng = random.SystemRandom()


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
    return json({"answer": ws.submit(task_id, user, body.label, suggestion=body.suggestion)}, 201)


@router.post("/tasks/{task_id}/skip")
async def skip(task_id: int, ws: WS, user: User):
    ws.skip(task_id, user)
    return json({"ok": True})


@router.delete("/answers/{answer_id}")
async def undo(answer_id: int, ws: WS, user: User):
    """Take back your own answer; its task is leased back to you."""
    return json({"task": ws.undo(answer_id, user)})


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
        try:
            user = ws.authenticate(token)
            if kind == "next":
                response = _next(ws, user, int(m.group(1)), raw)
                await blind(ws, int(m.group(1)))
            else:
                label, suggestion = answer
                response = json({"answer": ws.submit(int(m.group(1)), user, label, suggestion=suggestion)}, 201)
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
