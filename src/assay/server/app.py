"""``create_app(workspace)``: the FastAPI application."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.staticfiles import StaticFiles

from assay.config import SCHEDULE, config
from assay.server import errors
from assay.server.routers import auth, backends, datasets, doctor, gold, pages, projects, tasks
from assay.server.edge import Edge
from assay.server.routers.pages import STATIC, SWAGGER_UI
from assay.workspace import Workspace

log = logging.getLogger("assay.server")


def create_app(workspace: Workspace, *, reclaim_interval: float = SCHEDULE.reclaim_interval,
               max_upload_mb: float | None = None, refit_interval: float | None = None,
               max_body_kb: float | None = None) -> FastAPI:
    """Build the HTTP app over ``workspace``.

    ``reclaim_interval``: seconds between sweeps that return expired leases
    to the pool (0 turns the sweeper off). ``refit_interval`` (default 30 s,
    ``ASSAY_REFIT_INTERVAL``; 0 = off): how often the background re-fitter
    looks for single-label projects whose answers grew enough since their last
    re-fit (:meth:`Workspace.refits_due`) and re-fits them, one at a time, in
    a worker thread — never inside a request.

    Request bodies are bounded while they stream (:class:`assay.server.edge.Edge`):
    uploads to ``max_upload_mb`` (default 200, ``ASSAY_MAX_UPLOAD_MB``), every
    other body to ``max_body_kb`` (default 1024, ``ASSAY_MAX_BODY_KB``).
    """
    cfg = config()  # read when the app is made (assay.config)
    if refit_interval is None:
        refit_interval = cfg.refit_interval

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        datasets.sweep_upload_dirs()  # what a server killed mid-import left in the temp dir
        sweeper = None
        if reclaim_interval > 0:
            sweeper = asyncio.create_task(_sweep(workspace, reclaim_interval))
        refitter = asyncio.create_task(_refit_loop(workspace, refit_interval)) if refit_interval > 0 else None
        # SQLite: WAL checkpoints in a background thread, not inside a request.
        workspace.db.start_checkpointer()
        try:
            yield
        finally:
            workspace.db.stop_checkpointer()
            for task in (sweeper, refitter):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task

    app = FastAPI(
        title="assay",
        version="0.1.0",
        description="Label data with people and models. Errors: "
        '`{"error": {"code", "message", "details"}}`.',
        lifespan=lifespan,
        docs_url=None,  # /docs is served from the package (pages.py), never from a CDN
        redoc_url=None,
    )
    app.state.workspace = workspace
    mb = max_upload_mb if max_upload_mb is not None else cfg.max_upload_mb
    app.state.max_upload_bytes = int(mb * (1 << 20))
    kb = max_body_kb if max_body_kb is not None else cfg.max_body_kb
    app.state.max_body_bytes = int(kb * (1 << 10))
    errors.install(app)
    app.add_middleware(tasks.HotPaths)  # next/answer without FastAPI's per-request overhead
    backends.install(app)  # bring your own model: /ml-backend routes, answers -> backend /webhook
    # outermost: body limits, upload auth, input errors and security headers for every request
    app.add_middleware(Edge, max_body=app.state.max_body_bytes, max_upload=app.state.max_upload_bytes)
    for r in (auth.router, datasets.router, projects.router, tasks.router, gold.router, doctor.router):
        app.include_router(r, prefix="/api")
    app.include_router(pages.router)
    app.mount("/static/swagger-ui", StaticFiles(directory=SWAGGER_UI), name="swagger-ui")
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


async def _sweep(ws: Workspace, interval: float) -> None:
    while True:
        try:
            n = await run_in_threadpool(ws.reclaim_expired)
            if n:
                log.info("returned %d expired leases to the pool", n)
        except Exception:  # keep sweeping; the next round may succeed
            log.exception("lease sweep failed")
        await asyncio.sleep(interval)


async def _refit_loop(ws: Workspace, interval: float) -> None:
    """Background worker: re-fits skills of adaptive projects, then retrains
    the in-loop model of projects that have one (assay.loop) once their
    answers grew enough — one project at a time, in a worker thread."""
    from assay import loop

    while True:
        await asyncio.sleep(interval)
        try:
            refitted = set()
            for pid in await run_in_threadpool(ws.refits_due):
                summary = await run_in_threadpool(ws.refit_quality, pid)
                refitted.add(pid)
                log.info("re-fitted project %s: %s", pid, summary)
            due = set(await run_in_threadpool(loop.ml_due, ws, growth=SCHEDULE.ml_growth,
                                              min_new=SCHEDULE.ml_min_new))
            # a re-fit drops the model's prior from the consensus: put it back at once
            for pid in sorted(due | {p for p in refitted if ws.get_project(p)["ml_space"]}):
                summary = await run_in_threadpool(loop.ml_step, ws, pid)
                log.info("model step for project %s: version %s, %s auto-labeled",
                         pid, summary.get("version"), summary.get("auto_labeled"))
        except Exception:  # keep going; the next round may succeed
            log.exception("scheduled re-fit or model step failed")


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` / several workers: reads ASSAY_HOME and
    ASSAY_DATABASE_URL from the environment."""
    return create_app(Workspace())
