"""Bring your own model over HTTP: connect a project to a Label Studio
compatible ML backend, check it, run predictions (see :mod:`assay.learn.ml_backend`).

Answers reach the backend's ``/webhook`` from the ``answer.created`` domain
event (:mod:`assay.jobs.webhooks`), whichever way they were submitted; this
router only tells the workspace the server's address (:class:`PublicAddress`)
for the content URLs of image items."""

from __future__ import annotations

import logging
import threading
import time

from fastapi import APIRouter, FastAPI, Request
from pydantic import BaseModel, Field
from starlette.background import BackgroundTask

from assay.config import config
from assay.errors import AssayError, Conflict
from assay.server.deps import WS, Admin, Staff, json

log = logging.getLogger("assay.server")
router = APIRouter(tags=["ml-backend"])


class BackendIn(BaseModel):
    url: str | None = Field(None, max_length=2000)
    access_token: str | None = Field(None, max_length=500)


class PredictIn(BaseModel):
    item_ids: list[int] | None = Field(None, max_length=1_000_000)
    batch: int = Field(64, ge=1, le=1000)


def base_url(request: Request) -> str:
    """This server's address as a backend can reach it: ``ASSAY_PUBLIC_URL``,
    else the address and port this connection was accepted on (the socket's,
    not the request's ``Host`` header, which the caller writes)."""
    configured = config().public_url
    if configured:
        return configured.rstrip("/")
    scope = request.scope
    server = scope.get("server") or ("127.0.0.1", 8000)
    host, port = server[0], server[1]
    if port is None:  # a Unix socket: no address a backend could use
        host, port = "127.0.0.1", 8000
    if ":" in str(host):
        host = f"[{host}]"
    scheme = scope.get("scheme") if scope.get("scheme") in ("http", "https") else "http"
    netloc = host if port == {"http": 80, "https": 443}[scheme] else f"{host}:{port}"
    return f"{scheme}://{netloc}{scope.get('root_path', '')}".rstrip("/")


def _runs(request: Request) -> tuple[dict, threading.Lock]:
    state = request.app.state
    if not hasattr(state, "backend_runs"):
        state.backend_runs, state.backend_runs_lock = {}, threading.Lock()
    return state.backend_runs, state.backend_runs_lock


@router.put("/projects/{project_id}/ml-backend")
def set_backend(project_id: int, body: BackendIn, request: Request, ws: WS, _: Admin):
    """Connect the project to a model: ``{"url": "http://host:9090"}`` (a
    Label Studio compatible ML backend) or ``{"url": "python:<name>"}``;
    ``{"url": null}`` disconnects. The backend must answer ``/health`` and
    ``/setup`` first. ``access_token`` (optional) is passed to ``/setup`` so
    the backend can fetch image content."""
    return json(ws.connect_backend(project_id, body.url, base_url=base_url(request),
                                   access_token=body.access_token))


@router.get("/projects/{project_id}/ml-backend")
def get_backend(project_id: int, request: Request, ws: WS, user: Staff):
    """The backend's URL and health (``ok`` false with ``error`` when it does
    not answer), the last prediction run and webhook counts."""
    p = ws.require_access(project_id, user, roles=("admin", "reviewer"))
    out = {"project_id": p["id"], "url": p["ml_backend_url"], "ok": None, "health": None, "error": None}
    if p["ml_backend_url"]:
        try:
            out["health"] = ws.backend_health(p["id"])["health"]
            out["ok"] = True
        except AssayError as e:
            out["ok"], out["error"] = False, e.message
    runs, _lock = _runs(request)
    out["predict"] = runs.get(p["id"])
    out["webhooks"] = ws.backend_notifications()
    return json(out)


@router.post("/projects/{project_id}/ml-backend/predict", status_code=202)
def predict(project_id: int, request: Request, ws: WS, _: Admin, body: PredictIn | None = None):
    """Ask the backend for predictions of the project's items (all, or
    ``item_ids``) in the background; 202 at once. ``GET …/ml-backend``
    shows the run (``predict``: state, result or error)."""
    p = ws.get_project(project_id)
    ws._backend(p)  # 400 now if the project has no backend
    body = body or PredictIn()
    runs, lock = _runs(request)
    with lock:
        cur = runs.get(p["id"])
        if cur is not None and cur["state"] == "running":
            raise Conflict(f"a prediction run for project {p['id']} is already running")
        run = runs[p["id"]] = {"state": "running", "started_at": time.time(), "finished_at": None,
                               "result": None, "error": None}
    url = base_url(request)

    def work():
        try:
            run["result"] = ws.backend_predict(p["id"], item_ids=body.item_ids, batch=body.batch, base_url=url)
            run["state"] = "done"
        except AssayError as e:
            run["state"], run["error"] = "failed", e.message
        except Exception:  # noqa: BLE001 - reported in GET …/ml-backend, details in the log
            log.exception("prediction run for project %s failed", p["id"])
            run["state"], run["error"] = "failed", "internal error (see the server log)"
        finally:
            run["finished_at"] = time.time()

    resp = json({"project_id": p["id"], "predict": "started"}, 202)
    resp.background = BackgroundTask(work)
    return resp


# ---------------------------------------------------------------- this server's address


class PublicAddress:
    """ASGI middleware: remembers this server's address (:func:`base_url`)
    on the workspace at the first request, for the content URLs of image
    items in webhooks sent for answers (:mod:`assay.jobs.webhooks`, which
    sends them from ``answer.created`` events, not from responses). After
    the first request it only passes requests on."""

    def __init__(self, app) -> None:
        self.app = app
        self.known = False

    async def __call__(self, scope, receive, send) -> None:
        if not self.known and scope["type"] == "http":
            scope["app"].state.workspace.public_base_url = base_url(Request(scope))
            self.known = True
        return await self.app(scope, receive, send)


def install(app: FastAPI) -> None:
    """The routes under ``/api``, and this server's address for webhooks."""
    app.include_router(router, prefix="/api")
    app.add_middleware(PublicAddress)
