"""The browser UI: static pages shipped as package data."""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import APIRouter
from starlette.responses import FileResponse

STATIC = Path(__file__).resolve().parent.parent / "static"
#: Swagger UI's files, from the fastapi-offline package (never a CDN).
SWAGGER_UI = Path(fastapi_offline.__file__).resolve().parent / "static"
router = APIRouter(include_in_schema=False)


def _page(name: str) -> FileResponse:
    return FileResponse(STATIC / name, media_type="text/html; charset=utf-8",
                        headers={"Cache-Control": "no-cache"})


@router.get("/")
def index():
    return _page("index.html")


@router.get("/login")
def login():
    return _page("login.html")


@router.get("/label/{project_id}")
def label(project_id: int):
    return _page("label.html")


@router.get("/admin")
def admin():
    return _page("admin.html")


@router.get("/quality/{project_id}")
def quality(project_id: int):
    return _page("quality.html")


@router.get("/search/{dataset_id}")
def search(dataset_id: int):
    return _page("search.html")


@router.get("/docs")
def docs():
    """Swagger UI from the package; its set-up runs from /static/docs.js (no inline script)."""
    return _page("docs.html")
