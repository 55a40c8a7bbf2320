"""The demo that ``assay quickstart`` sets up: sample data, a project, people."""

from __future__ import annotations

import secrets
from importlib import resources
from pathlib import Path

from assay import kinds
from assay.errors import Conflict, NotFound
from assay.workspace import Workspace

DEMO_PROJECT = "demo"
DEMO_DATASET = "sample"
INSTRUCTIONS = ("Is the sentence positive, negative or neutral about its subject? "
                "Press 1–3 to answer, S to skip, Z to undo.")


def _sample_path() -> Path:
    return Path(str(resources.files("assay") / "samples" / "reviews.csv"))


def setup_demo(home: str | Path | None = None, *, data: Path | None = None,
               classes: list[str] | None = None) -> dict:
    """Set up the demo, or reuse the one a previous run made; never touches
    anything else.

    * The ``demo`` project exists: it is used as it is (nothing imported)
      and the people get fresh login tokens; ``data`` is refused, because
      quickstart does not add data to an existing project.
    * Otherwise ``sample`` must not exist yet (it is someone's data): the
      data is imported into a new ``sample`` dataset and the project made
      over it. All or nothing: if a step fails, the new dataset goes too.
    """
    ws = Workspace(home)
    try:
        return _setup(ws, data, classes or ["positive", "negative", "neutral"])
    finally:
        ws.close()


def _setup(ws: Workspace, data: Path | None, classes: list[str]) -> dict:
    try:
        project = ws.get_project(DEMO_PROJECT)
    except NotFound:
        project = None
    reused = project is not None
    if reused and data is not None:
        raise Conflict(
            f"this workspace ({ws.home}) already has the {DEMO_PROJECT!r} project; quickstart adds no data "
            f"to it. Import yours with `assay import NAME {data}` and `assay project create`, or run "
            "quickstart with a fresh --home"
        )
    if not reused:
        try:
            ws.get_dataset(DEMO_DATASET)
        except NotFound:
            pass
        else:
            raise Conflict(
                f"this workspace ({ws.home}) has a dataset {DEMO_DATASET!r} but no {DEMO_PROJECT!r} project; "
                "quickstart leaves existing data alone. Create a project with `assay project create`, "
                "or run quickstart with a fresh --home"
            )
        kinds.get("single").normalize_schema({"classes": list(classes), "instructions": INSTRUCTIONS})
        if data is not None:
            r = ws.import_file(DEMO_DATASET, data, source=str(data), create=True)
        else:
            r = ws.import_file(DEMO_DATASET, _sample_path(), source="assay bundled sample (reviews.csv)",
                               license="CC0-1.0", consent="written by the assay authors; no personal data",
                               create=True)
        try:
            project = ws.create_project(DEMO_PROJECT, DEMO_DATASET, classes, instructions=INSTRUCTIONS,
                                        overlap=2, show_fields=["topic"])
        except BaseException:
            ws._drop_dataset_without_projects(r["dataset_id"])
            raise
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
    return {"home": str(ws.home), "project": project, "reused": reused,
            "classes": [c["name"] for c in project["schema"]["classes"]],
            "tasks": ws.progress(project["id"])["tasks"], "users": users}


def login_link(base: str, user: dict) -> str:
    """The link that logs ``user`` in and opens their page: the admin page
    for admins, labeling for the others (login.js reads ``next``)."""
    nxt = "?next=/admin" if user["role"] == "admin" else ""
    return f"{base}/login{nxt}#token={user['token']}"
