"""The demo that ``assay quickstart`` sets up: sample data, a project, people."""

from __future__ import annotations

import secrets
from importlib import resources
from pathlib import Path

from assay.errors import NotFound
from assay.workspace import Workspace

DEMO_PROJECT = "demo"
DEMO_DATASET = "sample"


def _sample_path() -> Path:
    return Path(str(resources.files("assay") / "samples" / "reviews.csv"))


def setup_demo(home: str | Path | None = None, *, data: Path | None = None,
               classes: list[str] | None = None) -> dict:
    """Idempotent: re-running reuses what exists and issues fresh login tokens."""
    ws = Workspace(home)
    classes = classes or ["positive", "negative", "neutral"]
    ws.dataset(DEMO_DATASET, create=True)
    if data is not None:
        ws.import_file(DEMO_DATASET, data, source=str(data))
    else:
        ws.import_file(DEMO_DATASET, _sample_path(), source="assay bundled sample (reviews.csv)",
                       license="CC0-1.0", consent="written by the assay authors; no personal data")
    try:
        project = ws.get_project(DEMO_PROJECT)
    except NotFound:
        project = ws.create_project(
            DEMO_PROJECT, DEMO_DATASET, classes,
            instructions="Is the sentence positive, negative or neutral about its subject? "
                         "Press 1–3 to answer, S to skip, Z to undo.",
            overlap=2, show_fields=["topic"],
        )
    users = []
    for name, role in [("admin", "admin"), ("alice", "annotator"), ("bob", "annotator")]:
        password = None
        try:
            u = ws.get_user(name)
            token = ws.create_token(name, "quickstart")
        except NotFound:
            password = secrets.token_urlsafe(9)
            u, token = ws.add_user(name, role, password)
        if role == "annotator":
            ws.add_member(project["id"], u["id"])
        users.append({"username": name, "role": u["role"], "token": token, "password": password})
    info = {"home": str(ws.home), "project": project, "classes": project["schema"]["classes"] and
            [c["name"] for c in project["schema"]["classes"]],
            "tasks": ws.progress(project["id"])["tasks"], "users": users}
    ws.close()
    return info
