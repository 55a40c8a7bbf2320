"""``create_app(workspace)``: the FastAPI application."""

from __future__ import annotations

import contextlib
import logging

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.staticfiles import StaticFiles

from assay import jobs
from assay.config import SCHEDULE, config
from assay.server import errors
from assay.server.routers import (auth, backends, curation, datasets, doctor, gold, pages, projects, search, slices,
                                  tags, tasks)
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
    looks for projects whose answers grew enough since their last re-fit
    (:meth:`Workspace.refits_due`) and re-fits them, then steps their models
    (:func:`assay.jobs.refit_round`). Both run in background threads of one
    leading process among those sharing the database (:mod:`assay.jobs`),
    never inside a request; ``app.state.jobs`` is the runner.

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
        # first run under a bare uvicorn (``assay serve`` has printed one already): a setup code
        code = await run_in_threadpool(lambda: workspace.setup_code(renew=False))
        if code:
            log.warning("first run: no users yet; open /setup and enter the one-time code %s", code)
        # background jobs run in their own threads, one process leading each (assay.jobs)
        runner = app.state.jobs = jobs.server_runner(
            workspace, reclaim_interval=reclaim_interval, refit_interval=refit_interval)
        # SQLite: WAL checkpoints in a background thread, not inside a request.
        workspace.db.start_checkpointer()
        try:
            yield
        finally:
            workspace.db.stop_checkpointer()
            await run_in_threadpool(runner.stop)  # joins the job threads: not on the event loop

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
    for r in (auth.router, datasets.router, search.router, curation.router, slices.router, tags.router,
              projects.router, tasks.router, gold.router, doctor.router):
        app.include_router(r, prefix="/api")
    app.include_router(pages.router)
    app.mount("/static/swagger-ui", StaticFiles(directory=SWAGGER_UI), name="swagger-ui")
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` / several workers: reads ASSAY_HOME and
    ASSAY_DATABASE_URL from the environment."""
    return create_app(Workspace())
