"""The browser UI: static pages shipped as package data."""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import FileResponse, RedirectResponse

STATIC = Path(__file__).resolve().parent.parent / "static"
#: Swagger UI's files, from the fastapi-offline package (never a CDN).
SWAGGER_UI = Path(fastapi_offline.__file__).resolve().parent / "static"
router = APIRouter(include_in_schema=False)


def _page(name: str) -> FileResponse:
    return FileResponse(STATIC / name, media_type="text/html; charset=utf-8",
                        headers={"Cache-Control": "no-cache"})


async def _needs_setup(request: Request) -> bool:
    return await run_in_threadpool(request.app.state.workspace.needs_setup)


@router.get("/")
async def index(request: Request):
    if await _needs_setup(request):  # first run: nobody to log in yet
        return RedirectResponse("/setup", status_code=303)
    return _page("index.html")


@router.get("/login")
async def login(request: Request):
    if await _needs_setup(request):
        return RedirectResponse("/setup", status_code=303)
    return _page("login.html")


@router.get("/setup")
async def setup(request: Request):
    """First run: create the first admin with the code `assay serve` printed."""
    if not await _needs_setup(request):
        return RedirectResponse("/login", status_code=303)
    return _page("setup.html")


@router.get("/label/{project_id}")
def label(project_id: int):
    return _page("label.html")


@router.get("/admin")
def admin():
    return _page("admin.html")


@router.get("/admin/data")
def admin_data():
    """Datasets: create, upload files, provenance, browse items."""
    return _page("admin_data.html")


@router.get("/admin/people")
def admin_people():
    """People: users and roles, login links and tokens, one person's projects, skills and answers."""
    return _page("admin_people.html")


@router.get("/admin/projects/new")
def admin_project_new():
    """The new-project wizard (declared before /admin/projects/{project_id})."""
    return _page("admin_project_new.html")


@router.get("/admin/projects/{project_id}")
def admin_project(project_id: int):
    """One project: settings, members, gold, review queue, exports, live charts."""
    return _page("admin_project.html")


@router.get("/quality/{project_id}")
def quality(project_id: int):
    return _page("quality.html")


@router.get("/search/{dataset_id}")
def search(dataset_id: int):
    return _page("search.html")


@router.get("/map/{dataset_id}")
def embedding_map(dataset_id: int):
    return _page("map.html")


@router.get("/curate/{dataset_id}")
def curate(dataset_id: int):
    """Near-duplicate groups, exact duplicates and outliers of a dataset, to review and resolve."""
    return _page("curate.html")


@router.get("/docs")
def docs():
    """Swagger UI from the package; its set-up runs from /static/docs.js (no inline script)."""
    return _page("docs.html")
